"""The five component interfaces: Tagger, Proposer, Embedder, Segmenter, Filter.

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
from avseg.types import AudioWindow, FilterResult, FloatArray, Image, Proposals, SegmenterOutput, Tags

if TYPE_CHECKING:
    from avseg.runtime import Runtime
    from avseg.weights import WeightFile

Kind = Literal["tagger", "proposer", "embedder", "segmenter", "filter"]
KINDS: tuple[Kind, ...] = ("tagger", "proposer", "embedder", "segmenter", "filter")


class ComponentConfig(BaseModel):
    """Base of every component's config: typed, validated, no unknown keys.

    Mark a field that does not change the component's output (a batch size, say) with
    ``Field(json_schema_extra={"affects_output": False})`` so the stage cache ignores it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
    needs: frozenset[str] = field(default_factory=frozenset)  # filters: tags, embeddings, masks, labels


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
    #: set by the registry from the providing distribution
    provider: ClassVar[str] = "?"
    version: ClassVar[str] = "0"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime

    def import_requirements(self, modules: Sequence[str] | None = None) -> None:
        """Import ``modules`` (default: :attr:`requires`) so that a missing one fails early, as a
        one-line :class:`~avseg.errors.DependencyMissing` naming it and the pip extra."""
        for mod in self.requires if modules is None else modules:
            try:
                importlib.import_module(mod)
            except ImportError:
                hint = f": pip install 'avseg[{self.extra}]'" if self.extra else ""
                raise DependencyMissing(f"{self.kind} '{self.name}' needs {mod}{hint}") from None

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
        return f"<{self.kind} {self.name!r} from {self.provider}>"


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
        """One :class:`Proposals` per frame; boxes in pixels of that frame."""


class Embedder(Component):
    """Audio windows and frame regions -> vectors in one shared space."""

    kind: ClassVar[Kind] = "embedder"

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


class Filter(Component):
    """Keeps a subset of tags or proposals and records why the others were dropped."""

    kind: ClassVar[Kind] = "filter"
    #: what the filter selects from
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    #: what it needs in the context: any of "tags", "embeddings", "masks", "labels"
    needs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs=cls.needs)

    @abstractmethod
    def __call__(self, ctx: FrameContext) -> FilterResult:
        """Indices to keep from ``ctx.tags`` or ``ctx.proposals`` (by ``target``)."""


BASE_CLASSES: dict[str, type[Component]] = {
    "tagger": Tagger,
    "proposer": Proposer,
    "embedder": Embedder,
    "segmenter": Segmenter,
    "filter": Filter,
}
