"""Pipeline specs: presets, CLI composition, ``--set`` overrides, and validation before any load.

A spec is a plain dict, as in the preset YAML files::

    description: ...
    tagger: {type: ast}                 # or null
    proposer: {type: gdino, box_threshold: 0.35}
    embedder: null
    segmenter: {type: sam}
    filters:
      - {type: tag-threshold, threshold: 0.5}

Each stage is ``{type: NAME, **config}`` (mmengine style). Resolution turns it into
component classes with validated pydantic configs; no model is loaded here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from avseg import yamlio
from avseg.audio import AudioSpec
from avseg.components import Capabilities, Component, ComponentConfig, Filter
from avseg.errors import ChainError, ConfigError, UsageError, did_you_mean
from avseg.provenance import check_provenance
from avseg.registry import Registry
from avseg.steps import arrange, check_order, consumes, produces

SINGLE_STAGES = ("tagger", "proposer", "embedder", "segmenter")
STEP_KINDS = (*SINGLE_STAGES, "filter")
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
    from avseg.registry import BUNDLED

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
    filters = iter(spec.get("filters") or [])
    out = []
    for i, ref in enumerate(order):
        kind = ref.split(":", 1)[0]
        body = next(filters, None) if kind == "filter" else spec.get(kind)
        if body is None or kind not in STEP_KINDS:
            raise ConfigError(f"steps[{i}]: {ref!r} does not match the spec's {kind} entries")
        out.append(_step({kind: body}, f"steps[{i}]"))
    return out


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    keys = [*SINGLE_STAGES, "filters", "steps", "combiner"]
    unknown = set(spec) - {*keys, "description", "name", "notes", "audio", "provenance"}
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"unknown pipeline key {bad!r}{did_you_mean(bad, keys)}")
    out: dict[str, Any]
    legacy = any(spec.get(k) for k in (*SINGLE_STAGES, "filters"))
    if spec.get("steps") is not None:
        raw = spec["steps"]
        if not isinstance(raw, list):
            raise ConfigError("steps: expected a list such as [{proposer: owod}, {segmenter: sam}]")
        if legacy and all(isinstance(x, str) for x in raw):
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
    if head in SINGLE_STAGES:
        if len(parts) < 2:
            raise UsageError(f"--set {key}: name a parameter, e.g. {head}.threshold=0.5")
        stage = _single(spec, head)
        if stage is None:
            raise UsageError(f"--set {key}: the pipeline has no {head}; add one with --{head} NAME")
        _assign(stage, parts[1:], value, key)
        return
    if head in ("filter", "filters"):
        if len(parts) < 3:
            raise UsageError(f"--set {key}: use filter.NAME.param=value, e.g. filter.bind.cosine_threshold=0.7")
        target = _find_filter(filter_stages(spec), parts[1], key)
        _assign(target, parts[2:], value, key)
        return
    raise UsageError(f"--set {key}: unknown stage {head!r}{did_you_mean(head, [*SINGLE_STAGES, 'filter', 'combiner'])}")


def _find_filter(filters: list[dict[str, Any]], ref: str, key: str) -> dict[str, Any]:
    if ref.isdigit():
        i = int(ref)
        if i >= len(filters):
            raise UsageError(f"--set {key}: the pipeline has {len(filters)} filters")
        return filters[i]
    matches = [f for f in filters if ref in (f["type"], f["type"].split(":")[-1])]
    if not matches:
        names = [f["type"] for f in filters]
        raise UsageError(f"--set {key}: the pipeline has no filter {ref!r}{did_you_mean(ref, names)}")
    if len(matches) > 1:
        raise UsageError(f"--set {key}: several {ref!r} filters; use the index, e.g. filter.0.param=value")
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


def compose(
    preset: str | None = None,
    *,
    tagger: str | None = None,
    proposer: str | None = None,
    embedder: str | None = None,
    segmenter: str | None = None,
    filters: Sequence[str] | None = None,
    sets: Sequence[str] = (),
    registry: Registry | None = None,
) -> dict[str, Any]:
    """A preset with components swapped and parameters set, as the CLI options describe it.

    Naming a component that the preset already uses keeps the preset's parameters for it;
    ``none`` removes an optional stage; naming any filter replaces the preset's filter list.
    """
    if preset is None and registry is not None and len(registry.presets.get(DEFAULT_PRESET, [])) > 1:
        preset = f"avseg:{DEFAULT_PRESET}"  # the implicit default is the bundled one, even when a plugin reuses its name
    spec = normalise(load_preset(preset or DEFAULT_PRESET, registry))
    named = {"tagger": tagger, "proposer": proposer, "embedder": embedder, "segmenter": segmenter}
    if "steps" in spec:
        _compose_steps(spec, named, filters, sets, registry)
        return spec
    for stage, name in named.items():
        if name is None:
            continue
        if name.lower() == "none":
            if stage == "proposer":
                raise UsageError("--proposer none: every pipeline needs a proposer")
            spec[stage] = None
        elif spec.get(stage) is None or spec[stage]["type"] != name:
            spec[stage] = {"type": name}
    if filters is not None:
        old = {f["type"]: f for f in spec["filters"]}
        spec["filters"] = [copy.deepcopy(old[n]) if n in old else {"type": n} for n in filters if n.lower() != "none"]
    for s in sets:
        apply_set(spec, s)
    if registry is not None:
        named_kinds = {k for k, v in (("tagger", tagger), ("embedder", embedder), ("segmenter", segmenter)) if v}
        _prune_inherited(spec, named_kinds, proposer_changed=proposer is not None, registry=registry)
    return spec


def _compose_steps(spec: dict[str, Any], named: dict[str, str | None], filters: Sequence[str] | None,
                   sets: Sequence[str], registry: Registry | None) -> None:
    """``compose`` on a steps spec: swap components in place, insert missing ones where their
    inputs exist, replace the filters (placed after what they need), apply ``--set``."""
    steps: list[dict[str, dict[str, Any]]] = spec["steps"]
    floating: list[dict[str, dict[str, Any]]] = []
    for kind, name in named.items():
        if name is None:
            continue
        at = [i for i, x in enumerate(steps) if step_kind(x) == kind]
        if name.lower() == "none":
            if kind == "proposer":
                raise UsageError("--proposer none: every pipeline needs a proposer")
            steps[:] = [x for x in steps if step_kind(x) != kind]
        elif at:
            if step_body(steps[at[0]])["type"] != name:
                steps[at[0]] = {kind: {"type": name}}
        elif kind in ("tagger", "proposer"):
            steps.insert(0 if kind == "tagger" else int(bool(steps) and step_kind(steps[0]) == "tagger"),
                         {kind: {"type": name}})
        else:
            floating.append({kind: {"type": name}})
    if filters is not None:
        old = {b["type"]: b for b in filter_stages(spec)}
        steps[:] = [x for x in steps if step_kind(x) != "filter"]
        floating += [{"filter": copy.deepcopy(old[n]) if n in old else {"type": n}} for n in filters if n.lower() != "none"]
    steps += floating  # so that --set finds them; placed below
    for s in sets:
        apply_set(spec, s)
    if not floating:
        if registry is not None:
            _prune_steps(spec, named, registry)
        return
    fixed = [x for x in steps if not any(x is f for f in floating)]
    if registry is None:  # without classes, keep the order given: resolve() checks it
        steps[:] = fixed + floating
        return
    consumed, produced = _step_io(registry)
    by_kind = {step_kind(f): f for f in floating if step_kind(f) != "filter"}
    steps[:] = arrange(
        fixed, [f for f in floating if step_kind(f) == "filter"], kind_of=step_kind, needs_of=consumed,
        produces_of=lambda x: produced(x) or frozenset(), embedder=by_kind.get("embedder"),
        segmenter=by_kind.get("segmenter"), keep_unused_embedder=True,
    )
    _prune_steps(spec, named, registry)


def _step_io(registry: Registry) -> tuple[Callable[[dict[str, Any]], frozenset[str] | None],
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


def _prune_steps(spec: dict[str, Any], named: dict[str, str | None], registry: Registry) -> None:
    """``_prune_inherited`` for a steps spec: the same rules, applied to its steps."""
    view: dict[str, Any] = {k: _single(spec, k) for k in SINGLE_STAGES}
    view["filters"] = filter_stages(spec)
    if view["proposer"] is None:
        return
    kept = dict(view)
    _prune_inherited(view, {k for k, v in named.items() if v and k != "proposer"},
                     proposer_changed=named["proposer"] is not None, registry=registry)
    gone = {k for k in SINGLE_STAGES if kept[k] is not None and view[k] is None}
    spec["steps"] = [x for x in spec["steps"] if step_kind(x) not in gone]
    if view.get("notes"):
        spec.setdefault("notes", []).extend(view["notes"])


def _prune_inherited(spec: dict[str, Any], named: set[str], proposer_changed: bool, registry: Registry) -> None:
    """Drop optional stages kept from the preset that the composed chain no longer uses.

    ``--proposer saliency --filter score-threshold`` on top of owod-bind should not load
    ImageBind (no filter uses embeddings) nor SAM (the new proposer gives masks itself).
    Stages named on the command line are always kept.
    """
    try:
        pcls = registry.get("proposer", spec["proposer"]["type"])
        pcaps = pcls.capabilities(pcls.Config(**{k: v for k, v in spec["proposer"].items() if k != "type"}))
        fcls = [registry.get("filter", f["type"]) for f in spec["filters"]]
    except Exception:  # resolve() reports these properly
        return
    needs = set().union(*(c.needs for c in fcls if issubclass(c, Filter))) if fcls else set()
    if spec["embedder"]:  # an embedder of masked regions needs the segmenter too
        try:
            ecls = registry.get("embedder", spec["embedder"]["type"])
            needs |= ecls.capabilities(ecls.Config(**{k: v for k, v in spec["embedder"].items() if k != "type"})).needs
        except Exception:
            pass
    tag_filters = any(getattr(c, "target", None) == "tags" for c in fcls)
    notes = spec.setdefault("notes", [])
    if "embedder" not in named and spec["embedder"] and "embeddings" not in needs:
        notes.append(f"dropped the preset's embedder {spec['embedder']['type']!r}: no filter uses embeddings")
        spec["embedder"] = None
    if "segmenter" not in named and spec["segmenter"] and proposer_changed and pcaps.gives_masks and "masks" not in needs:
        notes.append(f"dropped the preset's segmenter {spec['segmenter']['type']!r}: proposer "
                     f"{spec['proposer']['type']!r} gives masks")
        spec["segmenter"] = None
    wants_tags = tag_filters or "tags" in needs or (pcaps.needs_prompts and not pcaps.has_vocabulary)
    if "tagger" not in named and spec["tagger"] and not wants_tags:
        notes.append(f"dropped the preset's tagger {spec['tagger']['type']!r}: nothing uses audio tags")
        spec["tagger"] = None
    if not notes:
        del spec["notes"]


@dataclass
class ResolvedStage:
    kind: str
    cls: type[Component]
    config: ComponentConfig
    provider: str = "?"  # the distribution that registered it
    version: str = "0"  # that distribution's version
    ref: str | None = None  # the name that resolves to it again (``dist:name`` while the name collides)

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def caps(self) -> Capabilities:
        return self.cls.capabilities(self.config)

    @property
    def fingerprint(self) -> str:
        """A hash of the source files that define the component (see avseg.cache)."""
        from avseg.cache import source_fingerprint

        return source_fingerprint(self.cls)

    def identity(self) -> dict[str, str]:
        """Who made this stage's output: provider, version and source fingerprint."""
        return {"provider": self.provider, "version": self.version, "fingerprint": self.fingerprint}

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.ref or self.cls.name, **self.config.model_dump(mode="json")}


