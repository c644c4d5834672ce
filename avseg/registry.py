"""The component registry: a pluggy plugin manager fed by the ``avseg`` entry-point group.

Built by :func:`load_registry` for each run (no module global), so tests can build their own
from fake plugins. Bundled plugins come in through entry points like any third party's.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from avseg import hookspecs
from avseg.components import BASE_CLASSES, KINDS, Component
from avseg.errors import AmbiguousComponent, UnknownComponent, did_you_mean, one_line

ENTRY_POINT_GROUP = "avseg"
HOOK_KINDS = {
    "register_taggers": "tagger",
    "register_proposers": "proposer",
    "register_embedders": "embedder",
    "register_segmenters": "segmenter",
    "register_filters": "filter",
}


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    cls: type[Component]
    provider: str  # distribution name (or plugin name when it has none)
    version: str
    plugin: str  # plugin (entry point) name


@dataclass(frozen=True)
class BrokenPlugin:
    plugin: str
    provider: str
    reason: str  # one line


@dataclass
class Registry:
    pm: pluggy.PluginManager
    components: dict[tuple[str, str], list[Registration]] = field(default_factory=lambda: defaultdict(list))
    presets: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    broken: list[BrokenPlugin] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return sorted({n for (k, n) in self.components if k == kind})

    def registrations(self, kind: str | None = None) -> list[Registration]:
        out = [r for (k, _), regs in sorted(self.components.items()) if kind in (None, k) for r in regs]
        return out

    def get(self, kind: str, name: str) -> type[Component]:
        """The component class for ``name`` (or ``dist:name``), with helpful errors."""
        return self.lookup(kind, name).cls

    def lookup(self, kind: str, name: str) -> Registration:
        """The registration (class, provider, version) for ``name`` or ``dist:name``."""
        provider: str | None = None
        if ":" in name:
            provider, name = name.split(":", 1)
        regs = self.components.get((kind, name), [])
        if provider is not None:
            regs = [r for r in regs if provider in (r.provider, r.plugin)]
        if not regs:
            hint = did_you_mean(name, self.names(kind))
            broken = ""
            if self.broken:
                broken = f"; broken plugins: {', '.join(b.plugin for b in self.broken)} (see 'avseg plugins')"
            where = f" from {provider!r}" if provider else ""
            raise UnknownComponent(f"unknown {kind} {name!r}{where}{hint}{broken}")
        if len(regs) > 1:
            who = " and ".join(f"{r.provider} {r.version} (plugin {r.plugin!r})" for r in regs)
            choices = ", ".join(f"'{r.provider}:{name}'" for r in regs)
            raise AmbiguousComponent(f"{kind} {name!r} is registered by both {who}; choose one with {choices}")
        return regs[0]


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("avseg")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("AVSEG_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda s: print(s, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _wanted_plugins() -> tuple[bool, set[str] | None]:
    """(autoload, explicit) from AVSEG_DISABLE_PLUGIN_AUTOLOAD and AVSEG_LOAD_PLUGINS.

    Like pytest and llm: autoload off loads no entry points except those AVSEG_LOAD_PLUGINS
    names; AVSEG_LOAD_PLUGINS alone restricts loading to the named plugins (entry-point or
    distribution names); an empty AVSEG_LOAD_PLUGINS loads none.
    """
    autoload = os.environ.get("AVSEG_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    raw = os.environ.get("AVSEG_LOAD_PLUGINS")
    explicit = None if raw is None else {p.strip() for p in raw.split(",") if p.strip()}
    return autoload, explicit


def register_plugin(
    pm: pluggy.PluginManager, plugin: object, name: str, broken: list[BrokenPlugin], provider: str
) -> bool:
    """Register one plugin object; on any validation problem record it as broken and undo."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy validation, duplicate names
        broken.append(BrokenPlugin(name, provider, one_line(exc)))
        return False
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        unknown = [h for h in dir(plugin) if h.startswith("register_") and not hasattr(hookspecs, h)]
        hint = did_you_mean(unknown[0], HOOK_KINDS.keys() | {"register_presets"}) if unknown else ""
        broken.append(BrokenPlugin(name, provider, f"unknown hook {unknown[0]!r}{hint}" if unknown else one_line(exc)))
        return False
    return True


