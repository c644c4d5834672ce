"""The tiny variant's architecture (the huge one is built by ``imagebind_model.imagebind_huge()``).

The tiny variant is the same ``imagebind_model.ImageBindModel`` class at small widths and
depths, with the real input geometry (224x224 images, 14x14x2 patches; 128 mel bins x 204
frames, 16x16 patches at stride 10), so that ImageBind's real transforms feed it.
"""

from __future__ import annotations

from typing import Any

#: small widths/depths for the tiny variant; every modality tower is built (as in the real model)
TINY_KWARGS: dict[str, Any] = dict(
    out_embed_dim=16,
    vision_embed_dim=32,
    vision_num_blocks=1,
    vision_num_heads=2,
    audio_embed_dim=32,
    audio_num_blocks=1,
    audio_num_heads=2,
    text_embed_dim=16,
    text_num_blocks=1,
    text_num_heads=2,
    depth_embed_dim=16,
    depth_num_blocks=1,
    depth_num_heads=2,
    thermal_embed_dim=16,
    thermal_num_blocks=1,
    thermal_num_heads=2,
    imu_embed_dim=16,
    imu_num_blocks=1,
    imu_num_heads=2,
)


def build_model(imagebind_model: Any, kwargs: dict[str, Any], seed: int | None = None) -> Any:
    """``ImageBindModel(**kwargs)``; with ``seed``, its random init is seeded (without touching the
    caller's global torch RNG state). Nothing here reads a file or the network: the text tower's
    BPE vocabulary is only read by ``imagebind.data``'s tokenizer, which we never build."""
    import torch

    if seed is None:
        return imagebind_model.ImageBindModel(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return imagebind_model.ImageBindModel(**kwargs)


def build_huge(imagebind_model: Any, seed: int) -> Any:
    """``imagebind_model.imagebind_huge(pretrained=False)`` (the real architecture, nothing read or
    downloaded) with its random init seeded by ``seed`` (``runtime.random_init``), without touching
    the caller's global torch RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return imagebind_model.imagebind_huge(pretrained=False)
