"""Pipeline specs as mappings: presets, the two spec forms, normalisation and ``--set``.

A spec is a plain dict, as in the preset YAML files: ``steps:`` (a list of ``{KIND: {type:
NAME, **config}}``, the kinds of avseg/kinds.py) or the legacy keys::

    tagger: {type: ast}                 # or null
    proposer: {type: gdino, box_threshold: 0.35}
    embedder: null
    segmenter: {type: sam}
    filters:
      - {type: tag-threshold, threshold: 0.5}

Each stage is ``{type: NAME, **config}`` (mmengine style). avseg/spec.py composes specs with the
CLI's options, avseg/resolved.py resolves them into classes and validated configs.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from avseg import yamlio
from avseg.errors import ConfigError, UsageError, did_you_mean
from avseg.frames import frames_spec
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, STEP_KINDS
from avseg.provenance import check_provenance
from avseg.registry import Registry

SINGLE_STAGES = SINGLE_KINDS
DEFAULT_PRESET = "owod-bind"


def builtin_presets() -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(resources.files("avseg.presets").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            out[f.name[: -len(".yaml")]] = yaml.safe_load(f.read_text())
    return out


def all_presets(registry: Registry | None = None) -> dict[str, dict[str, Any]]:
    """Every preset by name; a name two distributions define appears only as ``dist:name``."""
    if registry is None:
        return builtin_presets()
    out = {}
    for name, entries in sorted(registry.presets.items()):
        for e in entries:
            out[f"{e.provider}:{name}" if len(entries) > 1 else name] = e.obj
    return out


def load_preset(name_or_path: str, registry: Registry | None = None) -> dict[str, Any]:
    """A preset by name (``dist:name`` picks one of two with the same name), or a spec YAML file by path.

    A bare component name inside a preset means the preset's own distribution's component
    (so bundled presets keep working when a plugin reuses a bundled name).
    """
    p = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        if not p.is_file():
            raise UsageError(f"pipeline file {name_or_path} does not exist")
        spec = yamlio.load_file(p, "pipeline file")
        if not isinstance(spec, dict):
            raise ConfigError(f"{name_or_path}: a pipeline spec must be a mapping")
        return spec
    if registry is None:
        presets = builtin_presets()
        if name_or_path not in presets:
            raise UsageError(f"unknown preset {name_or_path!r}{did_you_mean(name_or_path, presets)}")
        return copy.deepcopy(presets[name_or_path])
    from avseg.distributions import BUNDLED

    entry = registry.preset(name_or_path)
    return _prefer_provider(copy.deepcopy(entry.obj), registry, [entry.provider, BUNDLED])


def _prefer_provider(spec: dict[str, Any], registry: Registry, providers: list[str]) -> dict[str, Any]:
    def fix(kind: str, stage: Any) -> Any:
        if isinstance(stage, str):
            return registry.prefer(kind, stage, providers)
        if isinstance(stage, dict) and isinstance(stage.get("type"), str):
            return {**stage, "type": registry.prefer(kind, stage["type"], providers)}
        return stage

    def fix_step(entry: Any) -> Any:  # {kind: name}, {kind: {type: name, ...}} or "kind:name"
        if isinstance(entry, dict) and len(entry) == 1:
            ((kind, value),) = entry.items()
            return {kind: fix(kind, value)} if kind in STEP_KINDS else entry
        if isinstance(entry, str) and ":" in entry:
            kind, value = entry.split(":", 1)
            return f"{kind}:{fix(kind, value)}" if kind in STEP_KINDS else entry
        return entry

    for k in SINGLE_STAGES:
        if spec.get(k) is not None:
            spec[k] = fix(k, spec[k])
    if isinstance(spec.get("filters"), list):
        spec["filters"] = [fix("filter", f) for f in spec["filters"]]
    if isinstance(spec.get("steps"), list):
        spec["steps"] = [fix_step(x) for x in spec["steps"]]
    if spec.get("combiner") is not None:
        spec["combiner"] = fix("combiner", spec["combiner"])
    return spec


def _stage(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return dict(value)
    raise ConfigError(f"{where}: expected a component name or a mapping with 'type', got {value!r}")


def _step(entry: Any, where: str) -> dict[str, dict[str, Any]]:
    """One step as ``{kind: {type: NAME, **config}}`` from ``{kind: NAME}``, ``{kind: {...}}`` or ``"kind:NAME"``."""
    if isinstance(entry, str) and ":" in entry:
        kind, value = entry.split(":", 1)
        entry = {kind: value}
    if not (isinstance(entry, dict) and len(entry) == 1):
        raise ConfigError(f"{where}: expected one 'kind: component' entry such as {{segmenter: sam}}, got {entry!r}")
    ((kind, value),) = entry.items()
    if kind not in STEP_KINDS:
        raise ConfigError(f"{where}: unknown step kind {kind!r}{did_you_mean(str(kind), STEP_KINDS)}")
    stage = _stage(value, f"{where}.{kind}")
    if stage is None:
        raise ConfigError(f"{where}: a {kind} step needs a component name")
    return {kind: stage}


def step_kind(step: dict[str, dict[str, Any]]) -> str:
    return next(iter(step))


def step_body(step: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return step[step_kind(step)]


def _from_recorded(spec: dict[str, Any], order: list[str]) -> list[dict[str, dict[str, Any]]]:
    """A spec as run.json records it (the legacy keys plus ``steps`` as "kind:name" strings)."""
    lists = {k: iter(spec.get(KINDS_BY_NAME[k].override) or []) for k in MANY_KINDS}
    out = []
    for i, ref in enumerate(order):
        kind = ref.split(":", 1)[0]
        body = next(lists[kind], None) if kind in lists else spec.get(kind)
        if body is None or kind not in STEP_KINDS:
            raise ConfigError(f"steps[{i}]: {ref!r} does not match the spec's {kind} entries")
        out.append(_step({kind: body}, f"steps[{i}]"))
    return out


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    keys = [*SINGLE_STAGES, "filters", "steps", "combiner"]
    #: lists of other repeatable kinds (``refiners``): only in a recorded spec (run.json's config)
    recorded = [KINDS_BY_NAME[k].override for k in MANY_KINDS if k != "filter"]
    unknown = set(spec) - {*keys, *recorded, "description", "name", "notes", "audio", "frames", "provenance"}
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"unknown pipeline key {bad!r}{did_you_mean(bad, keys)}")
    out: dict[str, Any]
    legacy = any(spec.get(k) for k in (*SINGLE_STAGES, "filters"))
    if spec.get("steps") is not None:
        raw = spec["steps"]
        if not isinstance(raw, list):
            raise ConfigError("steps: expected a list such as [{proposer: owod}, {segmenter: sam}]")
        if (legacy or any(spec.get(k) for k in recorded)) and all(isinstance(x, str) for x in raw):
            steps = _from_recorded(spec, raw)
        elif legacy:
            raise ConfigError("use either 'steps:' or the tagger/proposer/embedder/segmenter/filters keys, not both")
        else:
            steps = [_step(x, f"steps[{i}]") for i, x in enumerate(raw)]
        for kind in SINGLE_STAGES:
            if sum(step_kind(x) == kind for x in steps) > 1:
                raise ConfigError(f"steps: more than one {kind}; a pipeline has at most one {kind}")
        out = {"steps": steps}
    else:
        late = next((k for k in recorded if spec.get(k)), None)
        if late is not None:
            raise ConfigError(f"{late}: write the pipeline as 'steps:' to use {late}")
        out = {k: _stage(spec.get(k), k) for k in SINGLE_STAGES}
        filters = spec.get("filters") or []
        if not isinstance(filters, list):
            raise ConfigError("filters: expected a list")
        out["filters"] = [_stage(f, f"filters[{i}]") for i, f in enumerate(filters)]
    if spec.get("combiner") is not None:
        out["combiner"] = _stage(spec["combiner"], "combiner")
    if spec.get("audio") is not None:
        if not isinstance(spec["audio"], dict):
            raise ConfigError("audio: expected a mapping such as {window: 0.96, offset: 0.0, channels: first}")
        out["audio"] = dict(spec["audio"])
    if spec.get("frames") is not None:  # the size every model sees (avseg/frames.py)
        out["frames"] = frames_spec(spec["frames"]).model_dump(mode="json")
    for k in ("description", "notes"):
        if spec.get(k):
            out[k] = spec[k]
    if spec.get("provenance") is not None:  # paper | authors-code | extended (avseg/provenance.py)
        out["provenance"] = check_provenance(spec["provenance"])
    return out


def _single(spec: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The config mapping of the spec's ``kind`` stage (legacy or steps form), or None."""
    if "steps" in spec:
        return next((step_body(x) for x in spec["steps"] if step_kind(x) == kind), None)
    stage = spec.get(kind)
    return stage if isinstance(stage, dict) else None


