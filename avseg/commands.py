"""One function per CLI command (``avseg run``, ``plugins``, ``presets``, ``weights``, ``cache``), so a
script gets the CLI's exact behaviour. The Python API for using pipelines is :func:`avseg.load`
(:mod:`avseg.session`); this module is what the CLI delegates to. ``avseg.api`` is its old name."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from avseg.cache import StageCache, default_cache_dir
from avseg.checks import check_fps
from avseg.distributions import dependency_status, install_hint
from avseg.errors import UsageError, did_you_mean
from avseg.outputs import check_out_dir
from avseg.provenance import provenance_of
from avseg.registry import Registry, load_registry
from avseg.spec import all_presets, compose, resolve
from avseg.weights import WeightFile, locate


def run(input: Path, out: Path, *, preset: str | None = None, sets: Sequence[str] = (), tiny: bool = False,
        device: str = "auto", dtype: str = "float32", fps: float = 1.0, debug: bool = False,
        cache_dir: Path | None = None, no_cache: bool = False, registry: Registry | None = None,
        on_stage: Callable[[str, int], None] | None = None, **components: Any) -> dict[str, Any]:
    """``avseg run``: one input through a pipeline into ``out``; returns run.json's content.

    ``components``: one keyword per step kind (``tagger=``, ..., ``filters=[...]``), as :func:`avseg.load`.

    Prints nothing: ``on_stage(label, n_frames)`` is called before each model load and stage
    (the CLI shows it as a status line).
    """
    from avseg.session import open_pipeline, to_clip

    check_fps(fps)

    # The chain, the options and the input are validated before any model loads.
    pipe = open_pipeline(preset, tiny=tiny, device=device, dtype=dtype,
                         cache=False if no_cache else (cache_dir or True), registry=registry,
                         set=list(sets), **components)
    check_out_dir(Path(out))
    clip, video_fps, source = to_clip(input, fps=fps)
    if on_stage is not None:
        pipe.on_stage = lambda label: on_stage(label, clip.num_frames)
    result = pipe.run_clip(clip, video_fps=video_fps, input_path=str(input))
    result.save(Path(out), debug=debug)
    return json.loads((Path(out) / "run.json").read_text())  # type: ignore[no-any-return]


EXTENSION_KINDS = ("preset", "dataset", "metric")


def list_plugins(kind: str | None = None, registry: Registry | None = None) -> list[dict[str, Any]]:
    """One row per component, preset, dataset and metric (and per broken plugin), without
    importing any model library. ``collides_with`` names the other providers of a clashing name."""
    from avseg.kinds import STEP_KINDS as KINDS

    kinds = (*KINDS, "combiner", *EXTENSION_KINDS)
    if kind is not None and kind not in kinds:
        raise UsageError(f"--kind {kind!r}: expected one of {', '.join(kinds)}{did_you_mean(kind, kinds)}")
    registry = registry or load_registry()
    from avseg.registry import check_plugin_commands

    check_plugin_commands(registry)  # a plugin whose register_commands raises is listed as broken
    rows: list[dict[str, Any]] = []
    for reg in registry.registrations(kind) if kind in (None, *KINDS, "combiner") else []:
        ok, missing = dependency_status(reg.cls)
        weights = _weights_status(reg.cls.weights, reg.cls.default_variant)
        hint = install_hint(reg.cls, reg.provider)
        rows.append({
            "kind": reg.kind, "name": reg.name, "provider": reg.provider, "version": reg.version,
            "plugin": reg.plugin, "description": reg.cls.description,
            "status": "ok" if ok else "missing-deps",
            "dependencies": "ok" if ok else "missing " + ", ".join(missing) + (f" ({hint})" if hint else ""),
            "weights": weights,
            "collides_with": [r.provider for r in registry.components[(reg.kind, reg.name)] if r is not reg],
        })
    tables = {"preset": registry.presets, "dataset": registry.datasets, "metric": registry.metrics}
    for k, table in tables.items():
        if kind not in (None, k):
            continue
        for name, exts in sorted(table.items()):
            for e in exts:
                extra = {"provenance": provenance_of(e.obj)} if k == "preset" else {}
                desc = (str(e.obj.get("description", "")) if k == "preset" else
                        f"per-{e.obj.per} metric" + (f": {e.obj.fn.__doc__}" if e.obj.per == "dataset" else "")
                        if k == "metric" else
                        str(getattr(e.obj, "__doc__", "") or "").strip().split("\n")[0])
                rows.append({"kind": k, "name": name, "provider": e.provider, "version": e.version, "plugin": e.plugin,
                             "description": desc, "status": "ok", "dependencies": "", "weights": "",
                             "collides_with": [o.provider for o in exts if o is not e], **extra})
    if kind is None:
        for b in registry.broken:
            rows.append({"kind": "?", "name": b.plugin, "provider": b.provider, "version": "", "plugin": b.plugin,
                         "description": b.reason, "status": "broken", "dependencies": "", "weights": "",
                         "collides_with": []})
    return rows


def _weights_status(weights: dict[str, list[WeightFile]], default: str | None) -> str:
    """Every variant (and backend) with present/missing; the default one first."""
    if not weights:
        return "none needed"
    order = sorted(weights, key=lambda v: v != default)
    parts = []
    for v in order:
        present = all(locate(wf).found for wf in weights[v])
        parts.append(f"{v}{' (default)' if v == default else ''}: {'present' if present else 'missing'}")
    return "; ".join(parts)


def list_presets(registry: Registry | None = None) -> dict[str, str]:
    """Preset name (``dist:name`` where two distributions define it) -> description."""
    registry = registry or load_registry()
    return {name: str(spec.get("description", "")) for name, spec in sorted(all_presets(registry).items())}


def preset_rows(registry: Registry | None = None) -> list[dict[str, Any]]:
    """Each preset with its provider, its provenance (paper, authors-code or extended; see
    avseg/provenance.py), and the other providers of its name (a collision)."""
    registry = registry or load_registry()
    return list_plugins("preset", registry)


def show_preset(preset: str | None = None, registry: Registry | None = None, **overrides: Any) -> str:
    """The composed, resolved pipeline as YAML: its description and provenance, then a ``steps:``
    spec with every parameter written out (it loads back as a pipeline file), the warnings as comments."""
    registry = registry or load_registry()
    spec = compose(preset, registry=registry, **overrides)
    resolved = resolve(spec, registry)
    from avseg.provenance import provenance_of

    d = {"provenance": provenance_of(spec), **resolved.as_dict()}
    if spec.get("description"):
        d = {"description": spec["description"], **d}
    text = yaml.safe_dump(d, sort_keys=False)
    for w in resolved.warnings:
        text += f"# warning: {w}\n"
    return text


def weights_table(registry: Registry | None = None) -> list[dict[str, Any]]:
    registry = registry or load_registry()
    rows = []
    for reg in registry.registrations():
        for variant, files in reg.cls.weights.items():
            for wf in files:
                res = locate(wf)
                rows.append({"kind": reg.kind, "component": reg.name, "variant": variant,
                             "file": wf.hf_repo or wf.filename, "size": wf.size, "sha256": wf.sha256,
                             "source": wf.url or (f"hf://{wf.hf_repo}@{wf.hf_revision}" if wf.hf_repo else None),
                             "present": res.found, "path": str(res.path) if res.path else None,
                             "looked": res.looked})
    return rows


def _selected_weights(names: Sequence[str], registry: Registry) -> list[tuple[str, str, WeightFile]]:
    out: list[tuple[str, str, WeightFile]] = []
    all_names = {r.name for r in registry.registrations() if r.cls.weights}
    for n in names:
        comp, _, variant = n.partition("/")
        regs = [r for r in registry.registrations() if r.cls.weights and (comp == "all" or r.name == comp)]
        if not regs:
            raise UsageError(f"no component {comp!r} with weights{did_you_mean(comp, all_names)}")
        for r in regs:
            if variant and comp != "all" and variant not in r.cls.weights:
                renamed = getattr(r.cls, "renamed_variants", {}).get(variant)
                hint = f" (it is now {renamed!r})" if renamed else did_you_mean(variant, r.cls.weights)
                raise UsageError(f"{r.name} has no variant {variant!r}{hint}")
            v = variant or (r.cls.default_variant if comp != "all" else None)
            for var, files in r.cls.weights.items():
                if v is None or var == v:
                    out.extend((r.name, var, wf) for wf in files)
    return out


def fetch_weights(names: Sequence[str], registry: Registry | None = None) -> list[Path]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from avseg.weights import fetch

    registry = registry or load_registry()
    paths = []
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn()) as progress:
        for comp, variant, wf in _selected_weights(names, registry):
            if locate(wf).found:
                progress.console.print(f"{comp} {variant}: {wf.hf_repo or wf.filename} already present")
                continue
            task = progress.add_task(f"{comp} {variant}", total=wf.size)

            def report(done: int, total: int | None, t: Any = task) -> None:
                progress.update(t, completed=done, total=total)

            paths.append(fetch(wf, report))
    return paths


def verify_weights(registry: Registry | None = None) -> list[str]:
    from avseg.weights import verify

    registry = registry or load_registry()
    problems = []
    for reg in registry.registrations():
        for variant, files in reg.cls.weights.items():
            for wf in files:
                res = locate(wf)
                if res.path is None:
                    continue
                problem = verify(res.path, wf)
                print(f"{reg.name} {variant}: {problem or 'ok'} ({res.path})")
                if problem:
                    problems.append(problem)
    return problems


def cache_info(cache_dir: Path | None = None) -> str:
    cache = StageCache(cache_dir or default_cache_dir())
    info = cache.info()
    if not info:
        return f"{cache.root}: empty"
    lines = [f"{cache.root}:"]
    for comp, d in sorted(info.items()):
        lines.append(f"  {comp:30s} {d['entries']:6d} entries  {d['bytes'] / 1e6:9.2f} MB")
    total = sum(d["bytes"] for d in info.values())
    lines.append(f"  {'total':30s} {sum(d['entries'] for d in info.values()):6d} entries  {total / 1e6:9.2f} MB")
    return "\n".join(lines)


def cache_clear(cache_dir: Path | None = None, components: Sequence[str] | None = None) -> str:
    cache = StageCache(cache_dir or default_cache_dir())
    n = cache.clear(components)
    return f"removed {n} entries from {cache.root}"


__all__ = ["cache_clear", "cache_info", "fetch_weights", "list_plugins", "list_presets", "preset_rows", "run",
           "show_preset", "verify_weights", "weights_table"]
