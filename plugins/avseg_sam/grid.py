"""``sam-grid``: SAM's automatic mask generator (point grid + NMS) as a mask-giving proposer.

It shares the SAM model (``runtime.share``) and the per-frame image embedding (``runtime.memo``)
with the ``sam`` segmenter: the generator's predictor gets the memoised embedding instead of
running the image encoder again. That is only valid because crops are off (``crop_n_layers=0``):
the one "crop" is the whole frame, whose embedding is exactly the memoised one.

``points: grid`` prompts SAM's regular grid (the generator's ``points_per_side``); ``points:
random`` (the CMSF paper: "points placed randomly") moves each grid point to a uniformly random
place inside its own grid cell, drawn once from ``seed``, so the points stay spread over the whole
frame as densely as the grid's, every frame gets the same points, and a run is repeatable. The
paper says neither how many points nor how they are drawn; the jitter within cells is avseg's
reading of it. Duplicates are removed by the generator's own box NMS (``box_nms_thresh``; the
paper's NMS at IoU 0.5 in the sam-bind preset).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.models import ModelComponent
from avseg.runtime import Runtime
from avseg.types import Image, Proposals
from avseg.weights import WeightFile
from avseg_sam.model import DECLARED_WEIGHTS, require_modules


class SamGridConfig(ComponentConfig):
    variant: Literal["vit_h", "vit_l", "vit_b"] = Field("vit_h", description="SAM image encoder size")
    checkpoint: str | None = Field(None, description="explicit segment_anything .pth checkpoint")
    points_per_side: int = Field(32, ge=1, le=256, description="grid of points_per_side² point prompts")
    points: Literal["grid", "random"] = Field(
        "grid", description="grid: SAM's regular grid; random: each grid point moved to a random place "
        "in its cell (seeded, the same for every frame)",
    )
    seed: int = Field(0, ge=0, description="points=random: seed of the points' positions")
    pred_iou_thresh: float = Field(0.88, ge=0.0, le=1.0, description="keep masks with predicted IoU above this")
    stability_score_thresh: float = Field(0.95, ge=0.0, le=1.0, description="keep masks at least this stable")
    box_nms_thresh: float = Field(0.7, gt=0.0, le=1.0, description="box IoU above which duplicates are removed")
    min_mask_region_area: int = Field(0, ge=0, description="remove holes/islands smaller than this (pixels)")
    points_per_batch: int = Field(
        64, ge=1, description="point prompts per decoder call", json_schema_extra={"affects_output": False}
    )
    working_size: int = Field(
        1024, ge=64, le=4096, description="frames with a longer side are shrunk to it for mask generation (SAM "
        "itself works at 1024 px) and the masks scaled back to the frame's size: bounds memory on large frames",
    )


def _memo_predictor(model: Any, embed: Any, autocast: Any) -> Any:
    """A SamPredictor whose ``set_image`` takes the embedding from ``embed(image)`` (the memo).

    ``predict_torch`` runs under ``autocast()`` (half precision on a GPU) and hands float32 back:
    the generator's bookkeeping (``MaskData.to_numpy``) cannot take bf16 tensors.
    """
    import torch
    from segment_anything import SamPredictor

    class MemoPredictor(SamPredictor):  # type: ignore[misc]
        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            if image_format != self.model.image_format:
                image = image[..., ::-1]
            emb = embed(np.ascontiguousarray(image))
            self.reset_image()
            self.original_size = tuple(int(v) for v in emb["original_size"])
            self.input_size = tuple(int(v) for v in emb["input_size"])
            self.features = torch.from_numpy(emb["features"]).to(self.device, self.model.pixel_mean.dtype)
            self.is_image_set = True

        def predict_torch(self, *args: Any, **kwargs: Any) -> Any:
            with autocast():
                out = super().predict_torch(*args, **kwargs)
            return tuple(t if t.dtype == torch.bool else t.float() for t in out)

    return MemoPredictor(model)


def random_point_grid(n: int, seed: int) -> np.ndarray:
    """(n², 2) points in [0, 1]: cell (i, j) of an n x n grid holds one point at a uniformly random
    place inside it (SAM's regular grid puts it at the cell's centre), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    cells = np.stack(np.meshgrid(np.arange(n), np.arange(n)), axis=-1).reshape(-1, 2)  # (x, y) as SAM orders them
    return np.asarray((cells + rng.random((n * n, 2))) / n, dtype=np.float64)


