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
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from avseg.audio import AudioSpec
from avseg.components import Capabilities, Component, ComponentConfig, Filter
from avseg.errors import ChainError, ConfigError, UsageError, did_you_mean
from avseg.provenance import check_provenance
from avseg.registry import Registry

SINGLE_STAGES = ("tagger", "proposer", "embedder", "segmenter")
DEFAULT_PRESET = "owod-bind"


def builtin_presets() -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(resources.files("avseg.presets").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            out[f.name[: -len(".yaml")]] = yaml.safe_load(f.read_text())
    return out


def all_presets(registry: Registry | None = None) -> dict[str, dict[str, Any]]:
    presets = builtin_presets()
    if registry is not None:
        for name, entries in registry.presets.items():
            if name in presets or len(entries) > 1:
                who = ", ".join(p for p, _ in entries)
                raise UsageError(f"preset {name!r} is defined more than once (by avseg and/or {who})")
            presets[name] = entries[0][1]
    return presets


def load_preset(name_or_path: str, registry: Registry | None = None) -> dict[str, Any]:
    """A preset by name, or a spec YAML file by path."""
    p = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        if not p.is_file():
            raise UsageError(f"pipeline file {name_or_path} does not exist")
        try:
            spec = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name_or_path}: invalid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"{name_or_path}: a pipeline spec must be a mapping")
        return spec
    presets = all_presets(registry)
    if name_or_path not in presets:
        raise UsageError(f"unknown preset {name_or_path!r}{did_you_mean(name_or_path, presets)}")
    return copy.deepcopy(presets[name_or_path])


def _stage(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return dict(value)
    raise ConfigError(f"{where}: expected a component name or a mapping with 'type', got {value!r}")


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {*SINGLE_STAGES, "filters", "description", "name", "notes", "audio", "provenance"}
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"unknown pipeline key {bad!r}{did_you_mean(bad, [*SINGLE_STAGES, 'filters'])}")
    out: dict[str, Any] = {k: _stage(spec.get(k), k) for k in SINGLE_STAGES}
    filters = spec.get("filters") or []
    if not isinstance(filters, list):
        raise ConfigError("filters: expected a list")
    out["filters"] = [_stage(f, f"filters[{i}]") for i, f in enumerate(filters)]
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


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def apply_set(spec: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set stage.key=value`` (``filter.NAME.key`` or ``filter.INDEX.key`` for filters)."""
    if "=" not in assignment:
        raise UsageError(f"--set {assignment!r}: expected KEY=VALUE, e.g. proposer.box_threshold=0.3")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    value = _parse_value(raw)
    head = parts[0]
    if head in SINGLE_STAGES:
        if len(parts) < 2:
            raise UsageError(f"--set {key}: name a parameter, e.g. {head}.threshold=0.5")
        stage = spec.get(head)
        if stage is None:
            raise UsageError(f"--set {key}: the pipeline has no {head}; add one with --{head} NAME")
        _assign(stage, parts[1:], value)
        return
    if head in ("filter", "filters"):
        if len(parts) < 3:
            raise UsageError(f"--set {key}: use filter.NAME.param=value, e.g. filter.bind.cosine_threshold=0.7")
        target = _find_filter(spec["filters"], parts[1], key)
        _assign(target, parts[2:], value)
        return
    raise UsageError(f"--set {key}: unknown stage {head!r}{did_you_mean(head, [*SINGLE_STAGES, 'filter'])}")


def _find_filter(filters: list[dict[str, Any]], ref: str, key: str) -> dict[str, Any]:
    if ref.isdigit():
        i = int(ref)
        if i >= len(filters):
            raise UsageError(f"--set {key}: the pipeline has {len(filters)} filters")
        return filters[i]
    matches = [f for f in filters if f["type"] == ref]
    if not matches:
        names = [f["type"] for f in filters]
        raise UsageError(f"--set {key}: the pipeline has no filter {ref!r}{did_you_mean(ref, names)}")
    if len(matches) > 1:
        raise UsageError(f"--set {key}: several {ref!r} filters; use the index, e.g. filter.0.param=value")
    return matches[0]


def _assign(stage: dict[str, Any], path: list[str], value: Any) -> None:
    if path == ["type"]:
        raise UsageError("use --tagger/--proposer/--embedder/--segmenter/--filter to change a component")
    node = stage
    for p in path[:-1]:
        node = node.setdefault(p, {})
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
    spec = normalise(load_preset(preset or DEFAULT_PRESET, registry))
    for stage, name in (("tagger", tagger), ("proposer", proposer), ("embedder", embedder), ("segmenter", segmenter)):
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
        named = {k for k, v in (("tagger", tagger), ("embedder", embedder), ("segmenter", segmenter)) if v}
        _prune_inherited(spec, named, proposer_changed=proposer is not None, registry=registry)
    return spec


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

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def caps(self) -> Capabilities:
        return self.cls.capabilities(self.config)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.cls.name, **self.config.model_dump(mode="json")}


@dataclass
class ResolvedSpec:
    tagger: ResolvedStage | None
    proposer: ResolvedStage
    embedder: ResolvedStage | None
    segmenter: ResolvedStage | None
    filters: list[ResolvedStage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audio: AudioSpec = field(default_factory=lambda: AudioSpec())

    def stages(self) -> list[ResolvedStage]:
        return [s for s in (self.tagger, self.proposer, self.embedder, self.segmenter) if s] + self.filters

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: (s.as_dict() if s else None) for k, s in (
            ("tagger", self.tagger), ("proposer", self.proposer), ("embedder", self.embedder),
            ("segmenter", self.segmenter))}
        d["filters"] = [f.as_dict() for f in self.filters]
        if self.audio != AudioSpec():
            d["audio"] = self.audio.model_dump(mode="json")
        return d


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
        return ResolvedStage(kind, reg.cls, _config(kind, reg.cls, params), reg.provider, reg.version)

    if spec.get("proposer") is None:
        raise ChainError("the pipeline has no proposer; add --proposer NAME")
    proposer = one("proposer", spec["proposer"])
    assert proposer is not None
    rs = ResolvedSpec(
        tagger=one("tagger", spec["tagger"]),
        proposer=proposer,
        embedder=one("embedder", spec["embedder"]),
        segmenter=one("segmenter", spec["segmenter"]),
        filters=[s for f in spec["filters"] if (s := one("filter", f)) is not None],
        warnings=list(spec.get("notes", [])),
        audio=_audio_spec(spec.get("audio")),
    )
    validate_chain(rs)
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
