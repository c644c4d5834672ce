"""The ``official`` backend of ``gdino``: IDEA-Research's GroundingDINO code (PyPI ``groundingdino-py``).

* Model: the package's own ``GroundingDINO`` class. Real mode builds it with the package's
  ``build_model(args)`` from its bundled config (``GroundingDINO_SwinT_OGC.py`` or
  ``GroundingDINO_SwinB_cfg.py``) and loads the official ``.pth`` (``"model"`` key) with
  :func:`avseg.weights.load_state_dict` (``weights_only``). The tiny variant builds the same
  classes (``SwinTransformer`` + ``Joiner`` + ``Transformer`` + ``GroundingDINO``) with small sizes.
* Text encoder: the package loads BERT with ``AutoTokenizer/BertModel.from_pretrained
  (text_encoder_type)`` and explicitly accepts a local folder there. Real mode passes the locally
  resolved ``bert-base-uncased`` folder; the tiny variant writes a folder holding a small seeded
  random BERT and the plugin's offline tokenizer, and passes that. The package is not patched.
* transformers 5 dropped three ``BertModel`` helpers the package's ``BertModelWarper`` binds at
  construction (``get_extended_attention_mask``, ``invert_attention_mask``, ``get_head_mask``).
  :func:`legacy_bert_helpers` adds transformers 4's definitions to ``BertModel`` only while the
  model is constructed, and only when missing (a no-op on transformers 4); the warper keeps the
  bound methods, the class is restored on exit. Later transformers 5 releases also renamed
  ``BertEmbeddings.forward``'s ``past_key_values_length`` (which the warper passes) to
  ``cache_length``; :func:`adapt_bert_embeddings` maps the old name on the built model's own
  embeddings module (no weight or state-dict change).
* Preprocessing: the package's transforms (``RandomResize([800], max_size=1333)``, ``ToTensor``,
  ``Normalize``) on PIL images. Post-processing: ``groundingdino.util.inference.predict``'s
  logic (sigmoid, max-over-tokens ``> box_threshold``, phrases from ``get_phrases_from_posmap``
  with ``text_threshold``, ``.`` removed) on batched outputs; boxes cxcywh-normalised -> xyxy pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import runpy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: the package's config file per variant
CONFIG_FILES = {"swin-t": "GroundingDINO_SwinT_OGC.py", "swin-b": "GroundingDINO_SwinB_cfg.py"}
#: (shortest side, max longer side) of the official transform; the tiny variant uses small images
REAL_RESIZE = (800, 1333)
TINY_RESIZE = (64, 128)
#: factor on the tiny model's random text projection (see build_tiny_official)
TINY_TEXT_SCALE = 0.05
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# --------------------------------------------------------------------------- transformers 5 shim


def _get_extended_attention_mask(self: Any, attention_mask: Any, input_shape: Any, device: Any = None, dtype: Any = None) -> Any:
    """transformers 4.x ``ModuleUtilsMixin.get_extended_attention_mask`` (encoder case)."""
    import torch

    dtype = dtype or self.dtype
    if attention_mask.dim() == 3:
        ext = attention_mask[:, None, :, :]
    elif attention_mask.dim() == 2:
        if self.config.is_decoder:
            raise ValueError("legacy BERT helper: decoder masks are not supported")
        ext = attention_mask[:, None, None, :]
    else:
        raise ValueError(f"wrong shape for attention_mask {tuple(attention_mask.shape)}")
    ext = ext.to(dtype=dtype)
    return (1.0 - ext) * torch.finfo(dtype).min


def _invert_attention_mask(self: Any, encoder_attention_mask: Any) -> Any:
    """transformers 4.x ``ModuleUtilsMixin.invert_attention_mask``."""
    import torch

    m = encoder_attention_mask
    ext = m[:, None, :, :] if m.dim() == 3 else m[:, None, None, :]
    ext = ext.to(dtype=self.dtype)
    return (1.0 - ext) * torch.finfo(self.dtype).min


def _get_head_mask(self: Any, head_mask: Any, num_hidden_layers: int, is_attention_chunked: bool = False) -> Any:
    """transformers 4.x ``ModuleUtilsMixin.get_head_mask`` (inference: no head masking)."""
    if head_mask is not None:
        raise ValueError("legacy BERT helper: head_mask is not supported")
    return [None] * num_hidden_layers


_LEGACY = {
    "get_extended_attention_mask": _get_extended_attention_mask,
    "invert_attention_mask": _invert_attention_mask,
    "get_head_mask": _get_head_mask,
}


@contextlib.contextmanager
def legacy_bert_helpers() -> Iterator[None]:
    """Give ``transformers.BertModel`` the three helpers groundingdino's ``BertModelWarper`` binds,
    for the duration of the block, when (transformers 5) they are missing."""
    from transformers import BertModel

    added = [name for name in _LEGACY if not hasattr(BertModel, name)]
    for name in added:
        setattr(BertModel, name, _LEGACY[name])
    try:
        yield
    finally:
        for name in added:
            delattr(BertModel, name)


def adapt_bert_embeddings(model: Any) -> Any:
    """Let the warper's ``embeddings(..., past_key_values_length=n)`` call reach a transformers
    ``BertEmbeddings`` whose argument is now ``cache_length``; a no-op where the old name exists."""
    import inspect

    emb = model.bert.embeddings
    params = inspect.signature(emb.forward).parameters
    if "past_key_values_length" in params or "cache_length" not in params:
        return model
    forward = emb.forward

    def legacy_forward(*args: Any, past_key_values_length: int | None = None, **kwargs: Any) -> Any:
        if past_key_values_length is not None:  # the warper's call; transformers' own passes cache_length
            kwargs["cache_length"] = past_key_values_length
        return forward(*args, **kwargs)

    emb.forward = legacy_forward  # the instance's attribute; nn.Module.__call__ dispatches to it
    return model


# --------------------------------------------------------------------------- building


def package_config(variant: str) -> argparse.Namespace:
    """The package's bundled model config (a Python file of assignments) as build args.

    Read like the package's ``SLConfig.fromfile`` does (module globals without ``__`` names), without
    its yapf/addict dependencies. Gradient checkpointing is switched off (training only; it does not
    change outputs).
    """
    import groundingdino

    path = Path(groundingdino.__file__).parent / "config" / CONFIG_FILES[variant]
    values = {k: v for k, v in runpy.run_path(str(path)).items() if not k.startswith("__")}
    args = argparse.Namespace(**values)
    args.use_checkpoint = False
    args.use_transformer_ckpt = False
    return args


def tiny_args() -> argparse.Namespace:
    """The Swin-T OGC config with small sizes (the tiny variant)."""
    args = package_config("swin-t")
    args.hidden_dim = 256  # the text enhancer hard-codes 256-d text position embeddings
    args.nheads = 4  # the text enhancer and fusion layers use nheads // 2
    args.dim_feedforward = 64
    args.enc_layers = 1
    args.dec_layers = 2
    args.num_queries = 30
    args.enc_n_points = 2
    args.dec_n_points = 2
    return args


@contextlib.contextmanager
def _quiet(stderr: bool = False) -> Iterator[None]:
    """The package prints ``final text_encoder_type: ...`` while building; keep stdout clean (and
    stderr, for the progress bar of loading the random text encoder this module wrote)."""
    with contextlib.redirect_stdout(io.StringIO()):
        if stderr:
            with contextlib.redirect_stderr(io.StringIO()):
                yield
        else:
            yield


def build_from_args(args: argparse.Namespace, text_encoder: str, quiet: bool = False) -> Any:
    """The package's ``build_model(args)`` with ``text_encoder_type`` = a local folder."""
    from groundingdino.models import build_model

    args.text_encoder_type = str(text_encoder)
    with _quiet(stderr=quiet), legacy_bert_helpers():
        return adapt_bert_embeddings(build_model(args))


