"""avseg: training-free audio-visual segmentation from foundation models, as a plugin toolkit.

Importing avseg is light: no torch, no model code. Components are found through the ``avseg``
entry-point group (see :mod:`avseg.registry`); heavy imports happen when one is built.
"""

__version__ = "0.1.0"

from avseg.hookspecs import hookimpl  # noqa: E402  (the one thing plugins need from the top level)

__all__ = ["__version__", "hookimpl"]
