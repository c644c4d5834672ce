"""``avseg eval``: run a pipeline over an AVSBench split, write predictions and score them.

Resumable: a clip is finished when its state file ``clips/<id>.json`` exists. Masks are
written first and the state file last, each atomically, so a run killed at any moment and
rerun with the same command skips finished clips and ends with identical metrics.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avseg.checks import check_batch_videos, check_limit
from avseg.data import Dataset, open_dataset
from avseg.errors import AvsegError, InputError
from avseg.eval import emptiness, folder
from avseg.eval.clip import STATE_DIR, LabelIndexer, failed_clip_state
from avseg.eval.metrics import BinaryMetrics, SemanticMetrics
from avseg.eval.plugin_metrics import clip_value as clip_plugin_metric
from avseg.eval.plugin_metrics import failures as plugin_metric_failures
from avseg.eval.plugin_metrics import summarise as summarise_plugin_metrics
from avseg.executors.base import (
    EvalJob,
    ExecResult,
    Executor,
    ExecutorOptions,
    LocalContext,
    absolute,
    runtime_settings,
)
from avseg.executors.local import LocalExecutor
from avseg.outputs import atomic_write_bytes, atomic_write_json, check_out_dir
from avseg.pipeline import Pipeline
from avseg.registry import Registry, load_registry
from avseg.runtime import Runtime
from avseg.spec import ResolvedSpec, compose, resolve

__all__ = ["STATE_DIR", "config_identity", "eval_job", "is_semantic", "load_states", "run_eval"]


def is_semantic(subset: str) -> bool:
    return subset.startswith("avss")


def config_identity(resolved: dict[str, Any], subset: str, split: str, tiny: bool,
                    components: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """What must match for an output folder to be resumed: the pipeline, the data, and who made
    each stage's output (provider, version and source fingerprint per "kind:name")."""
    ident = {"pipeline": resolved, "subset": subset, "split": split, "tiny": tiny}
    if components is not None:
        ident["steps"] = resolved.get("steps", [])
        ident["components"] = components
    return ident


def _check_out_dir(out: Path, ident: dict[str, Any], overwrite: bool, repair: bool = False) -> None:
    folder.check_config(out, ident, overwrite, repair)


def eval_job(root: Path, subset: str, split: str, out: Path, spec: dict[str, Any], resolved: ResolvedSpec,
             runtime: Runtime, semantic: bool, config_id: str | None = None, debug: bool = False) -> EvalJob:
    """What a worker needs to run this evaluation's clips."""
    return EvalJob(root=absolute(root), subset=subset, split=split, out=absolute(out), spec=spec,
                   config=resolved.as_dict(), runtime=runtime_settings(runtime), semantic=semantic,
                   config_id=config_id, debug=debug)


def summarise(dataset: Dataset, states: dict[str, dict[str, Any]], batch_videos: int, semantic: bool) -> dict[str, Any]:
    order = [cid for cid in dataset.ids if cid in states]
    binary = BinaryMetrics.from_states(states[c]["binary"] for c in order)
    out: dict[str, Any] = dict(binary.result(batch_videos=batch_videos, order=order))
    out["n_clips"] = int(out["n_clips"])
    out["n_frames"] = int(out["n_frames"])
    out.update(emptiness.summarise(states[c] for c in order))
    resized = {c: n for c in order if isinstance(n := states[c].get("resized_predictions"), int) and n > 0}
    out["resized_predictions"] = {"frames": sum(resized.values()), "clips": sorted(resized)}
    if semantic:
        sem = SemanticMetrics.from_states(states[c]["semantic"] for c in order if "semantic" in states[c])
        r = sem.result(order=[c for c in order if "semantic" in states[c]])
        out["semantic"] = {k: (int(v) if k.startswith("n_") else v) for k, v in r.items()}
    return out