#: the tiny variant's BERT (vocab_size: the offline tokenizer's)
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=256)
#: bert-base-uncased's sizes (the random_init mode)
BASE_BERT = dict(
    vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    max_position_embeddings=512,
)  # fmt: skip


def write_text_encoder(folder: Path, seed: int, sizes: dict[str, int]) -> None:
    """A seeded random BERT of ``sizes`` plus the plugin's offline tokenizer, saved as a HF folder
    (what the package's ``text_encoder_type`` accepts in place of ``bert-base-uncased``)."""
    import torch
    from transformers import BertConfig, BertModel

    from avseg_gdino.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.save_pretrained(str(folder))
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(**{"vocab_size": len(tok), **sizes}))
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' "Writing model shards" bar
        bert.save_pretrained(str(folder))


def build_random_official(variant: str, seed: int) -> Any:
    """``random_init``: the package's ``build_model`` at the real sizes, seeded random weights, a
    bert-base-sized random text encoder with the offline tokenizer (no files needed)."""
    import torch

    with tempfile.TemporaryDirectory(prefix="avseg-gdino-official-random-") as d:
        write_text_encoder(Path(d), seed, BASE_BERT)
        torch.manual_seed(seed)
        return build_from_args(package_config(variant), d, quiet=True)


def build_tiny_official(seed: int) -> Any:
    """The package's ``GroundingDINO`` with small sizes and random weights seeded with ``seed``.

    Mirrors ``build_groundingdino`` / ``build_backbone`` (whose Swin sizes are fixed by name) with a
    small ``SwinTransformer`` of the package; everything else comes from the package's builders.
    """
    import torch
    from groundingdino.models.GroundingDINO.backbone.backbone import Joiner
    from groundingdino.models.GroundingDINO.backbone.position_encoding import build_position_encoding
    from groundingdino.models.GroundingDINO.backbone.swin_transformer import SwinTransformer
    from groundingdino.models.GroundingDINO.groundingdino import GroundingDINO
    from groundingdino.models.GroundingDINO.transformer import build_transformer

    args = tiny_args()
    with tempfile.TemporaryDirectory(prefix="avseg-gdino-official-tiny-") as d:
        write_text_encoder(Path(d), seed, TINY_BERT)
        torch.manual_seed(seed)
        swin = SwinTransformer(
            pretrain_img_size=TINY_RESIZE[0],
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=4,
            out_indices=tuple(args.return_interm_indices),
            dilation=False,
            use_checkpoint=False,
        )
        backbone = Joiner(swin, build_position_encoding(args))
        backbone.num_channels = swin.num_features[4 - len(args.return_interm_indices) :]
        transformer = build_transformer(args)
        with _quiet(stderr=True), legacy_bert_helpers():
            model = GroundingDINO(
                backbone,
                transformer,
                num_queries=args.num_queries,
                aux_loss=True,
                iter_update=True,
                query_dim=4,
                num_feature_levels=args.num_feature_levels,
                nheads=args.nheads,
                dec_pred_bbox_embed_share=args.dec_pred_bbox_embed_share,
                two_stage_type=args.two_stage_type,
                two_stage_bbox_embed_share=args.two_stage_bbox_embed_share,
                two_stage_class_embed_share=args.two_stage_class_embed_share,
                num_patterns=args.num_patterns,
                dn_number=0,
                dn_box_noise_scale=args.dn_box_noise_scale,
                dn_label_noise_ratio=args.dn_label_noise_ratio,
                dn_labelbook_size=args.dn_labelbook_size,
                text_encoder_type=d,
                sub_sentence_present=args.sub_sentence_present,
                max_text_len=args.max_text_len,
            )
        # Random layer-normed 256-d features make query-text dot products of +-30, i.e. nearly every
        # score is sigmoid() == 1.0. Shrink the affine of the last text-encoder LayerNorm (whose output
        # is the text side of the contrastive logits) so scores spread over (0, 1) and the thresholds
        # have something to select. Still seeded and deterministic.
        with torch.no_grad():
            norm = model.transformer.encoder.text_layers[-1].norm2
            norm.weight.mul_(TINY_TEXT_SCALE)
            norm.bias.mul_(TINY_TEXT_SCALE)
    return adapt_bert_embeddings(model)


