"""The Hugging Face backend of ``sam``: transformers' SamModel + SamProcessor.

:func:`sa_to_hf_state_dict` renames a segment_anything state dict into SamModel's names, with the
key mapping of transformers' ``models/sam/convert_sam_to_hf.py`` (a script in the transformers
source tree that the wheel does not ship). :func:`hf_config` builds the SamConfig that matches a
:class:`~avseg_sam.model.SamSpec`, so that the tiny variants of both backends hold the same weights.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg_sam.model import (
    HF_WEIGHTS,
    PIXEL_MEAN,
    PIXEL_STD,
    SPECS,
    TINY_SPEC,
    LoadedSam,
    SamSpec,
    build_sam,
)

if TYPE_CHECKING:
    from avseg.runtime import Runtime

# Substring renames, applied in this order to every key (as in transformers' conversion script).
_RENAMES: tuple[tuple[str, str], ...] = (
    ("iou_prediction_head.layers.0", "iou_prediction_head.proj_in"),
    ("iou_prediction_head.layers.1", "iou_prediction_head.layers.0"),
    ("iou_prediction_head.layers.2", "iou_prediction_head.proj_out"),
    ("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
    ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
    ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
    ("mask_downscaling.0", "mask_embed.conv1"),
    ("mask_downscaling.1", "mask_embed.layer_norm1"),
    ("mask_downscaling.3", "mask_embed.conv2"),
    ("mask_downscaling.4", "mask_embed.layer_norm2"),
    ("mask_downscaling.6", "mask_embed.conv3"),
    ("point_embeddings", "point_embed"),
    ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
    ("image_encoder", "vision_encoder"),
    ("neck.0", "neck.conv1"),
    ("neck.1", "neck.layer_norm1"),
    ("neck.2", "neck.conv2"),
    ("neck.3", "neck.layer_norm2"),
    ("patch_embed.proj", "patch_embed.projection"),
    (".norm", ".layer_norm"),
    ("blocks", "layers"),
)
_HYPER = re.compile(r".*output_hypernetworks_mlps\.(\d+)\.layers\.(\d+).*")
_HYPER_LAYER = {0: "proj_in", 1: "layers.0", 2: "proj_out"}


def sa_to_hf_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """segment_anything ``Sam`` state dict -> transformers ``SamModel`` state dict (the same tensors)."""
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if key in ("pixel_mean", "pixel_std"):
            continue
        for old, new in _RENAMES:
            if old in key:
                key = key.replace(old, new)
        m = _HYPER.match(key)
        if m:
            layer = int(m.group(2))
            key = key.replace(f"layers.{layer}", _HYPER_LAYER[layer])
        out[key] = value
    # SamModel holds the random Fourier matrix twice (tied): also for the image-wide positional embedding.
    out["shared_image_embedding.positional_embedding"] = out["prompt_encoder.shared_embedding.positional_embedding"]
    return out


def hf_config(spec: SamSpec) -> Any:
    """A transformers SamConfig with ``spec``'s sizes."""
    from transformers import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig

    vision = SamVisionConfig(
        hidden_size=spec.encoder_embed_dim,
        output_channels=spec.prompt_embed_dim,
        num_hidden_layers=spec.encoder_depth,
        num_attention_heads=spec.encoder_num_heads,
        image_size=spec.img_size,
        patch_size=spec.patch_size,
        window_size=spec.window_size,
        global_attn_indexes=list(spec.encoder_global_attn_indexes),
        num_pos_feats=spec.prompt_embed_dim // 2,
        mlp_ratio=4.0,
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=spec.prompt_embed_dim,
        image_size=spec.img_size,
        patch_size=spec.patch_size,
        mask_input_channels=spec.mask_in_chans,
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=spec.prompt_embed_dim,
        mlp_dim=spec.decoder_mlp_dim,
        num_attention_heads=spec.decoder_num_heads,
        iou_head_hidden_dim=spec.iou_head_hidden_dim,
    )
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def hf_processor(img_size: int) -> Any:
    """SamProcessor doing SAM's own preprocessing: PIL bilinear resize of the long side, normalise, pad.

    Normalisation uses mean/std in 0..255 units without the 1/255 rescale, i.e. the arithmetic of
    ``Sam.preprocess``. (The checkpoints' processor configs rescale first: equal in exact arithmetic,
    not bit for bit.)
    """
    from transformers import SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    image_processor = SamImageProcessorPil(
        size={"longest_edge": img_size},
        pad_size={"height": img_size, "width": img_size},
        do_rescale=False,
        do_normalize=True,
        image_mean=list(PIXEL_MEAN),
        image_std=list(PIXEL_STD),
        do_pad=True,
    )
    return SamProcessor(image_processor=image_processor)


