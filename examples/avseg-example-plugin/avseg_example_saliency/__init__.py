"""A weight-free saliency proposer, registered through the ``avseg`` entry-point group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field, field_validator

from avseg import hookimpl
from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.types import Image, Proposals


def frequency_tuned(frame: Image, blur: int = 5) -> np.ndarray:
    """Saliency in [0, 1] (Achanta et al., CVPR 2009): each pixel's distance in Lab colour space
    from the image's mean colour, after a small Gaussian blur removes noise and texture."""
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
    smooth = cv2.GaussianBlur(lab, (blur, blur), 0)
    sal = np.linalg.norm(smooth - lab.reshape(-1, 3).mean(axis=0), axis=2)
    lo, hi = float(sal.min()), float(sal.max())
    return (sal - lo) / (hi - lo) if hi > lo else np.zeros_like(sal)


def _contrast(sal: np.ndarray, mask: np.ndarray) -> float:
    """Score in [0, 1]: above 0.5 when the region is more salient than the rest of the frame."""
    inside = float(sal[mask].mean())
    outside = float(sal[~mask].mean()) if (~mask).any() else 0.0
    return inside / (inside + outside) if inside + outside > 0 else 0.0


class SaliencyConfig(ComponentConfig):
    blur: int = Field(5, ge=1, le=31, description="Gaussian blur size (odd) applied before measuring colour distance")

    @field_validator("blur")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be odd (a Gaussian kernel size)")
        return v

    min_area: float = Field(0.005, ge=0.0, lt=1.0, description="ignore regions smaller than this fraction of the frame")


class SaliencyProposer(Proposer):
    name: ClassVar[str] = "saliency"
    description: ClassVar[str] = "Most salient region (frequency-tuned colour saliency, Otsu, largest component); no weights."
    Config = SaliencyConfig
    requires: ClassVar[tuple[str, ...]] = ("cv2",)

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(gives_masks=True)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        cfg = self.config
        assert isinstance(cfg, SaliencyConfig)
        out = []
        for frame in frames:
            sal = frequency_tuned(frame, cfg.blur)
            u8 = (sal * 255).astype(np.uint8)
            _, binary = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
            h, w = sal.shape
            none = Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), masks=np.zeros((0, h, w), bool))
            if n <= 1:
                out.append(none)
                continue
            best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            if stats[best, cv2.CC_STAT_AREA] < cfg.min_area * h * w:
                out.append(none)
                continue
            mask = labels == best
            x, y, bw, bh = (int(v) for v in stats[best, :4])
            out.append(Proposals(
                boxes=np.array([[x, y, x + bw, y + bh]], np.float32),
                scores=np.array([_contrast(sal, mask)], np.float32),
                masks=mask[None],
            ))
        return out


@hookimpl
def register_proposers(register):  # type: ignore[no-untyped-def]
    register(SaliencyProposer)
