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

import numpy as np

from avseg.data import Dataset, avss_label_names, open_dataset
from avseg.errors import AvsegError, UsageError
from avseg.eval.metrics import BinaryMetrics, SemanticMetrics
from avseg.outputs import atomic_write_bytes, atomic_write_json, mask_png, save_png
from avseg.pipeline import ClipResult, Pipeline
from avseg.registry import Registry, load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve

STATE_DIR = "clips"


def _norm(label: str) -> str:
    return label.strip().lower().replace("_", " ")


class LabelIndexer:
    """Maps proposal labels to AVSS class indices (background 0); counts labels it cannot map."""

    def __init__(self) -> None:
        self.index = {_norm(n): i for i, n in enumerate(avss_label_names())}
        self.unmapped: dict[str, int] = {}

    def __call__(self, label: str) -> int:
        i = self.index.get(_norm(label))
        if i is None:
            self.unmapped[label] = self.unmapped.get(label, 0) + 1
            return 0
        return i


def is_semantic(subset: str) -> bool:
    return subset.startswith("avss")


def config_identity(resolved: dict[str, Any], subset: str, split: str, tiny: bool) -> dict[str, Any]:
    """What must match for an output folder to be resumed."""
    return {"pipeline": resolved, "subset": subset, "split": split, "tiny": tiny}


def _check_out_dir(out: Path, ident: dict[str, Any], overwrite: bool) -> None:
    import json

    cfg = out / "config.json"
    if cfg.exists() and not overwrite:
        try:
            old = json.loads(cfg.read_text())
        except ValueError:
            old = None
        if old != ident:
            raise UsageError(
                f"{out} holds results of a different pipeline config; choose another --out or pass --overwrite"
            )
    if overwrite and (out / STATE_DIR).exists():
        for f in (out / STATE_DIR).glob("*.json"):
            f.unlink()
    atomic_write_json(cfg, ident)


def _label_map_to_classes(result_labels: list[str], label_map: np.ndarray | None, h: int, w: int,
                          indexer: LabelIndexer) -> np.ndarray:
    out = np.zeros((h, w), np.uint8)
    if label_map is None:
        return out
    for j, name in enumerate(result_labels, start=1):
        out[label_map == j] = indexer(name)
    return out


def evaluate_clip(dataset: Dataset, pipeline: Pipeline, clip_id: str, out: Path, semantic: bool,
                  indexer: LabelIndexer, debug: bool = False) -> dict[str, Any]:
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
                raise AvsegError(f"prediction {m.shape} and GT {gt.shape} sizes differ for {clip_id} frame {fr.index}")
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
        "binary": BinaryMetrics().add_clip(clip_id, preds, gts, frames[: len(preds)]).to_dict(),
    }
    if semantic:
        state["semantic"] = SemanticMetrics().add_clip(clip_id, sem_preds, sem_gts, frames[: len(sem_preds)]).to_dict()
    return state


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


def load_states(out: Path) -> dict[str, dict[str, Any]]:
    import json

    states = {}
    for f in sorted((out / STATE_DIR).glob("*.json")):
        try:
            s = json.loads(f.read_text())
        except ValueError:
            continue  # unreadable state: the clip is redone
        states[s["clip_id"]] = s
    return states


