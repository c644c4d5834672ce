"""AVIS tree scores and the keep decision (BAVS stage two), free of any model code.

Visual tree score: 1 at each category (sounding-source node) that has an object in view, and 1
at its broad node. Audio tree score: tag probabilities at the leaves, aggregated (``max`` or
``sum``) up to each category and broad node. An object is kept when its category node, or, with
``match="broad"``, its broad node, carries both a visual score and an audio score of at least
the tag threshold. Audio on nodes with nothing in view (off-screen sounds) selects nothing, and
background tags are removed before any aggregation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from avseg.tree import AVTree
from avseg.types import Tags

Aggregation = Literal["max", "sum"]
Match = Literal["source", "broad"]


def tag_probabilities(
    tags: Tags | Mapping[str, float] | None, background: Iterable[str] = ()
) -> dict[str, float]:
    """Tag name -> probability, without background classes (which must never select anything)."""
    if tags is None:
        return {}
    items = tags.as_dict() if isinstance(tags, Tags) else dict(tags)
    bg = set(background)
    return {k: float(v) for k, v in items.items() if k not in bg}


def _aggregate(values: Iterable[float], aggregation: Aggregation) -> float:
    vals = list(values)
    if not vals:
        return 0.0
    return float(max(vals)) if aggregation == "max" else float(sum(vals))


@dataclass(frozen=True)
class TreeScores:
    """Visual and audio scores at every category (source) and broad node of a tree."""

    visual_source: dict[str, float]
    visual_broad: dict[str, float]
    audio_source: dict[str, float]
    audio_broad: dict[str, float]


def visual_scores(tree: AVTree, present: Iterable[str]) -> tuple[dict[str, float], dict[str, float]]:
    """1 at each category in view and at its broad node; 0 elsewhere."""
    cats = set(present)
    source = {c: 1.0 if c in cats else 0.0 for c in tree.categories}
    broad = {b: max((source[c] for c in tree.categories_in(b)), default=0.0) for b in tree.broad_sources}
    return source, broad


def audio_scores(
    tree: AVTree, probs: Mapping[str, float], aggregation: Aggregation = "max"
) -> tuple[dict[str, float], dict[str, float]]:
    """Leaf probabilities aggregated to categories and to broad nodes.

    A broad node aggregates its distinct leaves directly, so with ``sum`` a leaf shared by two
    categories ("Speech" under man and woman) is counted once.
    """
    source = {
        c: _aggregate((probs.get(x, 0.0) for x in tree.leaves_of(c)), aggregation) for c in tree.categories
    }
    broad = {
        b: _aggregate((probs.get(x, 0.0) for x in tree.leaves_of_broad(b)), aggregation)
        for b in tree.broad_sources
    }
    return source, broad


def tree_scores(
    tree: AVTree, present: Iterable[str], probs: Mapping[str, float], aggregation: Aggregation = "max"
) -> TreeScores:
    vs, vb = visual_scores(tree, present)
    a_s, a_b = audio_scores(tree, probs, aggregation)
    return TreeScores(vs, vb, a_s, a_b)


@dataclass(frozen=True)
class Decision:
    """Whether an object of a category is kept, at which node, and the scores there."""

    keep: bool
    level: Literal["source", "broad"] | None
    visual: float
    audio: float
    reason: str


def decide(
    tree: AVTree, category: str, scores: TreeScores, match: Match = "source", threshold: float = 0.1
) -> Decision:
    """The keep decision for one object linked to ``category``.

    The source node is tried first; ``match="broad"`` also accepts audio anywhere under the
    broad node (a looser match: a bark then keeps a cat in view as well as a dog).
    """
    path = tree.path(category)
    v, a = scores.visual_source[category], scores.audio_source[category]
    if v > 0 and a >= threshold:
        return Decision(True, "source", v, a, f"sounding at {path}")
    if match == "broad":
        broad = tree.broad_of(category)
        vb, ab = scores.visual_broad[broad], scores.audio_broad[broad]
        if vb > 0 and ab >= threshold:
            return Decision(True, "broad", vb, ab, f"sounding at broad node {broad}")
        return Decision(
            False,
            None,
            v,
            max(a, ab),
            f"silent: audio {a:.2f} at {path} and {ab:.2f} at {broad} < tag_threshold {threshold:.2f}",
        )
    return Decision(False, None, v, a, f"silent: audio {a:.2f} at {path} < tag_threshold {threshold:.2f}")


def top_leaves(tree: AVTree, category: str, probs: Mapping[str, float], n: int = 3) -> dict[str, float]:
    """The category's leaves with the highest probabilities (for debug output)."""
    hits = [(x, probs[x]) for x in tree.leaves_of(category) if probs.get(x, 0.0) > 0.0]
    hits.sort(key=lambda kv: -kv[1])
    return {k: round(float(v), 4) for k, v in hits[:n]}


__all__ = [
    "Decision",
    "TreeScores",
    "audio_scores",
    "decide",
    "tag_probabilities",
    "top_leaves",
    "tree_scores",
    "visual_scores",
]
