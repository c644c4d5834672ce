"""``avseg.load``: a pipeline built once and called on inputs from Python, e.g. in a notebook.

    pipe = avseg.load("owod-bind", tiny=True)
    result = pipe("clip.mp4")          # or a frames folder, or (frames, (waveform, sample_rate))
    result.masks                       # (T, H, W) bool

The loaded pipeline wraps :func:`avseg.spec.compose`/:func:`~avseg.spec.resolve` and the step loop
(:class:`avseg.pipeline.Pipeline`); it prints nothing unless ``progress=True``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.errors import InputError, UsageError, did_you_mean
from avseg.kinds import KINDS_BY_NAME, STEP_KINDS
from avseg.runtime import CounterMark
from avseg.types import Clip

if TYPE_CHECKING:
    from avseg.pipeline import Pipeline
    from avseg.registry import Registry
    from avseg.result import Result
    from avseg.runtime import Runtime
    from avseg.spec import ResolvedSpec

#: keyword overrides of :func:`load`, named like the CLI options: one per step kind of the kinds
#: table (``tagger``, ..., ``filters``, ...: a name, or a list for a repeatable kind), and ``set``
OVERRIDES = (*(KINDS_BY_NAME[k].override for k in STEP_KINDS), "set")

StageListener = Callable[[str], None]


def set_assignments(value: Mapping[str, Any] | Sequence[str] | str | None) -> list[str]:
    """``set={"filter.bind.cosine_threshold": 0.6}`` (or the CLI's ``["filter.bind.cosine_threshold=0.6"]``) as --set strings."""
    import yaml

    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            text = yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
            out.append(f"{k}={text}")
        return out
    return [str(s) for s in value]


def compose_args(preset: str | Path | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`avseg.spec.compose` arguments for ``load(preset, **overrides)``."""
    unknown = [k for k in overrides if k not in OVERRIDES]
    if unknown:
        raise UsageError(f"avseg.load: unknown option {unknown[0]!r}{did_you_mean(unknown[0], OVERRIDES)}")
    args: dict[str, Any] = {"preset": str(preset) if preset is not None else None}
    for kind in STEP_KINDS:
        info = KINDS_BY_NAME[kind]
        value = overrides.get(info.override)
        if info.many and isinstance(value, str):
            value = [value]
        args[info.override] = list(value) if info.many and value is not None else value
    args["sets"] = set_assignments(overrides.get("set"))
    return args


class LoadedPipeline:
    """A composed, validated pipeline whose models are built once and reused on every call.

    Call it on an input to get a :class:`avseg.result.Result`; :meth:`evaluate` scores it on an
    AVSBench split. Made by :func:`avseg.load`.
    """

    def __init__(self, args: dict[str, Any], resolved: ResolvedSpec, runtime: Runtime, registry: Registry,
                 *, progress: bool = False) -> None:
        self.args = args
        self.resolved = resolved
        self.runtime = runtime
        self.registry = registry
        self.progress = progress
        #: called with a stage label before each model load and model stage (the CLI's status line)
        self.on_stage: StageListener | None = None
        self._pipeline: Pipeline | None = None
        # counters/timings already reported: each Result gets what its call added (the first also the loads)
        self._mark = CounterMark({}, {})

    # -- what it is ----------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The resolved chain, every parameter included (what run.json records as ``config``)."""
        return self.resolved.as_dict()

    @property
    def warnings(self) -> list[str]:
        return list(self.resolved.warnings)

    def __repr__(self) -> str:
        chain = " -> ".join(self.resolved.step_names())
        state = "built" if self._pipeline is not None else "not built"
        return (f"<avseg pipeline {self.args.get('preset') or 'default'}: {chain}; "
                f"tiny={self.runtime.tiny} device={self.runtime.device} ({state})>")

    # -- building ------------------------------------------------------------------------
    def _stage(self, label: str) -> None:
        if self.on_stage is not None:
            self.on_stage(label)

    def build(self) -> Pipeline:
        """Build every component (load the models) once; later calls reuse them."""
        if self._pipeline is None:
            from avseg.pipeline import Pipeline

            with self._status("loading models"):
                self._pipeline = Pipeline(self.resolved, self.runtime, on_stage=self._stage)
        return self._pipeline

    @contextmanager
    def _status(self, what: str) -> Iterator[None]:
        """With progress=True, a status line on stderr naming the running stage; silent otherwise."""
        if not self.progress or self.on_stage is not None:
            yield
            return
        from rich.console import Console

        with Console(stderr=True).status(what) as status:
            self.on_stage = lambda label: status.update(f"{what}: {label}")
            try:
                yield
            finally:
                self.on_stage = None

    # -- running -------------------------------------------------------------------------
    def __call__(self, input: Any, *, fps: float = 1.0, timestamps: Sequence[float] | None = None,
                 clip_id: str | None = None) -> Result:
        """Segment one input: an mp4 (or other video) path, a frames folder with its audio file, or
        ``(frames, (waveform, sample_rate))`` arrays; ``fps`` is the sampling rate for videos."""
        clip, video_fps, source = to_clip(input, fps=fps, timestamps=timestamps, clip_id=clip_id)
        return self.run_clip(clip, video_fps=video_fps, input_path=source)

    def run_clip(self, clip: Clip, *, video_fps: float | None = None, input_path: str | None = None) -> Result:
        """Run an already-opened :class:`~avseg.types.Clip`."""
        from avseg.result import Result
        from avseg.run_record import run_metadata

        pipeline = self.build()
        t0 = time.perf_counter()
        with self._status(f"{clip.clip_id} ({clip.num_frames} frames)"):
            out = pipeline.run_clip(clip)
        wall = time.perf_counter() - t0
        counters, timings = self._since_mark()
        meta = run_metadata(pipeline, {"input": input_path, "clip": clip.clip_id})
        meta["warnings"] = list(meta.get("warnings", [])) + [w for w in clip.meta.get("warnings", [])
                                                             if w not in meta.get("warnings", [])]
        meta["timings"] = {k: round(v, 4) for k, v in sorted(timings.items())}
        meta["counters"] = dict(sorted(counters.items()))
        return Result(clip, out.frames, meta, video_fps=video_fps, wall_time=wall)

    def _since_mark(self) -> tuple[dict[str, int], dict[str, float]]:
        counters, timings = self.runtime.since(self._mark)
        self._mark = self.runtime.mark()
        return counters, timings

    def evaluate(self, root: str | Path, subset: str, split: str = "test", out: str | Path | None = None, *,
                 limit: int | None = None, clips: Sequence[str] | None = None, batch_videos: int = 4,
                 overwrite: bool = False, debug: bool = False) -> dict[str, Any]:
        """Run and score an AVSBench split (like ``avseg eval``); returns the metrics dict.

        ``out`` (default: a new temporary folder) receives masks/, per_clip.csv and metrics.json
        (and debug/ traces with ``debug``, for :func:`avseg.report.write_report`); the returned
        dict names it under ``"out"``.
        """
        from avseg.eval.runner import run_eval

        folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="avseg-eval-"))
        pipeline = self.build()
        metrics = run_eval(root=Path(root), subset=subset, split=split, out=folder, pipeline=self.args,
                           runtime=self.runtime, limit=limit, clips=clips, batch_videos=batch_videos,
                           overwrite=overwrite, registry=self.registry, progress=self.progress, built=pipeline,
                           debug=debug)
        self._since_mark()  # the eval's work is in its metrics, not in the next Result
        return {**metrics, "out": str(folder)}


