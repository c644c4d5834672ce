"""Executors: where an evaluation's clips run.

``local`` (the default) runs them one after another in this process; ``ray`` (:mod:`avseg.executors.ray`,
``pip install 'avseg[ray]'``) spreads them over actors on a Ray cluster. Both call the same per-clip
function (:func:`avseg.eval.clip.process_clip`), which writes a clip's masks and state file into the
output folder, and the driver scores only those files, so the metrics do not depend on the executor.
"""

from __future__ import annotations

from avseg.executors.base import (
    EXECUTORS,
    EvalJob,
    ExecResult,
    Executor,
    ExecutorOptions,
    LocalContext,
    runtime_from_settings,
    runtime_settings,
)


def make_executor(options: ExecutorOptions | None = None) -> Executor:
    """The executor named by ``options`` (checked first). ``ray`` fails in one line when Ray is missing."""
    options = (options or ExecutorOptions()).check()
    if options.name == "ray":
        from avseg.executors.ray import RayExecutor

        return RayExecutor(address=options.address, workers=options.workers,
                           gpus_per_worker=options.gpus_per_worker)
    from avseg.executors.local import LocalExecutor

    return LocalExecutor()


__all__ = ["EXECUTORS", "EvalJob", "ExecResult", "Executor", "ExecutorOptions", "LocalContext", "make_executor",
           "runtime_from_settings", "runtime_settings"]
