"""The component kinds: Tagger, Proposer, Embedder, Segmenter, Filter (and ClipFilter), Refiner, Combiner.

All but the combiner are steps of a pipeline; a Combiner ends every pipeline (``union`` by default).

A component class carries everything the core needs *before* it is built (name, kind,
config schema, capabilities, declared weights, importable requirements), so chains can be
validated and listed without importing torch. Heavy imports belong in ``__init__`` (or a
``load`` called from it), which runs only when the pipeline is built.

All model calls are batch-first: they take every frame (or audio window) of a clip at once.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from avseg.errors import DependencyMissing
from avseg.types import (
    AudioWindow,
    Combined,
    FilterResult,
    FloatArray,
    FullRateVideo,
    Image,
    Proposals,
    SegmenterOutput,
    Tags,
)

if TYPE_CHECKING:
    from avseg.runtime import Runtime
    from avseg.weights import WeightFile

Kind = Literal["tagger", "proposer", "embedder", "segmenter", "filter", "refiner", "combiner"]


class ComponentConfig(BaseModel):
    """Base of every component's config: typed, validated, no unknown keys.

    Every field needs a default that its own type accepts (checked at registration, as pydantic's
    ``validate_default`` would); a pipeline sets fields by name (``{type: NAME, field: value}``
    or ``--set KIND.field=value``).

    Mark a field that does not change the component's output (a batch size, say) with
    ``Field(json_schema_extra={"affects_output": False})`` so the stage cache ignores it::

        class MyConfig(ComponentConfig):
            threshold: float = Field(0.5, ge=0, le=1, description="keep scores >= this")
            batch_size: int = Field(8, ge=1, json_schema_extra={"affects_output": False})
    """

    # allow_inf_nan=False: ``--set filter.x.threshold=nan`` must fail, naming the parameter
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    """Unknown keys are refused, assignments validated, NaN and infinity refused."""

    def output_params(self) -> dict[str, Any]:
        """The parameters that affect the output: what the stage cache keys on."""
        keep = set()
        for name, f in type(self).model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            if extra.get("affects_output", True):
                keep.add(name)
        return self.model_dump(mode="json", include=keep)


@dataclass(frozen=True)
class Capabilities:
    """What a configured component needs and gives; checked before any model loads."""

    needs_prompts: bool = False  # a proposer that needs text (tags or a vocabulary)
    """A proposer that needs text prompts (audio tags or its configured vocabulary)."""
    has_vocabulary: bool = False  # its prompts can come from its own configured vocabulary
    """Its prompts can come from its own configured vocabulary instead of tags."""
    gives_masks: bool = False  # proposals already carry masks
    """Its proposals already carry masks (no segmenter needed)."""
    gives_labels: bool = False  # proposals carry label names
    """Its proposals carry label names."""
    #: filters: any of tags, embeddings, masks, labels; an embedder: masks (masked region crops)
    needs: frozenset[str] = field(default_factory=frozenset)
    """What it needs upstream: for a filter any of tags, embeddings, masks, labels; for an embedder, masks (masked region crops)."""


class Component(ABC):
    """Base class. Subclasses set the class attributes and implement their kind's method."""

    kind: ClassVar[Kind]
    """The component's kind; set by the base class you subclass."""
    name: ClassVar[str]
    """The name pipelines use (``proposer: NAME``): a non-empty string without ``:``."""
    description: ClassVar[str] = ""
    """One line for ``avseg plugins``."""
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    """The config schema: a :class:`ComponentConfig` subclass (checked at registration, with its defaults)."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Importable modules the component needs (checked by ``avseg plugins``)."""
    extra: ClassVar[str | None] = None
    """The pip extra of your distribution that installs ``requires`` (shown as ``pip install 'dist[extra]'``)."""
    weights: ClassVar[dict[str, list[WeightFile]]] = {}
    """Weight files per variant; empty for weight-free components."""
    default_variant: ClassVar[str | None] = None
    """The variant of ``weights`` used when the config does not choose one."""

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config
        """The validated config this instance was built with (an instance of :attr:`Config`)."""
        self.runtime = runtime
        """Device, dtype, weights mode, caches and counters (:class:`avseg.runtime.Runtime`)."""
        # it lives on the registration, never on the class, so registries cannot leak into each other
        self.provider: str = "?"
        """The distribution this instance was resolved from; the pipeline sets it after building."""

    def import_requirements(self, modules: Sequence[str] | None = None) -> None:
        """Import ``modules`` (default: :attr:`requires`) so that a missing one fails early, as a
        one-line :class:`~avseg.errors.DependencyMissing` naming it and what to install (the
        component's own distribution, with its extra)."""
        for mod in self.requires if modules is None else modules:
            try:
                importlib.import_module(mod)
            except ImportError:
                from avseg.distributions import install_hint

                hint = install_hint(type(self))
                raise DependencyMissing(f"{self.kind} '{self.name}' needs {mod}{': ' + hint if hint else ''}") from None

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        """What the configured component needs and gives (checked before any model loads)."""
        return Capabilities()

    def weights_used(self) -> str | dict[str, str]:
        """What run.json records: "tiny", "none", or the files loaded."""
        return "none"

    @cached_property
    def weights_mode(self) -> str:
        """What a model component builds: "tiny" (small sizes, seeded random weights), "random"
        (``runtime.random_init``: the real sizes, seeded random weights) or "pretrained" (a
        checkpoint). The one place plugins ask; :attr:`Runtime.weights_mode` read once, so a built
        component keeps its mode whatever later happens to the runtime."""
        return self.runtime.weights_mode

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} ({type(self).__module__})>"


