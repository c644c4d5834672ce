"""MM-GroundingDINO (``variant: mm-tiny | mm-base | mm-large``) through the same ``gdino`` proposer.

transformers' ``MMGroundingDinoForObjectDetection`` takes GroundingDINO's inputs and gives its
outputs (the checkpoints ship a ``GroundingDinoProcessor``), so only model building differs:
the OpenMMLab checkpoints, their real sizes for ``random_init``, and a tiny variant with this
plugin's offline tokenizer.
"""

from __future__ import annotations

from typing import Any

from avseg.weights import WeightFile, hf_config_weights, load_hf_folder

#: variant -> the OpenMMLab conversions on the Hugging Face hub (pretrained on O365/GoldG/V3Det or O365v2/OI)
MM_REPOS: dict[str, str] = {
    "mm-tiny": "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
    "mm-base": "openmmlab-community/mm_grounding_dino_base_o365v1_goldg_v3det",
    "mm-large": "openmmlab-community/mm_grounding_dino_large_o365v2_oiv6_goldg",
}

MM_WEIGHTS: dict[str, list[WeightFile]] = hf_config_weights(MM_REPOS, licence="Apache-2.0")

#: Swin backbones: T (224, window 7), B (384, window 12), L (384, window 12)
MM_BACKBONES: dict[str, dict[str, Any]] = {
    "mm-tiny": dict(image_size=224, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7),
    "mm-base": dict(image_size=384, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12),
    "mm-large": dict(image_size=384, embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12),
}


def is_mm(variant: str) -> bool:
    return variant.startswith("mm-")


def tiny_config(vocab_size: int) -> Any:
    """GroundingDINO's tiny sizes (avseg_gdino.tiny) in an MMGroundingDinoConfig."""
    from transformers import MMGroundingDinoConfig

    from avseg_gdino.tiny import tiny_config as gdino_tiny

    src = gdino_tiny(vocab_size).to_dict()
    keep = ("d_model", "num_queries", "encoder_layers", "decoder_layers", "encoder_ffn_dim", "decoder_ffn_dim",
            "encoder_attention_heads", "decoder_attention_heads", "encoder_n_points", "decoder_n_points",
            "max_text_len")
    return MMGroundingDinoConfig(
        backbone_config=src["backbone_config"], text_config=src["text_config"], **{k: src[k] for k in keep}
    )


def real_config(variant: str) -> Any:
    from transformers import BertConfig, MMGroundingDinoConfig, SwinConfig

    backbone = SwinConfig(patch_size=4, out_indices=[2, 3, 4], **MM_BACKBONES[variant])
    text = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512)
    return MMGroundingDinoConfig(backbone_config=backbone, text_config=text)


def build_random(variant: str, tiny: bool, seed: int) -> tuple[Any, Any]:
    """(model, processor) with seeded random weights: the tiny sizes, or the checkpoint's (``random_init``)."""
    import torch
    from transformers import (
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        MMGroundingDinoForObjectDetection,
    )

    from avseg_gdino.tiny import TINY_LONGEST_EDGE, TINY_SHORTEST_EDGE, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    size = (
        {"shortest_edge": TINY_SHORTEST_EDGE, "longest_edge": TINY_LONGEST_EDGE}
        if tiny
        else {"shortest_edge": 800, "longest_edge": 1333}
    )
    processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size=size), tokenizer=tokenizer)
    cfg = tiny_config(len(tokenizer)) if tiny else real_config(variant)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MMGroundingDinoForObjectDetection(cfg)
    return model, processor


def load_pretrained(path: Any, component: str) -> tuple[Any, Any]:
    from transformers import GroundingDinoProcessor, MMGroundingDinoForObjectDetection

    return load_hf_folder(component, path, MMGroundingDinoForObjectDetection, GroundingDinoProcessor)
