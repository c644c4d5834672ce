"""Fake components and fake distributions for core tests (no models, no installs).

A fake that counts its calls counts them in its runtime's counters (``fake.<name>.calls``), so
each test sees only its own calls."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avseg import hookimpl
from avseg.components import (
    Capabilities,
    ComponentConfig,
    Embedder,
    Filter,
    FrameContext,
    Proposer,
    Segmenter,
    Tagger,
)
from avseg.types import AudioWindow, FilterResult, FloatArray, Image, Proposals, SegmenterOutput, Tags


class ToneTagger(Tagger):
    """Tags by the dominant frequency: >600 Hz is 'Bark', else 'Speech'."""

    name: ClassVar[str] = "tone"
    description: ClassVar[str] = "fake tagger"

    @property
    def vocabulary(self) -> list[str]:
        return ["Bark", "Speech"]

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        self.runtime.count(f"fake.{self.name}.calls")  # per runtime, so per test: nothing to reset
        out = []
        for w in windows:
            spec = np.abs(np.fft.rfft(w.waveform))
            f = np.argmax(spec) * w.sample_rate / len(w.waveform)
            p = 0.9 if f > 600 else 0.2
            out.append(Tags.from_scores(self.vocabulary, [p, 1 - p]))
        return out


class BoxConfig(ComponentConfig):
    n: int = Field(3, ge=0)
    labelled: bool = False


class GridBoxes(Proposer):
    """n fixed boxes per frame with decreasing scores; labels 'dog', 'person', ... when labelled."""

    name: ClassVar[str] = "grid-boxes"
    description: ClassVar[str] = "fake proposer"
    Config = BoxConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        assert isinstance(config, BoxConfig)
        return Capabilities(gives_labels=config.labelled)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        self.runtime.count(f"fake.{self.name}.calls")  # per runtime, so per test: nothing to reset
        cfg = self.config
        assert isinstance(cfg, BoxConfig)
        out = []
        names = ["dog", "person", "car", "piano"]
        for f in frames:
            h, w = f.shape[:2]
            boxes = [[i * w / (cfg.n + 1), 0, (i + 1) * w / (cfg.n + 1), h / 2] for i in range(cfg.n)]
            scores = [0.9 - 0.2 * i for i in range(cfg.n)]
            out.append(Proposals(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                                 labels=[names[i % 4] for i in range(cfg.n)] if cfg.labelled else None))
        return out


class CrashingProposer(Proposer):
    """A third-party bug: raises something that is not an AvsegError."""

    name: ClassVar[str] = "crash"
    description: ClassVar[str] = "fake proposer with a bug"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(gives_masks=True)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        raise IndexError("list index out of range")


class PromptedBoxes(Proposer):
    name: ClassVar[str] = "prompted"
    description: ClassVar[str] = "fake text-prompted proposer"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs_prompts=True, gives_labels=True)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        assert prompts is not None
        out = []
        for f, pr in zip(frames, prompts):
            h, w = f.shape[:2]
            out.append(Proposals(np.array([[0, 0, w / 2, h / 2]] * len(pr), np.float32),
                                 np.full(len(pr), 0.8, np.float32), labels=list(pr)))
        return out


class BoxMasks(Segmenter):
    """Masks are the boxes themselves."""

    name: ClassVar[str] = "box-masks"
    description: ClassVar[str] = "fake segmenter"

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        self.runtime.count(f"fake.{self.name}.calls")  # per runtime, so per test: nothing to reset
        out = []
        for f, b in zip(frames, boxes):
            h, w = f.shape[:2]
            m = np.zeros((len(b), h, w), bool)
            for j, (x0, y0, x1, y1) in enumerate(b.astype(int)):
                m[j, y0:y1, x0:x1] = True
            out.append(SegmenterOutput(m, np.ones(len(b), np.float32)))
        return out


class MeanColour(Embedder):
    """Region -> mean RGB; audio -> a fixed direction (red)."""

    name: ClassVar[str] = "mean-colour"
    description: ClassVar[str] = "fake embedder"

    def embed_audio(self, windows: Sequence[AudioWindow]) -> FloatArray:
        return np.tile(np.array([1.0, 0.0, 0.0], np.float32), (len(windows), 1))

    def embed_regions(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[FloatArray]:
        self.runtime.count(f"fake.{self.name}.calls")  # per runtime, so per test: nothing to reset
        out = []
        for f, p in zip(frames, proposals):
            rows = []
            for x0, y0, x1, y1 in p.boxes.astype(int):
                crop = f[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).astype(np.float32)
                rows.append(crop.mean(0) + 1e-3)
            out.append(np.array(rows, np.float32).reshape(-1, 3))
        return out


class SimConfig(ComponentConfig):
    threshold: float = 0.5


class CosineFilter(Filter):
    name: ClassVar[str] = "cos"
    description: ClassVar[str] = "fake embedding filter"
    Config = SimConfig
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def __call__(self, ctx: FrameContext) -> FilterResult:
        assert ctx.region_embeddings is not None and ctx.audio_embedding is not None
        r = ctx.region_embeddings / np.linalg.norm(ctx.region_embeddings, axis=1, keepdims=True)
        a = ctx.audio_embedding / np.linalg.norm(ctx.audio_embedding)
        s = r @ a
        keep = [i for i in range(len(s)) if s[i] >= self.config.threshold]  # type: ignore[attr-defined]
        from avseg.types import Drop

        return FilterResult(keep, {i: Drop(self.name, f"cos {s[i]:.2f}", float(s[i])) for i in range(len(s)) if i not in keep},
                            scores=[float(x) for x in s])


class FakePlugin:
    """Registers every fake component, like a real plugin module would."""

    @hookimpl
    def register_taggers(self, register: Any) -> None:
        register(ToneTagger)

    @hookimpl
    def register_proposers(self, register: Any) -> None:
        register(GridBoxes)
        register(PromptedBoxes)
        register(CrashingProposer)

    @hookimpl
    def register_segmenters(self, register: Any) -> None:
        register(BoxMasks)

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register(MeanColour)

    @hookimpl
    def register_filters(self, register: Any) -> None:
        register(CosineFilter)


class FakeDist(importlib.metadata.Distribution):
    """A distribution that exists only in memory, with given entry points."""

    def __init__(self, name: str, version: str, eps: dict[str, str]) -> None:
        self._name, self._version = name, version
        lines = "\n".join(f"{k} = {v}" for k, v in eps.items())
        self._eps = f"[avseg]\n{lines}\n"

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: {self._version}\n"
        if filename == "entry_points.txt":
            return self._eps
        return None

    def locate_file(self, path: Any) -> Any:
        return path


#: names of the modules ``module`` made (the ``installed`` fixture forgets them after a test)
MADE: set[str] = set()


def module(name: str, **attrs: Any) -> types.ModuleType:
    """A plugin module ``name`` with ``attrs`` (hook implementations), importable at once."""
    MADE.add(name)
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m