def _frames_array(frames: Any) -> list[np.ndarray]:
    from avseg.data.images import MAX_SIDE

    ok = isinstance(frames, (list, tuple)) or (isinstance(frames, np.ndarray) and frames.ndim == 4)
    items = list(frames) if ok else None
    if not items:
        raise InputError("input frames: expected a non-empty list of (H, W, 3) uint8 arrays or a (T, H, W, 3) array, "
                         f"got {type(frames).__name__}")
    out = []
    for i, f in enumerate(items):
        if not isinstance(f, np.ndarray):
            raise InputError(f"input frame {i}: expected an (H, W, 3) uint8 numpy array, got {type(f).__name__}")
        a = f
        if a.ndim >= 2 and max(a.shape[:2]) > MAX_SIDE:
            raise InputError(f"input frame {i} is {a.shape[1]}x{a.shape[0]}; the largest accepted side is {MAX_SIDE} px")
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
            raise InputError(f"input frame {i}: expected an (H, W, 3) RGB array, got shape {a.shape}")
        if a.dtype != np.uint8:
            raise InputError(f"input frame {i}: expected uint8 RGB values 0-255, got dtype {a.dtype}")
        out.append(np.ascontiguousarray(a[:, :, :3]))
    return out


def _waveform(wave: Any, sr: Any) -> tuple[np.ndarray, int]:
    from avseg.data.audiocheck import check_audio, check_sample_rate

    if not isinstance(wave, np.ndarray):
        raise InputError(f"input waveform: expected a numpy array, got {type(wave).__name__}")
    a = wave
    sr = check_sample_rate(sr, "input waveform")
    check_audio(a[:0], sr, "input waveform", [], [])  # dtype (complex, not numbers): the files' check
    if a.ndim not in (1, 2) or a.size == 0:
        raise InputError(f"input waveform: expected a non-empty 1-D (or channels x samples) array, got {a.shape}")
    if np.issubdtype(a.dtype, np.integer):  # PCM as read by e.g. scipy.io.wavfile
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    if a.ndim == 2:  # stereo: channels are the short axis; averaged to mono like audio files are
        a = a.mean(axis=int(np.argmin(a.shape)))
    return np.ascontiguousarray(a, dtype=np.float32), sr


