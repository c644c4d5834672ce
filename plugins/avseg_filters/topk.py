"""``top-k``: keep a frame's ``k`` best-scoring proposals, each dropped one traced with its rank."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from avseg.components import Capabilities, ComponentConfig, Filter, FrameContext
from avseg.types import Drop, FilterResult


class TopKConfig(ComponentConfig):
    k: int = Field(100, ge=1, description="keep at most this many proposals per frame, highest score first")


class TopK(Filter):
    name: ClassVar[str] = "top-k"
    description: ClassVar[str] = "Keep a frame's k highest-scoring proposals (ties: the earlier one)."
    Config = TopKConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities()

    def __call__(self, ctx: FrameContext) -> FilterResult:
        cfg = self.config
        assert isinstance(cfg, TopKConfig)
        props = ctx.proposals
        if props is None or len(props) == 0:
            return FilterResult(keep=[])
        order = np.argsort(-props.scores, kind="stable")
        drops = {
            int(i): Drop(self.name, f"rank {rank + 1} by score, beyond top-{cfg.k}", float(props.scores[i]))
            for rank, i in enumerate(order)
            if rank >= cfg.k
        }
        keep = sorted(int(i) for i in order[: cfg.k])
        return FilterResult(keep=keep, drops=drops, scores=[float(s) for s in props.scores])
