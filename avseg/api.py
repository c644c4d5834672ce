"""The old name of :mod:`avseg.commands` (one function per CLI command), kept because the docs
promised ``avseg.api`` to scripts."""

from avseg.commands import *  # noqa: F403
from avseg.commands import __all__  # noqa: F401
