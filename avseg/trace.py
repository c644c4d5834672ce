"""The debug trace: one typed record per object a frame ever held, and per tag a filter dropped.

The pipeline builds a frame's records through :class:`FrameTrace` (the one place they are made);
:class:`~avseg.result.Result` reads their fields; ``--debug`` writes :meth:`ObjectTrace.as_dict`,
whose keys and order are the trace.json format. A record also reads like that JSON entry
(``rec["kept"]``, ``rec.get("origin")``), so code written against the JSON works on it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from avseg.types import CandidateDrop, FilterResult, Proposals, Tags


class _JsonView(Mapping[str, Any]):
    """Read access to a record by its trace.json keys (and equality with that entry)."""

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())


@dataclass(eq=False)
class ObjectTrace(_JsonView):
    """One object of one frame: where, what, each filter's score and detail, and its fate."""

    id: int
    """Its number in the frame's trace (the order records were made)."""
    box: list[float]
    """``[x0, y0, x1, y1]`` in pixels of the input frame, rounded to 0.1."""
    score: float
    """The score it came with (the proposer's, or the adding step's)."""
    label: str | None
    """Its label, when the producer gives labels."""
    kept: bool = True
    """Whether it survived every step."""
    scores: dict[str, float] = field(default_factory=dict)
    """Each filter's score for it, by filter name (rounded to 4 places)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Each filter's structured detail for it (``FilterResult.extra``), by filter name."""
    origin: str | None = None
    """The step that added it to the frame (None: the proposer's)."""
    added: str | None = None
    """Why that step added it (one line)."""
    dropped_by: str | None = None
    """The step that dropped it (set when ``kept`` is False)."""
    reason: str | None = None
    """Why (one line)."""

    def as_dict(self) -> dict[str, Any]:
        """The trace.json entry: origin/added only for added objects, dropped_by/reason only for dropped ones."""
        d: dict[str, Any] = {"id": self.id, "box": self.box, "score": self.score, "label": self.label,
                             "kept": self.kept, "scores": self.scores, "detail": self.detail}
        if self.origin is not None:
            d.update(origin=self.origin, added=self.added)
        if not self.kept:
            d.update(dropped_by=self.dropped_by, reason=self.reason)
        return d


@dataclass(eq=False)
class TagTrace(_JsonView):
    """An audio tag a tag filter dropped from a frame's window."""

    tag: str
    """The tag's name."""
    p: float
    """Its score."""
    dropped_by: str
    """The filter that dropped it."""
    reason: str
    """Why (one line)."""

    def as_dict(self) -> dict[str, Any]:
        """The trace.json entry (``kind: tag`` first)."""
        return {"kind": "tag", "tag": self.tag, "p": self.p, "dropped_by": self.dropped_by, "reason": self.reason}


TraceRecord = ObjectTrace | TagTrace


def to_json(trace: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A frame's trace as trace.json holds it (records as dicts; plain dicts pass as they are)."""
    return [r.as_dict() if isinstance(r, _JsonView) else dict(r) for r in trace]


def _box(box: Sequence[float]) -> list[float]:
    return [round(float(x), 1) for x in box]


class FrameTrace:
    """The records of one frame as its steps run, and which record each current object has.

    ``alive[j]`` is the record id of the frame's ``j``-th current object; every step that keeps,
    drops, adds or replaces objects says so here, so the records stay aligned with the objects.
    """

    def __init__(self) -> None:
        self.objects: list[ObjectTrace] = []
        self.tags: list[TagTrace] = []
        self.alive: list[int] = []

    def records(self) -> list[TraceRecord]:
        """The objects' records in id order, then the dropped tags."""
        return [*self.objects, *self.tags]

    def _new(self, box: Sequence[float], score: float, label: str | None, **fate: Any) -> ObjectTrace:
        rec = ObjectTrace(len(self.objects), _box(box), float(score), label, **fate)
        self.objects.append(rec)
        return rec

    def propose(self, props: Proposals, by: str) -> None:
        """A proposer's objects (all alive), then the candidates its own caps removed (``props.drops``)."""
        labels: list[str | None] = list(props.labels) if props.labels is not None else [None] * len(props)
        self.objects, self.alive = [], list(range(len(props)))
        for i in range(len(props)):
            self._new(props.boxes[i], props.scores[i], labels[i])
        for d in props.drops:
            self._candidate_drop(d, by)

    def _candidate_drop(self, d: CandidateDrop, by: str) -> None:
        self._new(d.box, d.score, d.label, kept=False, dropped_by=by, reason=d.reason)

    def add(self, added: Proposals, origin: str, reasons: Sequence[str]) -> None:
        """Objects a step appends to the frame (alive, after the current ones)."""
        labels: list[str | None] = list(added.labels) if added.labels is not None else [None] * len(added)
        for k in range(len(added)):
            self.alive.append(len(self.objects))
            self._new(added.boxes[k], added.scores[k], labels[k], origin=origin, added=reasons[k])

    def drop(self, rec_ids: Sequence[int], by: str, reason: str) -> None:
        """Records ``rec_ids`` dropped by step ``by`` (the caller updates :attr:`alive`)."""
        for r in rec_ids:
            rec = self.objects[r]
            rec.kept, rec.dropped_by, rec.reason = False, by, reason

    def filtered(self, name: str, res: FilterResult) -> None:
        """A (validated) proposal filter's result on the current objects: scores, detail, drops, keep."""
        keep = set(res.keep)
        for j, r in enumerate(self.alive):
            rec = self.objects[r]
            if j not in keep and j not in res.drops:  # dropped without a reason: still traced as dropped
                rec.kept, rec.dropped_by, rec.reason = False, name, f"not kept by {name} (no reason given)"
            if res.scores is not None and j < len(res.scores):
                rec.scores[name] = round(float(res.scores[j]), 4)
            if res.extra is not None and j < len(res.extra):
                rec.detail[name] = res.extra[j]
            if j in res.drops:
                d = res.drops[j]
                rec.kept, rec.dropped_by, rec.reason = False, d.filter, d.reason
        self.alive = [self.alive[j] for j in res.keep]

    def tags_filtered(self, tags: Tags, res: FilterResult) -> None:
        """A (validated) tag filter's drops on ``tags``."""
        for j, d in res.drops.items():
            self.tags.append(TagTrace(tags.names[j], float(tags.scores[j]), d.filter, d.reason))
