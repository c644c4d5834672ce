"""Plugin hooks, each given a ``register`` callback.

Components of every kind are registered through one hook, ``register_components(register)``:
``register(cls)`` takes the kind from the class's base class (the kinds table, avseg/kinds.py).
The per-kind hooks (``register_taggers`` ... ``register_combiners``) keep working for existing
plugins. Presets, datasets, metrics and CLI commands have their own hooks.

A plugin module implements any of these with ``@avseg.hookimpl`` and is listed under the
``avseg`` entry-point group (bundled plugins are registered in code, see
``avseg.registry.DEFAULT_PLUGINS``). The core owns the collision policy: ``register`` only
records (kind, name, provider); clashes are reported when the name is used.

Every hook is called through pluggy once per plugin, so ``AVSEG_TRACE_PLUGINS=1`` shows each
call and hook wrappers see it; the ``register`` callback's ``plugin`` and ``provider``
attributes say whose call it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

hookspec = pluggy.HookspecMarker("avseg")
hookimpl = pluggy.HookimplMarker("avseg")

Register = Callable[[type[Any]], None]


@hookspec
def register_components(register: Register) -> None:
    """Register component classes of any kind: call ``register(cls)`` for each; the kind is the
    class's base (:class:`~avseg.components.Tagger`, ``Proposer``, ``Embedder``, ``Segmenter``,
    ``Filter``, ``Refiner``, ``Combiner``)."""


@hookspec
def register_taggers(register: Register) -> None:
    """Register :class:`avseg.components.Tagger` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_proposers(register: Register) -> None:
    """Register :class:`avseg.components.Proposer` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_embedders(register: Register) -> None:
    """Register :class:`avseg.components.Embedder` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_segmenters(register: Register) -> None:
    """Register :class:`avseg.components.Segmenter` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_filters(register: Register) -> None:
    """Register :class:`avseg.components.Filter` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_combiners(register: Register) -> None:
    """Register :class:`avseg.components.Combiner` subclasses: call ``register(cls)`` for each."""


@hookspec
def register_presets(register: Callable[[str, dict[str, Any]], None]) -> None:
    """Register pipeline presets: call ``register(name, spec_dict)`` with a spec as in the preset YAML."""


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add CLI commands to ``app`` (a :class:`typer.Typer`): ``@app.command()`` or ``app.add_typer(...)``."""


@hookspec
def register_datasets(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register dataset readers: ``register(name, reader)``, ``reader(root, split)`` -> an
    :class:`avseg.data.Dataset`; usable as ``--subset NAME`` by eval, score and ablate."""


@hookspec
def register_metrics(register: Callable[..., None]) -> None:
    """Register metrics: ``register(name, fn, per="frame")`` with ``fn(pred, gt) -> float`` per
    annotated frame, or ``per="clip"`` with ``fn(preds, gts) -> float`` per clip (boolean masks).
    The official metrics (``miou``, ``fscore``, ...) come through this hook too, from the bundled
    ``avseg.eval.builtin_metrics`` (``per="dataset"``, computed by the official accumulators)."""
