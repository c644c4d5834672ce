"""The per-clip unit of an evaluation, which every executor runs: run one clip, write its masks,
score its annotated frames and save its state file. It sits below :mod:`avseg.executors` (which
call it) and :mod:`avseg.eval.runner` (which plans the clips and scores the states)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.data.avss import avss_label_names
from avseg.errors import AvsegError, OutputError, one_line
from avseg.eval import emptiness, folder
from avseg.eval.metrics import BinaryMetrics, SemanticMetrics
from avseg.eval.plugin_metrics import clip_state as plugin_metric_state
from avseg.frames import resize_nearest
from avseg.labels import normalise_label
from avseg.outputs import atomic_write_json, mask_png, save_png

if TYPE_CHECKING:
    from avseg.data.base import Dataset
    from avseg.pipeline import ClipResult, Pipeline
    from avseg.registry import Metric

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
    resized = 0
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
            if gt.shape != m.shape:  # scored at the GT's size (nearest neighbour), and counted
                m = resize_nearest(m, gt.shape)
                if semantic:
                    cls_map = resize_nearest(cls_map, gt.shape)
                resized += 1
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
        **({"audio_noise": clip.meta["audio_noise"]} if "audio_noise" in clip.meta else {}),
        "binary": BinaryMetrics().add_clip(clip_id, preds, gts, frames[: len(preds)]).to_dict(),
        "empty": emptiness.clip_counts(preds, gts),
    }
    if resized:
        state["resized_predictions"] = resized
    if semantic:
        state["semantic"] = SemanticMetrics().add_clip(clip_id, sem_preds, sem_gts, frames[: len(sem_preds)]).to_dict()
    if plugin_metrics:
        state["plugin_metrics"], errors = plugin_metric_state(plugin_metrics, clip_id, preds, gts)
        if errors:
            state["plugin_metric_errors"] = errors
    return state


def failed_clip_state(dataset: Dataset, clip_id: str, semantic: bool,
                      plugin_metrics: Mapping[str, Metric] | None = None) -> dict[str, Any]:
    """A failed clip scored as the official scripts would score it: every annotated frame an
    all-background prediction against its GT (raises AvsegError when the GT cannot be read).
    Plugin metrics score the same empty predictions, so they cover the official metrics' frames."""
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
    state: dict[str, Any] = {"clip_id": clip_id, "binary": BinaryMetrics().add_clip(clip_id, preds, gts, frames).to_dict(),
                             "empty": emptiness.clip_counts(preds, gts)}
    if semantic:
        state["semantic"] = SemanticMetrics().add_clip(clip_id, sem_preds, sem_gts, frames).to_dict()
    if plugin_metrics:
        state["plugin_metrics"], errors = plugin_metric_state(plugin_metrics, clip_id, preds, gts)
        if errors:
            state["plugin_metric_errors"] = errors
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
