"""The tiny GroundingDINO: same transformers classes, small sizes, seeded random weights, no hub.

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
    from avseg_gdino.proposer import all_builtin_vocabulary_words

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
        d_model=32,
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
