"""``owod``: class-agnostic boxes from OWLv2's objectness head (a stand-in for CMSF's MAVL).

OWLv2 predicts one box and one objectness logit per image patch, without any text query. We
run only its vision tower (``Owlv2ForObjectDetection.image_embedder``) and the two heads
(``objectness_predictor``, ``box_predictor``), exactly the calls its ``forward`` makes, then:

1. score = sigmoid(objectness logit);
2. boxes cxcywh (normalised to the PADDED square image the processor built: frames are padded
   at the bottom/right to ``max(H, W)`` before resizing) -> xyxy pixels: multiply by
   ``max(H, W)``, then clip to the frame (``[0, W] x [0, H]``);
3. drop boxes that clipping left with zero area (they lay in the padding, not in the frame).

By default that is all: every candidate box reaches the chain, sorted by score, descending, so
the paper's tau_BB (the ``score-threshold`` filter), an NMS (the ``nms`` filter with
``use_masks: false``) and a top-k cap (the ``top-k`` filter) are filters in the preset, and each
box they drop is traced with its reason like any other drop. The options below apply the same
three steps inside the proposer instead (untraced; kept so that earlier specs run unchanged):

4. keep score > ``box_threshold`` (None: off);
5. class-agnostic NMS at ``nms_iou`` (torchvision.ops.nms; None: off);
6. keep the ``top_k`` best (after NMS, so up to ``top_k`` distinct boxes survive; None: all).

A MAVL (or any other class-agnostic detector) plugin can replace this one: it only has to return
boxes and scores per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.errors import DependencyMissing
from avseg.models import ModelComponent, ModelWeights, build_model, shared_model
from avseg.runtime import Runtime
from avseg.types import Image, Proposals
from avseg.weights import WeightFile, load_hf_folder

#: the tiny variant's square input side (patch 16 -> a 4x4 grid of boxes)
TINY_IMAGE_SIZE = 64


class OwodConfig(ComponentConfig):
    variant: Literal["base", "large"] = Field(
        "base", description="owlv2-base-patch16-ensemble or owlv2-large-patch14-ensemble"
    )
    checkpoint: str | None = Field(
        None, description="a local folder holding the HF checkpoint (overrides lookup)"
    )
    box_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="inside the proposer, untraced: keep boxes whose objectness exceeds this (None: off; "
        "presets use the score-threshold filter for tau_BB instead)",
    )
    top_k: int | None = Field(
        None, ge=1, description="inside the proposer, untraced: keep at most this many boxes per frame "
        "(None: all; presets use the top-k filter)",
    )
    nms_iou: float | None = Field(
        None, gt=0.0, le=1.0, description="inside the proposer, untraced: class-agnostic NMS IoU threshold "
        "(None: off; presets use the nms filter)",
    )
    batch_size: int = Field(
        8, ge=1, description="frames per forward pass", json_schema_extra={"affects_output": False}
    )


def tiny_config() -> Any:
    from transformers import Owlv2Config

    return Owlv2Config(
        text_config={
            "vocab_size": 64,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": 62,
            "eos_token_id": 63,
        },
        vision_config={
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 16,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=32,
        # the heads' Linear layers are drawn with std = initializer_factor; 1.0 (the default)
        # saturates every sigmoid at these sizes, 0.1 gives spread-out scores and boxes
        initializer_factor=0.1,
    )


#: OWLv2's real sizes (``runtime.random_init``): owlv2-base-patch16-ensemble (Owlv2Config's defaults)
#: and owlv2-large-patch14-ensemble; the image processor resizes (pads to square) to ``image_size``.
REAL_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(
        text_config={
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
        },
        vision_config={
            "image_size": 960,
            "patch_size": 16,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
        },
        projection_dim=512,
    ),
    "large": dict(
        text_config={
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
        },
        vision_config={
            "image_size": 1008,
            "patch_size": 14,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
        },
        projection_dim=768,
    ),
}


def real_config(variant: str) -> Any:
    """The Owlv2Config of google/owlv2-``variant``-patch16/14-ensemble at its real sizes."""
    from transformers import Owlv2Config

    return Owlv2Config(**REAL_SIZES[variant])


def build_random(variant: str, seed: int) -> tuple[Any, Any]:
    """(model, image processor) for ``runtime.random_init``: the real architecture and input size,
    random weights seeded with ``seed``."""
    import torch
    from transformers import Owlv2ForObjectDetection, Owlv2ImageProcessor

    cfg = real_config(variant)
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(cfg)
    side = int(cfg.vision_config.image_size)
    return model, Owlv2ImageProcessor(size={"height": side, "width": side})


def build_tiny(seed: int) -> tuple[Any, Any]:
    """(model, image processor) of the tiny variant, random weights seeded with ``seed``."""
    import torch
    from transformers import Owlv2ForObjectDetection, Owlv2ImageProcessor

    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(tiny_config())
    image_processor = Owlv2ImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    return model, image_processor


def authors_image_processor(image_processor: Any) -> Any:
    """The image processor that reproduces the OWLv2 authors' preprocessing (scenic's OWL-ViT
    code: pad to a square with grey 0.5 at the bottom/right, ``skimage.transform.resize`` with
    anti-aliasing, CLIP normalisation): transformers' PIL/scipy backend, a port of that skimage
    resize. transformers 5's default (torchvision) backend approximates the Gaussian
    anti-aliasing and interpolation and differs by up to 1.02 in normalised pixel values; see
    docs/plugins/owod.md. On transformers 4 the default class is already the scipy one."""
    try:
        from transformers import Owlv2ImageProcessorPil
    except ImportError:  # transformers 4
        return image_processor
    if isinstance(image_processor, Owlv2ImageProcessorPil):
        return image_processor
    return Owlv2ImageProcessorPil(**image_processor.to_dict())


def postprocess(
    objectness_logits: Any,
    pred_boxes: Any,
    frame_size: tuple[int, int],
    box_threshold: float | None = None,
    top_k: int | None = None,
    nms_iou: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame's raw OWLv2 outputs -> (boxes xyxy pixels (N, 4), scores (N,)), sorted by score."""
    import torch
    from torchvision.ops import box_convert, nms

    h, w = frame_size
    side = float(max(h, w))
    scores = torch.sigmoid(objectness_logits.float())
    boxes = box_convert(pred_boxes.float(), "cxcywh", "xyxy") * side
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0.0, float(w))
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0.0, float(h))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if box_threshold is not None:
        keep &= scores > box_threshold
    boxes, scores = boxes[keep], scores[keep]
    if nms_iou is not None and len(boxes):
        order = nms(boxes, scores, nms_iou)  # sorted by score, descending
    else:
        order = torch.argsort(scores, descending=True, stable=True)
    if top_k is not None:
        order = order[:top_k]
    return boxes[order].cpu().numpy().astype(np.float32), scores[order].cpu().numpy().astype(np.float32)