class Tagger(Component):
    """Audio windows -> label probabilities over the tagger's vocabulary."""

    kind: ClassVar[Kind] = "tagger"
    """Always ``tagger``."""

    @property
    @abstractmethod
    def vocabulary(self) -> list[str]:
        """The label names this tagger scores."""

    @abstractmethod
    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        """One sorted :class:`Tags` per window."""


class Proposer(Component):
    """Frames (+ optional text prompts per frame) -> candidate objects per frame."""

    kind: ClassVar[Kind] = "proposer"
    """Always ``proposer``."""
    uses_video: ClassVar[bool] = False
    """True: the pipeline decodes the clip's full-rate video (when it has one) for :meth:`propose_clip`."""

    def propose_clip(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None,
                     timestamps: Sequence[float], video: FullRateVideo | None) -> list[Proposals]:
        """The pipeline's call. Default: :meth:`propose`. A proposer that looks at motion sets
        ``uses_video`` and overrides this to read ``video`` (every frame at the video's own rate;
        None for frames-only inputs) around each sampled frame's time ``timestamps[i]``."""
        return self.propose(frames, prompts)

    @abstractmethod
    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        """One :class:`Proposals` per frame; boxes in pixels of that frame. Candidates removed by
        the proposer's own caps (top-k, internal NMS) may be listed in ``Proposals.drops`` with
        the reason: the pipeline shows them in the debug trace."""


class Embedder(Component):
    """Audio windows and frame regions -> vectors in one shared space.

    An embedder whose config has ``regions: masked`` needs masks (its capabilities say so, and
    resolution checks that a segmenter or a mask-giving proposer comes before it); the crops are
    made with :mod:`avseg.regions`.
    """

    kind: ClassVar[Kind] = "embedder"
    """Always ``embedder``."""

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        """Needs masks when ``config.regions`` is ``masked``."""
        masked = getattr(config, "regions", None) == "masked"
        return Capabilities(needs=frozenset({"masks"}) if masked else frozenset())

    @abstractmethod
    def embed_audio(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, D) embeddings, one per window."""

    @abstractmethod
    def embed_regions(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[FloatArray]:
        """(N_i, D) embeddings per frame, one per proposal (its box and, if present, mask)."""


class Segmenter(Component):
    """Frames + box prompts -> one mask per box, with a quality score."""

    kind: ClassVar[Kind] = "segmenter"
    """Always ``segmenter``."""

    @abstractmethod
    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        """Per frame, masks (N, H, W) at the frame's size and scores (N,)."""

    def segment_clip(
        self, frames: Sequence[Image], proposals: Sequence[Proposals], timestamps: Sequence[float]
    ) -> list[Proposals]:
        """The pipeline's call: every frame of the clip at once, one :class:`Proposals` per frame.

        The default segments each frame's boxes with :meth:`segment` (one batched call) and
        returns the same proposals with ``masks`` and ``mask_scores`` set. A clip-level segmenter
        (video propagation) may override it and return other objects for a frame. When the first
        ``len(proposals[i])`` are the given proposals (same boxes, in order), the rest are new
        objects (traced with ``origin`` = the segmenter's name); otherwise the returned objects
        replace the frame's (SAM 2's merged tracks), and the trace says so. The pipeline checks
        what comes back (avseg/validate.py); this default first checks :meth:`segment`'s
        answer there, so an error names the method the plugin wrote.
        """
        from avseg import validate  # the one place outputs are checked (a lazy import: no cycle)

        boxes = [p.boxes for p in proposals]
        outs = validate.segments(self, self.segment(frames, boxes), boxes, [f.shape[:2] for f in frames])
        return [Proposals(p.boxes, p.scores, p.labels, o.masks, o.scores)
                for p, o in zip(proposals, outs, strict=True)]


