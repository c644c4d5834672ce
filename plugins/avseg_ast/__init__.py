"""The ``ast`` tagger: Audio Spectrogram Transformer (transformers) AudioSet tags.

Importing this package does not import torch or transformers; the model loads when the
tagger is built.
"""

from avseg.hookspecs import hookimpl
from avseg_ast.tagger import ASTTagger

__all__ = ["ASTTagger", "register_taggers"]


@hookimpl
def register_components(register):  # type: ignore[no-untyped-def]
    register(ASTTagger)
