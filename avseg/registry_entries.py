"""What the registry holds: one registration per component class, one extension per preset,
dataset reader or metric, one line per broken plugin; and the lookup of a ``name`` or
``dist:name`` among them, with "did you mean" and the choices when two distributions clash."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from avseg.components import Component
from avseg.errors import AmbiguousComponent, UnknownComponent, did_you_mean


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    cls: type[Component]
    provider: str  # distribution name (or plugin name when it has none)
    version: str
    plugin: str  # plugin (entry point) name


@dataclass(frozen=True)
class Extension:
    """A preset, dataset reader or metric, with who registered it."""

    kind: str  # "preset", "dataset" or "metric"
    name: str
    obj: Any  # the spec dict, the reader, or the :class:`Metric`
    provider: str
    version: str
    plugin: str


@dataclass(frozen=True)
class Metric:
    """A metric: ``fn(pred, gt)`` per annotated frame or ``fn(preds, gts)`` per clip (what plugins
    register), or one of the bundled official AVSBench metrics (``per="dataset"``), which the
    official accumulators compute over the whole evaluation (:mod:`avseg.eval.builtin_metrics`)."""

    name: str
    fn: Callable[..., float]
    per: str  # "frame", "clip", or "dataset" (the bundled official metrics only)


@dataclass(frozen=True)
class BrokenPlugin:
    plugin: str
    provider: str
    reason: str  # one line


E = TypeVar("E", Registration, Extension)


def normalise_dist(name: str) -> str:
    """PEP 503 normalised distribution name, so 'My_Plugin' and 'my-plugin' match."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_ref(ref: str) -> tuple[str | None, str]:
    """``'dist:name'`` -> ('dist', 'name'); ``'name'`` -> (None, 'name')."""
    if ":" in ref:
        provider, name = ref.split(":", 1)
        return provider, name
    return None, ref


def select(kind: str, ref: str, table: Mapping[str, Sequence[E]], broken: Sequence[BrokenPlugin]) -> E:
    """The one entry ``ref`` (``name`` or ``dist:name``) means, or a one-line error that says
    who provides it and how to choose."""
    provider, name = split_ref(ref)
    regs = list(table.get(name, []))
    if provider is not None and regs:
        mine = [r for r in regs if normalise_dist(provider) in (normalise_dist(r.provider), normalise_dist(r.plugin))]
        if not mine:
            who = ", ".join(sorted({r.provider for r in regs}))
            raise UnknownComponent(f"no distribution {provider!r} provides {kind} {name!r}; it comes from {who}: "
                                   f"use {' or '.join(repr(f'{r.provider}:{name}') for r in regs)}")
        regs = mine
    if not regs:
        hint = did_you_mean(name, table)
        gone = ""
        if broken:
            gone = f"; broken plugins: {', '.join(b.plugin for b in broken)} (see 'avseg plugins')"
        where = f" (no distribution {provider!r} provides one)" if provider else ""
        raise UnknownComponent(f"unknown {kind} {name!r}{where}{hint}{gone}")
    if len(regs) > 1:
        who = " and ".join(f"{r.provider} {r.version} (plugin {r.plugin!r})" for r in regs)
        choices = ", ".join(f"'{r.provider}:{name}'" for r in regs)
        raise AmbiguousComponent(f"{kind} {name!r} is registered by both {who}; choose one with {choices}")
    return regs[0]
