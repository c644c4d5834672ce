"""Errors that reach users as one line. The CLI prints ``Error: <message>`` and no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AvsegError(Exception):
    """Base class: the message is complete, one line, and says what to do."""

    exit_code = 1


class UsageError(AvsegError):
    """Bad option, unknown name, invalid chain or config: exit code 2."""

    exit_code = 2


class UnknownComponent(UsageError):
    pass


class AmbiguousComponent(UsageError):
    pass


class ChainError(UsageError):
    pass


class ConfigError(UsageError):
    pass


class InputError(AvsegError):
    """A missing or corrupt input file; names the file."""

    exit_code = 1


class OutputError(AvsegError):
    """An output file or folder cannot be written (read-only, a file in the way, disk full); names it."""

    exit_code = 1


class Interrupted(BaseException):
    """Ctrl-C, raised by the CLI's SIGINT handler. A BaseException, so that no per-clip
    ``except Exception`` takes it for a clip failure."""


class WeightsMissing(AvsegError):
    exit_code = 1


class DependencyMissing(AvsegError):
    exit_code = 1


class ComponentFailed(AvsegError):
    """A component raised something other than an AvsegError: a bug in it, reported in one line."""

    exit_code = 1


def one_line(exc: BaseException, limit: int = 300, *, with_type: bool = True) -> str:
    """A foreign exception in one line: ``Type: message`` (whitespace collapsed, at most ``limit``
    characters of message); ``with_type=False`` gives the message alone where the context already
    says what failed ("cannot read mask X: ..."). An empty message gives the type's name."""
    text = " ".join(str(exc).split())[:limit]
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text


def printable(text: str) -> str:
    """``text`` safe to print or save on any stream: a path that is not valid UTF-8 (its bytes
    became lone surrogates in Python) is shown with U+FFFD instead of making the write fail."""
    try:
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte (e.g. from JSON)
        return text.encode("utf-8", errors="replace").decode("utf-8")


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """`` (did you mean 'a', 'b'?)`` or, when nothing is close, the full list of choices."""
    cands = sorted(set(candidates))
    close = difflib.get_close_matches(word, cands, n=n, cutoff=0.5)
    if close:
        return " (did you mean " + ", ".join(repr(c) for c in close) + "?)"
    if cands:
        return " (available: " + ", ".join(cands) + ")"
    return ""
