"""The component registry: a pluggy plugin manager fed by the bundled plugins and the ``avseg``
entry-point group.

Built by :func:`load_registry` for each run (no module global), so tests can build their own
from fake plugins. Bundled plugins are registered in code as defaults (as llm registers its
default plugins); entry points bring third-party plugins, selected by ``AVSEG_LOAD_PLUGINS``
and ``AVSEG_DISABLE_PLUGIN_AUTOLOAD``. Every hook is called through pluggy, once per plugin,
with a ``register`` callback that records which plugin and distribution registered what.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from avseg import __version__, hookspecs
from avseg.components import Component, Filter
from avseg.distributions import BUNDLED, DEFAULT_PLUGINS, install_hint
from avseg.errors import AmbiguousComponent, UnknownComponent, did_you_mean, one_line
from avseg.kinds import BASE_CLASSES, FILTER_NEEDS, HOOK_KINDS, STEP_KINDS, kind_of
from avseg.plugin_checks import component_problem

ENTRY_POINT_GROUP = "avseg"
#: the step kinds (re-exported: the kinds table is avseg/kinds.py)
KINDS = STEP_KINDS
METRIC_PER = ("frame", "clip")


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
    """A plugin metric: ``fn(pred, gt)`` per annotated frame or ``fn(preds, gts)`` per clip."""

    name: str
    fn: Callable[..., float]
    per: str  # "frame" or "clip"


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


def _select(kind: str, ref: str, table: Mapping[str, Sequence[E]], broken: Sequence[BrokenPlugin]) -> E:
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


@dataclass
class Registry:
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
        return _select(kind, name, self._table(kind), self.broken)

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
        return _select("preset", ref, self.presets, self.broken)

    def dataset(self, ref: str) -> Extension:
        return _select("dataset", ref, self.datasets, self.broken)

    def metric_table(self) -> dict[str, Metric]:
        """Every plugin metric by its name. A name two distributions register is an error naming
        both, as for components: a report key must not silently change to ``dist:name``."""
        out = {}
        for name, exts in sorted(self.metrics.items()):
            if len(exts) > 1:
                who = " and ".join(f"{e.provider} {e.version} (plugin {e.plugin!r})" for e in exts)
                raise AmbiguousComponent(f"metric {name!r} is registered by both {who}; uninstall one of them")
            out[name] = exts[0].obj
        return out

    def plugin_of(self, plugin_name: str) -> tuple[str, str]:
        return self.provenance.get(plugin_name, (plugin_name, "0"))


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


class RegisterCallback:
    """The ``register`` given to one plugin's hook call: records what it registers with its
    provenance. Its ``str`` names the plugin, so ``AVSEG_TRACE_PLUGINS=1`` shows whose call it is."""

    def __init__(self, hook: str, plugin: str, provider: str, version: str, record: Callable[..., None]) -> None:
        self.hook, self.plugin, self.provider, self.version = hook, plugin, provider, version
        self._record = record

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self._record(*args, **kwargs)

    def __str__(self) -> str:
        return f"<register for plugin {self.plugin!r} ({self.provider} {self.version})>"

    __repr__ = __str__


class PluginRefused(Exception):
    """A registration the core refuses (wrong type, unknown needs, ...): the plugin is broken."""


def call_per_plugin(reg: Registry, hook_name: str, make_kwargs: Callable[[str, str, str], dict[str, Any]],
                    on_broken: Callable[[str], None] | None = None) -> None:
    """Call ``hook_name`` through pluggy once per implementing plugin (hook wrappers included),
    with kwargs built for that plugin; a plugin whose call raises is recorded as broken."""
    caller = getattr(reg.pm.hook, hook_name)
    impls = caller.get_hookimpls()
    plain = [i for i in impls if not (i.hookwrapper or i.wrapper)]
    for impl in plain:
        provider, version = reg.plugin_of(impl.plugin_name)
        others = [i.plugin for i in plain if i.plugin is not impl.plugin]
        one = reg.pm.subset_hook_caller(hook_name, others)
        try:
            one(**make_kwargs(impl.plugin_name, provider, version))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, PluginRefused) else f"{hook_name} failed: {one_line(exc)}"
            reg.broken.append(BrokenPlugin(impl.plugin_name, provider, reason))
            if on_broken is not None:
                on_broken(impl.plugin_name)


def _component_recorder(kind: str | None, plugin: str, provider: str, version: str,
                        out: list[Registration]) -> Callable[..., None]:
    """``register(cls)`` for one kind's hook, or (``kind`` None) for ``register_components``,
    which takes the kind from the class's base class (the kinds table, avseg/kinds.py)."""
    def record(cls: type[Any]) -> None:
        info = kind_of(cls) if kind is None else None
        if kind is None and info is None:
            raise TypeError(f"{cls!r} is not a component class (subclass one of "
                            f"{', '.join(b.__name__ for b in BASE_CLASSES.values())})")
        k = kind if kind is not None else info.name  # type: ignore[union-attr]
        base = BASE_CLASSES[k]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or ":" in name:
            raise PluginRefused(f"{k} {cls.__name__} has no valid 'name' (a non-empty string without ':')")
        if issubclass(cls, Filter):
            bad = sorted(set(cls.needs) - set(FILTER_NEEDS))
            if bad:
                raise PluginRefused(f"filter {name!r} declares unknown needs {bad[0]!r}"
                                    f"{did_you_mean(bad[0], FILTER_NEEDS)}; allowed: {', '.join(sorted(FILTER_NEEDS))}")
        problem = component_problem(k, cls)  # what would otherwise fail only at build or in an eval
        if problem:
            raise PluginRefused(problem)
        if not any(r.cls is cls for r in out):  # registering the same class twice is harmless
            out.append(Registration(k, name, cls, provider, version, plugin))
    return record