@dataclass
class ResolvedSpec:
    tagger: ResolvedStage | None
    proposer: ResolvedStage
    embedder: ResolvedStage | None
    segmenter: ResolvedStage | None
    filters: list[ResolvedStage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audio: AudioSpec = field(default_factory=lambda: AudioSpec())
    #: the executed order (the stage objects above); empty = the legacy order, filled in here
    steps: list[ResolvedStage] = field(default_factory=list)
    #: None = the default ``union``
    combiner: ResolvedStage | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            self.steps = legacy_steps(self)

    def stages(self) -> list[ResolvedStage]:
        return [s for s in (self.tagger, self.proposer, self.embedder, self.segmenter) if s] + self.filters

    def step_names(self) -> list[str]:
        """The executed steps as "kind:name" strings (run.json, config.json); ``kind:dist:name``
        while the name collides, as each stage's ``type`` says."""
        return [f"{s.kind}:{s.ref or s.name}" for s in self.steps]

    def as_dict(self) -> dict[str, Any]:
        # the executed order first, then each component's full config
        d: dict[str, Any] = {"steps": self.step_names()}
        d.update({k: (s.as_dict() if s else None) for k, s in (
            ("tagger", self.tagger), ("proposer", self.proposer), ("embedder", self.embedder),
            ("segmenter", self.segmenter))})
        d["filters"] = [f.as_dict() for f in self.filters]
        if self.combiner is not None:
            d["combiner"] = self.combiner.as_dict()
        if self.audio != AudioSpec():
            d["audio"] = self.audio.model_dump(mode="json")
        return d


def legacy_steps(rs: ResolvedSpec) -> list[ResolvedStage]:
    """The order the pre-steps executor ran a tagger/proposer/embedder/segmenter/filters spec in:
    tag filters after the tagger; the embedder just before the first filter needing embeddings
    (never, when none does); the segmenter just before the first needing masks, or at the end."""

    def needs(s: ResolvedStage) -> frozenset[str]:
        return consumes(s.kind, s.cls, s.config)

    fixed = [s for s in (rs.tagger, rs.proposer) if s is not None]
    return arrange(fixed, rs.filters, kind_of=lambda s: s.kind, needs_of=needs,
                   produces_of=lambda s: produces(s.kind, s.cls, s.config),
                   embedder=rs.embedder, segmenter=rs.segmenter)


def _config(kind: str, cls: type[Component], params: dict[str, Any]) -> ComponentConfig:
    label = f"{kind} {cls.name!r}"
    fields = cls.Config.model_fields
    for k in params:
        if k not in fields:
            raise ConfigError(f"unknown option {k!r} for {label}{did_you_mean(k, fields)}")
    try:
        return cls.Config(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{label}: invalid {loc}={err.get('input')!r}: {err['msg']}") from None


def _audio_spec(raw: dict[str, Any] | None) -> AudioSpec:
    try:
        return AudioSpec(**(raw or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"audio: invalid {loc}={err.get('input')!r}: {err['msg']}") from None


def resolve(spec: dict[str, Any], registry: Registry) -> ResolvedSpec:
    """Look up every component and validate configs and the chain. Loads no model."""
    spec = normalise(spec)

    def one(kind: str, stage: dict[str, Any] | None) -> ResolvedStage | None:
        if stage is None:
            return None
        params = {k: v for k, v in stage.items() if k != "type"}
        reg = registry.lookup(kind, stage["type"])
        return ResolvedStage(kind, reg.cls, _config(kind, reg.cls, params), reg.provider, reg.version,
                             registry.ref(reg))

    warnings = list(spec.get("notes", []))
    audio = _audio_spec(spec.get("audio"))
    combiner = one("combiner", spec.get("combiner"))
    if "steps" in spec:
        steps = [s for x in spec["steps"] if (s := one(step_kind(x), step_body(x))) is not None]
        first = {k: next((s for s in steps if s.kind == k), None) for k in SINGLE_STAGES}
        proposer = first["proposer"]
        if proposer is None:
            raise ChainError("the pipeline has no proposer step; add {proposer: NAME} to steps or --proposer NAME")
        rs = ResolvedSpec(tagger=first["tagger"], proposer=proposer, embedder=first["embedder"],
                          segmenter=first["segmenter"], filters=[s for s in steps if s.kind == "filter"],
                          warnings=warnings, audio=audio, steps=steps, combiner=combiner)
    else:
        if spec.get("proposer") is None:
            raise ChainError("the pipeline has no proposer; add --proposer NAME")
        legacy_proposer = one("proposer", spec["proposer"])
        assert legacy_proposer is not None
        rs = ResolvedSpec(
            tagger=one("tagger", spec["tagger"]),
            proposer=legacy_proposer,
            embedder=one("embedder", spec["embedder"]),
            segmenter=one("segmenter", spec["segmenter"]),
            filters=[s for f in spec["filters"] if (s := one("filter", f)) is not None],
            warnings=warnings,
            audio=audio,
            combiner=combiner,
        )
    validate_chain(rs)
    check_order(rs.steps)
    return rs


def validate_chain(rs: ResolvedSpec) -> None:
    """One-line errors for chains that cannot work; warnings for wasteful ones."""
    pc = rs.proposer.caps
    has_masks = pc.gives_masks or rs.segmenter is not None
    if pc.needs_prompts and not pc.has_vocabulary and rs.tagger is None:
        raise ChainError(
            f"proposer {rs.proposer.name!r} needs text prompts but the chain has no tagger and no vocabulary; "
            f"add --tagger ast or --set proposer.vocabulary=avsbench-s4"
        )
    if not has_masks:
        raise ChainError(
            f"proposer {rs.proposer.name!r} gives boxes without masks and the chain has no segmenter; add --segmenter sam"
        )
    used_embeddings = False
    for f in rs.filters:
        assert issubclass(f.cls, Filter)
        needs = f.caps.needs
        if f.cls.scope == "clip" and not callable(getattr(f.cls, "filter_clip", None)):
            raise ChainError(f"filter {f.name!r} declares scope 'clip' but has no filter_clip(ctx); "
                             "subclass avseg.components.ClipFilter")
        if f.cls.target == "tags" and rs.tagger is None:
            raise ChainError(f"filter {f.name!r} filters audio tags but the chain has no tagger; add --tagger ast")
        if "tags" in needs and rs.tagger is None:
            raise ChainError(f"filter {f.name!r} needs audio tags but the chain has no tagger; add --tagger ast")
        if "embeddings" in needs:
            used_embeddings = True
            if rs.embedder is None:
                raise ChainError(f"filter {f.name!r} needs embeddings but the chain has no embedder; add --embedder imagebind")
        if "labels" in needs and not pc.gives_labels:
            raise ChainError(
                f"filter {f.name!r} needs labelled proposals but proposer {rs.proposer.name!r} gives none; "
                "use a labelled proposer such as gdino"
            )
        if "masks" in needs and not has_masks:
            raise ChainError(f"filter {f.name!r} needs masks; add --segmenter sam")
    if rs.embedder is not None and not used_embeddings:
        rs.warnings.append(f"embedder {rs.embedder.name!r} is in the chain but no filter uses its embeddings")
