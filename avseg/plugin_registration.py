"""The ``register`` callbacks of the registration hooks: every hook is called through pluggy once
per plugin, with a callback that checks what the plugin registers (a component class of a known
kind, a valid preset, a callable reader or metric) and records it with its provenance. A plugin
whose call raises, or that registers something the core refuses, contributes nothing and is
listed as broken."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from avseg.components import Filter
from avseg.distributions import BUNDLED
from avseg.errors import did_you_mean, one_line
from avseg.kinds import BASE_CLASSES, FILTER_NEEDS, HOOK_KINDS, kind_of
from avseg.plugin_checks import component_problem
from avseg.registry_entries import BrokenPlugin, Extension, Metric, Registration

if TYPE_CHECKING:
    from avseg.registry import Registry

#: how a plugin's metric is averaged: over annotated frames or over clips
METRIC_PER = ("frame", "clip")


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


def collect(reg: Registry) -> None:
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

    def extensions(kind: str, check: Callable[[str, Any, dict[str, Any], str], Any]) -> Callable[..., dict[str, Any]]:
        def kwargs(plugin: str, provider: str, version: str) -> dict[str, Any]:
            def record(name: str, obj: Any, **options: Any) -> None:
                if not isinstance(name, str) or not name or ":" in name:
                    raise PluginRefused(f"{kind} name {name!r} must be a non-empty string without ':'")
                pending[plugin].append(Extension(kind, name, check(name, obj, options, provider), provider, version, plugin))
            return {"register": RegisterCallback(f"register_{kind}s", plugin, provider, version, record)}
        return kwargs

    def check_preset(name: str, spec: Any, options: dict[str, Any], provider: str) -> Any:
        if not isinstance(spec, dict) or options:
            raise PluginRefused(f"preset {name!r}: register(name, spec) takes a spec mapping")
        # the models of the JSON Schema (docs/pipeline.schema.json)
        from avseg.pipeline_schema import preset_problem

        problem = preset_problem(spec)
        if problem:
            raise PluginRefused(f"preset {name!r}: {problem}")
        return spec

    def check_dataset(name: str, reader: Any, options: dict[str, Any], provider: str) -> Any:
        if not callable(reader) or options:
            raise PluginRefused(f"dataset {name!r}: register(name, reader) takes reader(root, split) -> Dataset")
        return reader

    def check_metric(name: str, fn: Any, options: dict[str, Any], provider: str) -> Any:
        per = options.pop("per", "frame")
        # "dataset": the official metrics (avseg.eval.builtin_metrics), computed by the core's accumulators
        allowed = (*METRIC_PER, "dataset") if provider == BUNDLED else METRIC_PER
        if options or not callable(fn) or per not in allowed:
            raise PluginRefused(f"metric {name!r}: register(name, fn, per='frame' or 'clip') takes a callable")
        return Metric(name, fn, per)

    call_per_plugin(reg, "register_presets", extensions("preset", check_preset), failed.add)
    call_per_plugin(reg, "register_datasets", extensions("dataset", check_dataset), failed.add)
    call_per_plugin(reg, "register_metrics", extensions("metric", check_metric), failed.add)
    # the built-in readers (avseg.data.readers) and official metrics (avseg.eval.builtin_metrics)
    # come through the same hooks; their names stay theirs
    builtin = {(i.kind, i.name) for items in pending.values() for i in items
               if isinstance(i, Extension) and i.kind in ("dataset", "metric") and i.provider == BUNDLED}
    for plugin, items in pending.items():
        taken = [i for i in items if isinstance(i, Extension) and i.provider != BUNDLED
                 and (i.kind, i.name) in builtin]
        if taken and plugin not in failed:
            reg.broken.append(BrokenPlugin(plugin, reg.plugin_of(plugin)[0],
                                           f"{taken[0].kind} {taken[0].name!r} is built in; choose another name"))
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