def _collect(reg: Registry) -> None:
    """Call every registration hook; a plugin that fails any of them contributes nothing."""
    pending: dict[str, list[Any]] = defaultdict(list)  # plugin -> what it registered
    failed: set[str] = set()

    def components(hook_name: str, kind: str | None) -> Callable[[str, str, str], dict[str, Any]]:
        def kwargs(plugin: str, provider: str, version: str) -> dict[str, Any]:
            rec = _component_recorder(kind, plugin, provider, version, pending[plugin])
            return {"register": RegisterCallback(hook_name, plugin, provider, version, rec)}
        return kwargs

    # the one registration hook (kind from the class), then the per-kind hooks that keep working
    call_per_plugin(reg, "register_components", components("register_components", None), failed.add)
    for hook_name, kind in HOOK_KINDS.items():
        call_per_plugin(reg, hook_name, components(hook_name, kind), failed.add)

    def extensions(kind: str, check: Callable[[str, Any, dict[str, Any]], Any]) -> Callable[..., dict[str, Any]]:
        def kwargs(plugin: str, provider: str, version: str) -> dict[str, Any]:
            def record(name: str, obj: Any, **options: Any) -> None:
                if not isinstance(name, str) or not name or ":" in name:
                    raise PluginRefused(f"{kind} name {name!r} must be a non-empty string without ':'")
                pending[plugin].append(Extension(kind, name, check(name, obj, options), provider, version, plugin))
            return {"register": RegisterCallback(f"register_{kind}s", plugin, provider, version, record)}
        return kwargs

    def check_preset(name: str, spec: Any, options: dict[str, Any]) -> Any:
        if not isinstance(spec, dict) or options:
            raise PluginRefused(f"preset {name!r}: register(name, spec) takes a spec mapping")
        # the models of the JSON Schema (docs/pipeline.schema.json)
        from avseg.pipeline_schema import preset_problem

        problem = preset_problem(spec)
        if problem:
            raise PluginRefused(f"preset {name!r}: {problem}")
        return spec

    def check_dataset(name: str, reader: Any, options: dict[str, Any]) -> Any:
        if not callable(reader) or options:
            raise PluginRefused(f"dataset {name!r}: register(name, reader) takes reader(root, split) -> Dataset")
        return reader

    def check_metric(name: str, fn: Any, options: dict[str, Any]) -> Any:
        per = options.pop("per", "frame")
        if options or not callable(fn) or per not in METRIC_PER:
            raise PluginRefused(f"metric {name!r}: register(name, fn, per='frame' or 'clip') takes a callable")
        return Metric(name, fn, per)

    call_per_plugin(reg, "register_presets", extensions("preset", check_preset), failed.add)
    call_per_plugin(reg, "register_datasets", extensions("dataset", check_dataset), failed.add)
    call_per_plugin(reg, "register_metrics", extensions("metric", check_metric), failed.add)
    # the built-in readers come through the same hook (avseg.data.readers); their names stay theirs
    builtin = {i.name for items in pending.values() for i in items
               if isinstance(i, Extension) and i.kind == "dataset" and i.provider == BUNDLED}
    for plugin, items in pending.items():
        taken = [i.name for i in items if isinstance(i, Extension) and i.kind == "dataset"
                 and i.provider != BUNDLED and i.name in builtin]
        if taken and plugin not in failed:
            reg.broken.append(BrokenPlugin(plugin, reg.plugin_of(plugin)[0],
                                           f"dataset {taken[0]!r} is built in; choose another name"))
            failed.add(plugin)
    tables: dict[str, dict[str, list[Extension]]] = {"preset": reg.presets, "dataset": reg.datasets,
                                                    "metric": reg.metrics}
    for plugin, items in pending.items():
        if plugin in failed:
            continue
        for item in items:
            if isinstance(item, Registration):
                reg.components[(item.kind, item.name)].append(item)
            else:
                tables[item.kind][item.name].append(item)


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
    _collect(reg)
    return reg


