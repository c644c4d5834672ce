"""AVSBench metrics in pure numpy, replicating the official scripts.

Binary (S4, MS3; ``avs_scripts/avs_s4/utils/utility.py``):

- **J** (``mask_iou``): a prediction pixel is foreground when its probability is > 0.5 (for
  0..255 PNGs: value > 127). Per frame ``IoU = inter / (union + 1e-7)``; when the GT is empty,
  ``inter`` counts pixels where both are 0 and ``union = H*W`` (so an empty prediction on an empty
  GT scores ~1). ``miou`` is the official J: the official ``test.py`` averages ``mask_iou`` over
  the frames of each batch of ``batch_videos`` consecutive clips, then averages those batch means
  (a partial last batch weighs as much as a full one). ``miou_frame`` is the plain mean over all
  frames, independent of batching; the two agree when every batch is full.
- **F** (``Eval_Fmeasure``/``_eval_pr``): beta^2 = 0.3, 255 thresholds
  ``linspace(0, 1 - 1e-10, 255)`` (float32, so the last is 1.0); a pixel is positive when
  ``prob >= threshold``; ``P = TP/(pred + 1e-20)``, ``R = TP/(GT + 1e-20)``,
  ``F = (1+b2) P R / (b2 P + R)`` with NaN -> 0; frames with an empty GT are skipped. The official
  score averages the F curves over the frames of a batch of ``batch_videos`` consecutive clips
  (CSV order), takes the max over thresholds per batch (0 for a batch without any non-empty GT)
  and averages the batch maxima — so it depends on the batch size: ``fscore`` uses
  ``batch_videos`` (4, as the official ``test.sh``), ``fscore_b1`` batches of one video (the
  ``test.py`` default). ``fscore_dataset`` pools all frames' curves into one mean curve and takes
  one max: independent of batching.
  We compute in float64 where the official code uses float32 (differences ~1e-7).

Semantic (AVSS; ``avs_scripts/avss/utils/compute_color_metrics.py`` and ``avss/test.py``):
per frame and class, intersection / prediction / label areas; ``IoU = inter/(eps + union)``
(eps = 2.22e-16) and ``F`` from ``P = inter/pred``, ``R = inter/lab`` (NaN -> 0) are *summed over
all frames*, and a class's count grows on frames where its union is non-zero. Per class,
``sum / count``; a class never present in GT nor prediction gives 0/0 -> 0 and **still counts** in
the mean over all 71 classes (``miou``, ``fscore``), exactly as the official script does.
``miou_present``/``fscore_present`` average only over classes that occurred. GT pixels outside
``[0, num_classes)`` are ignored (the official code ignores negative labels).

Accumulators work clip by clip and keep per-clip state as plain lists (``ClipScores.to_dict``),
so an interrupted evaluation can be rebuilt from saved per-clip files with bit-identical results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

BETA2 = 0.3
PR_NUM = 255
IOU_EPS = 1e-7
PR_EPS = 1e-20
SEM_EPS = 2.220446049250313e-16

FloatVec = npt.NDArray[np.float64]


def thresholds(num: int = PR_NUM) -> npt.NDArray[np.float32]:
    """The official F-measure thresholds, as float32 like ``torch.linspace``."""
    return np.linspace(0.0, 1.0 - 1e-10, num).astype(np.float32)


def to_prob(pred: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Prediction as a probability map: uint8 PNG values / 255, bool as 0/1, floats as given."""
    a = np.asarray(pred)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    return a.astype(np.float32)


