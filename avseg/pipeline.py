"""The pipeline: builds a resolved chain once and runs its steps, in order, clip by clip.

The unit is the clip: each step sees every frame of it (model stages are batched over the
clip's frames). The steps are ``ResolvedSpec.steps`` in order (see avseg/steps.py and
docs/pipelines.md); for each, its row of the kinds table (avseg/kinds.py) names the step method
that runs it (``_run_`` + the row's ``executor`` field), so nothing here branches on a kind. A
frame-scope filter runs like a clip-scope one: its default ``filter_clip`` calls it once per
frame. Every component output is checked in avseg/validate.py; each frame's debug trace is built
by avseg/trace.py. The combiner (default ``union``) turns each frame's kept objects into its mask
and label map.

Model-stage outputs go through the stage cache when one is set (as arrays: avseg/stage_codec.py).
The key holds the providing distribution, its version, a fingerprint of the component's source,
the output-affecting config, the weights mode and the identity of the inputs, so an entry can
never be served for other code or other inputs. Cheap steps (the kinds table's ``cached``) and
the combiner are never cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avseg import validate
from avseg.audio import clip_windows, to_mono
from avseg.cache import make_key
from avseg.combiners import Union
from avseg.components import ClipContext, Combiner, Component, Embedder, Filter, Proposer, Tagger
from avseg.errors import AvsegError, ComponentFailed, one_line
from avseg.frames import resize_frame, restore
from avseg.kinds import KINDS_BY_NAME
from avseg.runtime import Runtime
from avseg.spec import ResolvedSpec, ResolvedStage
from avseg.stage_codec import Arrays, arrays_to_proposals, arrays_to_tags, proposals_to_arrays, tags_to_arrays
from avseg.trace import FrameTrace
from avseg.types import (
    AudioWindow,
    Clip,
    FilterResult,
    FloatArray,
    FrameResult,
    FullRateVideo,
    Image,
    Proposals,
    Tags,
    concat_proposals,
    content_hash,
)

#: clip methods older than ClipContext, and the parts of it they are called with (others get the context)
_CLIP_ARGS: dict[str, Callable[[ClipContext], tuple[Any, ...]]] = {
    "segment_clip": lambda ctx: (ctx.frames, ctx.proposals, ctx.timestamps),
}


def _context_only(ctx: ClipContext) -> tuple[Any, ...]:
    return (ctx,)


@dataclass
class ClipResult:
    clip_id: str
    frames: list[FrameResult]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _FrameState:
    """A frame in flight: its tags, the objects still alive, their embeddings and its trace."""

    index: int
    frame: Image
    tags: Tags | None = None
    all_tags: Tags | None = None
    props: Proposals = field(default_factory=Proposals.empty)
    audio_emb: FloatArray | None = None
    region_emb: FloatArray | None = None
    trace: FrameTrace = field(default_factory=FrameTrace)


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
        #: the built component of each resolved stage, by the stage object's id
        self._built: dict[int, Component] = {}
        for stage in spec.steps:
            self._build(stage)
        self.combiner: Combiner = Union(Union.Config(), runtime)
        if spec.combiner is not None:
            built = self._build(spec.combiner)
            assert isinstance(built, Combiner)
            self.combiner = built

    def _build(self, stage: ResolvedStage) -> Component:
        if id(stage) in self._built:
            return self._built[id(stage)]
        if self.on_stage is not None:
            self.on_stage(f"loading {stage.kind} {stage.name}")
        t0 = time.perf_counter()
        with guarded(stage.kind, stage.name, stage.provider, "could not be built"):
            comp = stage.cls(stage.config, self.runtime)
        comp.provider = stage.provider
        self.runtime.timings[f"load.{stage.kind}.{stage.name}"] = time.perf_counter() - t0
        self._built[id(stage)] = comp
        return comp

    # -- stage plumbing -------------------------------------------------------------
    def components(self) -> list[Component]:
        """The built components in the order of ``spec.stages()`` (run.json's weights)."""
        return [self._built[id(s)] for s in self.spec.stages()]

    def _cached(self, stage: ResolvedStage, what: str, identity: Any, compute: Callable[[], Arrays]) -> Arrays:
        label = f"{stage.kind}.{stage.name}" + (f".{what}" if what else "")
        cache = self.runtime.cache
        # Who made it (distribution, version, source fingerprint), how, and from what: a key
        # that differs whenever the output could.
        key = make_key(stage.provider, stage.version, stage.fingerprint, stage.kind, stage.name,
                       stage.config.output_params(), self.runtime.weights_mode, what, identity)
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
            cache.put_arrays(ns, key, value, {"component": stage.name, "what": what, **stage.identity()})
        self._time(label, t0)
        return value

    def _time(self, label: str, t0: float) -> None:
        self.runtime.timings[label] = self.runtime.timings.get(label, 0.0) + time.perf_counter() - t0

    # -- the step loop ----------------------------------------------------------------
    def run_clip(self, clip: Clip) -> ClipResult:
        self._clip_id = clip.clip_id
        t_clip = time.perf_counter()
        t0 = time.perf_counter()
        # decode the full-rate video first when a step reads it: the sampled frames come from it
        wants_video = any(getattr(c, "uses_video", False) for c in self._built.values())
        video = clip.video() if wants_video else None
        inputs = clip.frames()
        frames = [resize_frame(f, self.spec.frames) for f in inputs]  # the spec's frames: size (avseg/frames.py)
        if video is not None and self.spec.frames.size is not None:  # full-rate frames at the models' size too
            video = FullRateVideo([resize_frame(f, self.spec.frames) for f in video.frames], video.times)
        wave, sr = clip.audio
        spec_audio = self.spec.audio
        if spec_audio.noise is not None and spec_audio.snr is not None:
            from avseg.noise import mix_at_snr, noise_rng

            wave, measured = mix_at_snr(wave, sr, spec_audio.noise, spec_audio.snr,
                                        noise_rng(clip.clip_id, spec_audio.noise_seed))
            clip.meta["audio_noise"] = {"noise": spec_audio.noise, "snr": spec_audio.snr,
                                        "measured_snr": round(measured, 3)}
        windows = clip_windows(wave, sr, clip.timestamps, self.spec.audio)
        self._time("decode", t0)
        run = _ClipRun(clip, frames, windows, [content_hash(f) for f in frames], [w.key for w in windows],
                       [_FrameState(i, f) for i, f in enumerate(frames)], video,
                       (to_mono(wave, self.spec.audio.channels), sr))
        for stage in self.spec.steps:
            # the kinds table says how each step runs: one step method per value of its "executor" field
            run_step: Callable[[ResolvedStage, Any, _ClipRun], None] = getattr(
                self, f"_run_{KINDS_BY_NAME[stage.kind].runs_as}")
            run_step(stage, self._built[id(stage)], run)
        results = [restore(self._finish(st), st.frame.shape[:2], f.shape[:2]) for st, f in zip(run.states, inputs)]
        return ClipResult(clip.clip_id, results, {"total": time.perf_counter() - t_clip})

    def _run_tags(self, stage: ResolvedStage, tagger: Tagger, run: _ClipRun) -> None:
        windows = run.windows
        a = self._cached(stage, "", [run.clip.clip_id, run.wkeys],
                         lambda: tags_to_arrays(validate.tags(tagger, tagger.tag(windows), len(windows))))
        for st, t in zip(run.states, arrays_to_tags(a)):
            st.tags = st.all_tags = t

    def _run_proposals(self, stage: ResolvedStage, proposer: Proposer, run: _ClipRun) -> None:
        caps = stage.caps
        states = run.states
        prompts: list[list[str]] | None = None
        if caps.needs_prompts and not caps.has_vocabulary:
            prompts = [list(st.tags.names) if st.tags is not None else [] for st in states]
        frames = run.frames
        ts = list(run.clip.timestamps)
        video = run.video if proposer.uses_video else None
        ident: list[Any] = [run.clip.clip_id, run.fkeys, prompts]
        if proposer.uses_video:  # its output depends on every frame of the video, not only the sampled ones
            ident += [ts, content_hash(*video.frames) if video is not None else None]
        a = self._cached(
            stage, "", ident,
            lambda: proposals_to_arrays(validate.proposals(
                proposer, proposer.propose_clip(frames, prompts, ts, video), len(frames), [f.shape for f in frames])),
        )
        for st, p in zip(states, arrays_to_proposals(a)):
            st.props = p
            st.trace.propose(p, stage.name)  # the proposer's own caps (top-k, NMS) traced as drops

    def _run_embeddings(self, stage: ResolvedStage, emb: Embedder, run: _ClipRun) -> None:
        states, windows, clip_id = run.states, run.windows, run.clip.clip_id
        audio = self._cached(stage, "audio", [clip_id, run.wkeys], lambda: {
            "audio": validate.audio_embeddings(emb, emb.embed_audio(windows), len(windows))})["audio"]
        ident = [clip_id, run.fkeys, [content_hash(st.props.boxes) for st in states],
                 [content_hash(st.props.masks) if st.props.masks is not None else None for st in states]]

        def regions() -> Arrays:
            props = [st.props for st in states]
            out = validate.region_embeddings(emb, emb.embed_regions([st.frame for st in states], props), props)
            return {str(i): e for i, e in enumerate(out)}

        r = self._cached(stage, "regions", ident, regions)
        for i, st in enumerate(states):
            st.audio_emb, st.region_emb = audio[i], r[str(i)]

    def _clip_context(self, run: _ClipRun, comp: Component) -> ClipContext:
        states = run.states
        # the full-rate frames go to a component that asked for them (uses_video), and only then
        video = run.video if getattr(comp, "uses_video", False) else None
        return ClipContext(run.clip.clip_id, run.frames, list(run.clip.timestamps), run.windows,
                           [st.tags for st in states], [st.props for st in states],
                           [st.audio_emb for st in states], [st.region_emb for st in states],
                           [st.all_tags for st in states], video, run.audio,
                           run.clip.meta.setdefault("warnings", []))

    def _run_objects(self, stage: ResolvedStage, comp: Component, run: _ClipRun) -> None:
        """A step that gives each frame's objects back with masks (a segmenter, a refiner).

        It may return the given objects (same boxes, in order; masks set), extra objects after
        them (traced as added, ``origin`` = the step), or other objects for a frame: the given
        ones are then dropped (``dropped_by`` = the step) and the returned ones added; with the
        kind's ``match_boxes``, a returned object whose box equals a given one keeps that one's trace.
        """
        info = KINDS_BY_NAME[stage.kind]
        ctx = self._clip_context(run, comp)
        args = _CLIP_ARGS.get(info.method, _context_only)(ctx)

        def call() -> list[Proposals]:
            return validate.objects(comp, info.method, getattr(comp, info.method)(*args), run.frames)

        if info.cached:
            # what the step was given: boxes, scores, labels and any masks (a mask can be a prompt)
            ident = [run.clip.clip_id, run.fkeys, ctx.timestamps, [
                [content_hash(p.boxes, p.scores), p.labels, content_hash(p.masks) if p.masks is not None else None]
                for p in ctx.proposals]]
            outs = arrays_to_proposals(self._cached(stage, "", ident, lambda: proposals_to_arrays(call())))
        else:
            t0 = time.perf_counter()
            with guarded(stage.kind, stage.name, stage.provider, f"failed on clip {self._clip_id}"):
                outs = call()
            self._time(f"{stage.kind}.{stage.name}", t0)
        for st, out in zip(run.states, outs):
            self._take_objects(stage, info.match_boxes, st, out)

    def _take_objects(self, stage: ResolvedStage, match_boxes: bool, st: _FrameState, out: Proposals) -> None:
        n = len(st.props)
        h, w = st.frame.shape[:2]
        who = f"{stage.kind} {stage.name!r}"
        if out.masks is None:  # an empty frame (validate.objects allows no masks only there)
            out.masks = np.zeros((len(out), h, w), bool)
        if len(out) >= n and np.array_equal(out.boxes[:n], st.props.boxes):
            if len(out) > n:  # a clip-level step's propagated objects join the frame
                self._add(st, out.subset(range(n, len(out))), stage.name, [f"added by {who}"] * (len(out) - n), None)
        elif match_boxes:  # objects merged, dropped or split: a returned box equal to a given one keeps its trace
            kept_ids: list[int] = []
            new: list[int] = []
            free = list(range(n))
            for k in range(len(out)):
                j = next((j for j in free if np.array_equal(st.props.boxes[j], out.boxes[k])), None)
                if j is None:
                    new.append(k)
                else:
                    free.remove(j)
                    kept_ids.append(st.trace.alive[j])
            st.trace.drop([st.trace.alive[j] for j in free], stage.name, f"merged or dropped by {who}")
            st.trace.alive = kept_ids
            if st.region_emb is not None:
                st.region_emb = np.zeros((0, st.region_emb.shape[1]), np.float32)
            out = out.subset([k for k in range(len(out)) if k not in new] + new)
            if new:
                self._add(st, out.subset(range(len(out) - len(new), len(out))), stage.name,
                          [f"made by {who}"] * len(new), None)
        else:  # the step re-derived the frame's objects (merged tracks): the given ones give way
            st.trace.drop(st.trace.alive, stage.name, f"replaced by {who}'s tracks")
            st.trace.alive = []
            if st.region_emb is not None:
                st.region_emb = st.region_emb[:0]
            self._add(st, out, stage.name, [f"track of {who}"] * len(out), None)
        st.props = out

    def _add(self, st: _FrameState, added: Proposals, origin: str, reasons: list[str],
             embeddings: FloatArray | None) -> None:
        """Objects a step adds to a frame: their trace records and (zero unless given) region embeddings."""
        st.trace.add(added, origin, reasons)
        if st.region_emb is not None:
            extra = embeddings if embeddings is not None else np.zeros((len(added), st.region_emb.shape[1]), np.float32)
            st.region_emb = np.concatenate([st.region_emb, np.asarray(extra, np.float32)])

    def _run_select(self, stage: ResolvedStage, flt: Filter, run: _ClipRun) -> None:
        """A filter, whatever its scope: one ``filter_clip`` call (a frame filter's default loops
        over the frames), each frame's result checked against that frame's items."""
        t0 = time.perf_counter()
        on_tags = flt.target == "tags"
        counts = [(len(st.tags) if st.tags is not None else 0) if on_tags else len(st.props) for st in run.states]
        with guarded("filter", flt.name, flt.provider, f"failed on clip {run.clip.clip_id}"):
            results = validate.filter_results(flt, flt.filter_clip(self._clip_context(run, flt)), counts)
        for st, res in zip(run.states, results):
            self._apply(flt, st, res)
        self._time(f"filter.{flt.name}", t0)

    def _apply(self, flt: Filter, st: _FrameState, res: FilterResult) -> None:
        if flt.target == "tags":
            if st.tags is not None:
                st.trace.tags_filtered(st.tags, res)
                st.tags = st.tags.subset(res.keep)
            return
        st.trace.filtered(flt.name, res)
        st.props = st.props.subset(res.keep)
        if st.region_emb is not None:
            st.region_emb = st.region_emb[res.keep] if len(res.keep) else st.region_emb[:0]
        if res.added is not None and len(res.added):
            reasons = res.added_reasons or [f"added by filter {flt.name!r}"] * len(res.added)
            self._add(st, res.added, flt.name, reasons, res.added_embeddings)
            st.props = concat_proposals(st.props, res.added)

    def _finish(self, st: _FrameState) -> FrameResult:
        with guarded("combiner", self.combiner.name, self.combiner.provider, f"failed on clip {self._clip_id}"):
            out = validate.combined(self.combiner, self.combiner.combine(st.frame, st.props), st.frame.shape[:2])
        return FrameResult(st.index, out.mask, st.props, st.tags, out.label_map, out.labels, st.trace.records())


@dataclass
class _ClipRun:
    """One clip in flight: its decoded frames and windows, their content keys, per-frame state."""

    clip: Clip
    frames: list[Image]
    windows: list[AudioWindow]
    fkeys: list[str]
    wkeys: list[str]
    states: list[_FrameState]
    video: FullRateVideo | None = None
    audio: tuple[FloatArray, int] | None = None
