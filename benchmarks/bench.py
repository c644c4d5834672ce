"""avseg benchmark: prints one table. Every figure in a row is measured in one process.

Rows:
- ``preset``: each preset on a fixed set of synthetic clips: per-stage wall time and calls,
  frames per second, peak RSS (and peak GPU memory on a GPU), and the share of wall time spent
  outside model forward passes (decode, pre/post-processing, I/O, filters).
- ``ratio-a``: one OWOD-BIND frame, avseg's batched path (one SAM encoding, one decoder call for
  all boxes, one ImageBind batch) against the per-object loop through the upstream APIs
  (``SamPredictor.predict`` per box, one ImageBind forward per crop).
- ``ratio-b``: a 5-value tau_BIND sweep through ``avseg ablate`` with the stage cache against five
  cold runs.
- ``ray`` (opt in: ``--rows ray``, needs ``avseg[ray]``): an owod-bind eval of ``--ray-clips`` clips
  locally, then with ``--executor ray`` on 1 and on 2 workers, and Ray's scheduling overhead per clip.
- ``propagation`` (opt-in): SAM 2 propagating boxes given on the first frame through a clip,
  per frame, beside per-frame SAM and per-frame SAM 2 (image mode) on the same boxes.
- ``sam3`` (opt-in): SAM 3 on text prompts beside GroundingDINO + SAM on the same prompts.
- ``av-sync``: the weights-free ``av-sync`` preset on a 5 s, 25 fps, 320x240 ``avseg synth`` scene
  (an mp4): wall time of ``run_clip`` (full-rate decode included, imports and writing excluded),
  per stage; the target on the 2-core CPU is under 5 s.
- ``large-frame`` (opt-in): sam-bind on one ``--large-frame W H`` frame (4000x3000): peak RSS, which
  must stay under 3 GB with ``--size tiny`` (SAM's automatic masks run at 1024 px, see sam-grid's
  ``working_size``), and the mask's shape (the frame's).

``--size tiny`` uses the tiny variants; ``--size real`` builds the real architectures with random
seeded weights (speed does not depend on weight values, so no checkpoint is needed).
Each row runs in its own subprocess so that peak memory and timings do not leak between rows.

    python benchmarks/bench.py --size tiny
    python benchmarks/bench.py --size real --presets owod-bind --frames 2 --boxes 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PRESETS = ("at-gdino-sam", "owod-bind", "owod-bind-softmax", "sam-bind", "bavs")

#: Real-size rows on a 2-core CPU take minutes per frame, so they run a smaller but same-shaped
#: workload: SAM ViT-B instead of ViT-H, at most 4 OWLv2 / 8 GroundingDINO boxes per frame, an 8x8
#: SAM point grid. With random weights the thresholds would keep arbitrary numbers of objects, so
#: they are opened (-1 / 0) to make every stage run on every box. Both sides of a ratio use the
#: same settings.
REAL_SIZE_SETS = {
    "at-gdino-sam": ["segmenter.variant=vit_b", "proposer.top_k=8", "filter.tag-threshold.threshold=0.0",
                     "filter.tag-threshold.top_k=3"],
    "bavs": ["segmenter.variant=vit_b", "proposer.top_k=8"],
    "owod-bind": ["segmenter.variant=vit_b", "proposer.top_k=4", "filter.bind.cosine_threshold=-1.0"],
    "owod-bind-softmax": ["segmenter.variant=vit_b", "proposer.top_k=4"],
    "sam-bind": ["proposer.variant=vit_b", "proposer.points_per_side=8", "proposer.pred_iou_thresh=0.0",
                 "proposer.stability_score_thresh=0.0", "filter.bind.cosine_threshold=-1.0"],
}


# -- measurement helpers --------------------------------------------------------------------------
class ForwardTimer:
    """Wall time spent inside top-level ``torch.nn.Module`` calls (nested calls are not double counted)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    @contextmanager
    def installed(self) -> Iterator[ForwardTimer]:
        import torch

        original = torch.nn.Module.__call__
        timer = self

        def timed(module: Any, *args: Any, **kwargs: Any) -> Any:
            if timer._depth:
                return original(module, *args, **kwargs)
            timer._depth += 1
            t0 = time.perf_counter()
            try:
                return original(module, *args, **kwargs)
            finally:
                timer._depth -= 1
                timer.seconds += time.perf_counter() - t0
                timer.calls += 1

        torch.nn.Module.__call__ = timed  # type: ignore[method-assign]
        try:
            yield self
        finally:
            torch.nn.Module.__call__ = original  # type: ignore[method-assign]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_gpu_mb() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return float(torch.cuda.max_memory_allocated() / 2**20)
    except ImportError:
        pass
    return None