def binarize(pred: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Official binarisation ``prob > 0.5`` (uint8: value > 127)."""
    a = np.asarray(pred)
    if a.dtype == np.bool_:
        return a
    if a.dtype == np.uint8:
        return a > 127
    return a.astype(np.float32) > 0.5


def _check_pair(pred: npt.NDArray[Any], gt: npt.NDArray[Any]) -> None:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} must be equal 2-D shapes")


def frame_iou(pred: npt.ArrayLike, gt: npt.ArrayLike) -> float:
    """Official per-frame J (``mask_iou`` for one frame), including the empty-GT rule."""
    p = binarize(pred)
    g = np.asarray(gt).astype(bool)
    _check_pair(p, g)
    if not g.any():
        inter = int(np.count_nonzero(~p & ~g))
        union = g.size
    else:
        inter = int(np.count_nonzero(p & g))
        union = int(np.count_nonzero(p | g))
    return inter / (union + IOU_EPS)


def frame_fcurve(pred: npt.ArrayLike, gt: npt.ArrayLike, num: int = PR_NUM) -> FloatVec | None:
    """Official per-frame F curve over ``num`` thresholds; None when the GT is empty (skipped)."""
    prob = to_prob(pred)
    g = np.asarray(gt).astype(bool)
    _check_pair(prob, g)
    n_gt = int(np.count_nonzero(g))
    if n_gt == 0:
        return None
    th = thresholds(num)
    # Pixel v is positive at threshold i iff th[i] <= v iff i < searchsorted(th, v, 'right').
    idx = np.searchsorted(th, prob.ravel(), side="right")
    cnt_all = np.bincount(idx, minlength=num + 1)
    cnt_tp = np.bincount(idx[g.ravel()], minlength=num + 1)
    pos = (int(prob.size) - np.cumsum(cnt_all)[:num]).astype(np.float64)
    tp = (n_gt - np.cumsum(cnt_tp)[:num]).astype(np.float64)
    prec = tp / (pos + PR_EPS)
    rec = tp / (n_gt + PR_EPS)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (1.0 + BETA2) * prec * rec / (BETA2 * prec + rec)
    f[np.isnan(f)] = 0.0
    return np.asarray(f, dtype=np.float64)


@dataclass
class ClipScores:
    """Per-frame binary scores of one clip: IoU and F curve (None for empty-GT frames)."""

    clip_id: str
    frames: list[int]
    iou: list[float]
    fcurves: list[list[float] | None]

    @property
    def j(self) -> float:
        """Mean IoU over the clip's frames."""
        return float(np.mean(self.iou)) if self.iou else 0.0

    @property
    def f(self) -> float:
        """Max over thresholds of the clip's mean F curve (0 when no frame has a GT object)."""
        curves = [c for c in self.fcurves if c is not None]
        return float(np.mean(np.asarray(curves), axis=0).max()) if curves else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "frames": list(self.frames),
            "iou": list(self.iou),
            "fcurves": list(self.fcurves),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipScores:
        return cls(
            clip_id=str(d["clip_id"]),
            frames=[int(x) for x in d["frames"]],
            iou=[float(x) for x in d["iou"]],
            fcurves=[None if c is None else [float(x) for x in c] for c in d["fcurves"]],
        )


def _ordered(items: dict[str, Any], order: Sequence[str] | None) -> list[Any]:
    if order is None:
        return list(items.values())
    missing = [cid for cid in order if cid not in items]
    if missing:
        raise KeyError(f"no scores for clip(s) {', '.join(missing[:5])}")
    return [items[cid] for cid in order]


class BinaryMetrics:
    """Accumulates official S4/MS3 J and F clip by clip (add clips in metadata CSV order)."""

    def __init__(self) -> None:
        self._clips: dict[str, ClipScores] = {}

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._clips

    def add_clip(
        self,
        clip_id: str,
        preds: Sequence[npt.ArrayLike],
        gts: Sequence[npt.ArrayLike],
        frames: Sequence[int] | None = None,
    ) -> ClipScores:
        """Score one clip's annotated frames; ``preds`` are uint8 0..255, bool, or floats in [0, 1]."""
        if len(preds) != len(gts):
            raise ValueError(f"clip {clip_id}: {len(preds)} predictions for {len(gts)} GT masks")
        fr = list(frames) if frames is not None else list(range(len(gts)))
        curves: list[list[float] | None] = []
        ious: list[float] = []
        for p, g in zip(preds, gts, strict=True):
            ious.append(frame_iou(p, g))
            c = frame_fcurve(p, g)
            curves.append(None if c is None else c.tolist())
        scores = ClipScores(clip_id, fr, ious, curves)
        self.add_scores(scores)
        return scores

    def add_scores(self, scores: ClipScores | dict[str, Any]) -> None:
        """Add saved per-clip state (e.g. when resuming); replaces an earlier entry of that clip."""
        s = scores if isinstance(scores, ClipScores) else ClipScores.from_dict(scores)
        self._clips[s.clip_id] = s

    @classmethod
    def from_states(cls, states: Iterable[ClipScores | dict[str, Any]]) -> BinaryMetrics:
        m = cls()
        for s in states:
            m.add_scores(s)
        return m

    def clip_scores(self, clip_id: str) -> ClipScores:
        return self._clips[clip_id]

    def per_clip(self) -> dict[str, dict[str, float]]:
        return {cid: {"j": s.j, "f": s.f, "n_frames": float(len(s.iou))} for cid, s in self._clips.items()}

    def result(self, batch_videos: int = 4, order: Sequence[str] | None = None) -> dict[str, float]:
        """miou (official J, batch-wise), miou_frame, fscore (official, batch-wise), fscore_b1
        (official at one video per batch), fscore_dataset, n_frames, n_clips, batch_videos."""
        if batch_videos < 1:
            raise ValueError(f"batch_videos must be >= 1, got {batch_videos}")
        clips: list[ClipScores] = _ordered(self._clips, order)
        all_iou = [x for c in clips for x in c.iou]
        all_curves = [cv for c in clips for cv in c.fcurves if cv is not None]
        batch_j, batch_f = _batch_means(clips, batch_videos)
        _, batch_f1 = _batch_means(clips, 1) if batch_videos != 1 else (batch_j, batch_f)
        return {
            "miou": float(np.mean(batch_j)) if batch_j else 0.0,
            "miou_frame": float(np.mean(all_iou)) if all_iou else 0.0,
            "fscore": float(np.mean(batch_f)) if batch_f else 0.0,
            "fscore_b1": float(np.mean(batch_f1)) if batch_f1 else 0.0,
            "fscore_dataset": float(np.mean(np.asarray(all_curves), axis=0).max()) if all_curves else 0.0,
            "n_frames": float(len(all_iou)),
            "n_clips": float(len(clips)),
            "batch_videos": float(batch_videos),
        }


def _batch_means(clips: Sequence[ClipScores], batch_videos: int) -> tuple[list[float], list[float]]:
    """Per batch of ``batch_videos`` consecutive clips: the mean frame IoU (``mask_iou`` of the
    batch; batches without frames are skipped) and the max over thresholds of the mean F curve
    (0 for a batch without a non-empty GT), as the official ``test.py`` accumulates them."""
    batch_j: list[float] = []
    batch_f: list[float] = []
    for b in range(0, len(clips), batch_videos):
        batch = clips[b : b + batch_videos]
        curves = [cv for c in batch for cv in c.fcurves if cv is not None]
        ious = [x for c in batch for x in c.iou]
        batch_f.append(float(np.mean(np.asarray(curves), axis=0).max()) if curves else 0.0)
        if ious:
            batch_j.append(float(np.mean(ious)))
    return batch_j, batch_f


def frame_areas(
    pred: npt.ArrayLike, gt: npt.ArrayLike, num_classes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per-class (intersection, prediction, label) pixel areas of one frame's label maps."""
    p = np.asarray(pred).astype(np.int64)
    g = np.asarray(gt).astype(np.int64)
    _check_pair(p, g)
    valid = (g >= 0) & (g < num_classes)
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted class indices must be in [0, {num_classes - 1}]")
    pv, gv = p[valid], g[valid]
    inter = np.bincount(pv[pv == gv], minlength=num_classes)[:num_classes]
    area_p = np.bincount(pv, minlength=num_classes)[:num_classes]
    area_g = np.bincount(gv, minlength=num_classes)[:num_classes]
    return inter.astype(np.int64), area_p.astype(np.int64), area_g.astype(np.int64)


@dataclass
class SemanticClipScores:
    """Per-frame, per-class integer areas of one clip (exact, so resuming is bit-identical)."""

    clip_id: str
    frames: list[int]
    inter: list[list[int]] = field(default_factory=list)
    pred: list[list[int]] = field(default_factory=list)
    label: list[list[int]] = field(default_factory=list)

    def frame_terms(self, k: int) -> tuple[FloatVec, FloatVec, FloatVec]:
        """(iou, fscore, present) vectors of frame ``k``, as in ``_batch_miou_fscore``."""
        inter = np.asarray(self.inter[k], dtype=np.float64)
        area_p = np.asarray(self.pred[k], dtype=np.float64)
        area_l = np.asarray(self.label[k], dtype=np.float64)
        union = area_p + area_l - inter
        iou = inter / (SEM_EPS + union)
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = inter / area_p
            rec = inter / area_l
            f = (1.0 + BETA2) * prec * rec / (BETA2 * prec + rec)
        f[np.isnan(f)] = 0.0
        return iou, f, (union > 0).astype(np.float64)

    @property
    def j(self) -> float:
        """Official per-video J: per frame ``sum(iou) / #(iou != 0)`` (0 if none), averaged over frames."""
        vals = []
        for k in range(len(self.inter)):
            iou, _, _ = self.frame_terms(k)
            nz = int(np.count_nonzero(iou))
            vals.append(float(iou.sum() / nz) if nz else 0.0)
        return float(np.mean(vals)) if vals else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "frames": list(self.frames),
            "inter": self.inter,
            "pred": self.pred,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SemanticClipScores:
        def ints(rows: Any) -> list[list[int]]:
            return [[int(x) for x in r] for r in rows]

        return cls(
            str(d["clip_id"]),
            [int(x) for x in d["frames"]],
            ints(d["inter"]),
            ints(d["pred"]),
            ints(d["label"]),
        )


class SemanticMetrics:
    """Accumulates official AVSS mIoU and F clip by clip over ``num_classes`` (71) classes."""

    def __init__(self, num_classes: int = 71) -> None:
        self.num_classes = num_classes
        self._clips: dict[str, SemanticClipScores] = {}

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._clips

    def add_clip(
        self,
        clip_id: str,
        preds: Sequence[npt.ArrayLike],
        gts: Sequence[npt.ArrayLike],
        frames: Sequence[int] | None = None,
    ) -> SemanticClipScores:
        """Score one clip's annotated frames; preds and GTs are class-index maps (background 0)."""
        if len(preds) != len(gts):
            raise ValueError(f"clip {clip_id}: {len(preds)} predictions for {len(gts)} GT maps")
        s = SemanticClipScores(clip_id, list(frames) if frames is not None else list(range(len(gts))))
        for p, g in zip(preds, gts, strict=True):
            i, a, b = frame_areas(p, g, self.num_classes)
            s.inter.append(i.tolist())
            s.pred.append(a.tolist())
            s.label.append(b.tolist())
        self.add_scores(s)
        return s

    def add_scores(self, scores: SemanticClipScores | dict[str, Any]) -> None:
        s = scores if isinstance(scores, SemanticClipScores) else SemanticClipScores.from_dict(scores)
        self._clips[s.clip_id] = s

    @classmethod
    def from_states(
        cls, states: Iterable[SemanticClipScores | dict[str, Any]], num_classes: int = 71
    ) -> SemanticMetrics:
        m = cls(num_classes)
        for s in states:
            m.add_scores(s)
        return m

    def clip_scores(self, clip_id: str) -> SemanticClipScores:
        return self._clips[clip_id]

    def per_clip(self) -> dict[str, dict[str, float]]:
        return {cid: {"j": s.j, "n_frames": float(len(s.inter))} for cid, s in self._clips.items()}

    def per_class(self, order: Sequence[str] | None = None) -> dict[str, list[float]]:
        """Per-class ``iou``, ``fscore`` (sum / count, 0 when never present) and ``count``."""
        n = self.num_classes
        iou_sum, f_sum, count = np.zeros(n), np.zeros(n), np.zeros(n)
        for s in _ordered(self._clips, order):
            for k in range(len(s.inter)):
                iou, f, present = s.frame_terms(k)
                iou_sum += iou
                f_sum += f
                count += present
        with np.errstate(invalid="ignore", divide="ignore"):
            iou_pc = iou_sum / count
            f_pc = f_sum / count
        iou_pc[np.isnan(iou_pc)] = 0.0
        f_pc[np.isnan(f_pc)] = 0.0
        return {"iou": iou_pc.tolist(), "fscore": f_pc.tolist(), "count": count.tolist()}

    def result(self, order: Sequence[str] | None = None) -> dict[str, float]:
        """miou / fscore over all classes (official), *_present over classes that occurred."""
        pc = self.per_class(order)
        iou_pc, f_pc, count = np.asarray(pc["iou"]), np.asarray(pc["fscore"]), np.asarray(pc["count"])
        present = count > 0
        n_frames = sum(len(s.inter) for s in self._clips.values())
        return {
            "miou": float(iou_pc.mean()),
            "fscore": float(f_pc.mean()),
            "miou_present": float(iou_pc[present].mean()) if present.any() else 0.0,
            "fscore_present": float(f_pc[present].mean()) if present.any() else 0.0,
            "n_classes_present": float(present.sum()),
            "n_frames": float(n_frames),
            "n_clips": float(len(self._clips)),
        }
