"""Shared SAM model building, loading and the tiny variant, for ``sam`` and ``sam-grid``.

torch and segment_anything are imported inside functions only, so that importing this module
(e.g. for the declared weights) never needs them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.errors import AvsegError, DependencyMissing
from avseg.weights import WeightFile

if TYPE_CHECKING:
    from avseg.models import ModelWeights
    from avseg.runtime import Runtime

VARIANTS = ("vit_h", "vit_l", "vit_b")
_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


def _pth(filename: str) -> WeightFile:
    # The 6 hex characters in the file name are a sha256 prefix (torch hub convention).
    return WeightFile(
        filename=filename,
        url=_URL + filename,
        sha256=filename.rsplit("_", 1)[-1].split(".")[0],
        licence="Apache-2.0",
    )


#: segment_anything checkpoints, per variant.
SA_WEIGHTS: dict[str, WeightFile] = {
    "vit_h": _pth("sam_vit_h_4b8939.pth"),
    "vit_l": _pth("sam_vit_l_0b3195.pth"),
    "vit_b": _pth("sam_vit_b_01ec64.pth"),
}

#: Hugging Face checkpoints (transformers' SamModel), per variant.
HF_WEIGHTS: dict[str, WeightFile] = {
    v: WeightFile(filename=repo, hf_repo=repo, licence="Apache-2.0")
    for v, repo in (
        ("vit_h", "facebook/sam-vit-huge"),
        ("vit_l", "facebook/sam-vit-large"),
        ("vit_b", "facebook/sam-vit-base"),
    )
}

#: What the component classes declare: "vit_h" etc. for segment_anything, "hf-vit_h" etc. for backend=hf.
DECLARED_WEIGHTS: dict[str, list[WeightFile]] = {
    **{v: [wf] for v, wf in SA_WEIGHTS.items()},
    **{f"hf-{v}": [wf] for v, wf in HF_WEIGHTS.items()},
}

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class SamSpec:
    """The sizes of one SAM architecture (segment_anything's ``_build_sam`` arguments plus its fixed ones)."""

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    img_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256
    mask_in_chans: int = 16


SPECS: dict[str, SamSpec] = {
    "vit_h": SamSpec(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamSpec(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamSpec(768, 12, 12, (2, 5, 8, 11)),
}

#: The tiny variant: the same classes at small sizes. img_size 256 -> a 16x16 image embedding and
#: 64x64 low-res masks (the same 4x ratios as 1024/64/256); window 8 tiles the 16x16 token grid.
TINY_SPEC = SamSpec(
    encoder_embed_dim=32,
    encoder_depth=2,
    encoder_num_heads=2,
    encoder_global_attn_indexes=(1,),
    img_size=256,
    patch_size=16,
    window_size=8,
    prompt_embed_dim=32,
    decoder_mlp_dim=64,
    decoder_num_heads=2,
    iou_head_hidden_dim=32,
    mask_in_chans=16,
)


def require_modules(component: str, modules: tuple[str, ...], extra: str = "sam") -> None:
    """Raise a one-line DependencyMissing for the first module that cannot be imported."""
    for mod in modules:
        if importlib.util.find_spec(mod) is None:
            raise DependencyMissing(f"{component} needs {mod}: pip install 'avseg[{extra}]'")


def build_sam(spec: SamSpec, state_dict: dict[str, Any] | None = None, seed: int = 0) -> Any:
    """A segment_anything ``Sam`` at ``spec``'s sizes: ``state_dict`` loaded, or seeded random weights.

    With a state dict the modules are built on the meta device (no random init of a 600M-parameter
    model) and the checkpoint's tensors are assigned in.
    """
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    def make() -> Any:
        emb = spec.img_size // spec.patch_size
        return Sam(
            image_encoder=ImageEncoderViT(
                depth=spec.encoder_depth,
                embed_dim=spec.encoder_embed_dim,
                img_size=spec.img_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=spec.encoder_num_heads,
                patch_size=spec.patch_size,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=spec.encoder_global_attn_indexes,
                window_size=spec.window_size,
                out_chans=spec.prompt_embed_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=spec.prompt_embed_dim,
                image_embedding_size=(emb, emb),
                input_image_size=(spec.img_size, spec.img_size),
                mask_in_chans=spec.mask_in_chans,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=2,
                    embedding_dim=spec.prompt_embed_dim,
                    mlp_dim=spec.decoder_mlp_dim,
                    num_heads=spec.decoder_num_heads,
                ),
                transformer_dim=spec.prompt_embed_dim,
                iou_head_depth=3,
                iou_head_hidden_dim=spec.iou_head_hidden_dim,
            ),
            pixel_mean=list(PIXEL_MEAN),
            pixel_std=list(PIXEL_STD),
        )

    if state_dict is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make()
            # segment_anything starts the absolute and relative position tables at zero; give the tiny
            # model non-zero ones so that tests exercise them.
            for name, p in model.named_parameters():
                if name.endswith("pos_embed") or ".rel_pos_" in name:
                    torch.nn.init.normal_(p, std=0.02)
        return model.eval()

    with torch.device("meta"):
        model = make()
    sd = {k: v for k, v in state_dict.items() if k not in ("pixel_mean", "pixel_std")}
    try:
        model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
        raise AvsegError(
            f"checkpoint does not fit SAM with embed dim {spec.encoder_embed_dim} and depth "
            f"{spec.encoder_depth} (wrong variant?): {detail[:200]}"
        ) from None
    model.pixel_mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32).view(-1, 1, 1)
    model.pixel_std = torch.tensor(PIXEL_STD, dtype=torch.float32).view(-1, 1, 1)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise AvsegError(f"checkpoint left SAM tensors unset: {', '.join(left[:5])}")
    return model.eval()


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


@dataclass
class LoadedSam:
    """A loaded model and what identifies it (for run.json and memo namespaces)."""

    model: Any
    spec: SamSpec
    weights: ModelWeights
    tag: str  # ModelWeights.tag(): "tiny-s<seed>", "random-s<seed>" or the checkpoint's name and path hash


def load_sa(runtime: Runtime, component: str, variant: str, checkpoint: str | None) -> LoadedSam:
    """The segment_anything model for ``variant``, loaded once per process (shared by sam and sam-grid)."""
    from avseg.models import build_model, resolve_weights, shared_model
    from avseg.weights import load_state_dict

    weights = resolve_weights(component, runtime, variant, [SA_WEIGHTS[variant]], [checkpoint])
    spec = TINY_SPEC if weights.mode == "tiny" else SPECS[variant]

    def factory() -> Any:
        model = build_model(weights, tiny=lambda: build_sam(spec, seed=weights.seed),
                            random=lambda: build_sam(spec, seed=weights.seed),
                            pretrained=lambda w: build_sam(spec, load_state_dict(w.file(0))))
        # weights stay float32: segment_anything's prompt encoder casts coordinates to float32
        # before its matmul with the positional matrix, so a bf16/fp16 model fails on box or point
        # prompts; half precision runs through autocast instead (see autocast()).
        return model.to(device=runtime.torch_device()).eval()

    model = shared_model(runtime, "sam/segment_anything", variant, weights, factory)
    return LoadedSam(model, spec, weights, weights.tag())


def autocast(runtime: Runtime) -> Any:
    """torch.autocast at the runtime's half dtype on its device; a no-op context for float32."""
    import torch

    dtype = runtime.torch_dtype()
    return torch.autocast(device_type=runtime.torch_device().type, dtype=dtype, enabled=dtype != torch.float32)


def memo_namespace(prefix: str, variant: str, loaded: LoadedSam, runtime: Runtime) -> str:
    """``<prefix>/<variant>/<tiny|random|real>/<checkpoint>/<dtype>``: everything that changes an image embedding."""
    kind = {"pretrained": "real"}.get(runtime.weights_mode, runtime.weights_mode)
    return f"{prefix}/{variant}/{kind}/{loaded.tag}/{safe_name(runtime.dtype)}"


def memo_image_embedding(
    runtime: Runtime, namespace: str, frame: np.ndarray, encode: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The frame's image encoding, computed once per (namespace, frame content) in a process: the
    one memo the sam segmenter and the sam-grid proposer share (same namespace, one encoding)."""
    from avseg.types import content_hash

    def compute() -> dict[str, np.ndarray]:
        runtime.count("sam.image_encoder")
        return encode(frame)

    return runtime.memo(namespace, content_hash(frame), compute)


def sa_encoder(model: Any, runtime: Runtime) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """``encode_image_sa`` on ``model`` under the runtime's autocast."""

    def encode(frame: np.ndarray) -> dict[str, np.ndarray]:
        with autocast(runtime):
            return encode_image_sa(model, frame)

    return encode


def encode_image_sa(model: Any, frame: np.ndarray) -> dict[str, np.ndarray]:
    """What ``SamPredictor.set_image`` computes, as arrays: features (1,C,h,w), input_size, original_size."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    image = ResizeLongestSide(model.image_encoder.img_size).apply_image(frame)
    x = torch.as_tensor(image, device=model.device).permute(2, 0, 1).contiguous()[None, :, :, :]
    input_size = tuple(x.shape[-2:])
    with torch.inference_mode():
        x = model.preprocess(x)
        features = model.image_encoder(x.to(model.pixel_mean.dtype))
    return {
        "features": features.float().cpu().numpy(),
        "input_size": np.asarray(input_size, dtype=np.int64),
        "original_size": np.asarray(frame.shape[:2], dtype=np.int64),
    }


def postprocess_masks(
    low_res: Any, img_size: int, input_size: tuple[int, int], original_size: tuple[int, int], chunk: int = 2
) -> Any:
    """Low-res logits (N,1,h,w) -> logits at ``original_size``, bit-identical to ``Sam.postprocess_masks``.

    Upstream upsamples every low-res mask to ``img_size``² and then crops the valid ``input_size``
    region. Here only the low-res rows/columns that feed that region are upsampled (with the same
    scale, hence the same sampling positions and weights), and masks go through in small chunks
    so that a frame with many boxes never holds N x 1024² floats at once.
    """
    import torch
    import torch.nn.functional as F

    low = low_res.float()
    h, w = low.shape[-2:]
    scale_h, scale_w = img_size / h, img_size / w
    # Output row i samples source row floor((i + 0.5) / scale - 0.5) and the next one; keep one row
    # more so that the bilinear kernel's clamp at the last row never applies earlier than upstream's.
    need_h = min(h, int((input_size[0] - 0.5) / scale_h - 0.5) + 3)
    need_w = min(w, int((input_size[1] - 0.5) / scale_w - 0.5) + 3)
    out = []
    step = max(1, chunk)  # chunk 0 would slice nothing
    for s in range(0, low.shape[0], step):
        part = low[s : s + step, :, :need_h, :need_w]
        if need_h == h and need_w == w:
            up = F.interpolate(part, (img_size, img_size), mode="bilinear", align_corners=False)
        else:
            up = F.interpolate(
                part, scale_factor=(scale_h, scale_w), mode="bilinear", align_corners=False, recompute_scale_factor=False
            )
        up = up[..., : input_size[0], : input_size[1]]
        out.append(F.interpolate(up, tuple(original_size), mode="bilinear", align_corners=False))
    return torch.cat(out) if out else low.new_zeros((0, low.shape[1], *original_size))