@dataclass
class FrameContext:
    """What a filter sees for one frame. Proposal-aligned arrays follow ``proposals``."""

    clip_id: str
    """The clip's id."""
    index: int
    """The frame's index in the clip."""
    frame: Image
    """The frame, uint8 RGB (H, W, 3)."""
    tags: Tags | None = None
    """The audio tags of the frame's window after the tag filters so far, or None without a tagger."""
    proposals: Proposals | None = None
    """The frame's objects so far (after the earlier filters), or None before a proposer."""
    audio_embedding: FloatArray | None = None
    """float32 (D,) embedding of the frame's audio window, once an embedder ran."""
    region_embeddings: FloatArray | None = None
    """float32 (N, D) embeddings aligned with ``proposals``, once an embedder ran."""
    all_tags: Tags | None = None
    """Every tag of the window before any tag filter (for filters that look at the full distribution)."""


@dataclass
class ClipContext:
    """What a clip-scope filter sees: every frame of the clip at once (lists indexed by frame).

    Proposal-aligned arrays follow ``proposals[i]``; entries are None where the chain has not
    produced them (yet). ``audio_windows[i]`` is the audio that belongs to frame ``i``.
    ``video`` holds every frame at the video's own rate when the clip comes from a video and a
    component asked for it (``uses_video``), else None; ``audio`` is the whole clip's mono audio
    (waveform, rate) under the pipeline's channel rule. ``warnings`` is the clip's warning list:
    append a one-line note there (once) when a component works on less than it wants.
    """

    clip_id: str
    """The clip's id."""
    frames: list[Image]
    """Every frame of the clip, uint8 RGB (H, W, 3)."""
    timestamps: list[float]
    """Each frame's time in the clip, in seconds."""
    audio_windows: list[AudioWindow]
    """``audio_windows[i]``: the audio that belongs to frame ``i``."""
    tags: list[Tags | None]
    """Per frame, the tags after the tag filters so far (None without a tagger)."""
    proposals: list[Proposals]
    """Per frame, the objects so far."""
    audio_embeddings: list[FloatArray | None]
    """Per frame, the (D,) audio embedding, or None before an embedder."""
    region_embeddings: list[FloatArray | None]
    """Per frame, (N_i, D) embeddings aligned with ``proposals[i]``, or None."""
    all_tags: list[Tags | None]
    """Per frame, every tag before any tag filter."""
    video: FullRateVideo | None = None
    """The clip's full-rate video, for a component that sets ``uses_video`` (None otherwise, or for
    frames-only inputs)."""
    audio: tuple[FloatArray, int] | None = None
    """The clip's whole audio as (mono waveform, sample rate), after the spec's channel rule and any noise."""
    warnings: list[str] = field(default_factory=list)
    """Warnings a component raised on this clip (each once); they reach run.json and the eval's clip state."""

    def warn_once(self, message: str) -> None:
        """Add ``message`` to :attr:`warnings` unless it is there already."""
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def num_frames(self) -> int:
        """How many frames the clip has."""
        return len(self.frames)


