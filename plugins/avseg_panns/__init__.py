"""The ``panns`` tagger: PANNs CNN14 AudioSet tags (``panns-inference`` model code).

Importing this package does not import torch or panns_inference; the model loads when the
tagger is built.
"""

from avseg.hookspecs import hookimpl
from avseg_panns.tagger import PannsTagger

__all__ = ["PannsTagger", "register_taggers"]


@hookimpl
def register_components(register):  # type: ignore[no-untyped-def]
    register(PannsTagger)
