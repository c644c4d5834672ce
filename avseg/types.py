"""Plain data types passed between components.

Everything here is numpy-based so that importing the core never needs torch.

Units:
- images are ``uint8`` RGB arrays of shape (H, W, 3), in pixels of the original frame;
- boxes are ``float32`` arrays of shape (N, 4), ``x0, y0, x1, y1`` in pixels of the original frame;
- masks are ``bool`` arrays of shape (N, H, W) at the frame's size;
- a clip's audio is ``float32`` ``(channels, samples)`` in [-1, 1] with its sample rate in Hz; a
  frame's :class:`AudioWindow` is mono (the pipeline's channel rule picked or mixed the channels);
- times are seconds from the start of the clip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from avseg.trace import TraceRecord

Image = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]


def content_hash(*arrays: npt.NDArray[Any]) -> str:
    """A short, stable hash of array contents (shape and dtype included)."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.data)
    return h.hexdigest()


@dataclass(frozen=True)
class AudioWindow:
    """The audio that belongs to one frame: a mono waveform and its rate (Hz).

    ``start`` and ``end`` are seconds in the clip; the waveform may have been padded
    (see :func:`avseg.audio.frame_windows`).
    """

    waveform: FloatArray
    """Mono float32 samples in [-1, 1], shape (samples,); padded with zeros where the window reaches past the clip."""
    sample_rate: int
    """Samples per second (Hz) of ``waveform``."""
    start: float = 0.0
    """Where the window starts in the clip, in seconds (may be negative before padding)."""
    end: float = 0.0
    """Where the window ends in the clip, in seconds."""

    @property
    def duration(self) -> float:
        """The window's length in seconds (from its samples)."""
        return float(len(self.waveform)) / float(self.sample_rate)

    @property
    def key(self) -> str:
        """A content hash of the waveform and its rate (the stage cache's input identity)."""
        return content_hash(self.waveform) + f"@{self.sample_rate}"


@dataclass
class FullRateVideo:
    """Every decoded frame of a clip's video at its own rate: ``frames[k]`` shown at ``times[k]`` s.

    Clip-scope components that look at motion (the ``motion`` proposer, the ``av-sync`` filter)
    read it; the sampled frames are picked from the same decode (:meth:`Clip.video`).
    """

    frames: list[Image]
    """Every decoded frame, uint8 RGB (H, W, 3), in display order."""
    times: list[float]
    """``times[k]``: when ``frames[k]`` is shown, in seconds from the clip's start."""

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def fps(self) -> float:
        """The median frame rate (frames per second); 0 for fewer than two frames."""
        if len(self.times) < 2:
            return 0.0
        step = float(np.median(np.diff(np.asarray(self.times, np.float64))))
        return 1.0 / step if step > 0 else 0.0

    def index_at(self, t: float) -> int:
        """The last frame shown at or before ``t`` (the first frame for earlier times)."""
        k = int(np.searchsorted(np.asarray(self.times, np.float64), t + 1e-6, side="right")) - 1
        return min(max(k, 0), len(self.frames) - 1)


