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
from avseg.frames import FramesSpec, frames_spec
from avseg.registry import Registry
from avseg.spec_mapping import normalise, step_body, step_kind
from avseg.steps import check_order


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
    """A resolved pipeline: its steps in executed order (the only form), the combiner, the audio
    and frame settings, and the warnings found while composing and checking it."""

    steps: list[ResolvedStage]
    warnings: list[str] = field(default_factory=list)
    audio: AudioSpec = field(default_factory=lambda: AudioSpec())
    frames: FramesSpec = field(default_factory=lambda: FramesSpec())
    #: None = the default ``union``
    combiner: ResolvedStage | None = None

    def first(self, kind: str) -> ResolvedStage | None:
        """The first step of ``kind`` (a pipeline has at most one of a single kind), or None."""
        return next((s for s in self.steps if s.kind == kind), None)

    def of_kind(self, kind: str) -> list[ResolvedStage]:
        """The steps of ``kind``, in executed order."""
        return [s for s in self.steps if s.kind == kind]

    @property
    def proposer(self) -> ResolvedStage:
        """The proposer step (resolve() refuses a pipeline without one)."""
        p = self.first("proposer")
        assert p is not None, "a resolved pipeline has a proposer"
        return p

    def stages(self) -> list[ResolvedStage]:
        """The steps, in executed order (a copy; ``Pipeline.components`` follows it)."""
        return list(self.steps)

    def step_names(self) -> list[str]:
        """The executed steps as "kind:name" strings (run.json, metrics.json); ``kind:dist:name``
        while the name collides, as each stage's ``type`` says."""
        return [f"{s.kind}:{s.ref or s.name}" for s in self.steps]

    def as_dict(self) -> dict[str, Any]:
        """The config as run.json, metrics.json and ``presets show`` record it: a ``steps:`` spec
        with every component's full config, which loads back as a pipeline file."""
        d: dict[str, Any] = {"steps": [{s.kind: s.as_dict()} for s in self.steps]}
        if self.combiner is not None:
            d["combiner"] = self.combiner.as_dict()
        # always: every run and `presets show` say what audio and which frame size the models got
        d["audio"] = self.audio.model_dump(mode="json")
        d["frames"] = self.frames.model_dump(mode="json")
        return d


def validation_message(label: str, exc: ValidationError) -> str:
    """One line for the first error: the field and the value refused, or, for a check across
    fields (a model validator, which has no field), its message and the values given."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if loc:
        return f"{label}: invalid {loc}={err.get('input')!r}: {msg}"
    given = err.get("input")
    values = ", ".join(f"{k}={v!r}" for k, v in given.items()) if isinstance(given, dict) else repr(given)
    return f"{label}: {msg} (given {values or 'the defaults'})"


def _config(kind: str, cls: type[Component], params: dict[str, Any]) -> ComponentConfig:
    label = f"{kind} {cls.name!r}"
    fields = cls.Config.model_fields
    for k in params:
        if k not in fields:
            raise ConfigError(f"unknown option {k!r} for {label}{did_you_mean(k, fields)}")
    try:
        return cls.Config(**params)
    except ValidationError as exc:
        raise ConfigError(validation_message(label, exc)) from None


def _audio_spec(raw: dict[str, Any] | None) -> AudioSpec:
    try:
        return AudioSpec(**(raw or {}))
    except ValidationError as exc:
        raise ConfigError(validation_message("audio", exc)) from None


def resolve(spec: dict[str, Any], registry: Registry) -> ResolvedSpec:
    """Look up every component and validate configs and the chain. Loads no model."""
    spec = normalise(spec, registry)  # the edge: a legacy spec becomes steps here

    def one(kind: str, stage: dict[str, Any] | None) -> ResolvedStage | None:
        if stage is None:
            return None
        params = {k: v for k, v in stage.items() if k != "type"}
        reg = registry.lookup(kind, stage["type"])
        return ResolvedStage(kind, reg.cls, _config(kind, reg.cls, params), reg.provider, reg.version,
                             registry.ref(reg))

    warnings = list(spec.get("notes", []))
    audio = _audio_spec(spec.get("audio"))
    frames = frames_spec(spec.get("frames"))
    combiner = one("combiner", spec.get("combiner"))
    steps = [s for x in spec["steps"] if (s := one(step_kind(x), step_body(x))) is not None]
    if not any(s.kind == "proposer" for s in steps):
        raise ChainError("the pipeline has no proposer step; add {proposer: NAME} to steps or --proposer NAME")
    rs = ResolvedSpec(steps=steps, warnings=warnings, audio=audio, frames=frames, combiner=combiner)
    validate_chain(rs)
    check_order(rs.steps)
    return rs


def validate_chain(rs: ResolvedSpec) -> None:
    """One-line errors for chains that cannot work; warnings for wasteful ones."""
    proposer, tagger, embedder = rs.proposer, rs.first("tagger"), rs.first("embedder")
    pc = proposer.caps
    has_masks = pc.gives_masks or rs.first("segmenter") is not None
    if pc.needs_prompts and not pc.has_vocabulary and tagger is None:
        raise ChainError(
            f"proposer {proposer.name!r} needs text prompts but the chain has no tagger and no vocabulary; "
            f"add --tagger ast or --set proposer.vocabulary=avsbench-s4"
        )
    if not has_masks:
        raise ChainError(
            f"proposer {proposer.name!r} gives boxes without masks and the chain has no segmenter; add --segmenter sam"
        )
    used_embeddings = False
    for f in rs.of_kind("filter"):
        assert issubclass(f.cls, Filter)
        needs = f.caps.needs
        if f.cls.scope == "clip" and not callable(getattr(f.cls, "filter_clip", None)):
            raise ChainError(f"filter {f.name!r} declares scope 'clip' but has no filter_clip(ctx); "
                             "subclass avseg.components.ClipFilter")
        if f.cls.target == "tags" and tagger is None:
            raise ChainError(f"filter {f.name!r} filters audio tags but the chain has no tagger; add --tagger ast")
        if "tags" in needs and tagger is None:
            raise ChainError(f"filter {f.name!r} needs audio tags but the chain has no tagger; add --tagger ast")
        if "embeddings" in needs:
            used_embeddings = True
            if embedder is None:
                raise ChainError(f"filter {f.name!r} needs embeddings but the chain has no embedder; add --embedder imagebind")
        if "labels" in needs and not pc.gives_labels:
            raise ChainError(
                f"filter {f.name!r} needs labelled proposals but proposer {proposer.name!r} gives none; "
                "use a labelled proposer such as gdino"
            )
        if "masks" in needs and not has_masks:
            raise ChainError(f"filter {f.name!r} needs masks; add --segmenter sam")
    if embedder is not None and not used_embeddings:
        rs.warnings.append(f"embedder {embedder.name!r} is in the chain but no filter uses its embeddings")
