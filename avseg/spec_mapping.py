"""Pipeline specs as mappings: presets, normalisation (the edge where legacy keys become steps)
and ``--set``.

A spec is a plain dict, as in the preset YAML files: ``steps:``, a list of ``{KIND: {type: NAME,
**config}}`` (the kinds of avseg/kinds.py) in executed order, plus ``combiner``, ``audio``,
``frames``, ``description``, ``provenance``::

    steps:
      - proposer: {type: owod}
      - filter: {type: score-threshold, threshold: 0.5}
      - embedder: imagebind              # a bare name is {type: imagebind}
      - filter: {type: bind, cosine_threshold: 0.7}
      - segmenter: sam

Spec files written with the legacy keys (``tagger``, ``proposer``, ``embedder``, ``segmenter``,
``filters``) are still read: :func:`normalise` converts them into steps once, in the order the
pre-steps pipeline ran them, and everything after it (compose, ``--set``, resolve, run.json)
works on steps only. avseg/spec.py composes specs with the CLI's options, avseg/resolved.py
resolves them into classes and validated configs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from avseg import yamlio
from avseg.components import Component, ComponentConfig
from avseg.errors import ConfigError, UsageError, did_you_mean
from avseg.frames import frames_spec
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, STEP_KINDS, consumes, produces
from avseg.provenance import check_provenance
from avseg.registry import Registry
from avseg.steps import arrange

#: the keys of the spec form before ``steps:``, converted by :func:`normalise`
LEGACY_KEYS = (*SINGLE_KINDS, "filters")
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

    for k in SINGLE_KINDS:  # the legacy keys of a spec file, before normalise() converts them
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
    """Read-back of a config as the previous version recorded it in run.json/metrics.json: the
    legacy keys (and ``refiners``) hold the configs, ``steps`` the order as "kind:name" strings."""
    lists = {k: iter(spec.get(KINDS_BY_NAME[k].override) or []) for k in MANY_KINDS}
    out = []
    for i, ref in enumerate(order):
        kind = ref.split(":", 1)[0]
        body = next(lists[kind], None) if kind in lists else spec.get(kind)
        if body is None or kind not in STEP_KINDS:
            raise ConfigError(f"steps[{i}]: {ref!r} does not match the spec's {kind} entries")
        out.append(_step({kind: body}, f"steps[{i}]"))
    return out


def step_io(registry: Registry) -> tuple[Callable[[dict[str, Any]], frozenset[str] | None],
                                         Callable[[dict[str, Any]], frozenset[str] | None]]:
    """consumes/produces of a step mapping, or None when its class or config is not valid yet."""

    def io(x: dict[str, Any], fn: Callable[[str, type[Component], ComponentConfig], frozenset[str]]) -> frozenset[str] | None:
        kind, body = step_kind(x), step_body(x)
        try:
            cls = registry.get(kind, body["type"])
            return fn(kind, cls, cls.Config(**{k: v for k, v in body.items() if k != "type"}))
        except Exception:  # resolve() reports these properly
            return None

    return (lambda x: io(x, consumes)), (lambda x: io(x, produces))


def legacy_to_steps(spec: dict[str, Any], registry: Registry | None = None,
                    notes: list[str] | None = None) -> list[dict[str, dict[str, Any]]]:
    """The steps of a spec written with the legacy ``tagger``/``proposer``/``embedder``/
    ``segmenter``/``filters`` keys, in the order the pre-steps pipeline ran them (the one place
    that order lives, :func:`avseg.steps.arrange`): tag filters after the tagger; the embedder
    just before the first filter needing embeddings (left out, with a note, when none does);
    the segmenter just before the first filter needing masks, or at the end."""
    if registry is None:
        from avseg.registry import load_registry

        registry = load_registry()
    singles = {k: _stage(spec.get(k), k) for k in SINGLE_KINDS}
    raw = spec.get("filters") or []
    if not isinstance(raw, list):
        raise ConfigError("filters: expected a list")
    filters = [{"filter": f} for i, x in enumerate(raw) if (f := _stage(x, f"filters[{i}]")) is not None]
    step = {k: ({k: v} if v is not None else None) for k, v in singles.items()}
    needs, gives = step_io(registry)
    fixed = [x for x in (step["tagger"], step["proposer"]) if x is not None]
    steps = arrange(fixed, filters, kind_of=step_kind, needs_of=needs, produces_of=lambda x: gives(x) or frozenset(),
                    embedder=step["embedder"], segmenter=step["segmenter"])
    emb = singles["embedder"]
    if emb is not None and notes is not None and not any(x is step["embedder"] for x in steps):
        notes.append(f"embedder {emb['type']!r} is in the chain but no filter uses its embeddings; it is not run")
    return steps


def normalise(spec: dict[str, Any], registry: Registry | None = None) -> dict[str, Any]:
    """The one internal form of a spec: ``steps`` (each ``{kind: {type: NAME, **config}}``), and
    ``combiner``, ``audio``, ``frames``, ``description``, ``notes``, ``provenance`` when given.

    This is the edge: the legacy keys (a user's spec file, a config recorded by the previous
    version) become steps here, and nothing after it sees them. ``registry`` (loaded when None)
    is needed only to order legacy keys, from the components' inputs and outputs."""
    keys = ["steps", "combiner", *LEGACY_KEYS]
    #: lists of other repeatable kinds (``refiners``): only in a config the previous version recorded
    recorded = [KINDS_BY_NAME[k].override for k in MANY_KINDS if k != "filter"]
    unknown = set(spec) - {*keys, *recorded, "description", "name", "notes", "audio", "frames", "provenance"}
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"unknown pipeline key {bad!r}{did_you_mean(bad, keys)}")
    legacy = any(spec.get(k) for k in LEGACY_KEYS)
    notes = list(spec["notes"]) if isinstance(spec.get("notes"), list) else []
    if spec.get("steps") is not None:
        raw = spec["steps"]
        if not isinstance(raw, list):
            raise ConfigError("steps: expected a list such as [{proposer: owod}, {segmenter: sam}]")
        if (legacy or any(spec.get(k) for k in recorded)) and raw and all(isinstance(x, str) for x in raw):
            steps = _from_recorded(spec, raw)
        elif legacy:
            raise ConfigError("use either 'steps:' or the tagger/proposer/embedder/segmenter/filters keys, not both")
        else:
            steps = [_step(x, f"steps[{i}]") for i, x in enumerate(raw)]
    else:
        late = next((k for k in recorded if spec.get(k)), None)
        if late is not None:
            raise ConfigError(f"{late}: write the pipeline as 'steps:' to use {late}")
        steps = legacy_to_steps(spec, registry, notes) if legacy else []
    for kind in SINGLE_KINDS:
        if sum(step_kind(x) == kind for x in steps) > 1:
            raise ConfigError(f"steps: more than one {kind}; a pipeline has at most one {kind}")
    out: dict[str, Any] = {"steps": steps}
    if spec.get("combiner") is not None:
        out["combiner"] = _stage(spec["combiner"], "combiner")
    if spec.get("audio") is not None:
        if not isinstance(spec["audio"], dict):
            raise ConfigError("audio: expected a mapping such as {window: 0.96, offset: 0.0, channels: first}")
        out["audio"] = dict(spec["audio"])
    if spec.get("frames") is not None:  # the size every model sees (avseg/frames.py)
        out["frames"] = frames_spec(spec["frames"]).model_dump(mode="json")
    if spec.get("description"):
        out["description"] = spec["description"]
    if notes:
        out["notes"] = notes
    if spec.get("provenance") is not None:  # paper | authors-code | extended (avseg/provenance.py)
        out["provenance"] = check_provenance(spec["provenance"])
    return out


