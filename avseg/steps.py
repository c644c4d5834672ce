"""Steps: the order check of a chain, and :func:`arrange`, where a step that was not written in a
``steps:`` list goes (what each kind consumes and produces is in the kinds table, avseg/kinds.py).

Steps are the only form a pipeline has once loaded. :func:`arrange` is used only at the edge:
converting a spec file's legacy keys (avseg/spec_mapping.py, ``normalise``) and placing the
components named by CLI options or ``avseg.load`` keywords (avseg/spec.py, ``compose``).

A pipeline is an ordered list of steps. The data that flows between them:

| data | produced by |
| --- | --- |
| ``audio``, ``frames`` | the clip (always there) |
| ``tags`` | a tagger (tag filters refine them) |
| ``proposals`` | a proposer (boxes and scores) |
| ``labels`` | a proposer whose capabilities say ``gives_labels`` |
| ``masks`` | a segmenter, or a proposer that ``gives_masks`` |
| ``audio_embeddings``, ``region_embeddings`` | an embedder |

Everything here works from classes and configs (capabilities) alone: no model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from avseg.components import Component, ComponentConfig
from avseg.errors import ChainError
from avseg.kinds import ALWAYS, HINTS, consumes, produces

# consumes/produces and the hints live in the kinds table (avseg/kinds.py)
__all__ = ["ALWAYS", "HINTS", "StepLike", "arrange", "check_order", "consumes", "produces"]


class StepLike(Protocol):
    """What :func:`check_order` needs from a step (ResolvedStage has it)."""

    @property
    def kind(self) -> str: ...

    @property
    def cls(self) -> type[Component]: ...

    @property
    def config(self) -> ComponentConfig: ...


def check_order(steps: Sequence[StepLike]) -> None:
    """Each step's inputs must come from an earlier step: one line naming the step otherwise."""
    have = set(ALWAYS)
    for i, s in enumerate(steps, 1):
        missing = sorted(consumes(s.kind, s.cls, s.config) - have)
        if missing:
            what = missing[0]
            raise ChainError(
                f"step {i} ({s.kind} {s.cls.name!r}) needs {what.replace('_', ' ')} but no earlier step "
                f"produces them; {HINTS.get(what, 'reorder the steps')}"
            )
        have |= produces(s.kind, s.cls, s.config)


T = TypeVar("T")


def arrange(
    fixed: Sequence[T],
    filters: Sequence[T],
    *,
    kind_of: Callable[[T], str],
    needs_of: Callable[[T], frozenset[str] | None],
    produces_of: Callable[[T], frozenset[str]],
    embedder: T | None = None,
    segmenter: T | None = None,
    keep_unused_embedder: bool = False,
) -> list[T]:
    """Place ``filters`` (and a floating embedder/segmenter) among ``fixed`` model steps.

    The rule that the pre-steps pipeline followed, so legacy spec files convert to the order
    they always ran in:
    tag filters go right after the tagger, in their order; each proposal filter goes after the
    previous proposal filter and after every step producing what it needs; a floating embedder
    is pulled in just before the first filter needing embeddings, a floating segmenter just
    before the first needing masks (embedder first), or at the end. A filter whose needs are
    unknown (``needs_of`` returns None) goes at the end.
    """
    out: list[T] = list(fixed)
    pending: dict[str, T | None] = {"embedder": embedder, "segmenter": segmenter}

    def after_producers(need: frozenset[str]) -> int:
        pos = 0
        for i, s in enumerate(out):
            if produces_of(s) & need or (kind_of(s) == "proposer" and "proposals" in need):
                pos = i + 1
        return pos

    def place(item: T, lower: int) -> int:
        need = needs_of(item) or frozenset()
        pos = max(lower, after_producers(need))
        out.insert(pos, item)
        return pos

    last_tag = next((i + 1 for i, s in enumerate(out) if kind_of(s) == "tagger"), 0)
    last_prop = -1
    for f in filters:
        need = needs_of(f)
        if need is None:
            out.append(f)
            continue
        if "tags" in need and "proposals" not in need:  # a tag filter
            out.insert(last_tag, f)
            if last_prop >= last_tag:  # it shifted the last proposal filter placed
                last_prop += 1
            last_tag += 1
            continue
        lower = last_prop + 1 if last_prop >= 0 else 0
        for kind, data in (("embedder", "region_embeddings"), ("segmenter", "masks")):
            floating = pending[kind]
            if floating is not None and data in need:
                first_seg = pending["segmenter"]
                if kind == "embedder" and "masks" in (needs_of(floating) or frozenset()) and first_seg is not None:
                    lower = place(first_seg, lower) + 1  # masked regions: the segmenter first
                    pending["segmenter"] = None
                lower = place(floating, lower) + 1
                pending[kind] = None
        last_prop = place(f, lower)
    emb: T | None = pending["embedder"]
    seg: T | None = pending["segmenter"]
    if emb is not None and keep_unused_embedder:
        if "masks" in (needs_of(emb) or frozenset()) and seg is not None:
            out.append(seg)
            seg = None
        out.append(emb)
    if seg is not None:
        out.append(seg)
    return out
