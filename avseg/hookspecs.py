"""Plugin hooks. One ``register_*`` hook per component kind, each given a ``register`` callback.

A plugin module implements any of these with ``@avseg.hookimpl`` and is listed under the
``avseg`` entry-point group. The core owns the collision policy: ``register`` only records
(kind, name, provider); clashes are reported when the name is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("avseg")
hookimpl = pluggy.HookimplMarker("avseg")

Register = Callable[[type[Any]], None]


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