def synthetic_clips(n: int, frames: int, size: int) -> list[Any]:
    """Fixed clips: coloured shapes on a gradient, a tone per clip, 16 kHz audio."""
    from avseg.testing import _moving, draw_shapes, tone
    from avseg.types import Clip

    clips = []
    for c in range(n):
        imgs = [draw_shapes(size, [_moving(c, i, size, n_obj=2, j=j) for j in range(2)], seed=c)[0]
                for i in range(frames)]
        wave = tone([440.0 * (c + 1)], frames, 16000)
        clips.append(Clip.from_arrays(f"bench{c}", imgs, wave, 16000,
                                      timestamps=[i + 15 / 16 for i in range(frames)]))
    return clips


def make_runtime(args: argparse.Namespace, cache_dir: str | None = None) -> Any:
    from avseg.cache import StageCache
    from avseg.runtime import Runtime

    return Runtime(device=args.device, dtype=args.dtype, tiny=args.size == "tiny", random_init=args.size == "real",
                   cache=StageCache(cache_dir) if cache_dir else None)


# -- rows -------------------------------------------------------------------------------------------
def row_preset(args: argparse.Namespace) -> dict[str, Any]:
    from avseg.pipeline import Pipeline
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve

    registry = load_registry()
    sets = (REAL_SIZE_SETS.get(args.preset, []) if args.size == "real" else []) + list(args.set or [])
    rs = resolve(compose(args.preset, sets=sets, registry=registry), registry)
    runtime = make_runtime(args)
    t0 = time.perf_counter()
    pipeline = Pipeline(rs, runtime)
    load_s = time.perf_counter() - t0
    clips = synthetic_clips(args.clips, args.frames, args.frame_size)
    for c in clips:  # decode outside the timed region: the clips are in memory
        c.frames()
    runtime.timings.clear()
    timer = ForwardTimer()
    with timer.installed():
        t0 = time.perf_counter()
        for c in clips:
            pipeline.run_clip(c)
        wall = time.perf_counter() - t0
    n_frames = args.clips * args.frames
    stages = {k: round(v, 3) for k, v in runtime.timings.items() if not k.startswith("load.")}
    return {
        "row": f"{args.preset} [{args.size}]" + (f" ({', '.join(sets)})" if sets else ""),
        "frames": n_frames,
        "wall_s": round(wall, 3),
        "fps": round(n_frames / wall, 3),
        "load_s": round(load_s, 2),
        "model_forward_s": round(timer.seconds, 3),
        "outside_model_share": round(max(0.0, wall - timer.seconds) / wall, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_gpu_mb": peak_gpu_mb(),
        "stages": stages,
        "calls": dict(runtime.counters),
    }


def row_ratio_a(args: argparse.Namespace) -> dict[str, Any]:
    """One OWOD-BIND frame: batched avseg against a per-object loop over the same models."""
    from segment_anything import SamPredictor

    from avseg.audio import clip_windows
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve

    registry = load_registry()
    sets = [f"proposer.top_k={args.boxes}", "proposer.box_threshold=0.0", "proposer.nms_iou=1.0"]
    if args.size == "real":
        sets.append("segmenter.variant=vit_b")
    rs = resolve(compose("owod-bind", sets=sets, registry=registry), registry)
    runtime = make_runtime(args)
    proposer = rs.proposer.cls(rs.proposer.config, runtime)
    emb, seg = rs.first("embedder"), rs.first("segmenter")
    assert emb is not None and seg is not None
    embedder = emb.cls(emb.config, runtime)
    segmenter = seg.cls(seg.config, runtime)
    clip = synthetic_clips(1, 1, args.frame_size)[0]
    frame = clip.frame(0)
    window = clip_windows(*clip.audio, clip.timestamps)[:1]
    props = proposer.propose([frame])[0]
    boxes = props.boxes
    timer = ForwardTimer()

    def batched() -> None:
        runtime._memo.clear()  # count the image encoding, as a fresh frame would
        p = proposer.propose([frame])[0]
        embedder.embed_audio(window)
        embedder.embed_regions([frame], [p])
        segmenter.segment([frame], [p.boxes])

    def loop() -> None:
        p = proposer.propose([frame])[0]
        embedder.embed_audio(window)
        for j in range(len(p)):
            embedder.embed_regions([frame], [p.subset([j])])
        predictor = SamPredictor(segmenter.model)
        predictor.set_image(frame)
        for b in p.boxes:
            predictor.predict(box=b, multimask_output=False)

    with timer.installed():
        times = {}
        for name, fn in (("batched", batched), ("loop", loop)):
            fn() if args.size == "tiny" else None  # warm-up at tiny size only (real size is too slow to repeat)
            t0 = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - t0
    return {
        "row": f"ratio-a owod-bind frame, {len(boxes)} boxes [{args.size}]",
        "batched_s": round(times["batched"], 3),
        "loop_s": round(times["loop"], 3),
        "loop_over_batched": round(times["loop"] / times["batched"], 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_gpu_mb": peak_gpu_mb(),
    }


def row_ratio_b(args: argparse.Namespace) -> dict[str, Any]:
    """5-value tau_BIND sweep through ablate (cache) vs five cold evals (no cache)."""
    from avseg.ablate import run_ablation
    from avseg.eval.runner import run_eval
    from avseg.registry import load_registry
    from avseg.testing import make_s4_tree

    registry = load_registry()
    values = [0.1, 0.2, 0.3, 0.5, 0.7]
    with tempfile.TemporaryDirectory() as tmp:
        root = make_s4_tree(Path(tmp) / "data", n_per_split={"test": args.clips}, size=args.frame_size)
        grid = Path(tmp) / "grid.yaml"
        extra = REAL_SIZE_SETS["owod-bind-softmax"] if args.size == "real" else []
        args.set = extra + list(args.set or [])
        fixed = "".join(f"\n  - {s}" for s in args.set)
        grid.write_text(f"base: owod-bind-softmax\nset:{fixed or ' []'}\naxes:\n  filter.bind.softmax_threshold: {values}\n")
        # Pay the one-off imports (torch, transformers, model code, matplotlib) before timing, so
        # neither side is charged for them; model builds are still paid by every cold run.
        from avseg.pipeline import Pipeline
        from avseg.spec import compose, resolve

        Pipeline(resolve(compose("owod-bind-softmax", registry=registry), registry), make_runtime(args))
        import matplotlib.pyplot  # noqa: F401

        runtime = make_runtime(args, cache_dir=str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        run_ablation(grid_path=grid, root=root, subset="s4", split="test", out=Path(tmp) / "sweep",
                     runtime=runtime, registry=registry, progress=False)
        sweep = time.perf_counter() - t0
        t0 = time.perf_counter()
        for v in values:
            cold = make_runtime(args)  # no cache, and a fresh runtime: nothing shared between runs
            run_eval(root=root, subset="s4", split="test", out=Path(tmp) / f"cold{v}",
                     pipeline={"preset": "owod-bind-softmax", "sets": [*(args.set or []), f"filter.bind.softmax_threshold={v}"]},
                     runtime=cold, registry=registry, progress=False)
        cold_s = time.perf_counter() - t0
    return {
        "row": f"ratio-b 5-value tau_BIND sweep, {args.clips} clips [{args.size}]",
        "sweep_s": round(sweep, 3),
        "five_cold_s": round(cold_s, 3),
        "one_cold_s": round(cold_s / 5, 3),
        "sweep_over_one_run": round(sweep / (cold_s / 5), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def row_ray(args: argparse.Namespace) -> dict[str, Any]:
    """owod-bind eval of ``--ray-clips`` S4 clips: local, then on 1 and on 2 Ray workers (no cache)."""
    import ray

    from avseg.eval.runner import run_eval
    from avseg.executors.ray import RayExecutor
    from avseg.registry import load_registry
    from avseg.testing import make_s4_tree

    registry = load_registry()
    pipeline = {"preset": "owod-bind", "sets": list(args.set or [])}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_s4_tree(Path(tmp) / "data", n_per_split={"test": args.ray_clips}, size=args.frame_size)

        def evaluate(name: str, executor: Any = None) -> dict[str, Any]:
            return run_eval(root=root, subset="s4", split="test", out=Path(tmp) / name, pipeline=pipeline,
                            runtime=make_runtime(args), registry=registry, progress=False, executor=executor)

        # Imports are paid once here, as a worker pays them once when it starts.
        from avseg.pipeline import Pipeline
        from avseg.spec import compose, resolve

        Pipeline(resolve(compose(registry=registry, **pipeline), registry), make_runtime(args))
        # A Ray worker holds 1 CPU and Ray gives it OMP_NUM_THREADS=1: the local run uses 1 thread too.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        local = evaluate("local")
        local_s = time.perf_counter() - t0
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, logging_level="error")
        init_s = time.perf_counter() - t0
        row: dict[str, Any] = {"row": f"ray owod-bind, {args.ray_clips} clips [{args.size}]", "local_s": round(local_s, 3),
                               "ray_init_s": round(init_s, 3)}
        for n in (1, 2):
            executor = RayExecutor(workers=n)
            # cold: worker processes start, import torch and build the models; warm: the same workers
            # again on a fresh output folder (no cache), so only the clips and their scheduling count
            for run in ("cold", "warm"):
                t0 = time.perf_counter()
                m = evaluate(f"ray{n}-{run}", executor)
                row[f"ray{n}_{run}_s"] = round(time.perf_counter() - t0, 3)
                assert not m["failed"], m["failed"][0]
                assert all(m[k] == local[k] for k in ("miou", "fscore", "fscore_dataset")), "ray metrics differ"
            row[f"ray{n}_overhead_per_clip_ms"] = round(1000 * m["executor"]["overhead_per_clip_s"], 2)
            executor.close()
        ray.shutdown()
    row["speedup_2_over_1"] = round(row["ray1_warm_s"] / row["ray2_warm_s"], 2)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return row


def _timed(fn: Any, warm: bool) -> float:
    if warm:
        fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def row_propagation(args: argparse.Namespace) -> dict[str, Any]:
    """Per-frame cost of SAM 2 propagation (boxes on frame 0 only) beside per-frame SAM and SAM 2
    image mode on the same boxes on every frame."""
    import numpy as np

    from avseg.registry import load_registry
    from avseg.types import Proposals

    registry = load_registry()
    runtime = make_runtime(args)
    frames = synthetic_clips(1, args.frames, args.frame_size)[0].frames()
    s = float(args.frame_size)
    boxes = np.asarray([[0.1 * s, 0.1 * s, 0.5 * s, 0.6 * s], [0.5 * s, 0.3 * s, 0.9 * s, 0.9 * s]], np.float32)
    sam_cls, sam2_cls = registry.get("segmenter", "sam"), registry.get("segmenter", "sam2")
    sam = sam_cls(sam_cls.Config(variant="vit_b"), runtime)
    sam2 = sam2_cls(sam2_cls.Config(variant=args.sam2_variant), runtime)
    prop = sam2_cls(sam2_cls.Config(variant=args.sam2_variant, propagate=True), runtime)
    first = [Proposals(boxes, np.ones(len(boxes), np.float32))] + [Proposals.empty()] * (len(frames) - 1)
    warm = args.size == "tiny"

    def per_frame(seg: Any) -> None:
        runtime._memo.clear()  # every frame's encoding counts, as for fresh frames
        seg.segment(frames, [boxes] * len(frames))

    t = {
        "sam_vit_b_per_frame": _timed(lambda: per_frame(sam), warm),
        f"sam2_{args.sam2_variant}_per_frame": _timed(lambda: per_frame(sam2), warm),
        f"sam2_{args.sam2_variant}_propagation": _timed(
            lambda: prop.segment_clip(frames, first, list(range(len(frames)))), warm),
    }
    n = len(frames)
    return {
        "row": f"propagation, {n} frames, {len(boxes)} boxes on frame 0 [{args.size}]",
        "per_frame_s": {k: round(v / n, 3) for k, v in t.items()},
        "frames": n,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "calls": dict(runtime.counters),
    }


def row_sam3(args: argparse.Namespace) -> dict[str, Any]:
    """SAM 3 on text prompts beside GroundingDINO + SAM on the same prompts (at most 8 objects a frame)."""
    from avseg.registry import load_registry

    registry = load_registry()
    runtime = make_runtime(args)
    frames = synthetic_clips(1, args.frames, args.frame_size)[0].frames()
    prompts = [["dog", "acoustic guitar"]] * len(frames)
    sam3_cls, gdino_cls, sam_cls = (registry.get("proposer", "sam3"), registry.get("proposer", "gdino"),
                                    registry.get("segmenter", "sam"))
    sam3 = sam3_cls(sam3_cls.Config(threshold=0.0, top_k=8), runtime)
    gdino = gdino_cls(gdino_cls.Config(box_threshold=0.0, top_k=8), runtime)
    sam = sam_cls(sam_cls.Config(variant="vit_b"), runtime)
    warm = args.size == "tiny"

    def two_stage() -> None:
        runtime._memo.clear()
        props = gdino.propose(frames, prompts)
        sam.segment(frames, [p.boxes for p in props])

    def one_stage() -> None:
        sam3._text.clear()  # each run encodes its prompts, as a new clip would
        sam3.propose(frames, prompts)

    t = {"sam3": _timed(one_stage, warm), "gdino_tiny_plus_sam_vit_b": _timed(two_stage, warm)}
    n = len(frames)
    return {
        "row": f"sam3 vs gdino+sam, {n} frames, 2 prompts, <= 8 objects [{args.size}]",
        "per_frame_s": {k: round(v / n, 3) for k, v in t.items()},
        "frames": n,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "calls": dict(runtime.counters),
    }


def row_av_sync(args: argparse.Namespace) -> dict[str, Any]:
    """The av-sync preset on a synthetic 5 s, 25 fps, 320x240 video (no weights)."""
    from avseg.data import read_video
    from avseg.pipeline import Pipeline
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve
    from avseg.synth import synth

    registry = load_registry()
    runtime = make_runtime(args)
    with tempfile.TemporaryDirectory() as d:
        video = synth(Path(d) / "scene.mp4", layout="video", seed=0, size=(320, 240), fps=25, seconds=5)
        pipe = Pipeline(resolve(compose("av-sync", registry=registry), registry), runtime)
        clip = read_video(video)
        t0, c0 = time.perf_counter(), time.process_time()
        out = pipe.run_clip(clip)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(out.frames)
    return {
        "row": "av-sync preset, one 5 s 25 fps 320x240 clip (125 full-rate frames) [no weights]",
        "frames": n, "wall_s": round(wall, 3), "fps": round(n / wall, 2), "outside_model_share": 1.0,
        # CPU seconds too: on a shared machine the wall time measures the neighbours as well
        "stages": {**{k: round(v, 3) for k, v in runtime.timings.items() if not k.startswith("load.")},
                   "process_cpu": round(cpu, 3)},
        "calls": dict(runtime.counters), "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def row_large_frame(args: argparse.Namespace) -> dict[str, Any]:
    """sam-bind on one large frame (default 4000x3000): its peak RSS shows that SAM's automatic
    masks run at the bounded working size (1024 px), not at the frame's (about 10 GB before)."""
    import numpy as np

    from avseg.pipeline import Pipeline
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve
    from avseg.testing import tone
    from avseg.types import Clip

    registry = load_registry()
    rs = resolve(compose("sam-bind", sets=list(args.set or []), registry=registry), registry)
    runtime = make_runtime(args)
    pipeline = Pipeline(rs, runtime)
    w, h = args.large_frame
    rng = np.random.default_rng(0)
    frame = np.repeat(np.repeat(rng.integers(0, 255, (h // 50 + 1, w // 50 + 1, 3), dtype=np.uint8), 50, 0), 50, 1)
    clip = Clip.from_arrays("large", [np.ascontiguousarray(frame[:h, :w])], tone([440.0], 1, 16000), 16000,
                            timestamps=[15 / 16])
    clip.frames()
    t0 = time.perf_counter()
    out = pipeline.run_clip(clip)
    wall = time.perf_counter() - t0
    return {"row": f"sam-bind [{args.size}] one {w}x{h} frame", "frames": 1, "wall_s": round(wall, 3),
            "fps": round(1 / wall, 3), "outside_model_share": 0.0, "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_gpu_mb": peak_gpu_mb(), "stages": {k: round(v, 3) for k, v in runtime.timings.items()},
            "calls": {"mask_shape": "x".join(map(str, out.frames[0].mask.shape))}}


ROWS = {"preset": row_preset, "large-frame": row_large_frame, "ratio-a": row_ratio_a, "ratio-b": row_ratio_b, "ray": row_ray,
        "propagation": row_propagation, "sam3": row_sam3, "av-sync": row_av_sync}


def child(args: argparse.Namespace) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print("BENCH_JSON " + json.dumps(ROWS[args.row](args)))


def run_row(base: list[str], extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *base, *extra, "--child"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line[len("BENCH_JSON "):]))
    tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"row": " ".join(extra), "error": tail[0]}


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| row | frames | wall s | fps | outside-model share | peak RSS MB | ratio | stages (s) / calls |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "error" in r:
            print(f"| {r['row']} | | | | | | | ERROR: {r['error']} |")
        elif "fps" in r:
            stages = ", ".join(f"{k} {v}" for k, v in sorted(r["stages"].items()))
            calls = ", ".join(f"{k}={v}" for k, v in sorted(r["calls"].items()) if not k.endswith("memory_hit"))
            gpu = f" (GPU {r['peak_gpu_mb']:.0f})" if r.get("peak_gpu_mb") else ""
            print(f"| {r['row']} | {r['frames']} | {r['wall_s']} | {r['fps']} | {r['outside_model_share']:.1%} | "
                  f"{r['peak_rss_mb']}{gpu} | | {stages}; {calls} |")
        elif "per_frame_s" in r:
            per = ", ".join(f"{k} {v}" for k, v in r["per_frame_s"].items())
            print(f"| {r['row']} | {r['frames']} | per frame: {per} | | | {r['peak_rss_mb']} | | |")
        elif "loop_over_batched" in r:
            print(f"| {r['row']} | 1 | batched {r['batched_s']} / loop {r['loop_s']} | | | {r['peak_rss_mb']} | "
                  f"loop/batched = {r['loop_over_batched']} | |")
        elif "ray1_cold_s" in r:
            print(f"| {r['row']} | | local {r['local_s']} / 1 worker {r['ray1_cold_s']} cold, {r['ray1_warm_s']} warm / "
                  f"2 workers {r['ray2_cold_s']} cold, {r['ray2_warm_s']} warm (cluster start {r['ray_init_s']}) | | | "
                  f"{r['peak_rss_mb']} | warm 1 worker / 2 workers = {r['speedup_2_over_1']}x | "
                  f"scheduling overhead per clip {r['ray1_overhead_per_clip_ms']} ms (1 worker), "
                  f"{r['ray2_overhead_per_clip_ms']} ms (2 workers) |")
        else:
            print(f"| {r['row']} | | sweep {r['sweep_s']} / 5 cold {r['five_cold_s']} | | | {r['peak_rss_mb']} | "
                  f"sweep/one run = {r['sweep_over_one_run']} | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "real"), default="tiny")
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--rows", nargs="*", default=["preset", "ratio-a", "ratio-b"], choices=list(ROWS))
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--ray-clips", type=int, default=16, help="clips of the ray row (needs avseg[ray])")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--frame-size", type=int, default=224)
    ap.add_argument("--large-frame", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"),
                    help="frame size of the large-frame row (opt in: --rows large-frame)")
    ap.add_argument("--boxes", type=int, default=16, help="boxes per frame for ratio-a")
    ap.add_argument("--sam2-variant", default="tiny", help="sam2 variant for the propagation row")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--set", action="append", help="extra --set for the preset rows")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--row", choices=list(ROWS), help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    base = ["--size", args.size, "--clips", str(args.clips), "--ray-clips", str(args.ray_clips), "--frames", str(args.frames),
            "--frame-size", str(args.frame_size), "--boxes", str(args.boxes), "--device", args.device,
            "--sam2-variant", args.sam2_variant, "--large-frame", *map(str, args.large_frame),
            "--dtype", args.dtype] + [x for s in (args.set or []) for x in ("--set", s)]
    rows = []
    for kind in args.rows:
        for extra in ([["--row", "preset", "--preset", p] for p in args.presets] if kind == "preset" else [["--row", kind]]):
            print(f"running {' '.join(extra)} [{args.size}] ...", file=sys.stderr, flush=True)
            rows.append(run_row(base, extra))
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