def load_official(variant: str, checkpoint: Path, bert_dir: Path) -> Any:
    """Real mode: ``build_model`` from the package config, then the official state dict."""
    from avseg.errors import AvsegError

    try:
        model = build_from_args(package_config(variant), str(bert_dir))
    except (OSError, ValueError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise AvsegError(f"proposer 'gdino' (official): cannot load BERT from {bert_dir}: {msg}") from None
    load_checkpoint(model, checkpoint)
    return model


#: keys of the official checkpoints the inference model does not have: the denoising label
#: embedding used in training only (``label_enc``), and BERT's ``position_ids``, a buffer that
#: newer transformers no longer persist (so it is absent from the model, or from a checkpoint)
OFFICIAL_EXTRA_KEYS = ("label_enc.", "position_ids")


def _official_extra(key: str) -> bool:
    return key.startswith(OFFICIAL_EXTRA_KEYS[0]) or key.endswith(OFFICIAL_EXTRA_KEYS[1])


def load_checkpoint(model: Any, checkpoint: Path) -> None:
    """Load an official ``.pth`` (``{"model": state_dict}``, ``weights_only``) as the package's
    ``load_model`` does (``clean_state_dict``), but strictly: only :data:`OFFICIAL_EXTRA_KEYS` may
    differ (the package loads with ``strict=False`` and prints what did not fit)."""
    from groundingdino.util.misc import clean_state_dict

    from avseg.models import load_checkpoint as load_strict
    from avseg.weights import load_state_dict

    state = clean_state_dict(load_state_dict(Path(checkpoint)))
    load_strict(model, state, f"proposer 'gdino' (official): {checkpoint}",
                may_lack=lambda k: k.endswith(OFFICIAL_EXTRA_KEYS[1]), may_carry=_official_extra)


# --------------------------------------------------------------------------- inference


def preprocess(frames: list[np.ndarray], resize: tuple[int, int]) -> list[Any]:
    """The package's inference transform on PIL images: one (3, h, w) float tensor per frame."""
    import groundingdino.datasets.transforms as T
    from PIL import Image as PILImage

    transform = T.Compose(
        [T.RandomResize([resize[0]], max_size=resize[1]), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    return [transform(PILImage.fromarray(np.ascontiguousarray(f)).convert("RGB"), None)[0] for f in frames]


def official_caption(caption: str) -> str:
    """``groundingdino.util.inference.preprocess_caption`` (not imported: that module needs
    opencv and supervision): lowercase, strip, end with ``.``."""
    result = caption.lower().strip()
    return result if result.endswith(".") else result + "."


def postprocess(
    model: Any,
    outputs: dict[str, Any],
    caption: str,
    box_threshold: float,
    text_threshold: float,
    sizes: list[tuple[int, int]],
) -> list[dict[str, Any]]:
    """``groundingdino.util.inference.predict``'s post-processing for each image of a batch, then
    boxes cxcywh (normalised) -> xyxy pixels of each original (H, W) frame."""
    import torch
    from groundingdino.util.utils import get_phrases_from_posmap
    from torchvision.ops import box_convert

    tokenizer = model.tokenizer
    tokenized = tokenizer(official_caption(caption))
    all_logits = outputs["pred_logits"].float().cpu().sigmoid()
    all_boxes = outputs["pred_boxes"].float().cpu()
    out = []
    for b, (h, w) in enumerate(sizes):
        logits, boxes = all_logits[b], all_boxes[b]
        mask = logits.max(dim=1)[0] > box_threshold
        logits, boxes = logits[mask], boxes[mask]
        phrases = [
            get_phrases_from_posmap(logit > text_threshold, tokenized, tokenizer).replace(".", "")
            for logit in logits
        ]
        xyxy = box_convert(boxes * torch.tensor([w, h, w, h]), in_fmt="cxcywh", out_fmt="xyxy")
        out.append({"boxes": xyxy, "boxes_cxcywh": boxes, "scores": logits.max(dim=1)[0], "text_labels": phrases})
    return out
