"""The one table of component kinds: everything the core knows about a kind lives here.

Per kind: its base class, the legacy registration hook, whether it is a pipeline step and
whether a pipeline may hold several, what it consumes and produces (from its class and config,
so chains are checked without loading a model), how the pipeline runs it, its CLI option and
its ablate axis. The registry, the hookspecs, steps.py, spec.py, the CLI, ``avseg.load``'s
overrides, ablate and the pipeline read this table; adding a kind is adding a row (and its base
class in components.py).

Data that flows between steps: ``audio`` and ``frames`` (the clip), ``tags``, ``proposals``,
``labels``, ``masks``, ``audio_embeddings`` and ``region_embeddings``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from avseg.components import (
    Combiner,
    Component,
    ComponentConfig,
    Embedder,
    Filter,
    Proposer,
    Refiner,
    Segmenter,
    Tagger,
)

IO = Callable[[type[Component], ComponentConfig], frozenset[str]]
#: how the pipeline runs a kind (see Pipeline in pipeline.py): each names one ``Pipeline._run_*`` method
RunMode = Literal["tags", "proposals", "embeddings", "objects", "select", "combine"]

ALWAYS = frozenset({"audio", "frames"})
#: what a filter's ``needs`` entry means in data terms (the values a filter may declare)
FILTER_NEEDS: dict[str, frozenset[str]] = {
    "tags": frozenset({"tags"}),
    "embeddings": frozenset({"audio_embeddings", "region_embeddings"}),
    "masks": frozenset({"masks"}),
    "labels": frozenset({"labels"}),
}
#: how to fix a missing input, per data item
HINTS = {
    "tags": "put a tagger before it",
    "proposals": "put a proposer before it",
    "labels": "use a labelled proposer such as gdino",
    "masks": "put a segmenter before it",
    "audio_embeddings": "put an embedder before it",
    "region_embeddings": "put an embedder before it",
}


@dataclass(frozen=True)
class KindInfo:
    """One row of the kinds table."""

    name: str
    base: type[Component]
    consumes: IO
    produces: IO
    #: how the pipeline runs a step of this kind
    runs_as: RunMode
    #: a pipeline step (the combiner is not: it ends every pipeline)
    step: bool = True
    #: several per pipeline, addressed by name (``--set filter.NAME.key``); else at most one
    many: bool = False
    #: "objects" kinds: the method called with the clip (``method(ClipContext)`` unless segment_clip)
    method: str = ""
    #: model stages go through the stage cache; cheap post-processing does not
    cached: bool = True
    #: "objects" kinds: objects of the output that match no input by box replace... (see pipeline)
    match_boxes: bool = False
    help: str = ""
    #: has its own ``register_<kind>s`` hook (the kinds before ``register_components``); a kind
    #: added later is registered through ``register_components`` only
    own_hook: bool = True

    @property
    def hook(self) -> str:
        """The per-kind registration hook that still works (``register_filters``)."""
        return f"register_{self.name}s"

    @property
    def option(self) -> str:
        """The CLI option (``--filter``), repeatable when ``many``."""
        return f"--{self.name}"

    @property
    def override(self) -> str:
        """The ``avseg.load`` keyword and compose() argument (``filters=[...]``, ``segmenter=``)."""
        return f"{self.name}s" if self.many else self.name


def _caps(cls: type[Component], config: ComponentConfig):  # type: ignore[no-untyped-def]
    return cls.capabilities(config)


def _proposer_in(cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    c = _caps(cls, config)
    return frozenset({"frames", "tags"}) if c.needs_prompts and not c.has_vocabulary else frozenset({"frames"})


def _proposer_out(cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    c = _caps(cls, config)
    return frozenset({"proposals"} | ({"masks"} if c.gives_masks else set()) | ({"labels"} if c.gives_labels else set()))


def _embedder_in(cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    masks = frozenset({"masks"}) if "masks" in _caps(cls, config).needs else frozenset()
    return frozenset({"audio", "frames", "proposals"}) | masks


def _filter_in(cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    assert issubclass(cls, Filter)
    base = frozenset({"tags"}) if cls.target == "tags" else frozenset({"proposals"})
    return base.union(*(FILTER_NEEDS.get(n, frozenset({n})) for n in _caps(cls, config).needs))


def _const(*items: str) -> IO:
    value = frozenset(items)
    return lambda cls, config: value


KIND_TABLE: tuple[KindInfo, ...] = (
    KindInfo("tagger", Tagger, _const("audio"), _const("tags"), "tags", help="Tagger name, or 'none'."),
    KindInfo("proposer", Proposer, _proposer_in, _proposer_out, "proposals", help="Proposer name."),
    KindInfo("embedder", Embedder, _embedder_in, _const("audio_embeddings", "region_embeddings"), "embeddings",
             help="Embedder name, or 'none'."),
    KindInfo("segmenter", Segmenter, _const("frames", "proposals"), _const("masks"), "objects",
             method="segment_clip", help="Segmenter name, or 'none'."),
    KindInfo("filter", Filter, _filter_in, _const(), "select", many=True, cached=False,
             help="Filter name; repeat in order. Replaces the preset's filters."),
    KindInfo("refiner", Refiner, _const("proposals", "masks"), _const("masks"), "objects", many=True,
             method="refine_clip", cached=False, match_boxes=True, own_hook=False,
             help="Refiner name; repeat in order (after the filters). Replaces the preset's refiners."),
    KindInfo("combiner", Combiner, _const("masks"), _const(), "combine", step=False, cached=False),
)
KINDS_BY_NAME: dict[str, KindInfo] = {k.name: k for k in KIND_TABLE}
#: the kinds that can be steps of a pipeline, in their usual order
STEP_KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE if k.step)
#: step kinds a pipeline has at most one of
SINGLE_KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE if k.step and not k.many)
#: step kinds a pipeline may repeat, addressed by name
MANY_KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE if k.step and k.many)
BASE_CLASSES: dict[str, type[Component]] = {k.name: k.base for k in KIND_TABLE}
#: the per-kind registration hooks that keep working: hook name -> kind
HOOK_KINDS: dict[str, str] = {k.hook: k.name for k in KIND_TABLE if k.own_hook}


def kind_of(cls: type) -> KindInfo | None:
    """The row of the kind a component class belongs to (by its base class), or None."""
    for k in KIND_TABLE:
        if isinstance(cls, type) and issubclass(cls, k.base):
            return k
    return None


def consumes(kind: str, cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    """The data a configured component reads."""
    return KINDS_BY_NAME[kind].consumes(cls, config)


def produces(kind: str, cls: type[Component], config: ComponentConfig) -> frozenset[str]:
    """The data a configured component makes available to later steps."""
    return KINDS_BY_NAME[kind].produces(cls, config)