class plugin_call:
    """``with plugin_call("what failed"):`` turns a plugin's unexpected exception (a dataset reader,
    a command) into one :class:`ComponentFailed` line naming it, like a component's
    (``AVSEG_DEBUG=1`` keeps the traceback)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import os

        from avseg.errors import AvsegError, ComponentFailed

        if exc is None or isinstance(exc, AvsegError) or not isinstance(exc, Exception) or os.environ.get("AVSEG_DEBUG"):
            return
        if hasattr(exc, "exit_code") and type(exc).__module__.split(".")[0] in ("click", "typer"):
            return  # click's own Exit/usage errors: the CLI prints them
        raise ComponentFailed(f"{self.what}: {one_line(exc)} (AVSEG_DEBUG=1 shows the traceback)") from exc


def _guard_command(cmd: Any, plugin: str, provider: str) -> None:
    """Wrap a plugin command (and its subcommands) so that an exception is one line naming it."""
    import functools

    callback = getattr(cmd, "callback", None)
    if callable(callback):
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            with plugin_call(f"command {cmd.name!r} of plugin {plugin!r} (from {provider}) failed"):
                return callback(*args, **kwargs)

        cmd.callback = run
    for sub in getattr(cmd, "commands", {}).values():
        _guard_command(sub, plugin, provider)


def check_plugin_commands(reg: Registry) -> None:
    """Run every plugin's ``register_commands`` on a scratch group (once per registry), so that a
    plugin whose hook raises is listed as broken by ``avseg plugins`` too."""
    if not reg.commands_checked:
        import typer

        add_plugin_commands(typer.main.get_group(typer.Typer()), reg)


def add_plugin_commands(group: Any, reg: Registry) -> None:
    """Call ``register_commands`` with a fresh Typer app per plugin and add what each adds to the
    click ``group``; a command that would replace an existing one marks the plugin broken."""
    import typer

    taken = set(group.commands)

    class PluginApp(typer.Typer):
        plugin = provider = version = ""

        def __str__(self) -> str:  # what AVSEG_TRACE_PLUGINS shows
            return f"<typer app for plugin {self.plugin!r} ({self.provider} {self.version})>"

    def kwargs(plugin: str, provider: str, version: str) -> dict[str, Any]:
        app = PluginApp(no_args_is_help=True)
        app.plugin, app.provider, app.version = plugin, provider, version
        apps[plugin] = app
        return {"app": app}

    apps: dict[str, typer.Typer] = {}
    before = len(reg.broken)
    call_per_plugin(reg, "register_commands", kwargs)
    if reg.commands_checked:  # run before (see check_plugin_commands): keep each failure once
        old = {(b.plugin, b.reason) for b in reg.broken[:before]}
        reg.broken[before:] = [b for b in reg.broken[before:] if (b.plugin, b.reason) not in old]
    reg.commands_checked = True
    broken = {b.plugin for b in reg.broken}
    for plugin, app in apps.items():
        if plugin in broken or not (app.registered_commands or app.registered_groups):
            continue
        commands = typer.main.get_group(app).commands
        clash = sorted(set(commands) & taken)
        if clash:
            reg.broken.append(BrokenPlugin(plugin, reg.plugin_of(plugin)[0],
                                           f"register_commands: command {clash[0]!r} already exists"))
            continue
        for name, cmd in commands.items():
            _guard_command(cmd, plugin, reg.plugin_of(plugin)[0])
            group.add_command(cmd, name)
        taken |= set(commands)


__all__ = ["BUNDLED", "DEFAULT_PLUGINS", "KINDS", "BrokenPlugin", "Extension", "Metric", "Registration", "Registry",
           "add_plugin_commands", "install_hint", "load_registry", "make_plugin_manager"]
