"""The component interfaces: Tagger, Proposer, Embedder, Segmenter, Filter, Refiner, Combiner.

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

import numpy as np
from pydantic import BaseModel, ConfigDict

from avseg.errors import DependencyMissing
from avseg.types import (
    AudioWindow,
    BoolArray,
    FilterResult,
    FloatArray,
    Image,
    IntArray,
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

    Mark a field that does not change the component's output (a batch size, say) with
    ``Field(json_schema_extra={"affects_output": False})`` so the stage cache ignores it.
    """

    # allow_inf_nan=False: ``--set filter.x.threshold=nan`` must fail, naming the parameter
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

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
    has_vocabulary: bool = False  # its prompts can come from its own configured vocabulary
    gives_masks: bool = False  # proposals already carry masks
    gives_labels: bool = False  # proposals carry label names
    #: filters: any of tags, embeddings, masks, labels; an embedder: masks (masked region crops)
    needs: frozenset[str] = field(default_factory=frozenset)


class Component(ABC):
    """Base class. Subclasses set the class attributes and implement their kind's method."""

    kind: ClassVar[Kind]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    #: importable modules the component needs (checked by ``avseg plugins``)
    requires: ClassVar[tuple[str, ...]] = ()
    #: the pip extra that installs ``requires``
    extra: ClassVar[str | None] = None
    #: weight files per variant; empty for weight-free components
    weights: ClassVar[dict[str, list[WeightFile]]] = {}
    default_variant: ClassVar[str | None] = None

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        #: the distribution this instance was resolved from; the executor sets it after building
        #: (it lives on the registration, never on the class, so registries cannot leak into each other)
        self.provider: str = "?"

    def import_requirements(self, modules: Sequence[str] | None = None) -> None:
        """Import ``modules`` (default: :attr:`requires`) so that a missing one fails early, as a
        one-line :class:`~avseg.errors.DependencyMissing` naming it and what to install (the
        component's own distribution, with its extra)."""
        for mod in self.requires if modules is None else modules:
            try:
                importlib.import_module(mod)
            except ImportError:
                from avseg.registry import install_hint

                hint = install_hint(type(self))
                raise DependencyMissing(f"{self.kind} '{self.name}' needs {mod}{': ' + hint if hint else ''}") from None

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
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

    @abstractmethod
    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        """One :class:`Proposals` per frame; boxes in pixels of that frame. Candidates removed by
        the proposer's own caps (top-k, internal NMS) may be listed in ``Proposals.drops`` with
        the reason: the executor shows them in the debug trace."""


class Embedder(Component):
    """Audio windows and frame regions -> vectors in one shared space.

    An embedder whose config has ``regions: masked`` needs masks (its capabilities say so, and
    resolution checks that a segmenter or a mask-giving proposer comes before it); the crops are
    made with :mod:`avseg.regions`.
    """

    kind: ClassVar[Kind] = "embedder"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
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

    @abstractmethod
    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        """Per frame, masks (N, H, W) at the frame's size and scores (N,)."""

    def segment_clip(
        self, frames: Sequence[Image], proposals: Sequence[Proposals], timestamps: Sequence[float]
    ) -> list[Proposals]:
        """The executor's call: every frame of the clip at once, one :class:`Proposals` per frame.

        The default segments each frame's boxes with :meth:`segment` (one batched call) and
        returns the same proposals with ``masks`` and ``mask_scores`` set. A clip-level segmenter
        (video propagation) may override it and return other objects for a frame. When the first
        ``len(proposals[i])`` are the given proposals (same boxes, in order), the rest are new
        objects (traced with ``origin`` = the segmenter's name); otherwise the returned objects
        replace the frame's (SAM 2's merged tracks), and the trace says so.
        """
        from avseg import validate  # validate imports this module

        boxes = [p.boxes for p in proposals]
        outs = validate.segments(self, self.segment(frames, boxes), boxes, [f.shape[:2] for f in frames])
        result = []
        for f, p, o in zip(frames, proposals, outs, strict=True):
            h, w = f.shape[:2]
            masks = np.asarray(o.masks, dtype=bool).reshape(len(p), h, w)
            result.append(Proposals(p.boxes, p.scores, p.labels, masks, o.scores))
        return result


