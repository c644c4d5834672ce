"""avseg: training-free audio-visual segmentation from foundation models, as a plugin toolkit.

Importing avseg is light: no torch, no model code. Components are found through the ``avseg``
entry-point group (see :mod:`avseg.registry`); heavy imports happen when one is built.

From Python::

    import avseg
    pipe = avseg.load("owod-bind", tiny=True)   # an avseg.LoadedPipeline
    result = pipe("clip.mp4")                    # an avseg.Result; result.masks is (T, H, W) bool
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from avseg.hookspecs import hookimpl  # noqa: E402  (the one thing plugins need from the top level)

# The Python API, imported on first use so that `import avseg` stays light.
_LAZY = {"load": "avseg.session", "LoadedPipeline": "avseg.session", "Result": "avseg.result",
         "write_report": "avseg.report"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avseg' has no attribute {name!r}")


__all__ = ["__version__", "hookimpl", "load", "LoadedPipeline", "Result", "write_report"]
