"""``sam``: box prompts -> one mask per box, with SAM's predicted IoU as the score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Segmenter
from avseg.models import ModelComponent
from avseg.runtime import Runtime
from avseg.types import FloatArray, Image, SegmenterOutput
from avseg.weights import WeightFile
from avseg_sam.model import DECLARED_WEIGHTS, require_modules


class SamConfig(ComponentConfig):
    variant: Literal["vit_h", "vit_l", "vit_b"] = Field("vit_h", description="SAM image encoder size")
    checkpoint: str | None = Field(
        None,
        description="explicit checkpoint: a .pth file (backend segment_anything) or a SamModel folder (backend hf)",
    )
    backend: Literal["segment_anything", "hf"] = Field(
        "segment_anything", description="segment_anything (Meta's package) or hf (transformers' SamModel)"
    )
    decoder_batch: int | None = Field(
        None,
        ge=0,
        description=(
            "boxes per mask-decoder call; 0 = all boxes of a frame in one call; null = per device "
            "(32 on CPU, 64 on GPU): each box costs ~50-100 MB of activations at real size, so an "
            "unbounded call OOMs when a detector returns hundreds of boxes"
        ),
        json_schema_extra={"affects_output": False},
    )


#: boxes per decoder call when ``decoder_batch`` is null, by device type
AUTO_DECODER_BATCH = {"cpu": 32, "cuda": 64}


class SamSegmenter(ModelComponent, Segmenter):
    name: ClassVar[str] = "sam"
    description: ClassVar[str] = "Segment Anything: one mask per box prompt, one image encoding per frame"
    Config: ClassVar[type[ComponentConfig]] = SamConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "segment_anything")
    extra: ClassVar[str | None] = "sam"
    weights: ClassVar[dict[str, list[WeightFile]]] = DECLARED_WEIGHTS
    default_variant: ClassVar[str | None] = "vit_h"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, SamConfig)
        self.cfg = config
        who = f"segmenter '{self.name}'"
        if config.backend == "hf":
            require_modules(who, ("torch", "transformers"))
            # the tiny and random_init variants convert a segment_anything model, so they need that package too
            if runtime.tiny or runtime.random_init:
                require_modules(who, ("segment_anything",))
            from avseg_sam.convert import load_hf
            from avseg_sam.model import memo_namespace

            self.hf, self.loaded = load_hf(runtime, who, config.variant, config.checkpoint)
            self.model_weights = self.loaded.weights
            self.namespace = memo_namespace("sam-image-hf", config.variant, self.loaded, runtime)
        else:
            require_modules(who, ("torch", "torchvision", "segment_anything"))
            from segment_anything.utils.transforms import ResizeLongestSide

            from avseg_sam.model import load_sa, memo_namespace

            self.loaded = load_sa(runtime, who, config.variant, config.checkpoint)
            self.model_weights = self.loaded.weights
            self.model = self.loaded.model
            self.transform = ResizeLongestSide(self.model.image_encoder.img_size)
            self.namespace = memo_namespace("sam-image", config.variant, self.loaded, runtime)

    # -- one image encoding per frame, shared through runtime.memo ------------------------------------
    def embedding(self, frame: Image) -> dict[str, np.ndarray]:
        from avseg_sam.model import memo_image_embedding, sa_encoder

        encode = self.hf.encode if self.cfg.backend == "hf" else sa_encoder(self.model, self.runtime)
        return memo_image_embedding(self.runtime, self.namespace, frame, encode)

    # -- decoding -------------------------------------------------------------------------------------
    def _decode_sa(self, emb: dict[str, np.ndarray], boxes: FloatArray) -> tuple[Any, Any]:
        import torch

        model = self.model
        original = (int(emb["original_size"][0]), int(emb["original_size"][1]))
        # the numpy (float64) transform that SamPredictor.predict applies, then float32 as it does
        scaled = self.transform.apply_boxes(boxes.astype(np.float64), original)
        box_t = torch.as_tensor(scaled, dtype=torch.float, device=model.device).to(model.pixel_mean.dtype)
        features = torch.from_numpy(emb["features"]).to(model.device, model.pixel_mean.dtype)
        from avseg_sam.model import autocast

        with torch.inference_mode(), autocast(self.runtime):
            sparse, dense = model.prompt_encoder(points=None, boxes=box_t, masks=None)
            low_res, iou = model.mask_decoder(
                image_embeddings=features,
                image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
        return low_res, iou[:, 0]

    def _decoder_batch(self) -> int:
        if self.cfg.decoder_batch is not None:
            return int(self.cfg.decoder_batch)
        return AUTO_DECODER_BATCH.get(self.runtime.torch_device().type, 32)

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        import torch

        from avseg_sam.model import postprocess_masks

        if len(frames) != len(boxes):
            raise ValueError(f"sam: {len(frames)} frames but {len(boxes)} box sets")
        # the model's own input size (a local HF folder need not have the variant's standard sizes)
        img_size = self.hf.img_size if self.cfg.backend == "hf" else int(self.model.image_encoder.img_size)
        outputs: list[SegmenterOutput] = []
        for frame, frame_boxes in zip(frames, boxes, strict=True):
            h, w = frame.shape[:2]
            b = np.asarray(frame_boxes, dtype=np.float32).reshape(-1, 4)
            if len(b) == 0:
                outputs.append(SegmenterOutput(np.zeros((0, h, w), dtype=bool), np.zeros(0, dtype=np.float32)))
                continue
            emb = self.embedding(frame)
            input_size = (int(emb["input_size"][0]), int(emb["input_size"][1]))
            step = self._decoder_batch() or len(b)
            masks, scores = [], []
            for s in range(0, len(b), step):
                chunk = b[s : s + step]
                if self.cfg.backend == "hf":
                    low_res, iou = self.hf.decode(emb, chunk)
                else:
                    low_res, iou = self._decode_sa(emb, chunk)
                self.runtime.count("sam.decoder_calls")
                with torch.inference_mode():
                    logits = postprocess_masks(low_res, img_size, input_size, (h, w))
                masks.append((logits[:, 0] > 0.0).cpu().numpy())
                scores.append(iou.float().cpu().numpy())
            self.runtime.count("sam.masks", len(b))
            outputs.append(SegmenterOutput(np.concatenate(masks), np.concatenate(scores).astype(np.float32)))
        return outputs
