"""``bind``: keep the proposals whose region embedding matches the frame's audio embedding.

The CMSF paper's ImageBind filter (tau_BIND). Three ways to score a region against the audio,
each with its own threshold parameter, so a number never changes meaning with ``mode``:

- ``cosine`` (the paper): cosine similarity of the region and audio embeddings (both
  L2-normalised here, whatever the embedder returns); keep ``score >= cosine_threshold``
  (default 0.7, the paper's tau_BIND).
- ``softmax`` (the authors' later OWOD-BIND code: ``softmax(vision @ audio.T, dim=0)``): a
  softmax over the frame's regions of their similarity to the audio, keep
  ``score >= softmax_threshold`` (default 0.2). With ``temperature`` unset the logits are the raw
  dot products of the embeddings as the embedder returns them; for ``imagebind`` that is
  ImageBind's own logit (unit vision vector . audio vector carrying ImageBind's fixed audio logit
  scale 20), exactly as the authors compute it. With ``temperature`` set, the logits are
  ``cosine / temperature``. A frame with one region gives it a score of 1.
- ``minmax`` (avseg's, in neither the paper nor the authors' code): the frame's cosines scaled to
  [0, 1] (``(c - min) / (max - min)`` over the frame's regions), keep
  ``score >= minmax_threshold`` (default 0.5). It asks "is this region among the frame's best
  matches" without assuming where ImageBind's cosines lie. A frame whose regions all score the
  same (one region included) gives each a score of 1.

The parameter ``threshold`` of earlier versions meant a different number in each mode; it is
refused with a message naming the mode's parameter. The authors keep scores strictly above the
threshold; we keep ``>=`` unless ``strict: true`` (``owod-bind-authors`` sets it).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from avseg.components import ComponentConfig, Filter, FrameContext
from avseg.errors import ChainError
from avseg.types import Drop, FilterResult

Mode = Literal["cosine", "softmax", "minmax"]

#: each mode's threshold parameter and its default
THRESHOLD_PARAMS: dict[str, str] = {
    "cosine": "cosine_threshold", "softmax": "softmax_threshold", "minmax": "minmax_threshold",
}  # fmt: skip
DEFAULT_THRESHOLDS: dict[str, float] = {"cosine": 0.7, "softmax": 0.2, "minmax": 0.5}


class BindConfig(ComponentConfig):
    mode: Mode = Field(
        "cosine",
        description="cosine: cosine(region, audio); softmax: softmax over the frame's regions; "
        "minmax: the frame's cosines scaled to [0, 1]",
    )
    cosine_threshold: float = Field(
        DEFAULT_THRESHOLDS["cosine"], ge=-1.0, le=1.0,
        description="mode cosine: keep regions whose cosine(region, audio) >= this (tau_BIND)",
    )
    softmax_threshold: float = Field(
        DEFAULT_THRESHOLDS["softmax"], ge=0.0, le=1.0,
        description="mode softmax: keep regions whose softmax score over the frame's regions >= this",
    )
    minmax_threshold: float = Field(
        DEFAULT_THRESHOLDS["minmax"], ge=0.0, le=1.0,
        description="mode minmax: keep regions whose min-max scaled cosine >= this",
    )
    strict: bool = Field(
        False, description="keep score > threshold instead of >= (the authors' code: values above the threshold)"
    )
    temperature: float | None = Field(
        None,
        gt=0.0,
        description="softmax only: logits = cosine / temperature; null = raw embedding dot products (ImageBind's logits)",
    )
    # refused (see the validator): kept as a hidden field only to name the parameter that replaced it
    threshold: float | None = Field(
        None, exclude=True, json_schema_extra={"affects_output": False},
        description="removed: use cosine_threshold, softmax_threshold or minmax_threshold",
    )

    @field_validator("threshold")
    @classmethod
    def _refuse_threshold(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None:
            return v
        mode = info.data.get("mode", "cosine")
        others = ", ".join(p for m, p in THRESHOLD_PARAMS.items() if m != mode)
        raise ValueError(
            f"'threshold' meant a different number in each mode and is gone: use "
            f"{THRESHOLD_PARAMS[mode]}={v} for mode {mode!r} ({others} for the other modes)"
        )

    @model_validator(mode="after")
    def _check(self) -> BindConfig:
        if self.temperature is not None and self.mode != "softmax":
            raise ValueError("temperature applies to mode 'softmax' only")
        return self

    @property
    def effective_threshold(self) -> float:
        """The threshold of the configured mode."""
        return float(getattr(self, THRESHOLD_PARAMS[self.mode]))


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(np.divide(x, n, out=np.zeros_like(x), where=n > 0))


def _two_different(score: float, threshold: float) -> tuple[str, str]:
    """Both numbers with 2 decimals, or as many more as it takes for them to read differently
    (0.699 against 0.70 would otherwise read "0.70 < 0.70")."""
    for digits in range(2, 17):
        a, b = f"{score:.{digits}f}", f"{threshold:.{digits}f}"
        if a != b:
            return a, b
    return repr(score), repr(threshold)


def bind_scores(
    regions: np.ndarray, audio: np.ndarray, mode: str, temperature: float | None = None
) -> np.ndarray:
    """(N,) float64 scores of ``regions`` (N, D) against ``audio`` (D,) under ``mode``."""
    a = np.asarray(audio, dtype=np.float64).reshape(-1)
    # (0, D) for no regions: reshape(0, -1) cannot infer D from an empty array
    r = np.asarray(regions, dtype=np.float64).reshape(len(regions), -1 if len(regions) else len(a))
    if r.shape[1] != a.shape[0]:
        raise ChainError(
            f"filter 'bind': region embeddings of size {r.shape[1]} but an audio embedding of {a.shape[0]}"
        )
    if len(r) == 0:
        return np.zeros(0, np.float64)
    if mode == "cosine":
        return np.asarray(_unit(r) @ _unit(a))
    if mode == "minmax":
        c = _unit(r) @ _unit(a)
        lo, hi = float(c.min()), float(c.max())
        return np.ones_like(c) if hi - lo <= 0.0 else np.asarray((c - lo) / (hi - lo))
    logits = (_unit(r) @ _unit(a)) / temperature if temperature is not None else r @ a
    z = np.exp(logits - logits.max())
    return np.asarray(z / z.sum())


class BindFilter(Filter):
    name: ClassVar[str] = "bind"
    description: ClassVar[str] = (
        "Keep proposals whose region embedding matches the frame's audio (cosine, softmax or minmax)."
    )
    Config = BindConfig
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    config: BindConfig

    def __call__(self, ctx: FrameContext) -> FilterResult:
        cfg = self.config
        props = ctx.proposals
        if props is None or len(props) == 0:
            return FilterResult(keep=[], scores=[])
        if ctx.region_embeddings is None or ctx.audio_embedding is None:
            raise ChainError("filter 'bind' needs region and audio embeddings: put an embedder in the chain")
        if len(ctx.region_embeddings) != len(props):
            raise ChainError(
                f"filter 'bind': {len(ctx.region_embeddings)} region embeddings for {len(props)} proposals"
            )
        scores = bind_scores(ctx.region_embeddings, ctx.audio_embedding, cfg.mode, cfg.temperature)
        thr = cfg.effective_threshold
        what = {"cosine": "similarity", "softmax": "softmax score", "minmax": "min-max scaled similarity"}[cfg.mode]
        keep: list[int] = []
        drops: dict[int, Drop] = {}
        for i, s in enumerate(scores):
            if s > thr or (s == thr and not cfg.strict):
                keep.append(i)
            else:
                a, b = _two_different(float(s), thr)
                drops[i] = Drop(self.name, f"{what} {a} {'<=' if cfg.strict else '<'} {b}", float(s))
        return FilterResult(keep=keep, drops=drops, scores=[float(s) for s in scores])
