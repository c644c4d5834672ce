"""``avseg eval``: run a pipeline over an AVSBench split, write predictions and score them.

Resumable: a clip is finished when its state file ``clips/<id>.json`` exists. Masks are
written first and the state file last, each atomically, so a run killed at any moment and
rerun with the same command skips finished clips and ends with identical metrics.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avseg.checks import check_batch_videos, check_limit
from avseg.data import Dataset, avss_label_names, open_dataset
from avseg.errors import AvsegError, InputError, OutputError, one_line
from avseg.eval import folder
from avseg.eval.metrics import BinaryMetrics, SemanticMetrics
from avseg.eval.plugin_metrics import clip_state as plugin_metric_state
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
from avseg.labels import normalise_label
from avseg.outputs import atomic_write_bytes, atomic_write_json, check_out_dir, mask_png, save_png
from avseg.pipeline import ClipResult, Pipeline
from avseg.registry import Metric, Registry, load_registry
from avseg.runtime import Runtime
from avseg.spec import ResolvedSpec, compose, resolve

STATE_DIR = folder.STATE_DIR


class LabelIndexer:
    """Maps proposal labels to AVSS class indices (background 0); counts labels it cannot map."""

    def __init__(self) -> None:
        self.index = {normalise_label(n): i for i, n in enumerate(avss_label_names())}
        self.unmapped: dict[str, int] = {}

    def __call__(self, label: str) -> int:
        i = self.index.get(normalise_label(label))
        if i is None:
            self.unmapped[label] = self.unmapped.get(label, 0) + 1
            return 0
        return i


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


def _label_map_to_classes(result_labels: list[str], label_map: np.ndarray | None, h: int, w: int,
                          indexer: LabelIndexer) -> np.ndarray:
    out = np.zeros((h, w), np.uint8)
    if label_map is None:
        return out
    for j, name in enumerate(result_labels, start=1):
        out[label_map == j] = indexer(name)
    return out


def evaluate_clip(dataset: Dataset, pipeline: Pipeline, clip_id: str, out: Path, semantic: bool,
                  indexer: LabelIndexer, plugin_metrics: Mapping[str, Metric] | None = None,
                  debug: bool = False) -> dict[str, Any]:
    """Run one clip, write its masks, score its annotated frames; returns its state (not yet saved)."""
    clip = dataset.clip(clip_id)
    t0 = time.perf_counter()
    res: ClipResult = pipeline.run_clip(clip)
    elapsed = time.perf_counter() - t0
    annotated = dataset.annotated_frames(clip)
    preds, gts, sem_preds, sem_gts = [], [], [], []
    for fr in res.frames:
        rel = dataset.pred_relpath(clip, fr.index)
        m = mask_png(fr.mask)
        save_png(out / "masks" / rel, m)
        h, w = fr.mask.shape
        if semantic:
            cls_map = _label_map_to_classes(fr.labels, fr.label_map, h, w, indexer)
            save_png(out / "labels" / rel, cls_map)
        if fr.index in annotated:
            gt = dataset.gt_mask(clip, fr.index)
            if gt is None:
                continue
            if gt.shape != m.shape:
                gt_file = dataset.mask_path(dataset.record(clip_id), fr.index)
                raise InputError(f"GT mask {gt_file} is {gt.shape[1]}x{gt.shape[0]} but frame {fr.index + 1} of "
                                 f"clip {clip_id} is {m.shape[1]}x{m.shape[0]}")
            preds.append(m)
            gts.append(gt)
            if semantic:
                lm = dataset.gt_label_map(clip, fr.index)  # type: ignore[attr-defined]
                sem_preds.append(cls_map)
                sem_gts.append(lm)
    if debug:  # tags and every proposal's scores and drop reason, for `avseg report`
        from avseg.report import save_clip_trace

        save_clip_trace(out, clip_id, res.frames)
    frames = [i for i in annotated]
    state: dict[str, Any] = {
        "clip_id": clip_id,
        "category": clip.category,
        "time": round(elapsed, 4),
        "warnings": list(clip.meta.get("warnings", [])),
        "binary": BinaryMetrics().add_clip(clip_id, preds, gts, frames[: len(preds)]).to_dict(),
    }
    if semantic:
        state["semantic"] = SemanticMetrics().add_clip(clip_id, sem_preds, sem_gts, frames[: len(sem_preds)]).to_dict()
    if plugin_metrics:
        state["plugin_metrics"], errors = plugin_metric_state(plugin_metrics, clip_id, preds, gts)
        if errors:
            state["plugin_metric_errors"] = errors
    return state


def failed_clip_state(dataset: Dataset, clip_id: str, semantic: bool) -> dict[str, Any]:
    """A failed clip scored as the official scripts would score it: every annotated frame an
    all-background prediction against its GT (raises AvsegError when the GT cannot be read)."""
    clip = dataset.clip(clip_id)
    frames, preds, gts, sem_preds, sem_gts = [], [], [], [], []
    for i in dataset.annotated_frames(clip):
        gt = dataset.gt_mask(clip, i)
        if gt is None:
            continue
        frames.append(i)
        preds.append(np.zeros(gt.shape, np.uint8))
        gts.append(gt)
        if semantic:
            sem_preds.append(np.zeros(gt.shape, np.uint8))
            sem_gts.append(dataset.gt_label_map(clip, i))  # type: ignore[attr-defined]
    state: dict[str, Any] = {"clip_id": clip_id, "binary": BinaryMetrics().add_clip(clip_id, preds, gts, frames).to_dict()}
    if semantic:
        state["semantic"] = SemanticMetrics().add_clip(clip_id, sem_preds, sem_gts, frames).to_dict()
    return state


def process_clip(dataset: Dataset, pipeline: Pipeline, clip_id: str, out: Path | str, semantic: bool,
                 indexer: LabelIndexer, plugin_metrics: Mapping[str, Metric] | None = None,
                 config_id: str | None = None, debug: bool = False) -> dict[str, Any]:
    """The unit of work of every executor: evaluate one clip, then save its state file atomically.

    Returns ``{"clip": id}`` when the clip is finished, ``{"clip": id, "error": reason}`` when it failed
    (it fails alone: no state file, so a rerun tries it again). An unwritable output folder is not a
    clip's failure: :class:`OutputError` propagates, as every further clip would fail the same way.
    """
    try:
        state = evaluate_clip(dataset, pipeline, clip_id, Path(out), semantic, indexer, plugin_metrics, debug)
    except OutputError:
        raise
    except AvsegError as exc:
        return {"clip": clip_id, "error": " ".join(str(exc).split())}
    except Exception as exc:  # a bug outside any component: fail this clip, keep the others
        if os.environ.get("AVSEG_DEBUG"):
            raise
        return {"clip": clip_id, "error": f"unexpected {one_line(exc)} (AVSEG_DEBUG=1 shows the traceback)"}
    if config_id is not None:
        state["config_id"] = config_id
    atomic_write_json(Path(out) / STATE_DIR / f"{clip_id}.json", state)
    return {"clip": clip_id}


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
    if semantic:
        sem = SemanticMetrics.from_states(states[c]["semantic"] for c in order if "semantic" in states[c])
        r = sem.result(order=[c for c in order if "semantic" in states[c]])
        out["semantic"] = {k: (int(v) if k.startswith("n_") else v) for k, v in r.items()}
    return out


def per_clip_csv(dataset: Dataset, states: dict[str, dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["clip", "category", "j", "f", "n_frames", "time_s"])
    for cid in dataset.ids:
        if cid not in states:
            continue
        s = states[cid]
        b = BinaryMetrics.from_states([s["binary"]]).clip_scores(cid)
        w.writerow([cid, s.get("category") or "", f"{b.j:.6f}", f"{b.f:.6f}", len(b.iou), s.get("time", "")])
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
        ctx = LocalContext(dataset, resolved, runtime, indexer, built, registry.metric_table())
        done = (executor or LocalExecutor()).run(job, todo, ctx, progress)
        failed = [dict(f) for f in done.failed]
        # The per-clip files are the record, whichever process wrote them.
        states = load_states(out, ident, semantic, wanted=wanted)
    for f in failed:
        if not exclude_failed:
            try:
                scored_empty[f["clip"]] = failed_clip_state(dataset, f["clip"], semantic)
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
    if indexer.unmapped:
        metrics["unmapped_labels"] = indexer.unmapped
    warnings = [f"{c}: {w}" for c in dataset.ids if c in states for w in states[c].get("warnings", [])]
    metrics["warnings"] = list(resolved.warnings) + warnings
    if registry.metrics:
        done_states = [states[c] for c in dataset.ids if c in states]
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
    t.add_row("clips / frames", f"{metrics['n_clips']} / {metrics['n_frames']}")
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
    from avseg.api import make_runtime
    from avseg.executors import make_executor

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
