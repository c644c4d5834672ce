"""The ``clap`` tagger: zero-shot CLAP (transformers) audio tags over any vocabulary.

Importing this package does not import torch or transformers; the model loads when the
tagger is built.
"""

from avseg.hookspecs import hookimpl
from avseg_clap.tagger import ClapTagger

__all__ = ["ClapTagger", "register_taggers"]


@hookimpl
def register_components(register):  # type: ignore[no-untyped-def]
    register(ClapTagger)
