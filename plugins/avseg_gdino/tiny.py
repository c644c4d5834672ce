"""The tiny GroundingDINO: same transformers classes, small sizes, seeded random weights, no hub.

Also the ``random_init`` variant (:func:`build_random`): grounding-dino-tiny/-base at their real
sizes with seeded random weights, the real image processor and this module's offline tokenizer.

The tokenizer is a WordPiece ``BertTokenizer`` built offline from a vocabulary written here:
the special tokens at the ids bert-base-uncased gives them (GroundingDINO hard-codes
``[CLS]``=101, ``[SEP]``=102, ``.``=1012 and ``?``=1029 as phrase delimiters), padding
placeholders, then every word of the bundled vocabularies (AudioSet tags, AVSBench S4/AVSS, COCO).
Words outside it become ``[UNK]``; that only matters for plumbing checks.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

#: ids GroundingDINO (transformers ``SPECIAL_TOKENS``) and bert-base-uncased give these tokens
FIXED_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
PUNCTUATION = [",", "-", "'", "(", ")", "/", "&", ":", ";", "!"]

#: the tiny image size: GroundingDinoImageProcessor resizes the shorter side to this (longer <= 2x)
TINY_SHORTEST_EDGE = 64
TINY_LONGEST_EDGE = 128


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def tiny_vocab() -> list[str]:
    """The tiny tokenizer's vocabulary, one token per id (deterministic)."""
    from avseg.vocab import all_builtin_vocabulary_words

    words: set[str] = set(PUNCTUATION)
    for phrase in all_builtin_vocabulary_words():
        words.update(_words(phrase))
    fixed = set(FIXED_IDS)
    rest = sorted(w for w in words if w not in fixed)
    size = max(FIXED_IDS.values()) + 1
    vocab = [f"[unused{i}]" for i in range(size)]
    for tok, i in FIXED_IDS.items():
        vocab[i] = tok
    return vocab + rest


def build_tiny_tokenizer() -> Any:
    """A BertTokenizer read from a vocab.txt this function writes (never the hub)."""
    from transformers import BertTokenizer

    vocab = tiny_vocab()
    with tempfile.TemporaryDirectory(prefix="avseg-gdino-tiny-") as d:
        path = Path(d) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tok = BertTokenizer(vocab=str(path), do_lower_case=True)
    return tok


def tiny_config(vocab_size: int) -> Any:
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        image_size=TINY_SHORTEST_EDGE,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        # GroundingDINO normalises each feature level with GroupNorm(32 groups, d_model): at
        # d_model 32 a group is one channel, and on the 1x1 extra level a 64-px frame gets, a
        # batch of one frame leaves one value per group, which torch refuses ("Expected more
        # than 1 value per channel"). 64 gives every group two channels, as 256 gives the real ones 8.
        d_model=64,
        num_queries=30,
        encoder_layers=1,
        decoder_layers=2,  # 1 breaks transformers' bbox_embed weight tying
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=256,
    )


def build_tiny(seed: int) -> tuple[Any, Any]:
    """(model, processor) of the tiny variant, random weights seeded with ``seed``."""
    import torch
    from transformers import (
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = build_tiny_tokenizer()
    image_processor = GroundingDinoImageProcessor(
        size={"shortest_edge": TINY_SHORTEST_EDGE, "longest_edge": TINY_LONGEST_EDGE}
    )
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(tiny_config(len(tokenizer)))
    return model, processor


#: the Swin backbones of grounding-dino-tiny (Swin-T, 224) and grounding-dino-base (Swin-B, 384)
REAL_BACKBONES: dict[str, dict[str, Any]] = {
    "swin-t": dict(image_size=224, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7),
    "swin-b": dict(
        image_size=384, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12
    ),
}


def real_config(variant: str) -> Any:
    """The GroundingDinoConfig of IDEA-Research/grounding-dino-tiny (``swin-t``) or -base (``swin-b``).

    Swin backbone (stages 2-4 out), bert-base-uncased text encoder (30522 tokens: the offline
    tokenizer's ids all fall inside it), d_model 256, 900 queries, 6 encoder + 6 decoder layers,
    4 feature levels and 4 sampling points, 256 text tokens.
    """
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(patch_size=4, out_indices=[2, 3, 4], **REAL_BACKBONES[variant])
    text = BertConfig(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=256,
        num_queries=900,
        encoder_layers=6,
        decoder_layers=6,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_n_points=4,
        decoder_n_points=4,
        num_feature_levels=4,
        two_stage=True,
        max_text_len=256,
    )


def build_random(variant: str, seed: int) -> tuple[Any, Any]:
    """(model, processor) for ``runtime.random_init``: the real architecture and image processor
    (shortest edge 800, longest 1333), random weights seeded with ``seed``, the offline tokenizer."""
    import torch
    from transformers import (
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = build_tiny_tokenizer()
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 800, "longest_edge": 1333})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(real_config(variant))
    return model, processor
