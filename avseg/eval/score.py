"""``avseg score``: the official metrics for predicted masks from any AVS model.

Predictions sit at the same relative path as their GT mask (see ``Dataset.pred_relpath``) and
are read by the mask rule of :mod:`avseg.data.images`: 8/16-bit single-channel values scaled to
[0, 1] (foreground above 0.5), palette indices non-zero = foreground, colour masks refused. For AVSS, class-index PNGs in a
``labels/`` folder beside ``--pred`` (as ``avseg eval`` writes them) add the 71-class metrics.
A missing prediction counts as an empty mask and is reported; when none of the expected predictions
exists (the wrong folder or layout) it is an error naming the expected path and what was found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avseg.checks import check_batch_videos
from avseg.data import open_dataset
from avseg.data.images import read_mask_values
from avseg.errors import InputError, UsageError
from avseg.eval import emptiness
from avseg.eval.metrics import BinaryMetrics, SemanticMetrics
from avseg.eval.plugin_metrics import clip_state as plugin_metric_state
from avseg.eval.plugin_metrics import failures as plugin_metric_failures
from avseg.eval.plugin_metrics import summarise as summarise_plugin_metrics
from avseg.eval.runner import is_semantic, require_clips
from avseg.frames import resize_nearest
from avseg.registry import Registry, load_registry


def _gt_file(dataset: Any, clip: Any, i: int) -> Path | None:
    """The GT mask file of frame ``i``, for messages (None when a plugin dataset has no such file)."""
    try:
        return Path(dataset.mask_path(dataset.record(clip), i))
    except (NotImplementedError, AttributeError, UsageError):
        return None


def _read_pred(path: Path) -> np.ndarray | None:
    """A prediction's values by the mask rule of :mod:`avseg.data.images`, or None when missing."""
    if not path.exists():
        return None
    return read_mask_values(path, "prediction")


def _read_labels(path: Path, shape: tuple[int, int], gt_file: Path | None = None) -> np.ndarray | None:
    """A class-index PNG (AVSS ``labels/``): the pixel values are class indices, not a mask."""
    if not path.exists():
        return None
    try:
        with Image.open(path) as im:
            arr = np.asarray(im if im.mode in ("L", "P") else im.convert("L"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read prediction {path}: {' '.join(str(exc).split())}") from None
    return resize_nearest(arr, shape)


def _found(folder: Path, limit: int = 2000) -> str:
    """What a prediction folder holds, in a few words: how many PNGs, and a few of their paths."""
    pngs, others, seen = [], 0, 0
    for p in folder.rglob("*"):
        seen += 1
        if seen > limit:
            break
        if p.is_file():
            if p.suffix.lower() == ".png":
                pngs.append(p.relative_to(folder).as_posix())
            else:
                others += 1
    if not pngs:
        return f"no PNG files ({others} other files)" if others else "nothing"
    more = "+" if seen > limit else ""
    return f"{len(pngs)}{more} PNG files, e.g. {', '.join(sorted(pngs)[:3])}"


def score_predictions(root: Path, subset: str, split: str, pred: Path, batch_videos: int = 4,
                      registry: Registry | None = None) -> dict[str, Any]:
    check_batch_videos(batch_videos)
    registry = registry or load_registry()
    metric_table = registry.metric_table()
    if not pred.is_dir():
        raise UsageError(f"--pred {pred}: not a folder")
    dataset = open_dataset(root, subset, split, registry=registry)
    require_clips(dataset)
    semantic = is_semantic(subset)
    labels_dir = pred.parent / "labels" if pred.name == "masks" else pred / "labels"
    use_labels = semantic and labels_dir.is_dir()
    binary, sem = BinaryMetrics(), SemanticMetrics()
    missing: list[str] = []
    resized: dict[str, int] = {}
    states: list[dict[str, Any]] = []
    expected = 0
    for clip in dataset:
        frames, preds, gts, sp, sg = [], [], [], [], []
        for i in dataset.annotated_frames(clip):
            gt = dataset.gt_mask(clip, i)
            if gt is None:
                continue
            rel = dataset.pred_relpath(clip, i)
            gt_file = _gt_file(dataset, clip, i)
            p = _read_pred(pred / rel)
            if p is not None and p.shape != gt.shape:  # scored at the GT's size (nearest neighbour), counted
                p = resize_nearest(p, gt.shape)
                resized[clip.clip_id] = resized.get(clip.clip_id, 0) + 1
            if p is None:
                missing.append(rel)
                p = np.zeros(gt.shape, np.uint8)
            frames.append(i)
            preds.append(p)
            gts.append(gt)
            if use_labels:
                lp = _read_labels(labels_dir / rel, gt.shape, gt_file)
                sp.append(lp if lp is not None else np.zeros(gt.shape, np.uint8))
                sg.append(dataset.gt_label_map(clip, i))  # type: ignore[attr-defined]
        binary.add_clip(clip.clip_id, preds, gts, frames)
        state: dict[str, Any] = {"empty": emptiness.clip_counts(preds, gts)}
        if metric_table:
            state["plugin_metrics"], errors = plugin_metric_state(metric_table, clip.clip_id, preds, gts)
            state["plugin_metric_errors"] = errors
        states.append(state)
        if use_labels:
            sem.add_clip(clip.clip_id, sp, sg, frames)
        expected += len(frames)
    if expected and len(missing) == expected:  # the wrong folder or layout, not "mIoU 0"
        raise InputError(f"--pred {pred}: none of the {expected} expected predictions exists; each is expected at "
                         f"the GT mask's relative path, e.g. {pred / missing[0]}; {pred} holds {_found(pred)}")
    out: dict[str, Any] = dict(binary.result(batch_videos=batch_videos, order=dataset.ids))
    out["n_clips"], out["n_frames"] = int(out["n_clips"]), int(out["n_frames"])
    if use_labels:
        out["semantic"] = sem.result(order=dataset.ids)
    out.update({"subset": subset, "split": split, "pred": str(pred), "missing_predictions": len(missing),
                "missing_examples": missing[:20], "failed": []})
    out.update(emptiness.summarise(states))
    out["resized_predictions"] = {"frames": sum(resized.values()), "clips": sorted(resized)}
    warnings = []
    if resized:
        warnings.append(f"{sum(resized.values())} predicted masks differed in size from their GT and were resized "
                        "to it (nearest neighbour)")
    dead = emptiness.dead_warning(out)
    out["warnings"] = warnings + ([dead] if dead else [])
    if metric_table:
        out["plugin_metrics"] = summarise_plugin_metrics(states)
        out["plugin_metric_failures"] = plugin_metric_failures(states)
    return out



def score_cli(*, root: Path, subset: str, split: str, pred: Path, as_json: bool, batch_videos: int) -> int:
    metrics = score_predictions(root, subset, split, pred, batch_videos)
    if as_json:
        import sys

        print(json.dumps(metrics, indent=2))
        for w in metrics.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
    else:
        from avseg.eval.runner import print_summary

        print_summary(metrics)
    if metrics["missing_predictions"]:
        import sys

        print(f"warning: {metrics['missing_predictions']} predicted masks missing (scored as empty), e.g. "
              f"{', '.join(metrics['missing_examples'][:3])}", file=sys.stderr)
    return 0