class HfSam:
    """SamModel + SamProcessor, built once per process through ``runtime.share``."""

    def __init__(self, model: Any, processor: Any, img_size: int) -> None:
        self.model = model
        self.processor = processor
        self.img_size = img_size

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.model.parameters()).dtype

    def encode(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """Image embedding (1,C,h,w) with the resized (input) and original sizes."""
        import torch

        enc = self.processor(images=frame, return_tensors="pt")
        pixel_values = torch.as_tensor(enc["pixel_values"]).to(self.device, self.dtype)
        with torch.inference_mode():
            features = self.model.get_image_embeddings(pixel_values)
        return {
            "features": features.float().cpu().numpy(),
            "input_size": np.asarray(enc["reshaped_input_sizes"][0], dtype=np.int64),
            "original_size": np.asarray(enc["original_sizes"][0], dtype=np.int64),
        }

    def decode(self, emb: dict[str, np.ndarray], boxes: np.ndarray) -> tuple[Any, Any]:
        """Low-res logits (N,1,h,w) and predicted IoU (N,) for ``boxes`` (N,4) in original pixels."""
        import torch

        original = tuple(int(v) for v in emb["original_size"])
        # SamProcessor's box scaling (float64, like segment_anything's apply_boxes), then float32
        scaled = self.processor._normalize_coordinates(self.img_size, boxes, original, is_bounding_box=True)
        box_t = torch.as_tensor(scaled, dtype=torch.float32, device=self.device)[None].to(self.dtype)
        features = torch.from_numpy(emb["features"]).to(self.device, self.dtype)
        with torch.inference_mode():
            out = self.model(image_embeddings=features, input_boxes=box_t, multimask_output=False)
        return out.pred_masks[0], out.iou_scores[0, :, 0]


def load_hf(runtime: Runtime, component: str, variant: str, checkpoint: str | None) -> tuple[HfSam, LoadedSam]:
    """The transformers backend for ``variant`` (tiny: SamConfig at tiny sizes, weights converted from tiny SAM)."""
    from avseg.models import build_model, load_checkpoint, resolve_weights, shared_model

    weights = resolve_weights(component, runtime, f"hf-{variant}", [HF_WEIGHTS[variant]], [checkpoint])
    spec = TINY_SPEC if weights.mode == "tiny" else SPECS[variant]
    device, dtype = runtime.torch_device(), runtime.torch_dtype()

    def converted() -> tuple[Any, int]:  # tiny, or random_init: the same seeded weights as segment_anything's
        from transformers import SamModel

        model = SamModel(hf_config(spec))
        sa = build_sam(spec, seed=weights.seed)
        load_checkpoint(model, sa_to_hf_state_dict(sa.state_dict()), f"{weights.mode} SAM -> SamModel conversion")
        return model, spec.img_size

    def pretrained(w: Any) -> tuple[Any, int]:
        from transformers import SamModel

        model = SamModel.from_pretrained(str(w.file(0)))
        return model, int(model.config.vision_config.image_size)

    def factory() -> HfSam:
        model, img_size = build_model(weights, tiny=converted, random=converted, pretrained=pretrained)
        return HfSam(model.to(device=device, dtype=dtype).eval(), hf_processor(img_size), img_size)

    hf = shared_model(runtime, "sam/hf", variant, weights, factory)
    return hf, LoadedSam(hf.model, spec, weights, weights.tag())
