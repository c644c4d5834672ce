"""The command line this process was started with, for messages that tell the user what to rerun."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

_ARGS: list[list[str]] = []


def set_invocation(args: Sequence[str]) -> None:
    """Record the CLI arguments (the CLI calls this; library callers never do)."""
    _ARGS[:] = [list(args)]


def clear() -> None:
    """Forget the CLI arguments (the CLI calls this when its command ends)."""
    _ARGS.clear()


def shown(extra: Sequence[str] = ()) -> str:
    """``avseg ARGS EXTRA`` as a shell command, or a description when not run from the CLI."""
    if not _ARGS:
        return "the same call" + (f" with {' '.join(extra)}" if extra else "")
    args = [a for a in _ARGS[0] if a not in extra] + list(extra)
    return shlex.join(["avseg", *args])