def first_stage(spec: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The config mapping of the normalised spec's first ``kind`` step, or None."""
    return next((step_body(x) for x in spec["steps"] if step_kind(x) == kind), None)


def stages_of(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The config mappings of the normalised spec's ``kind`` steps, in order."""
    return [step_body(x) for x in spec["steps"] if step_kind(x) == kind]


def _parse_value(raw: str) -> Any:
    try:
        return yamlio.load_text(raw, "--set") if raw != "" else ""
    except ConfigError:
        return raw


def apply_set(spec: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set KEY=VALUE`` to a normalised spec: ``proposer.box_threshold=0.3``,
    ``filter.NAME.key`` or ``filter.INDEX.key`` for a repeatable kind, ``filter[NAME].key`` and
    ``proposer[NAME].key`` (the step of that component), ``combiner.key``, ``audio.key``, ``frames.key``."""
    if "=" not in assignment:
        raise UsageError(f"--set {assignment!r}: expected KEY=VALUE, e.g. proposer.box_threshold=0.3")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    value = _parse_value(raw)
    scoped = None
    if "[" in key:  # kind[NAME].param: the ablate axes' form
        head_, _, rest = key.partition("[")
        name, close, tail = rest.partition("]")
        if not (close and tail.startswith(".") and name and head_ in STEP_KINDS):
            raise UsageError(f"--set {key}: use KIND[NAME].param=value, e.g. filter[bind].cosine_threshold=0.7")
        parts, scoped = [head_, *tail[1:].split(".")], name
    else:
        parts = key.split(".")
    head = parts[0]
    if head == "combiner":
        if len(parts) == 1 or parts[1:] == ["type"]:
            spec["combiner"] = _stage(value, "--set combiner")
        else:
            if isinstance(spec.get("combiner"), str):  # `combiner: NAME` in a file
                spec["combiner"] = {"type": spec["combiner"]}
            _assign(spec.setdefault("combiner", {"type": "union"}), parts[1:], value, key)
        return
    if head in ("audio", "frames"):  # e.g. frames.size=null, audio.window=1.0
        if len(parts) != 2:
            raise UsageError(f"--set {key}: use {head}.PARAM=value, e.g. {'audio.snr=10' if head == 'audio' else 'frames.size=null'}")
        node = spec.get(head)
        spec[head] = {**(node if isinstance(node, dict) else {}), parts[1]: value}
        return
    if head in SINGLE_KINDS:
        if len(parts) < 2:
            raise UsageError(f"--set {key}: name a parameter, e.g. {head}.threshold=0.5")
        stage = first_stage(spec, head)
        if stage is None:
            raise UsageError(f"--set {key}: the pipeline has no {head}; add one with --{head} NAME")
        if scoped is not None:
            _find_named(head, [stage], scoped, key)
        _assign(stage, parts[1:], value, key)
        return
    many = {**{k: k for k in MANY_KINDS}, **{KINDS_BY_NAME[k].override: k for k in MANY_KINDS}}
    if head in many:
        kind = many[head]
        if scoped is not None:
            parts = [head, scoped, *parts[1:]]
        if len(parts) < 3:
            example = "filter.bind.cosine_threshold=0.7" if kind == "filter" else f"{kind}.NAME.param=value"
            raise UsageError(f"--set {key}: use {kind}.NAME.param=value, e.g. {example}")
        target = _find_named(kind, stages_of(spec, kind), parts[1], key)
        _assign(target, parts[2:], value, key)
        return
    raise UsageError(f"--set {key}: unknown stage {head!r}"
                     f"{did_you_mean(head, [*SINGLE_KINDS, *MANY_KINDS, 'combiner', 'audio', 'frames'])}")


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
