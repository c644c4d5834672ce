"""The ``imagebind`` embedder: ImageBind (huge) audio and region embeddings in one space.

Importing this package does not import torch or ImageBind; the model loads when the embedder
is built.
"""

from avseg.hookspecs import hookimpl
from avseg_imagebind.embedder import ImageBindEmbedder

__all__ = ["ImageBindEmbedder", "register_embedders"]


@hookimpl
def register_components(register):  # type: ignore[no-untyped-def]
    register(ImageBindEmbedder)
