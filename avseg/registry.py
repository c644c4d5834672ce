"""The component registry: what the bundled plugins and the ``avseg`` entry points register.

Built by :func:`load_registry` for each run (no module global), so tests can build their own
from fake plugins. Bundled plugins are registered in code as defaults (as llm registers its
default plugins); entry points bring third-party plugins, selected by ``AVSEG_LOAD_PLUGINS``
and ``AVSEG_DISABLE_PLUGIN_AUTOLOAD``. Every hook is called through pluggy, once per plugin,
with a ``register`` callback that records which plugin and distribution registered what.

The parts live in modules named for them (every public name stays importable from here):

- :mod:`avseg.registry_entries`: the entries (:class:`Registration`, :class:`Extension`,
  :class:`Metric`, :class:`BrokenPlugin`) and the lookup of ``name`` / ``dist:name`` with
  "did you mean" and the choices when two distributions clash;
- :mod:`avseg.plugin_loading`: the pluggy manager, the bundled plugins, the entry points,
  broken-plugin capture;
- :mod:`avseg.plugin_registration`: the hooks' ``register`` callbacks and their checks;
- :mod:`avseg.plugin_commands`: the plugins' CLI commands and :class:`plugin_call`.
"""

from __future__ import annotations

import importlib.metadata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pluggy

from avseg.components import Component
from avseg.distributions import BUNDLED, DEFAULT_PLUGINS, install_hint
from avseg.errors import AmbiguousComponent
from avseg.kinds import STEP_KINDS
from avseg.plugin_commands import add_plugin_commands, check_plugin_commands, plugin_call
from avseg.plugin_loading import (
    ENTRY_POINT_GROUP,
    load_default_plugins,
    load_entry_points,
    make_plugin_manager,
    register_plugin,
)
from avseg.plugin_registration import METRIC_PER, PluginRefused, RegisterCallback, call_per_plugin, collect
from avseg.registry_entries import (
    BrokenPlugin,
    Extension,
    Metric,
    Registration,
    normalise_dist,
    select,
    split_ref,
)

#: the step kinds (re-exported: the kinds table is avseg/kinds.py)
KINDS = STEP_KINDS


@dataclass
class Registry:
    """What the plugins registered, each entry with its provider; built by :func:`load_registry`."""

    pm: pluggy.PluginManager
    components: dict[tuple[str, str], list[Registration]] = field(default_factory=lambda: defaultdict(list))
    presets: dict[str, list[Extension]] = field(default_factory=lambda: defaultdict(list))
    datasets: dict[str, list[Extension]] = field(default_factory=lambda: defaultdict(list))
    metrics: dict[str, list[Extension]] = field(default_factory=lambda: defaultdict(list))
    broken: list[BrokenPlugin] = field(default_factory=list)
    #: whether the plugins' register_commands hooks have run (their failures are in ``broken``)
    commands_checked: bool = False
    #: plugin name -> (distribution, version)
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted({n for (k, n) in self.components if k == kind})

    def registrations(self, kind: str | None = None) -> list[Registration]:
        return [r for (k, _), regs in sorted(self.components.items()) if kind in (None, k) for r in regs]

    def _table(self, kind: str) -> dict[str, list[Registration]]:
        return {n: regs for (k, n), regs in self.components.items() if k == kind and regs}

    def get(self, kind: str, name: str) -> type[Component]:
        """The component class for ``name`` (or ``dist:name``), with helpful errors."""
        return self.lookup(kind, name).cls

    def lookup(self, kind: str, name: str) -> Registration:
        """The registration (class, provider, version) for ``name`` or ``dist:name``."""
        return select(kind, name, self._table(kind), self.broken)

    def is_ambiguous(self, kind: str, name: str) -> bool:
        return len(self.components.get((kind, name), [])) > 1

    def ref(self, reg: Registration) -> str:
        """How to name ``reg`` so it resolves to it again: ``dist:name`` while the name collides."""
        return f"{reg.provider}:{reg.name}" if self.is_ambiguous(reg.kind, reg.name) else reg.name

    def prefer(self, kind: str, ref: str, providers: Sequence[str]) -> str:
        """``ref`` qualified with the first of ``providers`` that provides it, when the bare name
        collides; so a bare name inside a bundled preset means the bundled component."""
        provider, name = split_ref(ref)
        if provider is not None or not self.is_ambiguous(kind, name):
            return ref
        have = {normalise_dist(r.provider): r.provider for r in self.components[(kind, name)]}
        for p in providers:
            if normalise_dist(p) in have:
                return f"{have[normalise_dist(p)]}:{name}"
        return ref

    def preset(self, ref: str) -> Extension:
        return select("preset", ref, self.presets, self.broken)

    def dataset(self, ref: str) -> Extension:
        return select("dataset", ref, self.datasets, self.broken)

    def metric_table(self) -> dict[str, Metric]:
        """Every per-frame and per-clip metric (the plugins') by its name: what an eval computes
        into ``plugin_metrics``. The official ``per="dataset"`` metrics are left out: the eval
        computes them with the official accumulators (:mod:`avseg.eval.builtin_metrics`). A name
        two distributions register is an error naming both, as for components: a report key must
        not silently change to ``dist:name``."""
        out = {}
        for name, exts in sorted(self.metrics.items()):
            exts = [e for e in exts if e.obj.per in METRIC_PER]
            if not exts:
                continue
            if len(exts) > 1:
                who = " and ".join(f"{e.provider} {e.version} (plugin {e.plugin!r})" for e in exts)
                raise AmbiguousComponent(f"metric {name!r} is registered by both {who}; uninstall one of them")
            out[name] = exts[0].obj
        return out

    def plugin_of(self, plugin_name: str) -> tuple[str, str]:
        return self.provenance.get(plugin_name, (plugin_name, "0"))


def load_registry(
    plugins: Sequence[tuple[str, object]] = (),
    *,
    defaults: bool = True,
    entry_points: bool = True,
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> Registry:
    """Build a fresh registry: the bundled plugins (``defaults``), the selected entry-point
    plugins, plus ``plugins`` given as (name, object). A given object that is already
    registered (a bundled or installed module) is not registered twice."""
    pm = make_plugin_manager()
    reg = Registry(pm)
    if defaults:
        reg.provenance.update(load_default_plugins(pm, reg.broken))
    if entry_points:
        reg.provenance.update(load_entry_points(pm, reg.broken, distributions))
    for name, plugin in plugins:
        if pm.is_registered(plugin):
            continue
        if pm.get_plugin(name) is not None:
            name = f"{name}#{len(pm.get_plugins())}"
        if register_plugin(pm, plugin, name, reg.broken, name):
            reg.provenance[name] = (name, "0")
    collect(reg)
    return reg



__all__ = ["BUNDLED", "DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "KINDS", "METRIC_PER", "BrokenPlugin", "Extension",
           "Metric", "PluginRefused", "RegisterCallback", "Registration", "Registry", "add_plugin_commands",
           "call_per_plugin", "check_plugin_commands", "install_hint", "load_default_plugins", "load_entry_points",
           "load_registry", "make_plugin_manager", "normalise_dist", "plugin_call", "register_plugin", "split_ref"]
