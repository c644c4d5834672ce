"""What every executor shares: the job description a worker needs, options, and the executor protocol."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from avseg.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from avseg.data import Dataset
    from avseg.eval.clip import LabelIndexer
    from avseg.pipeline import Pipeline
    from avseg.registry import Metric
    from avseg.runtime import Runtime
    from avseg.spec import ResolvedSpec

EXECUTORS = ("local", "ray")


def runtime_settings(runtime: Runtime) -> dict[str, Any]:
    """A runtime's settings as plain data, so that a worker process can build the same runtime."""
    return {"device": runtime.device, "dtype": runtime.dtype, "tiny": runtime.tiny,
            "random_init": runtime.random_init, "seed": runtime.seed,
            "cache_dir": str(runtime.cache.root) if runtime.cache is not None else None}


def runtime_from_settings(settings: dict[str, Any]) -> Runtime:
    from avseg.cache import StageCache
    from avseg.runtime import Runtime

    cache_dir = settings.get("cache_dir")
    return Runtime(device=settings["device"], dtype=settings["dtype"], tiny=settings["tiny"],
                   random_init=settings["random_init"], seed=settings["seed"],
                   cache=StageCache(cache_dir) if cache_dir else None)


@dataclass(frozen=True)
class EvalJob:
    """One evaluation as a worker sees it: plain, picklable data (no models, no registry).

    ``spec`` is the composed pipeline dict (a preset file is read once, on the driver); ``config``
    is what the driver resolved it to, which a worker checks its own resolution against.
    """

    root: str
    subset: str
    split: str
    out: str
    spec: dict[str, Any]
    config: dict[str, Any]
    runtime: dict[str, Any]
    semantic: bool
    config_id: str | None = None  # written into each clip's state file (see avseg.eval.folder)
    debug: bool = False  # also save each clip's trace (for avseg report)

    @property
    def key(self) -> str:
        """Identifies the job across calls: its output folder and everything that shapes its results."""
        blob = json.dumps([self.out, self.config, self.runtime, self.root, self.subset, self.split],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.subset}/{self.split}"


@dataclass
class LocalContext:
    """The driver's own objects for a job: what the local executor runs with, and where remote counters go."""

    dataset: Dataset
    resolved: ResolvedSpec
    runtime: Runtime
    indexer: LabelIndexer
    built: Pipeline | None = None
    plugin_metrics: Mapping[str, Metric] | None = None


@dataclass
class ExecResult:
    failed: list[dict[str, str]] = field(default_factory=list)  # {"clip", "reason"}, in CSV order
    weights: dict[str, Any] = field(default_factory=dict)  # which weight files the components used
    info: dict[str, Any] = field(default_factory=dict)  # how the clips were run (metrics.json "executor")
    pipeline: Pipeline | None = None  # the pipeline the local executor built (reused by the caller)


class Executor(Protocol):
    name: str
    #: whether queueing later jobs early (``submit``) lets them start while earlier ones finish
    parallel: bool

    def submit(self, job: EvalJob, todo: Sequence[str]) -> None:
        """Queue a job's clips ahead of :meth:`run` (a no-op for executors that run clips only when asked)."""

    def claimed(self, out: str) -> set[str]:
        """Clips of the job writing to ``out`` that were submitted and not yet handed back by :meth:`run`."""

    def run(self, job: EvalJob, todo: Sequence[str], ctx: LocalContext, progress: bool) -> ExecResult:
        """Run ``todo`` (clip ids, CSV order) to per-clip files in ``job.out``; return when all are done."""

    def close(self) -> None:
        """Release workers (and a cluster this executor started)."""


@dataclass(frozen=True)
class ExecutorOptions:
    """``--executor`` and the options that only apply to ``ray``; checked before anything loads."""

    name: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None

    def check(self) -> ExecutorOptions:
        if self.name not in EXECUTORS:
            raise UsageError(f"--executor {self.name!r}: expected one of {', '.join(EXECUTORS)}"
                             f"{did_you_mean(self.name, EXECUTORS)}")
        if self.name != "ray":
            given = [opt for opt, v in (("--address", self.address), ("--workers", self.workers),
                                        ("--gpus-per-worker", self.gpus_per_worker)) if v is not None]
            if given:
                raise UsageError(f"{given[0]} applies to --executor ray only")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        from avseg.checks import check_gpus_per_worker

        check_gpus_per_worker(self.gpus_per_worker)
        return self


def absolute(path: Path | str) -> str:
    """Workers may run in another folder (or on another node): paths travel absolute."""
    return str(Path(path).expanduser().absolute())