@dataclass
class FrameContext:
    """What a filter sees for one frame. Proposal-aligned arrays follow ``proposals``."""

    clip_id: str
    index: int
    frame: Image
    tags: Tags | None = None
    proposals: Proposals | None = None
    audio_embedding: FloatArray | None = None
    region_embeddings: FloatArray | None = None
    all_tags: Tags | None = None


@dataclass
class ClipContext:
    """What a clip-scope filter sees: every frame of the clip at once (lists indexed by frame).

    Proposal-aligned arrays follow ``proposals[i]``; entries are None where the chain has not
    produced them (yet). ``audio_windows[i]`` is the audio that belongs to frame ``i``.
    """

    clip_id: str
    frames: list[Image]
    timestamps: list[float]
    audio_windows: list[AudioWindow]
    tags: list[Tags | None]
    proposals: list[Proposals]
    audio_embeddings: list[FloatArray | None]
    region_embeddings: list[FloatArray | None]
    all_tags: list[Tags | None]

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class Filter(Component):
    """Keeps a subset of tags or proposals and records why the others were dropped.

    ``scope = "frame"`` (the default): called once per frame with a :class:`FrameContext`.
    Clip-scope filters subclass :class:`ClipFilter` instead.
    """

    kind: ClassVar[Kind] = "filter"
    #: what the filter selects from
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    #: what it needs in the context: any of the keys of :data:`avseg.kinds.FILTER_NEEDS`
    needs: ClassVar[frozenset[str]] = frozenset()
    #: "frame": one call per frame; "clip": one call per clip (see ClipFilter)
    scope: ClassVar[Literal["frame", "clip"]] = "frame"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs=cls.needs)

    @abstractmethod
    def __call__(self, ctx: FrameContext) -> FilterResult:
        """Indices to keep from ``ctx.tags`` or ``ctx.proposals`` (by ``target``)."""


class ClipFilter(Filter):
    """A filter that sees the whole clip (``scope = "clip"``): tracks, votes, gap filling.

    Implement :meth:`filter_clip`; it returns one :class:`FilterResult` per frame, whose drops
    reach the debug trace like a frame filter's, and whose ``added`` objects join the frame.
    """

    scope: ClassVar[Literal["frame", "clip"]] = "clip"

    @abstractmethod
    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        """One result per frame of ``ctx`` (indices into ``ctx.proposals[i]`` or ``ctx.tags[i]``)."""

    def __call__(self, ctx: FrameContext) -> FilterResult:
        raise TypeError(f"filter {self.name!r} has clip scope: the executor calls filter_clip")


class Refiner(Component):
    """Post-processes the kept objects' masks (merge parts, fill holes, ...) before the combiner.

    A pipeline step (``- refiner: {type: NAME}``, ``--refiner NAME``) after the filters: it
    consumes proposals with masks and gives each frame's objects back with masks. Objects it
    returns with their box unchanged keep their trace; the others it dropped or merged are traced
    with ``dropped_by`` = its name, and new ones (a merge) as made by it.
    """

    kind: ClassVar[Kind] = "refiner"
    #: "frame": refine() is called per frame; "clip": override refine_clip() to see the whole clip
    scope: ClassVar[Literal["frame", "clip"]] = "frame"

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        """The frame's kept objects (kept.masks set, one per object, frame-sized bool) -> the refined
        objects: masks set. May change masks, merge objects (fewer), drop or split them."""
        raise NotImplementedError

    def refine_clip(self, ctx: ClipContext) -> list[Proposals]:
        """Default: [self.refine(f, p) for f, p in zip(ctx.frames, ctx.proposals)]."""
        return [self.refine(f, p) for f, p in zip(ctx.frames, ctx.proposals, strict=True)]


@dataclass
class Combined:
    """A frame's output made from its kept objects: the binary mask, and a label map (0 is
    background, ``k`` is ``labels[k - 1]``) when the combiner makes one."""

    mask: BoolArray
    label_map: IntArray | None = None
    labels: list[str] = field(default_factory=list)


class Combiner(Component):
    """Turns a frame's kept objects into the frame's mask and label map (the pipeline's end).

    Selected with ``combiner: NAME`` in a spec (default ``union``); registered through the
    ``register_combiners`` hook.
    """

    kind: ClassVar[Kind] = "combiner"

    @abstractmethod
    def combine(self, frame: Image, kept: Proposals) -> Combined:
        """The frame's output; ``kept.masks`` is set unless ``kept`` is empty."""
