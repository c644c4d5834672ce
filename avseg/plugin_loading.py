"""Loading plugins into a pluggy manager: the bundled plugins (registered in code, as llm
registers its defaults) and the third-party ``avseg`` entry points selected by
``AVSEG_LOAD_PLUGINS`` and ``AVSEG_DISABLE_PLUGIN_AUTOLOAD``. A plugin that fails to import, is
not a plugin, or implements an unknown hook is recorded as a :class:`BrokenPlugin` (one line)
and the others still load."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable

import pluggy

from avseg import __version__, hookspecs
from avseg.distributions import BUNDLED, DEFAULT_PLUGINS
from avseg.errors import did_you_mean, one_line
from avseg.registry_entries import BrokenPlugin, normalise_dist

ENTRY_POINT_GROUP = "avseg"


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("avseg")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("AVSEG_TRACE_PLUGINS", "") not in ("", "0"):
        pm.trace.root.setwriter(lambda s: print(s, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _wanted_plugins() -> tuple[bool, set[str] | None]:
    """(autoload, explicit) from AVSEG_DISABLE_PLUGIN_AUTOLOAD and AVSEG_LOAD_PLUGINS.

    Like pytest and llm: autoload off loads no entry points except those AVSEG_LOAD_PLUGINS
    names; AVSEG_LOAD_PLUGINS alone restricts loading to the named plugins (entry-point or
    distribution names); an empty AVSEG_LOAD_PLUGINS loads none. Bundled plugins always load.
    """
    autoload = os.environ.get("AVSEG_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    raw = os.environ.get("AVSEG_LOAD_PLUGINS")
    explicit = None if raw is None else {normalise_dist(p.strip()) for p in raw.split(",") if p.strip()}
    return autoload, explicit


def register_plugin(
    pm: pluggy.PluginManager, plugin: object, name: str, broken: list[BrokenPlugin], provider: str
) -> bool:
    """Register one plugin object; on any validation problem record it as broken and undo."""
    if isinstance(plugin, type):  # its hooks would be unbound methods, missing `self`
        broken.append(BrokenPlugin(name, provider, f"the entry point names the class {plugin.__name__}; point it at "
                                                   f"an instance (plugin = {plugin.__name__}()) or at a module"))
        return False
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
        specs = [n for n in dir(hookspecs) if n.startswith("register_")]
        hint = did_you_mean(unknown[0], specs) if unknown else ""
        broken.append(BrokenPlugin(name, provider, f"unknown hook {unknown[0]!r}{hint}" if unknown else one_line(exc)))
        return False
    if not pm.get_hookcallers(plugin):
        pm.unregister(plugin)
        what = getattr(plugin, "__name__", type(plugin).__name__)
        broken.append(BrokenPlugin(name, provider, f"{what} has no @hookimpl functions: point the entry point at the "
                                                   "module or object that has them (docs/plugin-guide.md)"))
        return False
    return True


def _import_failure(plugin: str, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"Error importing plugin {plugin!r}: it called sys.exit({exc.code!r})"
    return f"Error importing plugin {plugin!r}: {one_line(exc)}"


def load_default_plugins(pm: pluggy.PluginManager, broken: list[BrokenPlugin]) -> dict[str, tuple[str, str]]:
    provenance = {}
    for name, modname in DEFAULT_PLUGINS:
        try:
            plugin = importlib.import_module(modname)
        except Exception as exc:
            broken.append(BrokenPlugin(name, BUNDLED, _import_failure(name, exc)))
            continue
        if register_plugin(pm, plugin, name, broken, BUNDLED):
            provenance[name] = (BUNDLED, __version__)
    return provenance


def load_entry_points(
    pm: pluggy.PluginManager,
    broken: list[BrokenPlugin],
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> dict[str, tuple[str, str]]:
    """Load the selected third-party ``avseg`` entry points; return plugin name -> (distribution, version)."""
    autoload, explicit = _wanted_plugins()
    provenance: dict[str, tuple[str, str]] = {}
    seen: set[tuple[str, str]] = set()
    available: set[str] = set()  # entry-point and distribution names, to check AVSEG_LOAD_PLUGINS
    dists = importlib.metadata.distributions() if distributions is None else distributions
    for dist in dists:
        dist_name = dist.metadata["Name"] or "?"
        if normalise_dist(dist_name) == BUNDLED:
            continue  # bundled plugins are registered in code (an older install may still list them)
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (dist_name.lower(), ep.name) in seen:
                continue
            seen.add((dist_name.lower(), ep.name))
            available |= {normalise_dist(ep.name), normalise_dist(dist_name)}
            named = explicit is not None and (normalise_dist(ep.name) in explicit or normalise_dist(dist_name) in explicit)
            if not (named or (autoload and explicit is None)):
                continue
            pname = ep.name if pm.get_plugin(ep.name) is None else f"{dist_name}:{ep.name}"
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken plugin (even one calling sys.exit) must not break the rest
                broken.append(BrokenPlugin(pname, dist_name, _import_failure(ep.name, exc)))
                continue
            if pm.is_registered(plugin):
                continue  # the same module under two entry points
            if register_plugin(pm, plugin, pname, broken, dist_name):
                provenance[pname] = (dist_name, dist.version)
    for missing in sorted((explicit or set()) - available):
        broken.append(BrokenPlugin(missing, "?", f"AVSEG_LOAD_PLUGINS names {missing!r}, which no installed plugin "
                                                 f"is called{did_you_mean(missing, available)}"))
    return provenance