def load_entry_points(
    pm: pluggy.PluginManager,
    broken: list[BrokenPlugin],
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> dict[str, tuple[str, str]]:
    """Load every ``avseg`` entry point; return plugin name -> (distribution, version)."""
    autoload, explicit = _wanted_plugins()
    provenance: dict[str, tuple[str, str]] = {}
    seen: set[tuple[str, str]] = set()
    dists = importlib.metadata.distributions() if distributions is None else distributions
    for dist in dists:
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (dist_name.lower(), ep.name) in seen:
                continue
            seen.add((dist_name.lower(), ep.name))
            named = explicit is not None and (ep.name in explicit or dist_name in explicit)
            if not (named or (autoload and explicit is None)):
                continue
            pname = ep.name if pm.get_plugin(ep.name) is None else f"{dist_name}:{ep.name}"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break anything else
                broken.append(BrokenPlugin(pname, dist_name, f"Error importing plugin {ep.name!r}: {one_line(exc)}"))
                continue
            if register_plugin(pm, plugin, pname, broken, dist_name):
                provenance[pname] = (dist_name, dist.version)
    return provenance


def _collect(reg: Registry, provenance: dict[str, tuple[str, str]]) -> None:
    """Call each plugin's register hooks with a callback that records its provider."""
    for hook_name, kind in HOOK_KINDS.items():
        for impl in getattr(reg.pm.hook, hook_name).get_hookimpls():
            provider, version = provenance.get(impl.plugin_name, (impl.plugin_name, "0"))

            def register(cls: type[Any], _kind: str = kind, _p: str = provider, _v: str = version,
                         _plugin: str = impl.plugin_name) -> None:
                base = BASE_CLASSES[_kind]
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
                cls.provider, cls.version = _p, _v
                reg.components[(_kind, cls.name)].append(Registration(_kind, cls.name, cls, _p, _v, _plugin))

            try:
                impl.function(register=register)
            except Exception as exc:
                reg.broken.append(BrokenPlugin(impl.plugin_name, provider, f"{hook_name} failed: {one_line(exc)}"))
    for impl in reg.pm.hook.register_presets.get_hookimpls():
        provider, _ = provenance.get(impl.plugin_name, (impl.plugin_name, "0"))

        def register_preset(name: str, spec: dict[str, Any], _p: str = provider) -> None:
            reg.presets[name].append((_p, spec))

        try:
            impl.function(register=register_preset)
        except Exception as exc:
            reg.broken.append(BrokenPlugin(impl.plugin_name, provider, f"register_presets failed: {one_line(exc)}"))


def load_registry(
    plugins: Sequence[tuple[str, object]] = (),
    *,
    entry_points: bool = True,
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> Registry:
    """Build a fresh registry: entry-point plugins plus ``plugins`` given as (name, object)."""
    pm = make_plugin_manager()
    reg = Registry(pm)
    provenance: dict[str, tuple[str, str]] = {}
    if entry_points:
        provenance.update(load_entry_points(pm, reg.broken, distributions))
    for name, plugin in plugins:
        if register_plugin(pm, plugin, name, reg.broken, name):
            provenance[name] = (name, "0")
    _collect(reg, provenance)
    return reg


def dependency_status(cls: type[Component]) -> tuple[bool, list[str]]:
    """Whether the component's Python requirements are importable, without importing them."""
    missing = []
    for mod in cls.requires:
        try:
            if importlib.util.find_spec(mod) is None:
                missing.append(mod)
        except (ImportError, ValueError):
            missing.append(mod)
    return not missing, missing


__all__ = ["KINDS", "BrokenPlugin", "Registration", "Registry", "load_registry", "make_plugin_manager"]
