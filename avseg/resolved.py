"""Resolution: a spec mapping -> component classes with validated configs, and the chain checks.

Nothing here loads a model: the classes' ``capabilities`` and the kinds table say whether a
chain can work (avseg/steps.py checks the order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from avseg.audio import AudioSpec
from avseg.components import Capabilities, Component, ComponentConfig, Filter
from avseg.errors import ChainError, ConfigError, did_you_mean
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, consumes, produces
from avseg.registry import Registry
from avseg.spec_mapping import normalise, step_body, step_kind
from avseg.steps import arrange, check_order


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
        """The single stages (tagger, proposer, embedder, segmenter), then the repeatable steps
        (filters, ...) in their order."""
        singles = [s for s in (self.tagger, self.proposer, self.embedder, self.segmenter) if s]
        return singles + [s for s in self.steps if KINDS_BY_NAME[s.kind].many]

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
        for kind in MANY_KINDS:  # the other repeatable kinds (refiners ...), when the chain has any
            more = [s.as_dict() for s in self.steps if s.kind == kind and kind != "filter"]
            if more:
                d[KINDS_BY_NAME[kind].override] = more
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
        first = {k: next((s for s in steps if s.kind == k), None) for k in SINGLE_KINDS}
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
