"""SAM 2 / EdgeTAM model building for ``sam2``: declared weights, the real and tiny sizes, loading.

One variant gives two transformers models that share a checkpoint: the image model (Sam2Model or
EdgeTamModel, for box prompts on one frame) and the video model (Sam2VideoModel or
EdgeTamVideoModel, whose memory propagates objects through a clip). torch and transformers are
imported inside functions only, so that importing this module never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avseg.weights import WeightFile, hf_config_weights, load_hf_folder

if TYPE_CHECKING:
    from avseg.models import ModelWeights
    from avseg.runtime import Runtime

#: variant -> Hugging Face checkpoint (each holds the image and the video model's weights)
HF_REPOS: dict[str, str] = {
    "tiny": "facebook/sam2.1-hiera-tiny",
    "small": "facebook/sam2.1-hiera-small",
    "base-plus": "facebook/sam2.1-hiera-base-plus",
    "large": "facebook/sam2.1-hiera-large",
    "edgetam": "yonigozlan/EdgeTAM-hf",
}

WEIGHTS: dict[str, list[WeightFile]] = hf_config_weights(HF_REPOS, licence="Apache-2.0")

#: Hiera backbone sizes of the SAM 2.1 checkpoints (sam2.1_hiera_{t,s,b+,l}.yaml)
HIERA: dict[str, dict[str, Any]] = {
    "tiny": dict(blocks_per_stage=[1, 2, 7, 2], global_attention_blocks=[5, 7, 9]),
    "small": dict(blocks_per_stage=[1, 2, 11, 2], global_attention_blocks=[7, 10, 13]),
    "base-plus": dict(
        hidden_size=112,
        num_attention_heads=2,
        blocks_per_stage=[2, 3, 16, 3],
        embed_dim_per_stage=[112, 224, 448, 896],
        num_attention_heads_per_stage=[2, 4, 8, 16],
        global_attention_blocks=[12, 16, 20],
        window_positional_embedding_background_size=[14, 14],
    ),
    "large": dict(
        hidden_size=144,
        num_attention_heads=2,
        blocks_per_stage=[2, 6, 36, 4],
        embed_dim_per_stage=[144, 288, 576, 1152],
        num_attention_heads_per_stage=[2, 4, 8, 16],
        window_size_per_stage=[8, 4, 16, 8],
        global_attention_blocks=[23, 33, 43],
    ),
}

#: the tiny variant's input side: 128 px -> feature maps of 32, 16 and 8 (the 1024 model's /4 /8 /16)
TINY_SIZE = 128
#: the tiny heads' width. The memory's object pointers are split into hidden/64 tokens of the
#: 64-channel memory; transformers' video model needs that split (hidden > 64), so 128 is the least.
TINY_HIDDEN = 128


#: the tiny models' object-presence bias (sigmoid ~ 0.88)
TINY_PRESENCE_BIAS = 2.0


def _tiny_parts(edgetam: bool) -> dict[str, Any]:
    s, h = TINY_SIZE, TINY_HIDDEN
    if edgetam:
        backbone: Any = edgetam_backbone()  # RepViT-M1 (timm) at its own widths
        channels = [384, 192, 96, 48]
    else:
        backbone = dict(
            model_type="sam2_hiera_det_model",
            hidden_size=16,
            num_attention_heads=1,
            image_size=[s, s],
            blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128],
            num_attention_heads_per_stage=[1, 1, 2, 2],
            window_size_per_stage=[4, 4, 4, 2],
            # a global block may not be a stage's first (query-pooling) block
            global_attention_blocks=[3],
            window_positional_embedding_background_size=[2, 2],
        )
        channels = [128, 64, 32, 16]
    vision: dict[str, Any] = dict(
        backbone_channel_list=channels,
        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
        fpn_hidden_size=h,
    )
    vision["backbone_config"] = backbone
    if edgetam:  # EdgeTamVideoConfig would otherwise read the dict as a SAM 2 (Hiera) vision config
        vision["model_type"] = "edgetam_vision_model"
    return dict(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=h, image_size=s, patch_size=16),
        mask_decoder_config=dict(hidden_size=h, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )


def _tiny_video_extra(edgetam: bool) -> dict[str, Any]:
    s, h = TINY_SIZE, TINY_HIDDEN
    extra: dict[str, Any] = dict(
        image_size=s,
        num_maskmem=3,
        memory_attention_hidden_size=h,
        memory_attention_num_layers=1,
        memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=h,
        mask_downsampler_embed_dim=h,
        memory_fuser_embed_dim=h,
        memory_fuser_intermediate_dim=64,
    )
    if edgetam:
        extra.update(memory_attention_mlp_hidden_size=64, memory_attention_rope_k_sizes=[4, 4],
                     perceiver_resampler_num_latents=16, perceiver_resampler_num_latents_2d=16)
    else:
        extra["memory_attention_feed_forward_hidden_size"] = 64
    return extra


#: EdgeTAM's image encoder: timm's RepViT-M1, its four stages out (spelt out: the config class's
#: own default misspells the architecture key and falls back to another network)
EDGETAM_BACKBONE: dict[str, Any] = dict(
    architecture="repvit_m1",
    model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]},
)


def edgetam_backbone() -> Any:
    from transformers import TimmWrapperConfig

    return TimmWrapperConfig(**EDGETAM_BACKBONE)


def _real_parts(variant: str) -> dict[str, Any]:
    if variant == "edgetam":  # otherwise the EdgeTAM configs' defaults are the checkpoint's sizes
        return dict(vision_config=dict(model_type="edgetam_vision_model", backbone_config=edgetam_backbone()))
    h = HIERA[variant]
    dims = h.get("embed_dim_per_stage", [96, 192, 384, 768])
    return dict(
        vision_config=dict(
            backbone_config=dict(model_type="sam2_hiera_det_model", **h),
            backbone_channel_list=list(reversed(dims)),
        )
    )


def classes(variant: str) -> tuple[Any, Any, Any, Any]:
    """(image config, image model, video config, video model) classes of ``variant``."""
    if variant == "edgetam":
        from transformers import EdgeTamConfig, EdgeTamModel, EdgeTamVideoConfig, EdgeTamVideoModel

        return EdgeTamConfig, EdgeTamModel, EdgeTamVideoConfig, EdgeTamVideoModel
    from transformers import Sam2Config, Sam2Model, Sam2VideoConfig, Sam2VideoModel

    return Sam2Config, Sam2Model, Sam2VideoConfig, Sam2VideoModel


def config(variant: str, video: bool, tiny: bool) -> Any:
    image_cfg, _, video_cfg, _ = classes(variant)
    edgetam = variant == "edgetam"
    parts = _tiny_parts(edgetam) if tiny else _real_parts(variant)
    if video:
        return video_cfg(**parts, **(_tiny_video_extra(edgetam) if tiny else {}))
    return image_cfg(**parts)


def processor(video: bool, side: int) -> Any:
    """The processor the checkpoints ship (Sam2Processor / Sam2VideoProcessor) at input side ``side``."""
    from transformers import Sam2Processor, Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor

    ip = Sam2ImageProcessor(size={"height": side, "width": side}, mask_size={"height": side // 4, "width": side // 4})
    if not video:
        return Sam2Processor(image_processor=ip)
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    return Sam2VideoProcessor(image_processor=ip, video_processor=Sam2VideoVideoProcessor(size={"height": side, "width": side}))


def build_random(variant: str, video: bool, tiny: bool, seed: int) -> tuple[Any, Any]:
    """(model, processor) with seeded random weights: the tiny sizes, or the real ones (``random_init``)."""
    import torch

    cls = classes(variant)[3 if video else 1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config(variant, video, tiny))
    if tiny:
        # Random heads put SAM 2's object-presence logit near 0, and an object whose logit is < 0
        # is blanked: a tiny object would vanish on a coin flip. Start the tiny presence head at
        # "present" so that the plumbing is exercised (the checkpoints learn this head).
        with torch.no_grad():
            model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(TINY_PRESENCE_BIAS)
    return model.eval(), processor(video, TINY_SIZE if tiny else 1024)


def load_pretrained(variant: str, video: bool, path: Path, component: str) -> tuple[Any, Any]:
    """(model, processor) from a local checkpoint folder; a bad folder fails in one line."""
    from transformers import Sam2Processor, Sam2VideoProcessor

    cls = classes(variant)[3 if video else 1]
    return load_hf_folder(component, path, cls, Sam2VideoProcessor if video else Sam2Processor)


@dataclass
class Loaded:
    model: Any
    processor: Any


def load(runtime: Runtime, component: str, variant: str, video: bool, weights: ModelWeights | None) -> Loaded:
    """The image or video model of ``variant``, built once per process (avseg.models.shared_model)."""
    from avseg.models import build_model, shared_model

    assert weights is not None
    device, dtype = runtime.torch_device(), runtime.torch_dtype()

    def factory() -> Loaded:
        model, proc = build_model(weights, tiny=lambda: build_random(variant, video, True, weights.seed),
                                  random=lambda: build_random(variant, video, False, weights.seed),
                                  pretrained=lambda w: load_pretrained(variant, video, w.file(0), component))
        return Loaded(model.to(device=device, dtype=dtype).eval(), proc)

    return shared_model(runtime, "sam2", variant, weights, factory, "video" if video else "image")