class Filter(Component):
    """Keeps a subset of tags or proposals and records why the others were dropped.

    ``scope = "frame"`` (the default): implement :meth:`__call__`, called once per frame with a
    :class:`FrameContext` (the default :meth:`filter_clip` loops over the frames). Clip-scope
    filters subclass :class:`ClipFilter` and implement :meth:`filter_clip` instead.
    """

    kind: ClassVar[Kind] = "filter"
    """Always ``filter``."""
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    """What the filter selects from: ``tags`` or ``proposals``."""
    needs: ClassVar[frozenset[str]] = frozenset()
    """What it needs in the context: any of the keys of :data:`avseg.kinds.FILTER_NEEDS` (checked at registration)."""
    scope: ClassVar[Literal["frame", "clip"]] = "frame"
    """``frame``: one call per frame; ``clip``: one call per clip (subclass :class:`ClipFilter`)."""

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        """Needs what :attr:`needs` says."""
        return Capabilities(needs=cls.needs)

    @abstractmethod
    def __call__(self, ctx: FrameContext) -> FilterResult:
        """Indices to keep from ``ctx.tags`` or ``ctx.proposals`` (by ``target``)."""

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        """The pipeline's call: one result per frame of ``ctx``. The default calls :meth:`__call__`
        once per frame, with that frame's part of ``ctx`` (a tag filter sees only the tags; a frame
        without tags is left as it is)."""
        out: list[FilterResult] = []
        for i, frame in enumerate(ctx.frames):
            if self.target == "tags":
                if ctx.tags[i] is None:
                    out.append(FilterResult(keep=[]))
                    continue
                fctx = FrameContext(ctx.clip_id, i, frame, tags=ctx.tags[i], all_tags=ctx.all_tags[i])
            else:
                fctx = FrameContext(ctx.clip_id, i, frame, tags=ctx.tags[i], proposals=ctx.proposals[i],
                                    audio_embedding=ctx.audio_embeddings[i],
                                    region_embeddings=ctx.region_embeddings[i], all_tags=ctx.all_tags[i])
            out.append(self(fctx))
        return out


class ClipFilter(Filter):
    """A filter that sees the whole clip (``scope = "clip"``): tracks, votes, gap filling.

    Implement :meth:`filter_clip`; it returns one :class:`FilterResult` per frame, whose drops
    reach the debug trace like a frame filter's, and whose ``added`` objects join the frame.
    """

    scope: ClassVar[Literal["frame", "clip"]] = "clip"
    """Always ``clip``."""
    uses_video: ClassVar[bool] = False
    """True: the pipeline decodes the clip's full-rate video (when it has one) into ``ctx.video``."""

    @abstractmethod
    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        """One result per frame of ``ctx`` (indices into ``ctx.proposals[i]`` or ``ctx.tags[i]``)."""

    def __call__(self, ctx: FrameContext) -> FilterResult:
        raise TypeError(f"filter {self.name!r} has clip scope: the pipeline calls filter_clip")


class Refiner(Component):
    """Post-processes the kept objects' masks (merge parts, fill holes, ...) before the combiner.

    A pipeline step (``- refiner: {type: NAME}``, ``--refiner NAME``) after the filters: it
    consumes proposals with masks and gives each frame's objects back with masks. Objects it
    returns with their box unchanged keep their trace; the others it dropped or merged are traced
    with ``dropped_by`` = its name, and new ones (a merge) as made by it.
    """

    kind: ClassVar[Kind] = "refiner"
    """Always ``refiner``."""
    scope: ClassVar[Literal["frame", "clip"]] = "frame"
    """``frame``: :meth:`refine` is called per frame; ``clip``: override :meth:`refine_clip` to see the whole clip."""

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        """The frame's kept objects (kept.masks set, one per object, frame-sized bool) -> the refined
        objects: masks set. May change masks, merge objects (fewer), drop or split them."""
        raise NotImplementedError

    def refine_clip(self, ctx: ClipContext) -> list[Proposals]:
        """Default: [self.refine(f, p) for f, p in zip(ctx.frames, ctx.proposals)]."""
        return [self.refine(f, p) for f, p in zip(ctx.frames, ctx.proposals, strict=True)]


class Combiner(Component):
    """Turns a frame's kept objects into the frame's mask and label map (the pipeline's end).

    Selected with ``combiner: NAME`` in a spec (default ``union``); registered through the
    ``register_combiners`` hook.
    """

    kind: ClassVar[Kind] = "combiner"
    """Always ``combiner``."""

    @abstractmethod
    def combine(self, frame: Image, kept: Proposals) -> Combined:
        """The frame's output; ``kept.masks`` is set unless ``kept`` is empty."""
