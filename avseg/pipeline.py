"""The executor: builds a resolved chain once and runs it clip by clip.

Order within a clip (all model stages are batched over the clip's frames):

1. tagger on every frame's audio window, then the tag filters;
2. proposer (prompted by the kept tags, or by its own vocabulary);
3. proposal filters in the order given; the embedder runs just before the first filter that
   needs embeddings, the segmenter just before the first that needs masks, or at the end;
4. the frame mask is the union of the kept proposals' masks (plus a label map when labelled).

Model-stage outputs go through the stage cache when one is set, so a rerun that changes only
a filter reuses every model stage. Filters are cheap and never cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avseg.audio import clip_windows
from avseg.cache import make_key
from avseg.components import Component, Embedder, Filter, FrameContext, Proposer, Segmenter, Tagger
from avseg.errors import AvsegError, ComponentFailed, one_line
from avseg.runtime import Runtime
from avseg.spec import ResolvedSpec, ResolvedStage
from avseg.types import (
    AudioWindow,
    Clip,
    FloatArray,
    FrameResult,
    Image,
    Proposals,
    SegmenterOutput,
    Tags,
    content_hash,
)

Arrays = dict[str, np.ndarray]


@dataclass
class ClipResult:
    clip_id: str
    frames: list[FrameResult]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _FrameState:
    """Proposals still alive in a frame, with their original indices and what filters said."""

    index: int
    frame: Image
    tags: Tags | None
    all_tags: Tags | None
    props: Proposals
    orig: list[int]
    audio_emb: FloatArray | None = None
    region_emb: FloatArray | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    tag_records: list[dict[str, Any]] = field(default_factory=list)


def _pack_masks(masks: np.ndarray) -> Arrays:
    return {"shape": np.asarray(masks.shape, np.int64), "bits": np.packbits(masks.astype(bool), axis=None)}


def _unpack_masks(a: Arrays, prefix: str) -> np.ndarray:
    shape = tuple(int(x) for x in a[prefix + "shape"])
    n = int(np.prod(shape))
    return np.unpackbits(a[prefix + "bits"], count=n).astype(bool).reshape(shape)


def proposals_to_arrays(props: Sequence[Proposals]) -> Arrays:
    out: Arrays = {"n": np.asarray([len(props)])}
    for i, p in enumerate(props):
        out[f"{i}.boxes"], out[f"{i}.scores"] = p.boxes, p.scores
        if p.labels is not None:
            out[f"{i}.labels"] = np.asarray(p.labels, dtype=np.str_)
        if p.masks is not None:
            for k, v in _pack_masks(p.masks).items():
                out[f"{i}.masks.{k}"] = v
        if p.mask_scores is not None:
            out[f"{i}.mask_scores"] = p.mask_scores
    return out


def arrays_to_proposals(a: Arrays) -> list[Proposals]:
    out = []
    for i in range(int(a["n"][0])):
        labels = [str(x) for x in a[f"{i}.labels"]] if f"{i}.labels" in a else None
        masks = _unpack_masks(a, f"{i}.masks.") if f"{i}.masks.shape" in a else None
        ms = a.get(f"{i}.mask_scores")
        out.append(Proposals(a[f"{i}.boxes"], a[f"{i}.scores"], labels, masks, ms))
    return out


class guarded:
    """Turn a component's unexpected exception into a one-line ComponentFailed naming it.

    Set ``AVSEG_DEBUG=1`` to get the original traceback instead (for plugin authors).
    """

    def __init__(self, kind: str, name: str, provider: str, what: str) -> None:
        self.label = f"{kind} {name!r} (from {provider}) {what}"

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import os

        if exc is None or isinstance(exc, AvsegError) or not isinstance(exc, Exception):
            return
        if os.environ.get("AVSEG_DEBUG"):
            return
        raise ComponentFailed(f"{self.label}: {one_line(exc)} (AVSEG_DEBUG=1 shows the traceback)") from exc


class Pipeline:
    """A built chain: components are constructed (models loaded) once and reused across clips."""

    def __init__(self, spec: ResolvedSpec, runtime: Runtime,
                 on_stage: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.runtime = runtime
        #: called with a stage label before each model stage runs (progress display)
        self.on_stage = on_stage
        self._clip_id = "?"

        def build(stage: ResolvedStage | None) -> Any:
            if stage is None:
                return None
            if on_stage is not None:
                on_stage(f"loading {stage.kind} {stage.name}")
            t0 = time.perf_counter()
            with guarded(stage.kind, stage.name, stage.provider, "could not be built"):
                comp = stage.cls(stage.config, runtime)
            runtime.timings[f"load.{stage.kind}.{stage.name}"] = time.perf_counter() - t0
            return comp

        self.tagger: Tagger | None = build(spec.tagger)
        self.proposer: Proposer = build(spec.proposer)
        self.embedder: Embedder | None = build(spec.embedder)
        self.segmenter: Segmenter | None = build(spec.segmenter)
        self.filters: list[Filter] = [build(f) for f in spec.filters]
        self._stage_of: dict[int, ResolvedStage] = {id(getattr(self, k)): getattr(spec, k) for k in (
            "tagger", "proposer", "embedder", "segmenter") if getattr(spec, k) is not None}
        self._stage_of.update({id(f): s for f, s in zip(self.filters, spec.filters)})

    # -- stage plumbing -------------------------------------------------------------
    def components(self) -> list[Component]:
        return [c for c in (self.tagger, self.proposer, self.embedder, self.segmenter, *self.filters) if c is not None]

    def _cached(self, comp: Component, what: str, identity: Any, compute: Callable[[], Arrays]) -> Arrays:
        stage = self._stage_of[id(comp)]
        label = f"{stage.kind}.{stage.name}" + (f".{what}" if what else "")
        cache = self.runtime.cache
        key = make_key(stage.name, stage.version, stage.config.output_params(), self.runtime.weights_mode, what, identity)
        ns = f"stage/{stage.name}"
        t0 = time.perf_counter()
        if cache is not None:
            hit = cache.get_arrays(ns, key)
            if hit is not None:
                self.runtime.count(f"{label}.cache_hit")
                self._time(label, t0)
                return hit
        if self.on_stage is not None:
            self.on_stage(label)
        with guarded(stage.kind, stage.name, stage.provider, f"failed on clip {self._clip_id}"):
            value = compute()
        self.runtime.count(f"{label}.computed")
        if cache is not None:
            cache.put_arrays(ns, key, value, {"component": stage.name, "what": what})
        self._time(label, t0)
        return value

    def _time(self, label: str, t0: float) -> None:
        self.runtime.timings[label] = self.runtime.timings.get(label, 0.0) + time.perf_counter() - t0

    # -- the chain --------------------------------------------------------------------
    def run_clip(self, clip: Clip) -> ClipResult:
        self._clip_id = clip.clip_id
        t_clip = time.perf_counter()
        t0 = time.perf_counter()
        frames = clip.frames()
        wave, sr = clip.audio
        windows = clip_windows(wave, sr, clip.timestamps, self.spec.audio)
        self._time("decode", t0)
        fkeys = [content_hash(f) for f in frames]
        wkeys = [w.key for w in windows]
        tags = self._tag(windows, clip.clip_id, wkeys)
        frame_tags: list[Tags | None] = list(tags) if tags is not None else [None] * len(frames)
        states = [_FrameState(i, f, t, t, Proposals.empty(), []) for i, (f, t) in enumerate(zip(frames, frame_tags))]
        for flt in self.filters:
            if flt.target == "tags":
                for st in states:
                    self._apply_tag_filter(flt, st, clip.clip_id)
        self._propose(states, clip.clip_id, fkeys)
        embedded = segmented = False
        for flt in self.filters:
            if flt.target != "proposals":
                continue
            if "embeddings" in flt.needs and not embedded:
                self._embed(states, windows, clip.clip_id, fkeys, wkeys)
                embedded = True
            if "masks" in flt.needs and not segmented and self.segmenter is not None:
                self._segment(states, clip.clip_id, fkeys)
                segmented = True
            t0 = time.perf_counter()
            for st in states:
                self._apply_proposal_filter(flt, st, clip.clip_id)
            self._time(f"filter.{flt.name}", t0)
        if self.segmenter is not None and not segmented:
            self._segment(states, clip.clip_id, fkeys)
        results = [self._finish(st) for st in states]
        return ClipResult(clip.clip_id, results, {"total": time.perf_counter() - t_clip})

    def _tag(self, windows: list[AudioWindow], clip_id: str, wkeys: list[str]) -> list[Tags] | None:
        tagger = self.tagger
        if tagger is None:
            return None

        def compute() -> Arrays:
            out: Arrays = {"n": np.asarray([len(windows)])}
            for i, t in enumerate(tagger.tag(windows)):
                out[f"{i}.names"], out[f"{i}.scores"] = np.asarray(t.names, dtype=np.str_), t.scores
            return out

        a = self._cached(tagger, "", [clip_id, wkeys], compute)
        return [Tags([str(x) for x in a[f"{i}.names"]], a[f"{i}.scores"]) for i in range(int(a["n"][0]))]

    def _propose(self, states: list[_FrameState], clip_id: str, fkeys: list[str]) -> None:
        caps = self.spec.proposer.caps
        prompts: list[list[str]] | None = None
        if caps.needs_prompts and not caps.has_vocabulary:
            prompts = [list(st.tags.names) if st.tags is not None else [] for st in states]
        frames = [st.frame for st in states]
        a = self._cached(
            self.proposer, "", [clip_id, fkeys, prompts],
            lambda: proposals_to_arrays(self.proposer.propose(frames, prompts)),
        )
        for st, p in zip(states, arrays_to_proposals(a)):
            st.props, st.orig = p, list(range(len(p)))
            labels: list[str | None] = list(p.labels) if p.labels is not None else [None] * len(p)
            st.records = [
                {"id": i, "box": [round(float(x), 1) for x in p.boxes[i]], "score": float(p.scores[i]),
                 "label": labels[i], "kept": True, "scores": {}, "detail": {}}
                for i in range(len(p))
            ]

    def _embed(self, states: list[_FrameState], windows: list[AudioWindow], clip_id: str,
               fkeys: list[str], wkeys: list[str]) -> None:
        emb = self.embedder
        assert emb is not None
        audio = self._cached(emb, "audio", [clip_id, wkeys], lambda: {"audio": emb.embed_audio(windows)})["audio"]
        ident = [clip_id, fkeys, [content_hash(st.props.boxes) for st in states],
                 [content_hash(st.props.masks) if st.props.masks is not None else None for st in states]]

        def regions() -> Arrays:
            out = emb.embed_regions([st.frame for st in states], [st.props for st in states])
            return {str(i): e for i, e in enumerate(out)}

        r = self._cached(emb, "regions", ident, regions)
        for i, st in enumerate(states):
            st.audio_emb, st.region_emb = audio[i], r[str(i)]

    def _segment(self, states: list[_FrameState], clip_id: str, fkeys: list[str]) -> None:
        seg = self.segmenter
        assert seg is not None
        boxes = [st.props.boxes for st in states]

        def compute() -> Arrays:
            outs: list[SegmenterOutput] = seg.segment([st.frame for st in states], boxes)
            a: Arrays = {}
            for i, o in enumerate(outs):
                for k, v in _pack_masks(o.masks).items():
                    a[f"{i}.masks.{k}"] = v
                a[f"{i}.scores"] = o.scores
            return a

        a = self._cached(seg, "", [clip_id, fkeys, [content_hash(b) for b in boxes]], compute)
        for i, st in enumerate(states):
            masks = _unpack_masks(a, f"{i}.masks.")
            h, w = st.frame.shape[:2]
            st.props.masks = masks.reshape(len(st.props), h, w)
            st.props.mask_scores = a[f"{i}.scores"]

    def _apply_tag_filter(self, flt: Filter, st: _FrameState, clip_id: str) -> None:
        if st.tags is None:
            return
        with guarded("filter", flt.name, self._stage_of[id(flt)].provider, f"failed on clip {clip_id} frame {st.index}"):
            res = flt(FrameContext(clip_id, st.index, st.frame, tags=st.tags, all_tags=st.all_tags))
        for j, d in res.drops.items():
            st.tag_records.append({"tag": st.tags.names[j], "p": float(st.tags.scores[j]), "dropped_by": d.filter,
                                   "reason": d.reason})
        st.tags = st.tags.subset(res.keep)

    def _apply_proposal_filter(self, flt: Filter, st: _FrameState, clip_id: str) -> None:
        ctx = FrameContext(clip_id, st.index, st.frame, tags=st.tags, proposals=st.props,
                           audio_embedding=st.audio_emb, region_embeddings=st.region_emb, all_tags=st.all_tags)
        with guarded("filter", flt.name, self._stage_of[id(flt)].provider, f"failed on clip {clip_id} frame {st.index}"):
            res = flt(ctx)
        for j, orig in enumerate(st.orig):
            rec = st.records[orig]
            if res.scores is not None and j < len(res.scores):
                rec["scores"][flt.name] = round(float(res.scores[j]), 4)
            if res.extra is not None and j < len(res.extra):
                rec["detail"][flt.name] = res.extra[j]
            if j in res.drops:
                d = res.drops[j]
                rec.update(kept=False, dropped_by=d.filter, reason=d.reason)
        st.props = st.props.subset(res.keep)
        st.orig = [st.orig[j] for j in res.keep]
        if st.region_emb is not None:
            st.region_emb = st.region_emb[res.keep] if len(res.keep) else st.region_emb[:0]

    def _finish(self, st: _FrameState) -> FrameResult:
        h, w = st.frame.shape[:2]
        p = st.props
        mask = np.zeros((h, w), bool)
        label_map = None
        labels: list[str] = []
        if len(p) and p.masks is not None:
            mask = np.asarray(p.masks.any(axis=0), dtype=bool)
            if p.labels is not None:
                labels = sorted(set(p.labels))
                label_map = np.zeros((h, w), np.int32)
                for j in np.argsort(p.scores, kind="stable"):  # best score painted last, so it wins
                    label_map[p.masks[j]] = labels.index(p.labels[j]) + 1
        elif p.labels is not None:
            label_map = np.zeros((h, w), np.int32)
        trace = st.records + [dict(kind="tag", **r) for r in st.tag_records]
        return FrameResult(st.index, mask, p, st.tags, label_map, labels, trace)


def build_pipeline(spec: ResolvedSpec, runtime: Runtime) -> Pipeline:
    return Pipeline(spec, runtime)