#: frames larger than this many times the model's input side are box-averaged down first
SHRINK_ABOVE = 8


def shrink_for(frame: Image, side: int) -> Image:
    """``frame`` reduced by an integer factor (box average) when its long side exceeds
    ``SHRINK_ABOVE * side``. The processor's anti-aliasing blur has a sigma that grows with the
    downscale factor: a 4000 px frame for the 64 px tiny model took minutes. Boxes are predicted
    in coordinates normalised to the (padded) frame, so a uniform reduction leaves them in place."""
    k = -(-max(frame.shape[:2]) // (SHRINK_ABOVE * side))
    if k <= 1:
        return frame
    from PIL import Image as PILImage

    return np.array(PILImage.fromarray(np.ascontiguousarray(frame)).reduce(k), dtype=np.uint8)


class OwlV2ObjectnessProposer(ModelComponent, Proposer):
    name: ClassVar[str] = "owod"
    description: ClassVar[str] = (
        "class-agnostic boxes from OWLv2's objectness head (stand-in for MAVL), transformers"
    )
    Config: ClassVar[type[ComponentConfig]] = OwodConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "torchvision", "transformers")
    extra: ClassVar[str | None] = "owod"
    weights: ClassVar[dict[str, list[WeightFile]]] = {
        "base": [
            WeightFile(
                "owlv2-base-patch16-ensemble",
                hf_repo="google/owlv2-base-patch16-ensemble",
                hf_files=("config.json", "preprocessor_config.json"),
                licence="Apache-2.0",
            )
        ],
        "large": [
            WeightFile(
                "owlv2-large-patch14-ensemble",
                hf_repo="google/owlv2-large-patch14-ensemble",
                hf_files=("config.json", "preprocessor_config.json"),
                licence="Apache-2.0",
            )
        ],
    }
    default_variant: ClassVar[str | None] = "base"

    config: OwodConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs_prompts=False, has_vocabulary=False, gives_masks=False, gives_labels=False)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        try:
            import torch  # noqa: F401
            import torchvision  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise DependencyMissing(
                f"proposer 'owod' needs {exc.name or 'transformers'}: pip install 'avseg[owod]'"
            ) from None
        self.device = runtime.torch_device()
        self.dtype = runtime.torch_dtype()
        weights = self.resolve_weights(self.config.variant, self.weights[self.config.variant][:1],
                                       [self.config.checkpoint])
        self.model, self.image_processor = shared_model(runtime, "owod", self.config.variant, weights, self._load)
        self.image_size = int(self.model.config.vision_config.image_size)

    def _load(self) -> tuple[Any, Any]:
        def pretrained(w: ModelWeights) -> tuple[Any, Any]:
            from transformers import Owlv2ForObjectDetection, Owlv2ImageProcessor

            return load_hf_folder("proposer 'owod'", w.file(0), Owlv2ForObjectDetection, Owlv2ImageProcessor)

        assert self.model_weights is not None
        model, image_processor = build_model(
            self.model_weights, tiny=lambda: build_tiny(self.runtime.seed),
            random=lambda: build_random(self.config.variant, self.runtime.seed), pretrained=pretrained)
        model = model.to(device=self.device, dtype=self.dtype).eval()
        return model, authors_image_processor(image_processor)

    def raw_outputs(self, images: list[Image]) -> tuple[Any, Any]:
        """(objectness_logits (B, P), pred_boxes (B, P, 4) cxcywh in [0, 1] of the padded square)."""
        import torch

        images = [shrink_for(im, self.image_size) for im in images]
        pixel_values = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            feature_map, _ = self.model.image_embedder(pixel_values=pixel_values)
            b, gh, gw, d = feature_map.shape
            image_feats = feature_map.reshape(b, gh * gw, d)
            objectness = self.model.objectness_predictor(image_feats)
            boxes = self.model.box_predictor(image_feats, feature_map)
        self.runtime.count("owod.forward_passes")
        self.runtime.count("owod.frames", len(images))
        return objectness, boxes

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        frames = [np.ascontiguousarray(f) for f in frames]
        out: list[Proposals] = []
        bs = self.config.batch_size
        for s in range(0, len(frames), bs):
            batch = frames[s : s + bs]
            objectness, boxes = self.raw_outputs(batch)
            for j, im in enumerate(batch):
                b, sc = postprocess(
                    objectness[j],
                    boxes[j],
                    (int(im.shape[0]), int(im.shape[1])),
                    self.config.box_threshold,
                    self.config.top_k,
                    self.config.nms_iou,
                )
                out.append(Proposals(boxes=b, scores=sc))
                self.runtime.count("owod.boxes", len(b))
        return out