def shrink(frame: Image, size: int) -> Image:
    """``frame`` with its longer side at most ``size`` px (area interpolation), else itself."""
    h, w = frame.shape[:2]
    if max(h, w) <= size:
        return frame
    import cv2

    scale = size / max(h, w)
    return np.ascontiguousarray(cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                                           interpolation=cv2.INTER_AREA))


def grow_masks(masks: Sequence[np.ndarray], h: int, w: int) -> np.ndarray:
    """(n, h, w) bool from masks at the working size (nearest neighbour; one mask at a time)."""
    out = np.zeros((len(masks), h, w), bool)
    for i, m in enumerate(masks):
        m = np.asarray(m, dtype=bool)
        if m.shape == (h, w):
            out[i] = m
        else:
            import cv2

            out[i] = cv2.resize(m.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return out


class SamGridProposer(ModelComponent, Proposer):
    name: ClassVar[str] = "sam-grid"
    description: ClassVar[str] = "Segment Anything automatic masks from a point grid (masks, no prompts)"
    Config: ClassVar[type[ComponentConfig]] = SamGridConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "torchvision", "segment_anything")
    extra: ClassVar[str | None] = "sam"
    weights: ClassVar[dict[str, list[WeightFile]]] = {v: w for v, w in DECLARED_WEIGHTS.items() if "hf" not in v}
    default_variant: ClassVar[str | None] = "vit_h"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs_prompts=False, has_vocabulary=False, gives_masks=True, gives_labels=False)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, SamGridConfig)
        self.cfg = config
        who = f"proposer '{self.name}'"
        require_modules(who, ("torch", "torchvision", "segment_anything"))
        if config.min_mask_region_area > 0:
            require_modules(who, ("cv2",))
        from segment_anything import SamAutomaticMaskGenerator

        from avseg_sam.model import autocast, load_sa, memo_namespace

        self.loaded = load_sa(runtime, who, config.variant, config.checkpoint)
        self.model_weights = self.loaded.weights
        # the same namespace as the sam segmenter's: one encoding per frame for both
        self.namespace = memo_namespace("sam-image", config.variant, self.loaded, runtime)
        grids = None if config.points == "grid" else [random_point_grid(config.points_per_side, config.seed)]
        self.generator = SamAutomaticMaskGenerator(
            self.loaded.model,
            points_per_side=config.points_per_side if grids is None else None,
            point_grids=grids,
            points_per_batch=config.points_per_batch,
            pred_iou_thresh=config.pred_iou_thresh,
            stability_score_thresh=config.stability_score_thresh,
            box_nms_thresh=config.box_nms_thresh,
            crop_n_layers=0,  # required for sharing the whole-frame embedding
            min_mask_region_area=config.min_mask_region_area,
            output_mode="binary_mask",
        )
        self.generator.predictor = _memo_predictor(self.loaded.model, self.embedding, lambda: autocast(runtime))

    def embedding(self, frame: Image) -> dict[str, np.ndarray]:
        from avseg_sam.model import memo_image_embedding, sa_encoder

        return memo_image_embedding(self.runtime, self.namespace, frame, sa_encoder(self.loaded.model, self.runtime))

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        import torch

        out: list[Proposals] = []
        for frame in frames:
            h, w = frame.shape[:2]
            small = shrink(frame, self.cfg.working_size)
            with torch.inference_mode():
                anns = self.generator.generate(small)
            n_points = self.cfg.points_per_side**2
            self.runtime.count("sam-grid.decoder_calls", -(-n_points // self.cfg.points_per_batch))
            self.runtime.count("sam-grid.masks", len(anns))
            if not anns:
                out.append(
                    Proposals(
                        np.zeros((0, 4), np.float32),
                        np.zeros(0, np.float32),
                        masks=np.zeros((0, h, w), bool),
                        mask_scores=np.zeros(0, np.float32),
                    )
                )
                continue
            xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
            boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            scores = np.asarray([a["predicted_iou"] for a in anns], dtype=np.float32)
            masks = grow_masks([a["segmentation"] for a in anns], h, w)
            if small.shape[:2] != (h, w):
                sy, sx = h / small.shape[0], w / small.shape[1]
                boxes = boxes * np.asarray([sx, sy, sx, sy], np.float32)
            out.append(Proposals(boxes, scores, masks=masks, mask_scores=scores.copy()))
        return out