@dataclass
class Clip:
    """A video clip: frames, their timestamps, and its audio.

    Frames are loaded lazily through ``frame_loader`` so that readers can list clips without
    decoding anything. ``timestamps[i]`` is the time (s) at which frame ``i`` was sampled.
    ``video_loader``, when the clip comes from a video file, decodes every frame at the video's
    own rate (:class:`FullRateVideo`); a reader that sets it picks the sampled frames from that
    same decode once it has run, so asking for both decodes the file once.
    """

    clip_id: str
    """The clip's id, unique within its dataset (a file stem for `avseg run`)."""
    timestamps: list[float]
    """``timestamps[i]``: the time (s) in the clip at which frame ``i`` was sampled."""
    audio_loader: Callable[[], tuple[FloatArray, int]]
    """Returns (waveform, sample rate); called once, on first use of :attr:`audio`."""
    frame_loader: Callable[[int], Image]
    """Returns frame ``i`` as uint8 RGB (H, W, 3); called on first use of that frame."""
    category: str | None = None
    """The dataset's category of the clip, when it has one (AVSBench S4's sound source class)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form details a dataset reader attaches (paths, split, ...)."""
    video_loader: Callable[[], FullRateVideo] | None = field(default=None, repr=False)
    """Returns the clip's full-rate video (every decoded frame), or None for frames-only inputs."""
    _audio: tuple[FloatArray, int] | None = field(default=None, repr=False)
    _frames: dict[int, Image] = field(default_factory=dict, repr=False)
    _video: FullRateVideo | None = field(default=None, repr=False)

    @property
    def has_video(self) -> bool:
        """Whether the clip can give its full-rate video (:meth:`video`)."""
        return self.video_loader is not None

    def video(self) -> FullRateVideo | None:
        """The full-rate frames (decoded once, then kept), or None for frames-only inputs."""
        if self._video is None and self.video_loader is not None:
            self._video = self.video_loader()
        return self._video

    @property
    def num_frames(self) -> int:
        """How many frames the clip has."""
        return len(self.timestamps)

    def frame(self, i: int) -> Image:
        """Frame ``i`` (decoded on first use, then kept)."""
        if i not in self._frames:
            self._frames[i] = self.frame_loader(i)
        return self._frames[i]

    def frames(self) -> list[Image]:
        """Every frame, in order."""
        return [self.frame(i) for i in range(self.num_frames)]

    @property
    def audio(self) -> tuple[FloatArray, int]:
        """(waveform, sample rate): float32 ``(channels, samples)`` with the file's channels kept
        (a loader's 1-D array is one channel); the pipeline's ``audio.channels`` rule makes it mono
        (:func:`avseg.audio.clip_windows`)."""
        if self._audio is None:
            wave, sr = self.audio_loader()
            a = np.asarray(wave, dtype=np.float32)
            self._audio = (np.ascontiguousarray(a.reshape(1, -1) if a.ndim <= 1 else a), sr)
        return self._audio

    @classmethod
    def from_arrays(
        cls,
        clip_id: str,
        frames: Sequence[Image],
        waveform: FloatArray,
        sample_rate: int,
        timestamps: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> Clip:
        """A clip from frames in memory and a waveform; ``timestamps`` default to 0, 1, 2, ... s."""
        frames = list(frames)
        ts = list(timestamps) if timestamps is not None else [float(i) for i in range(len(frames))]
        return cls(
            clip_id=clip_id,
            timestamps=ts,
            audio_loader=lambda: (waveform, sample_rate),
            frame_loader=lambda i: frames[i],
            **kwargs,
        )


@dataclass
class Tags:
    """Audio tags for one window: label names and probabilities, sorted by probability (descending)."""

    names: list[str]
    """Label names, most probable first."""
    scores: FloatArray
    """float32 (N,) probabilities aligned with ``names``, descending."""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.names) != len(self.scores):
            raise ValueError(f"Tags: {len(self.names)} names but {len(self.scores)} scores")

    @classmethod
    def from_scores(cls, vocabulary: Sequence[str], scores: npt.ArrayLike) -> Tags:
        """Sort a full score vector over ``vocabulary`` into a Tags object."""
        s = np.asarray(scores, dtype=np.float32).reshape(-1)
        order = np.argsort(-s, kind="stable")
        return cls([vocabulary[i] for i in order], s[order])

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: Sequence[int]) -> Tags:
        """The tags at ``index``, in that order."""
        idx = list(index)
        return Tags([self.names[i] for i in idx], self.scores[idx] if idx else np.zeros(0, np.float32))

    def as_dict(self) -> dict[str, float]:
        """``{name: score}``."""
        return {n: float(s) for n, s in zip(self.names, self.scores)}


@dataclass
class CandidateDrop:
    """A candidate a proposer removed by its own caps (top-k, internal NMS), for the trace."""

    box: list[float]
    """The dropped candidate's box, ``[x0, y0, x1, y1]`` in pixels."""
    score: float
    """Its score before it was dropped."""
    reason: str
    """One line: why it was dropped (``top-k 100``, ``nms iou 0.82 with #3``)."""
    label: str | None = None
    """Its label, when the proposer gives labels."""