def to_clip(input: Any, *, fps: float = 1.0, timestamps: Sequence[float] | None = None,
            clip_id: str | None = None) -> tuple[Clip, float | None, str | None]:
    """``(clip, video fps or None, source path or None)`` for any input :class:`LoadedPipeline` accepts.

    Arrays follow the frames-folder convention (1 fps, frame ``i`` hears second ``i``) unless
    ``timestamps`` (seconds) are given.
    """
    from avseg.checks import check_fps
    from avseg.data import VIDEO_EXTS, open_input
    from avseg.data.base import FRAME_OFFSET

    check_fps(fps)
    if isinstance(input, (str, Path)):
        p = Path(input)
        clip = open_input(p, fps=fps)
        if clip_id:
            clip.clip_id = clip_id
        is_video = p.is_file() and p.suffix.lower() in VIDEO_EXTS
        return clip, (fps if is_video else None), str(input)
    if isinstance(input, tuple) and len(input) == 2 and isinstance(input[1], tuple) and len(input[1]) == 2:
        from avseg.data.audiocheck import check_timestamps, checked

        frames = _frames_array(input[0])
        wave, sr = _waveform(*input[1])
        ts = (check_timestamps(timestamps, "input") if timestamps is not None
              else [i + FRAME_OFFSET for i in range(len(frames))])
        if len(ts) != len(frames):
            raise InputError(f"input: {len(frames)} frames but {len(ts)} timestamps")
        clip = Clip.from_arrays(clip_id or "arrays", frames, wave, sr, timestamps=ts)
        # the audio checks files get: non-finite samples silenced, audio shorter than the frames said
        clip.audio_loader = checked(clip.audio_loader, "input waveform", ts, clip.meta)
        return clip, None, None
    raise InputError(f"input: expected a video path, a frames folder or (frames, (waveform, sample_rate)); "
                     f"got {type(input).__name__}")


def open_pipeline(preset: str | Path | None = None, *, tiny: bool = False, device: str = "auto",
                  dtype: str = "float32", cache: bool | str | Path = True, progress: bool = False,
                  registry: Registry | None = None, **overrides: Any) -> LoadedPipeline:
    """Compose and validate a pipeline without building its models (see :func:`load`)."""
    from avseg.registry import load_registry
    from avseg.runtime import make_runtime
    from avseg.spec import compose, resolve

    registry = registry or load_registry()
    args = compose_args(preset, overrides)
    resolved = resolve(compose(registry=registry, **args), registry)
    cache_dir = Path(cache) if isinstance(cache, (str, Path)) else None
    runtime = make_runtime(tiny=tiny, device=device, dtype=dtype, cache_dir=cache_dir, no_cache=cache is False)
    return LoadedPipeline(args, resolved, runtime, registry, progress=progress)


def load(preset: str | Path | None = None, *, tiny: bool = False, device: str = "auto", dtype: str = "float32",
         cache: bool | str | Path = True, progress: bool = False, registry: Registry | None = None,
         **overrides: Any) -> LoadedPipeline:
    """Build a pipeline once, to call on inputs: ``avseg.load("owod-bind")("clip.mp4").masks``.

    ``preset`` is a preset name or a pipeline YAML (default ``owod-bind``); ``overrides`` take the
    CLI's names: ``tagger=``, ``proposer=``, ``embedder=``, ``segmenter=`` (a name, or ``"none"``),
    ``filters=[...]`` and ``set={"filter.bind.cosine_threshold": 0.6}``. ``tiny=True`` builds every model's
    tiny variant (random seeded weights). ``cache`` is True (the user cache dir), False, or a folder
    for the stage cache. Nothing is printed unless ``progress=True``.
    """
    pipe = open_pipeline(preset, tiny=tiny, device=device, dtype=dtype, cache=cache, progress=progress,
                         registry=registry, **overrides)
    pipe.build()
    return pipe