def run_eval(
    *, root: Path, subset: str, split: str, out: Path, pipeline: dict[str, Any], runtime: Runtime,
    limit: int | None = None, clips: Sequence[str] | None = None, batch_videos: int = 4,
    overwrite: bool = False, registry: Registry | None = None, progress: bool = True,
    built: Pipeline | None = None, debug: bool = False,
) -> dict[str, Any]:
    """Evaluate; returns the metrics dict also written to ``out/metrics.json``."""
    registry = registry or load_registry()
    spec = compose(registry=registry, **pipeline)
    resolved = resolve(spec, registry)
    dataset = open_dataset(root, subset, split).select(limit=limit, clips=clips)
    semantic = is_semantic(subset)
    out.mkdir(parents=True, exist_ok=True)
    ident = config_identity(resolved.as_dict(), subset, split, runtime.tiny)
    _check_out_dir(out, ident, overwrite)
    states = {cid: s for cid, s in load_states(out).items() if cid in set(dataset.ids)}
    todo = [cid for cid in dataset.ids if cid not in states]
    failed: list[dict[str, str]] = []
    indexer = LabelIndexer()
    t_start = time.perf_counter()
    counters_before = dict(runtime.counters)
    timings_before = dict(runtime.timings)
    if todo:
        built = built or Pipeline(resolved, runtime)
        with _progress(progress, f"{subset}/{split}", len(todo)) as advance:
            for cid in todo:
                try:
                    state = evaluate_clip(dataset, built, cid, out, semantic, indexer, debug)
                except AvsegError as exc:
                    failed.append({"clip": cid, "reason": str(exc)})
                    advance()
                    continue
                atomic_write_json(out / STATE_DIR / f"{cid}.json", state)
                states[cid] = state
                advance()
    metrics = summarise(dataset, states, batch_videos, semantic)
    from avseg.runner import run_metadata

    meta = run_metadata(built, {}) if built is not None else {"config": resolved.as_dict()}
    # This run's share only: a runtime shared across ablation cells keeps running totals.
    counters = {k: v - counters_before.get(k, 0) for k, v in runtime.counters.items() if v - counters_before.get(k, 0)}
    timings = {k: round(v - timings_before.get(k, 0.0), 4) for k, v in runtime.timings.items()
               if v - timings_before.get(k, 0.0) > 0}
    metrics.update({
        "subset": subset,
        "split": split,
        "root": str(Path(root).resolve()),
        "failed": failed,
        "n_skipped_finished": len(dataset.ids) - len(todo),
        "config": resolved.as_dict(),
        "counters": counters,
        "timings": timings,
        "weights": meta.get("weights", {}),
        "tiny": runtime.tiny,
        "wall_time": round(time.perf_counter() - t_start, 3),
    })
    if indexer.unmapped:
        metrics["unmapped_labels"] = indexer.unmapped
    atomic_write_bytes(out / "per_clip.csv", per_clip_csv(dataset, states))
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


class _progress:
    """A rich progress bar over clips (a no-op when disabled)."""

    def __init__(self, enabled: bool, what: str, total: int) -> None:
        self.enabled, self.what, self.total = enabled, what, total

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self._p.__enter__()
        task = self._p.add_task(f"eval {self.what}", total=self.total)
        return lambda: self._p.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._p.__exit__(*exc)


def print_summary(metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("metric", "value", title=f"avseg eval {metrics.get('subset')}/{metrics.get('split')}")
    t.add_row("mIoU (J)", f"{metrics['miou']:.4f}")
    t.add_row(f"F-score (official, {int(metrics.get('batch_videos', 4))} videos/batch)", f"{metrics['fscore']:.4f}")
    t.add_row("F-score (dataset-level)", f"{metrics['fscore_dataset']:.4f}")
    if "semantic" in metrics:
        t.add_row("semantic mIoU (71 classes)", f"{metrics['semantic']['miou']:.4f}")
        t.add_row("semantic F (71 classes)", f"{metrics['semantic']['fscore']:.4f}")
    t.add_row("clips / frames", f"{metrics['n_clips']} / {metrics['n_frames']}")
    t.add_row("failed clips", str(len(metrics.get("failed", []))))
    Console().print(t)
    for f in metrics.get("failed", []):
        Console(stderr=True).print(f"[red]failed[/] {f['clip']}: {f['reason']}")


def run_eval_cli(*, root: Path, subset: str, split: str, out: Path, pipeline: dict[str, Any], tiny: bool,
                 device: str, dtype: str, limit: int | None, clips: list[str] | None, batch_videos: int,
                 overwrite: bool, cache_dir: Path | None, no_cache: bool, debug: bool = False,
                 report: bool = True) -> int:
    from avseg.api import make_runtime

    runtime = make_runtime(tiny=tiny, device=device, dtype=dtype, cache_dir=cache_dir, no_cache=no_cache)
    metrics = run_eval(root=root, subset=subset, split=split, out=out, pipeline=pipeline, runtime=runtime,
                       limit=limit, clips=clips, batch_videos=batch_videos, overwrite=overwrite, debug=debug)
    print_summary(metrics)
    if report:
        from avseg.report import write_report

        print(f"report: {write_report(out, root=root)}")
    return 1 if metrics["failed"] else 0