@dataclass
class Proposals:
    """Candidate objects in one frame.

    ``boxes`` (N, 4) xyxy pixels; ``scores`` (N,); optional ``labels`` (N names) and
    ``masks`` (N, H, W) bool at the frame's size. ``mask_scores`` holds a segmenter's quality
    score (e.g. SAM's predicted IoU) once masks exist. ``drops`` lists candidates the producer
    removed itself (a proposer's own top-k or NMS), with the reason, so the debug trace shows
    them; it is not carried by :meth:`subset`.
    """

    boxes: FloatArray
    """float32 (N, 4) boxes, ``x0, y0, x1, y1`` in pixels of the frame."""
    scores: FloatArray
    """float32 (N,) detection or proposal scores."""
    labels: list[str] | None = None
    """N label names (a text-prompted detector's phrases), or None when unlabelled."""
    masks: BoolArray | None = None
    """bool (N, H, W) masks at the frame's size, or None before a segmenter ran."""
    mask_scores: FloatArray | None = None
    """float32 (N,) mask quality scores (SAM's predicted IoU), or None."""
    drops: list[CandidateDrop] = field(default_factory=list)
    """Candidates the producer removed itself, with the reason (for the debug trace; not kept by :meth:`subset`)."""

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n:
            raise ValueError(f"Proposals: {n} boxes but {len(self.scores)} scores")
        if self.labels is not None and len(self.labels) != n:
            raise ValueError(f"Proposals: {n} boxes but {len(self.labels)} labels")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(f"Proposals: {n} boxes but masks of shape {self.masks.shape}")
        if self.mask_scores is not None:
            self.mask_scores = np.asarray(self.mask_scores, dtype=np.float32).reshape(-1)

    @classmethod
    def empty(cls, with_labels: bool = False) -> Proposals:
        """No objects (with an empty label list when ``with_labels``)."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [] if with_labels else None)

    def __len__(self) -> int:
        return len(self.boxes)

    def subset(self, index: Sequence[int]) -> Proposals:
        """The objects at ``index``, in that order, with their labels, masks and mask scores (not ``drops``)."""
        idx = np.asarray(list(index), dtype=np.int64)
        return Proposals(
            boxes=self.boxes[idx],
            scores=self.scores[idx],
            labels=[self.labels[i] for i in idx] if self.labels is not None else None,
            masks=self.masks[idx] if self.masks is not None else None,
            mask_scores=self.mask_scores[idx] if self.mask_scores is not None else None,
        )


def concat_proposals(a: Proposals, b: Proposals) -> Proposals:
    """``a`` followed by ``b``. Labels, masks and mask scores are kept when both sides have them
    (an empty side does not count); a side without them drops them for the whole result."""
    if len(b) == 0:
        return a
    if len(a) == 0:
        return b.subset(range(len(b)))

    masks = ms = None
    if a.masks is not None and b.masks is not None:
        masks = np.concatenate([a.masks, b.masks])
    if a.mask_scores is not None and b.mask_scores is not None:
        ms = np.concatenate([a.mask_scores, b.mask_scores])
    return Proposals(
        boxes=np.concatenate([a.boxes, b.boxes]),
        scores=np.concatenate([a.scores, b.scores]),
        labels=[*a.labels, *b.labels] if a.labels is not None and b.labels is not None else None,
        masks=masks,
        mask_scores=ms,
    )


@dataclass
class SegmenterOutput:
    """One mask per box prompt, at the frame's size, and the segmenter's quality score for each."""

    masks: BoolArray
    """bool (N, H, W): one mask per box prompt, at the frame's size, in the order of the boxes."""
    scores: FloatArray
    """float32 (N,): the segmenter's quality score for each mask (SAM's predicted IoU)."""


@dataclass
class Drop:
    """Why a filter removed an item: which filter, a one-line reason, and the score it judged."""

    filter: str
    """The name of the filter that dropped the item."""
    reason: str
    """One line: why (``cosine 0.41 < 0.7``)."""
    score: float | None = None
    """The score the filter judged, when it has one."""


@dataclass
class FilterResult:
    """What a filter keeps (indices into its input) and why it dropped the others.

    ``scores`` optionally records a per-item score the filter computed (e.g. the audio
    similarity), aligned with the input, so debug views can show it for kept items too.
    ``extra`` is per-item structured detail (e.g. an AVIS tree path) for the debug JSON.
    ``added`` are new objects the filter puts into the frame after the kept ones (a clip filter
    filling a track's gap), with ``added_embeddings`` (their region embeddings) when the frame
    has embeddings and ``added_reasons`` (one line each) for the trace.
    """

    keep: list[int]
    """Indices into the filter's input (tags or proposals, by its ``target``) to keep, in order."""
    drops: dict[int, Drop] = field(default_factory=dict)
    """Why each dropped index was dropped: index -> :class:`Drop`."""
    scores: list[float] | None = None
    """A per-item score the filter computed, aligned with its input (shown for kept items too)."""
    extra: list[dict[str, Any]] | None = None
    """Per-item structured detail for the debug JSON (an AVIS tree path), aligned with the input."""
    added: Proposals | None = None
    """New objects put into the frame after the kept ones (a clip filter filling a track's gap)."""
    added_embeddings: FloatArray | None = None
    """Region embeddings (len(added), D) of ``added``, when the frame has embeddings."""
    added_reasons: list[str] | None = None
    """One line per added object, for the trace."""


@dataclass
class FrameResult:
    """The pipeline's output for one frame."""

    index: int
    """The frame's index in the clip."""
    mask: BoolArray
    """bool (H, W): the frame's output mask (the combiner's)."""
    kept: Proposals
    """The objects that survived every filter."""
    tags: Tags | None = None
    """The audio tags that survived the tag filters, when the chain has a tagger."""
    label_map: npt.NDArray[np.int32] | None = None
    """int32 (H, W): 0 is background, ``k`` is ``labels[k - 1]``; None when unlabelled."""
    labels: list[str] = field(default_factory=list)
    """The label names that ``label_map`` indexes."""
    trace: list[TraceRecord] = field(default_factory=list)
    """The debug trace of every step for this frame: an :class:`~avseg.trace.ObjectTrace` per object
    it ever held (id order), then a :class:`~avseg.trace.TagTrace` per dropped tag (``--debug`` writes
    them as JSON)."""


@dataclass
class Combined:
    """A frame's output made from its kept objects: the binary mask, and a label map (0 is
    background, ``k`` is ``labels[k - 1]``) when the combiner makes one."""

    mask: BoolArray
    """bool (H, W): the frame's foreground, at the frame's size (any other dtype is refused)."""
    label_map: IntArray | None = None
    """int32 (H, W) or None: 0 is background, ``k`` is ``labels[k - 1]``."""
    labels: list[str] = field(default_factory=list)
    """The label names that ``label_map`` indexes."""
