"""SAM 3 model building for ``sam3``: declared weights, the tiny and real sizes, the offline tokenizer.

``Sam3Model`` (image: text prompt -> every instance) and ``Sam3VideoModel`` (its detector plus a
SAM 2-style tracker) come from the one ``facebook/sam3`` checkpoint. torch and transformers are
imported inside functions only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avseg.weights import WeightFile, load_hf_folder

if TYPE_CHECKING:
    from avseg.models import ModelWeights
    from avseg.runtime import Runtime

WEIGHTS: dict[str, list[WeightFile]] = {
    "sam3": [
        WeightFile(
            "sam3",
            hf_repo="facebook/sam3",
            hf_files=("config.json",),
            licence="SAM License",
        )
    ]
}

#: the tiny variant: 112 px (8x8 patches of 14) and widths small enough for a CPU test
TINY_SIZE = 112
#: the tiny detector and tracker width. The tracker's object pointers are split into hidden/64
#: tokens of its 64-channel memory, which transformers' tracker needs (hidden > 64): 128 is the least.
TINY_HIDDEN = 128
#: the tiny presence heads start at "present" (random ones sit at sigmoid(0) = 0.5, which halves
#: every score and blanks tracked objects on a coin flip); the checkpoint learns these heads
TINY_PRESENCE_BIAS = 4.0
TINY_TRACKER_PRESENCE_BIAS = 2.0
#: the text encoder's sequence length (Sam3Processor pads every prompt to 32 tokens)
TEXT_LENGTH = 32


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def tiny_tokenizer() -> Any:
    """A CLIP byte-level BPE tokenizer built offline: every byte is a token (so any text encodes),
    and merges that make each word of the bundled vocabularies one token."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.clip.tokenization_clip import CLIPTokenizer

    from avseg.vocab import all_builtin_vocabulary_words

    chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(c, len(vocab))
    merges: list[tuple[str, str]] = []
    words = sorted({w for phrase in all_builtin_vocabulary_words() for w in _words(phrase)})
    for w in words:
        pieces = [*w[:-1], w[-1] + "</w>"]
        cur = pieces[0]
        for piece in pieces[1:]:
            if cur + piece not in vocab:
                merges.append((cur, piece))
                vocab[cur + piece] = len(vocab)
            cur += piece
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _tiny_vision() -> dict[str, Any]:
    s = TINY_SIZE // 14
    return dict(
        backbone_config=dict(
            model_type="sam3_vit_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=TINY_SIZE,
            patch_size=14,
            window_size=4,
            global_attn_indexes=[1],
            pretrain_image_size=56,
        ),
        fpn_hidden_size=TINY_HIDDEN,
        backbone_feature_sizes=[[4 * s, 4 * s], [2 * s, 2 * s], [s, s]],
    )


def tiny_detector_config(vocab_size: int) -> dict[str, Any]:
    h = TINY_HIDDEN
    return dict(
        vision_config=_tiny_vision(),
        text_config=dict(
            model_type="clip_text_model",
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=TEXT_LENGTH,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        geometry_encoder_config=dict(hidden_size=h, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_encoder_config=dict(hidden_size=h, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_decoder_config=dict(hidden_size=h, num_layers=2, num_queries=20, num_attention_heads=2, intermediate_size=64),
        mask_decoder_config=dict(hidden_size=h, num_attention_heads=2),
    )


def tiny_tracker_config() -> dict[str, Any]:
    h, s = TINY_HIDDEN, TINY_SIZE
    return dict(
        model_type="sam3_tracker_video",
        vision_config=_tiny_vision(),
        prompt_encoder_config=dict(hidden_size=h, image_size=s, patch_size=14),
        mask_decoder_config=dict(hidden_size=h, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=s,
        num_maskmem=3,
        memory_attention_hidden_size=h,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[s // 14, s // 14],
        memory_encoder_hidden_size=h,
        mask_downsampler_embed_dim=h,
        memory_fuser_embed_dim=h,
        memory_fuser_intermediate_dim=64,
    )


def processor(video: bool, tokenizer: Any, tiny: bool) -> Any:
    """Sam3Processor / Sam3VideoProcessor with the checkpoint's image settings, at the tiny size if asked."""
    from transformers import Sam3Processor
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    side = TINY_SIZE if tiny else 1008
    mask_side = side // 14 * 4
    ip = Sam3ImageProcessor(size={"height": side, "width": side}, mask_size={"height": mask_side, "width": mask_side})
    if not video:
        return Sam3Processor(image_processor=ip, tokenizer=tokenizer)
    from transformers import Sam3VideoProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    vp = Sam2VideoVideoProcessor(
        size={"height": side, "width": side}, image_mean=list(ip.image_mean), image_std=list(ip.image_std)
    )
    return Sam3VideoProcessor(image_processor=ip, video_processor=vp, tokenizer=tokenizer)


def build_random(video: bool, tiny: bool, seed: int) -> tuple[Any, Any]:
    """(model, processor) with seeded random weights: tiny sizes, or facebook/sam3's (``random_init``)."""
    import torch
    from transformers import Sam3Config, Sam3Model, Sam3VideoConfig, Sam3VideoModel

    tok = tiny_tokenizer()
    if tiny:
        det = tiny_detector_config(len(tok))
        cfg = (
            Sam3VideoConfig(
                detector_config=dict(model_type="sam3", **det),
                tracker_config=tiny_tracker_config(),
                low_res_mask_size=TINY_SIZE // 14 * 4,
            )
            if video
            else Sam3Config(**det)
        )
    else:
        cfg = Sam3VideoConfig() if video else Sam3Config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (Sam3VideoModel if video else Sam3Model)(cfg)
    if tiny:
        detector = model.detector_model if video else model
        with torch.no_grad():
            detector.detr_decoder.presence_head.layer3.bias.fill_(TINY_PRESENCE_BIAS)
            if video:
                model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(TINY_TRACKER_PRESENCE_BIAS)
    return model.eval(), processor(video, tok, tiny)


def load_pretrained(video: bool, path: Path, component: str) -> tuple[Any, Any]:
    from transformers import Sam3Model, Sam3Processor, Sam3VideoModel, Sam3VideoProcessor

    return load_hf_folder(component, path, Sam3VideoModel if video else Sam3Model,
                          Sam3VideoProcessor if video else Sam3Processor)


@dataclass
class Loaded:
    model: Any
    processor: Any


def load(runtime: Runtime, component: str, video: bool, weights: ModelWeights) -> Loaded:
    """The image or video model, built once per process (avseg.models.shared_model)."""
    from avseg.models import build_model, shared_model

    device, dtype = runtime.torch_device(), runtime.torch_dtype()

    def factory() -> Loaded:
        model, proc = build_model(weights, tiny=lambda: build_random(video, True, weights.seed),
                                  random=lambda: build_random(video, False, weights.seed),
                                  pretrained=lambda w: load_pretrained(video, w.file(0), component))
        return Loaded(model.to(device=device, dtype=dtype).eval(), proc)

    return shared_model(runtime, "sam3", "sam3", weights, factory, "video" if video else "image")