def per_clip_csv(dataset: Dataset, states: dict[str, dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    keys = sorted({k for s in states.values() for k in s.get("plugin_metrics", {})})
    w.writerow(["clip", "category", "j", "f", "n_frames", "time_s", *keys])
    for cid in dataset.ids:
        if cid not in states:
            continue
        s = states[cid]
        b = BinaryMetrics.from_states([s["binary"]]).clip_scores(cid)
        w.writerow([cid, s.get("category") or "", f"{b.j:.6f}", f"{b.f:.6f}", len(b.iou), s.get("time", ""),
                    *(clip_plugin_metric(s, k) for k in keys)])
    return buf.getvalue().encode()


def load_states(out: Path, ident: dict[str, Any] | None = None, semantic: bool = False,
                repair: bool = False, wanted: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Finished clips; see :func:`avseg.eval.folder.load_states` for unreadable files."""
    return folder.load_states(out, ident, semantic, repair, wanted)


def run_eval(
    *, root: Path, subset: str, split: str, out: Path, pipeline: dict[str, Any], runtime: Runtime,
    limit: int | None = None, clips: Sequence[str] | None = None, batch_videos: int = 4,
    overwrite: bool = False, registry: Registry | None = None, progress: bool = True,
    built: Pipeline | None = None, repair: bool = False, exclude_failed: bool = False,
    executor: Executor | None = None, debug: bool = False,
) -> dict[str, Any]:
    """Evaluate; returns the metrics dict also written to ``out/metrics.json``.

    ``executor`` runs the clips still to do (default: this process, see :mod:`avseg.executors`).
    A clip that fails is listed under ``failed`` and, as in the official scripts (which score
    every clip), counts as an all-background prediction; ``exclude_failed`` leaves it out instead.
    Failed clips get no state file, so a rerun tries them again.
    """
    check_batch_videos(batch_videos)
    check_limit(limit)
    registry = registry or load_registry()
    spec = compose(registry=registry, **pipeline)
    resolved = resolve(spec, registry)
    dataset = open_dataset(root, subset, split, registry=registry).select(limit=limit, clips=clips)
    require_clips(dataset)
    semantic = is_semantic(subset)
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder.FolderLock(out):
        return _run_eval_locked(dataset, out, spec, resolved, runtime, subset, split, semantic, batch_videos,
                                overwrite, repair, progress, built, registry, exclude_failed, executor, root, debug)


def require_clips(dataset: Dataset) -> None:
    """An empty split has no score: refuse it rather than report 0 on 0 clips."""
    if len(dataset) == 0:
        raise InputError(f"no clips to evaluate: {dataset.csv_path} has no {dataset.split} rows"
                         " (or none matched --clips/--limit)")


def _run_eval_locked(dataset: Dataset, out: Path, spec: dict[str, Any], resolved: ResolvedSpec, runtime: Runtime,
                     subset: str, split: str, semantic: bool, batch_videos: int, overwrite: bool, repair: bool,
                     progress: bool, built: Pipeline | None, registry: Registry, exclude_failed: bool,
                     executor: Executor | None, root: Path, debug: bool) -> dict[str, Any]:
    from avseg.run_record import component_versions

    ident = config_identity(resolved.as_dict(), subset, split, runtime.tiny, component_versions(resolved))
    metric_table = registry.metric_table()  # before any clip: two providers of one name is an error
    _check_out_dir(out, ident, overwrite, repair)
    wanted = set(dataset.ids)
    states = load_states(out, ident, semantic, repair, wanted=wanted)
    # A parallel executor may have run some clips ahead (an ablation queues every cell at once).
    claimed = executor.claimed(absolute(out)) if executor is not None else set()
    todo = [cid for cid in dataset.ids if cid not in states or cid in claimed]
    failed: list[dict[str, Any]] = []
    scored_empty: dict[str, dict[str, Any]] = {}
    indexer = LabelIndexer()
    t_start = time.perf_counter()
    before = runtime.mark()
    done: ExecResult | None = None
    if todo:
        job = eval_job(root, subset, split, out, spec, resolved, runtime, semantic, folder.config_id(ident), debug)
        ctx = LocalContext(dataset, resolved, runtime, indexer, built, metric_table)
        done = (executor or LocalExecutor()).run(job, todo, ctx, progress)
        failed = [dict(f) for f in done.failed]
        # The per-clip files are the record, whichever process wrote them.
        states = load_states(out, ident, semantic, wanted=wanted)
    for f in failed:
        if not exclude_failed:
            try:
                scored_empty[f["clip"]] = failed_clip_state(dataset, f["clip"], semantic, metric_table)
            except AvsegError as gt_exc:  # no readable GT: it cannot be scored at all
                f["unscored"] = " ".join(str(gt_exc).split())
        f["scored_as_empty"] = f["clip"] in scored_empty
    metrics = summarise(dataset, {**states, **scored_empty}, batch_videos, semantic)
    # This run's share only: a runtime shared across ablation cells keeps running totals.
    counters, grown = runtime.since(before)
    timings = {k: round(v, 4) for k, v in grown.items()}
    metrics.update({
        "subset": subset,
        "split": split,
        "root": str(Path(root).resolve()),
        "failed": failed,
        "exclude_failed": exclude_failed,
        "failed_scoring": "excluded from the metrics" if exclude_failed else "scored as all-background predictions",
        "n_skipped_finished": len(dataset.ids) - len(todo),
        "config": resolved.as_dict(),
        "steps": resolved.step_names(),
        "components": component_versions(resolved),
        "counters": counters,
        "timings": timings,
        "weights": done.weights if done is not None else {},
        "tiny": runtime.tiny,
        "wall_time": round(time.perf_counter() - t_start, 3),
    })
    if done is not None:
        metrics["executor"] = done.info
    if resolved.audio.noise is not None:  # the noise robustness setting and the SNR measured per clip
        from avseg.eval.noise_summary import noise_summary

        metrics["audio_noise"] = noise_summary(resolved.audio, [states[c] for c in dataset.ids if c in states])
    if indexer.unmapped:
        metrics["unmapped_labels"] = indexer.unmapped
    warnings = [f"{c}: {w}" for c in dataset.ids if c in states for w in states[c].get("warnings", [])]
    if metrics["resized_predictions"]["frames"]:
        warnings.append(f"{metrics['resized_predictions']['frames']} predicted masks differed in size from their GT "
                        "and were resized to it (nearest neighbour)")
    dead = emptiness.dead_warning(metrics)
    metrics["warnings"] = list(resolved.warnings) + warnings + ([dead] if dead else [])
    if metric_table:
        # the official metrics' frames: finished clips, and failed clips scored as empty unless excluded
        scored = {**states, **scored_empty}
        done_states = [scored[c] for c in dataset.ids if c in scored]
        metrics["plugin_metrics"] = summarise_plugin_metrics(done_states)
        metrics["plugin_metric_failures"] = plugin_metric_failures(done_states)
    atomic_write_bytes(out / "per_clip.csv", per_clip_csv(dataset, states))
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def print_summary(metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("metric", "value", title=f"avseg eval {metrics.get('subset')}/{metrics.get('split')}")
    bv = int(metrics.get("batch_videos", 4))
    t.add_row(f"mIoU (J, official, {bv} videos/batch)", f"{metrics['miou']:.4f}")
    t.add_row("mIoU (per-frame mean)", f"{metrics['miou_frame']:.4f}")
    t.add_row(f"F-score (official, {bv} videos/batch)", f"{metrics['fscore']:.4f}")
    t.add_row("F-score (official, 1 video/batch)", f"{metrics['fscore_b1']:.4f}")
    t.add_row("F-score (dataset-level)", f"{metrics['fscore_dataset']:.4f}")
    if "semantic" in metrics:
        t.add_row("semantic mIoU (71 classes)", f"{metrics['semantic']['miou']:.4f}")
        t.add_row("semantic F (71 classes)", f"{metrics['semantic']['fscore']:.4f}")
    for key, value in (metrics.get("plugin_metrics") or {}).items():
        t.add_row(f"{key} (plugin)", "failed" if value is None else f"{value:.4f}")
    t.add_row("clips / frames", f"{metrics['n_clips']} / {metrics['n_frames']}")
    for label, key in (("frames predicted empty", "empty_prediction_share"),
                       ("GT-positive frames predicted empty", "gt_positive_predicted_empty_share")):
        if isinstance(metrics.get(key), (int, float)):
            t.add_row(label, f"{metrics[key]:.1%}")
    failed = metrics.get("failed", [])
    note = " (excluded)" if metrics.get("exclude_failed") else " (scored as empty)" if failed else ""
    t.add_row("failed clips", f"{len(failed)}{note}")
    Console().print(t)
    import sys

    # plain writes: a console would wrap long reasons (paths) at 80 columns when not a terminal
    from avseg.errors import printable

    for w in metrics.get("warnings", []):
        print(printable(f"warning: {w}"), file=sys.stderr)
    for f in metrics.get("failed", []):
        print(printable(f"failed {f['clip']}: {f['reason']}"), file=sys.stderr)
    for line in metrics.get("plugin_metric_failures", []):
        print(printable(f"failed {line}"), file=sys.stderr)


def run_eval_cli(*, root: Path, subset: str, split: str, out: Path, pipeline: dict[str, Any], tiny: bool,
                 device: str, dtype: str, limit: int | None, clips: list[str] | None, batch_videos: int,
                 overwrite: bool, cache_dir: Path | None, no_cache: bool, repair: bool = False,
                 exclude_failed: bool = False, executor: ExecutorOptions | None = None, debug: bool = False,
                 report: bool = True) -> int:
    from avseg.executors import make_executor
    from avseg.runtime import make_runtime

    runtime = make_runtime(tiny=tiny, device=device, dtype=dtype, cache_dir=cache_dir, no_cache=no_cache)
    clip_runner = make_executor(executor)
    try:
        metrics = run_eval(root=root, subset=subset, split=split, out=out, pipeline=pipeline, runtime=runtime,
                           limit=limit, clips=clips, batch_videos=batch_videos, overwrite=overwrite, repair=repair,
                           exclude_failed=exclude_failed, executor=clip_runner, debug=debug)
    finally:
        clip_runner.close()
    page = None
    if report:  # before anything is printed: a print that fails must not lose the report
        from avseg.report import write_report

        page = write_report(out, root=root)
    print_summary(metrics)
    if page is not None:
        from avseg.errors import printable

        print(printable(f"report: {page}"))
    return 1 if metrics["failed"] or metrics.get("plugin_metric_failures") else 0
