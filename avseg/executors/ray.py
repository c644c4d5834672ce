"""The Ray executor: clips run on a pool of Ray actors, each of which builds its pipeline once.

The driver keeps one queue of ``(job, clip)`` in submission order (an ablation submits its cells in
order, so workers move on to the next cell while the last clips of one finish) and hands the next
clip to whichever worker is idle. A worker writes the clip's masks and state file itself, through
:func:`avseg.eval.clip.process_clip`, so the output folder (and the stage cache) must be on a
filesystem every worker sees. The driver scores only those files, so metrics equal a local run's.

A worker that dies (killed, out of memory, its node lost) is replaced and its clip is tried once
more; a clip whose worker dies twice fails alone, as a clip with a bad input does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from avseg.errors import AvsegError, DependencyMissing, UsageError, one_line
from avseg.executors.base import EvalJob, ExecResult, LocalContext, runtime_from_settings
from avseg.executors.progress import ClipProgress

#: Test hook: a folder of files named ``<clip id>.<n>``. A worker about to run a clip deletes one
#: of that clip's files, if any is left, and exits abruptly (as a killed or crashed worker would):
#: one file per death, so ``A.1, B.1, B.2`` kills a worker once on clip A and twice on clip B.
FAULT_ENV = "AVSEG_TEST_WORKER_EXIT"
#: Environment variables a worker gets from the driver (weights and cache locations, offline mode),
#: so that workers started by a cluster on other nodes behave as this process does.
FORWARDED_ENV = ("AVSEG_", "HF_", "TRANSFORMERS_", "TORCH_HOME", "XDG_CACHE_HOME")
MAX_ATTEMPTS = 2  # a clip whose worker died this many times fails


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DependencyMissing("--executor ray needs Ray: pip install 'avseg[ray]'") from None
    return ray


class EvalWorker:
    """The body of a Ray actor: one runtime, a pipeline per job (built on first use), clips on demand."""

    def __init__(self, runtime: dict[str, Any]) -> None:
        self.runtime = runtime_from_settings(runtime)
        self.built: dict[str, Any] = {}

    def _context(self, job: EvalJob) -> tuple[Any, Any, Any]:
        if job.key not in self.built:
            from avseg.data import open_dataset
            from avseg.pipeline import Pipeline
            from avseg.registry import load_registry
            from avseg.spec import resolve

            registry = load_registry()
            resolved = resolve(job.spec, registry)
            if resolved.as_dict() != job.config:
                raise UsageError(f"a Ray worker on {socket.gethostname()} resolves the pipeline differently from "
                                 "the driver: install the same avseg and plugins on every node")
            self.built[job.key] = (open_dataset(job.root, job.subset, job.split, registry=registry),
                                   Pipeline(resolved, self.runtime), registry.metric_table())
        return self.built[job.key]  # type: ignore[no-any-return]

    def run(self, job: EvalJob, clip_id: str) -> dict[str, Any]:
        from avseg.eval.clip import LabelIndexer, process_clip

        t0 = time.perf_counter()
        self._maybe_fault(clip_id)
        first = job.key not in self.built
        try:
            dataset, pipeline, metrics = self._context(job)
        except AvsegError as exc:
            return {"clip": clip_id, "fatal": str(exc), "exit_code": exc.exit_code}
        before = self.runtime.mark()
        indexer = LabelIndexer()
        try:
            outcome = process_clip(dataset, pipeline, clip_id, job.out, job.semantic, indexer, metrics,
                                   job.config_id, job.debug)
        except Exception as exc:  # a bug fails this clip, not the run: the other workers go on
            outcome = {"clip": clip_id, "error": one_line(exc)}
        outcome["counters"], outcome["timings"] = self.runtime.since(before)
        outcome["unmapped"] = dict(indexer.unmapped)
        if first:  # which weight files the components use, for metrics.json
            from avseg.run_record import run_metadata

            outcome["weights"] = run_metadata(pipeline, {}).get("weights", {})
        outcome["worker_s"] = time.perf_counter() - t0  # the driver's round trip minus this is scheduling
        return outcome

    @staticmethod
    def _maybe_fault(clip_id: str) -> None:
        folder = os.environ.get(FAULT_ENV)
        if not folder:
            return
        from pathlib import Path

        for f in sorted(Path(folder).glob(f"{clip_id}.*")):
            try:
                f.unlink()  # only one worker can delete a given file: each death is claimed once
            except FileNotFoundError:
                continue
            os._exit(1)


class RayExecutor:
    """Clips on Ray actors: ``workers`` of them, each with 1 CPU and ``gpus_per_worker`` GPUs."""

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, workers: int | None = None,
                 gpus_per_worker: float | None = None) -> None:
        from avseg.checks import check_gpus_per_worker

        check_gpus_per_worker(gpus_per_worker)  # also for callers that skip ExecutorOptions
        self.ray = import_ray()  # fail in one line now, before any model or input is touched
        self.address, self.want_workers, self.want_gpus = address, workers, gpus_per_worker
        self._started_cluster = False
        self._settings: dict[str, Any] | None = None
        self._actor_cls: Any = None
        self.idle: list[Any] = []
        self.inflight: dict[Any, tuple[Any, str, str]] = {}  # ref -> (actor, job key, clip)
        self.sent: dict[Any, float] = {}  # ref -> when it was dispatched
        self.queue: deque[tuple[str, str]] = deque()
        self.jobs: dict[str, tuple[EvalJob, Any]] = {}  # key -> (job, its object ref)
        self.outcomes: dict[str, dict[str, dict[str, Any]]] = {}
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.weights: dict[str, dict[str, Any]] = {}
        self.deaths = 0
        self.workers = 0
        self.gpus = 0.0

    # -- cluster and workers --------------------------------------------------------------------
    def _start(self, settings: dict[str, Any]) -> None:
        if self._settings is not None:
            if settings != self._settings:
                raise UsageError("one Ray executor serves one runtime (device, dtype, tiny, cache)")
            return
        ray = self.ray
        if not ray.is_initialized():
            self._probe()
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="error")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {self.address}" if self.address else "(local)"
                raise UsageError(f"--address: cannot start or reach a Ray cluster {where}: {one_line(exc)}") from None
            self._started_cluster = True
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        device = str(settings.get("device", "auto"))
        g = self.want_gpus if self.want_gpus is not None else (1.0 if gpus >= 1 and device != "cpu" else 0.0)
        fit = int(cpus) if g == 0 else min(int(cpus), int(gpus / g + 1e-9))
        n = self.want_workers or fit
        if n < 1 or n > fit:
            need = f"{n} CPUs" + (f" and {n * g:g} GPUs" if g else "")
            raise UsageError(f"--workers {n} with --gpus-per-worker {g:g} needs {need}; the Ray cluster has "
                             f"{cpus:g} CPUs and {gpus:g} GPUs")
        self.workers, self.gpus, self._settings = n, g, settings
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        self._actor_cls = ray.remote(EvalWorker).options(num_cpus=1, num_gpus=g, max_restarts=0,
                                                         runtime_env={"env_vars": env} if env else None)
        self.idle = [self._new_actor() for _ in range(n)]

    def _probe(self) -> None:
        """Fail fast on an unreachable HOST:PORT: Ray itself retries a dead address for minutes."""
        if self.address in (None, "auto", "local"):
            return
        host, _, port = str(self.address).removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
        except ValueError:
            raise UsageError(f"--address {self.address!r}: expected HOST:PORT, 'auto' or ray://HOST:PORT") from None
        except OSError as exc:
            raise UsageError(f"--address {self.address}: cannot reach a Ray cluster there ({one_line(exc)})") from None

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self._settings)

    def close(self) -> None:
        for actor in [*self.idle, *(a for a, _, _ in self.inflight.values())]:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.idle, self.inflight = [], {}
        if self._started_cluster:
            self.ray.shutdown()
            self._started_cluster = False

    # -- scheduling --------------------------------------------------------------------------------
    def submit(self, job: EvalJob, todo: Sequence[str]) -> None:
        self._start(job.runtime)
        if job.key not in self.jobs:
            self.jobs[job.key] = (job, self.ray.put(job))
            self.outcomes[job.key] = {}
        queued = {c for k, c in self.queue if k == job.key} | {c for _, k, c in self.inflight.values() if k == job.key}
        for cid in todo:
            if cid not in queued and cid not in self.outcomes[job.key]:
                self.queue.append((job.key, cid))

    def claimed(self, out: str) -> set[str]:
        keys = {k for k, (job, _) in self.jobs.items() if job.out == out}
        return ({c for k, c in self.queue if k in keys} | {c for _, k, c in self.inflight.values() if k in keys}
                | {c for k in keys for c in self.outcomes[k]})

    def _dispatch(self) -> None:
        while self.idle and self.queue:
            key, cid = self.queue.popleft()
            actor = self.idle.pop()
            ref = actor.run.remote(self.jobs[key][1], cid)
            self.inflight[ref] = (actor, key, cid)
            self.sent[ref] = time.perf_counter()

    def _collect(self, ref: Any) -> None:
        ray = self.ray
        actor, key, cid = self.inflight.pop(ref)
        sent = self.sent.pop(ref)
        try:
            outcome = ray.get(ref)
            outcome["overhead_s"] = max(0.0, time.perf_counter() - sent - outcome.pop("worker_s"))
        except ray.exceptions.RayActorError as exc:
            self.deaths += 1
            if self.deaths > 2 * self.workers + 2:
                raise AvsegError(f"Ray workers keep dying ({self.deaths} so far; last: {one_line(exc, 160)}); "
                                 "see the worker logs under the Ray session folder") from None
            # the replacement takes the dead worker's place: the dead one must never be idle again
            # (a task sent to it fails, and each failure would start one more actor than the
            # cluster has room for, whose tasks then wait forever)
            actor = self._new_actor()
            self.attempts[(key, cid)] += 1
            if self.attempts[(key, cid)] < MAX_ATTEMPTS:
                self.idle.append(actor)
                self.queue.appendleft((key, cid))
                return
            outcome = {"clip": cid, "error": f"its Ray worker died {MAX_ATTEMPTS} times while running it "
                                             "(out of memory, or a crash in native code?)"}
        except ray.exceptions.RayError as exc:
            outcome = {"clip": cid, "error": one_line(exc)}
        self.idle.append(actor)
        if "fatal" in outcome:  # the pipeline cannot be built: its other clips would fail the same way
            self.queue = deque((k, c) for k, c in self.queue if k != key)
        if "weights" in outcome:
            self.weights.setdefault(key, outcome.pop("weights"))
        self.outcomes[key][cid] = outcome

    def _pump(self, finished: Callable[[], bool], tick: Callable[[], None]) -> None:
        while not finished():
            self._dispatch()
            if not self.inflight:
                raise AvsegError("internal: the Ray executor has clips to wait for but none queued or running")
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                self._collect(ref)
            tick()

    def run(self, job: EvalJob, todo: Sequence[str], ctx: LocalContext, progress: bool) -> ExecResult:
        self.submit(job, todo)
        key, want = job.key, list(todo)
        got = self.outcomes[key]
        t0 = time.perf_counter()
        with ClipProgress(progress, f"eval {job.label} on {self.workers} Ray workers", len(want)) as bar:
            def tick() -> None:
                done = [c for c in want if c in got]
                bar.update(len(done), sum("error" in got[c] for c in done),
                           sum(1 for _, k, _ in self.inflight.values() if k == key))

            def finished() -> bool:
                return all(c in got for c in want) or any("fatal" in got[c] for c in want if c in got)

            tick()
            self._pump(finished, tick)
        outcomes = [got.pop(c) for c in want if c in got]
        for o in outcomes:
            if "fatal" in o:
                err = AvsegError(o["fatal"])
                err.exit_code = int(o.get("exit_code", 1))
                raise err
        failed = []
        for o in outcomes:  # CSV order, as the local executor reports them
            ctx.runtime.counters.update(o.get("counters", {}))
            for k, v in o.get("timings", {}).items():
                ctx.runtime.timings[k] = ctx.runtime.timings.get(k, 0.0) + v
            for label, n in o.get("unmapped", {}).items():
                ctx.indexer.unmapped[label] = ctx.indexer.unmapped.get(label, 0) + n
            if "error" in o:
                failed.append({"clip": o["clip"], "reason": o["error"]})
        overheads = [o["overhead_s"] for o in outcomes if "overhead_s" in o]
        retried = sorted(c for (k, c), n in self.attempts.items() if k == key and n)
        info = {"name": self.name, "workers": self.workers, "gpus_per_worker": self.gpus,
                "address": self.address or "local", "worker_deaths": self.deaths, "retried_clips": retried,
                "wall_time": round(time.perf_counter() - t0, 3),
                # driver round trip minus the worker's own time, per clip: Ray's scheduling and transfer
                # cost (the median: a worker's first clip also waits for its process to start)
                "overhead_per_clip_s": round(statistics.median(overheads), 5) if overheads else None}
        return ExecResult(failed=failed, weights=self.weights.get(key, {}), info=info)
