"""``bind``: keep the proposals whose region embedding matches the frame's audio embedding.

The CMSF paper's ImageBind filter (tau_BIND). Two ways to score a region against the audio:

- ``cosine`` (the paper): cosine similarity of the region and audio embeddings (both
  L2-normalised here, whatever the embedder returns); keep ``score >= threshold`` (default 0.7).
- ``softmax`` (the authors' later OWOD-BIND code: ``softmax(vision @ audio.T, dim=0)``): a
  softmax over the frame's regions of their similarity to the audio, keep ``score >= threshold``
  (default 0.2). With ``temperature`` unset the logits are the raw dot products of the
  embeddings as the embedder returns them; for ``imagebind`` that is ImageBind's own logit
  (unit vision vector . audio vector carrying ImageBind's fixed audio logit scale 20), exactly as
  the authors compute it. With ``temperature`` set, the logits are ``cosine / temperature``.
  A frame with one region gives it a score of 1.

The authors keep scores strictly above the threshold; we keep ``>=`` (equal only on exact ties).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from avseg.components import ComponentConfig, Filter, FrameContext
from avseg.errors import ChainError
from avseg.types import Drop, FilterResult

#: per-mode threshold used when ``threshold`` is left unset
DEFAULT_THRESHOLDS: dict[str, float] = {"cosine": 0.7, "softmax": 0.2}


class BindConfig(ComponentConfig):
    mode: Literal["cosine", "softmax"] = Field(
        "cosine", description="cosine: cosine(region, audio); softmax: softmax over the frame's regions"
    )
    threshold: float | None = Field(
        None, ge=-1.0, le=1.0, description="keep regions scoring >= this; null = the mode's default (cosine 0.7, softmax 0.2)"
    )
    temperature: float | None = Field(
        None,
        gt=0.0,
        description="softmax only: logits = cosine / temperature; null = raw embedding dot products (ImageBind's logits)",
    )

    @model_validator(mode="after")
    def _check(self) -> BindConfig:
        if self.threshold is not None:
            lo = -1.0 if self.mode == "cosine" else 0.0
            if not lo <= self.threshold <= 1.0:
                raise ValueError(
                    f"threshold for mode {self.mode!r} must be in [{lo:g}, 1], got {self.threshold}"
                )
        if self.temperature is not None and self.mode != "softmax":
            raise ValueError("temperature applies to mode 'softmax' only")
        return self

    @property
    def effective_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.mode] if self.threshold is None else float(self.threshold)


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
    r = np.asarray(regions, dtype=np.float64).reshape(len(regions), -1)
    a = np.asarray(audio, dtype=np.float64).reshape(-1)
    if r.shape[1] != a.shape[0]:
        raise ChainError(
            f"filter 'bind': region embeddings of size {r.shape[1]} but an audio embedding of {a.shape[0]}"
        )
    if len(r) == 0:
        return np.zeros(0, np.float64)
    if mode == "cosine":
        return np.asarray(_unit(r) @ _unit(a))
    logits = (_unit(r) @ _unit(a)) / temperature if temperature is not None else r @ a
    z = np.exp(logits - logits.max())
    return np.asarray(z / z.sum())


class BindFilter(Filter):
    name: ClassVar[str] = "bind"
    description: ClassVar[str] = (
        "Keep proposals whose region embedding matches the frame's audio (cosine or softmax)."
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
        what = "similarity" if cfg.mode == "cosine" else "softmax score"
        keep: list[int] = []
        drops: dict[int, Drop] = {}
        for i, s in enumerate(scores):
            if s >= thr:
                keep.append(i)
            else:
                a, b = _two_different(float(s), thr)
                drops[i] = Drop(self.name, f"{what} {a} < {b}", float(s))
        return FilterResult(keep=keep, drops=drops, scores=[float(s) for s in scores])