def filter_stages(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The config mappings of the spec's filters, in order (legacy or steps form)."""
    if "steps" in spec:
        return [step_body(x) for x in spec["steps"] if step_kind(x) == "filter"]
    return list(spec["filters"])


def _parse_value(raw: str) -> Any:
    try:
        return yamlio.load_text(raw, "--set") if raw != "" else ""
    except ConfigError:
        return raw


def apply_set(spec: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set stage.key=value`` (``filter.NAME.key`` or ``filter.INDEX.key`` for filters)."""
    if "=" not in assignment:
        raise UsageError(f"--set {assignment!r}: expected KEY=VALUE, e.g. proposer.box_threshold=0.3")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    value = _parse_value(raw)
    head = parts[0]
    if head == "combiner":
        if len(parts) == 1 or parts[1:] == ["type"]:
            spec["combiner"] = _stage(value, "--set combiner")
        else:
            if isinstance(spec.get("combiner"), str):  # `combiner: NAME` in a file
                spec["combiner"] = {"type": spec["combiner"]}
            _assign(spec.setdefault("combiner", {"type": "union"}), parts[1:], value, key)
        return
    if head == "audio":
        if len(parts) != 2:
            raise UsageError(f"--set {key}: use audio.PARAM=value, e.g. audio.snr=10")
        spec["audio"] = {**(spec.get("audio") or {}), parts[1]: value}
        return
    if head in SINGLE_STAGES:
        if len(parts) < 2:
            raise UsageError(f"--set {key}: name a parameter, e.g. {head}.threshold=0.5")
        stage = _single(spec, head)
        if stage is None:
            raise UsageError(f"--set {key}: the pipeline has no {head}; add one with --{head} NAME")
        _assign(stage, parts[1:], value, key)
        return
    if head in ("audio", "frames") and len(parts) == 2:  # e.g. frames.size=null, audio.window=1.0
        node = spec.get(head)
        spec[head] = {**(node if isinstance(node, dict) else {}), parts[1]: value}
        return
    many = {**{k: k for k in MANY_KINDS}, **{KINDS_BY_NAME[k].override: k for k in MANY_KINDS}}
    if head in many:
        kind = many[head]
        if len(parts) < 3:
            example = "filter.bind.cosine_threshold=0.7" if kind == "filter" else f"{kind}.NAME.param=value"
            raise UsageError(f"--set {key}: use {kind}.NAME.param=value, e.g. {example}")
        target = _find_named(kind, stages_of(spec, kind), parts[1], key)
        _assign(target, parts[2:], value, key)
        return
    raise UsageError(f"--set {key}: unknown stage {head!r}{did_you_mean(head, [*SINGLE_STAGES, *MANY_KINDS, 'combiner', 'audio', 'frames'])}")


def stages_of(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The config mappings of the spec's steps of a repeatable ``kind``, in order (either form)."""
    if kind == "filter":
        return filter_stages(spec)
    return [step_body(x) for x in spec.get("steps") or [] if step_kind(x) == kind]


def _find_named(kind: str, stages: list[dict[str, Any]], ref: str, key: str) -> dict[str, Any]:
    if ref.isdigit():
        i = int(ref)
        if i >= len(stages):
            raise UsageError(f"--set {key}: the pipeline has {len(stages)} {kind}s")
        return stages[i]
    matches = [f for f in stages if ref in (f["type"], f["type"].split(":")[-1])]
    if not matches:
        names = [f["type"] for f in stages]
        raise UsageError(f"--set {key}: the pipeline has no {kind} {ref!r}{did_you_mean(ref, names)}")
    if len(matches) > 1:
        raise UsageError(f"--set {key}: several {ref!r} {kind}s; use the index, e.g. {kind}.0.param=value")
    return matches[0]


def _assign(stage: dict[str, Any], path: list[str], value: Any, key: str = "") -> None:
    if path == ["type"]:
        raise UsageError("use --tagger/--proposer/--embedder/--segmenter/--filter to change a component")
    if not isinstance(stage, dict):
        raise UsageError(f"--set {key or '.'.join(path)}: the stage is {stage!r:.40}, not a mapping of parameters")
    node = stage
    for i, p in enumerate(path[:-1]):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):  # e.g. filter.NAME.threshold.x: a value has no parameters
            raise UsageError(f"--set {key or '.'.join(path)}: {'.'.join(path[:i + 1])} is a value ({node!r:.40}), "
                             "not a group of parameters; set it directly")
    node[path[-1]] = value
