"""The local executor: every clip in this process, one after another, with one pipeline (the default)."""

from __future__ import annotations

from collections.abc import Sequence

from avseg.executors.base import EvalJob, ExecResult, LocalContext
from avseg.executors.progress import ClipProgress


class LocalExecutor:
    name = "local"
    parallel = False

    def submit(self, job: EvalJob, todo: Sequence[str]) -> None:
        pass

    def claimed(self, out: str) -> set[str]:
        return set()

    def run(self, job: EvalJob, todo: Sequence[str], ctx: LocalContext, progress: bool) -> ExecResult:
        from avseg.eval.clip import process_clip
        from avseg.pipeline import Pipeline
        from avseg.run_record import run_metadata

        built = ctx.built or Pipeline(ctx.resolved, ctx.runtime)
        failed: list[dict[str, str]] = []
        with ClipProgress(progress, f"eval {job.label}", len(todo)) as bar:
            for n, cid in enumerate(todo):
                bar.update(n, len(failed), 1)
                outcome = process_clip(ctx.dataset, built, cid, job.out, job.semantic, ctx.indexer,
                                       ctx.plugin_metrics, job.config_id, job.debug)
                if "error" in outcome:
                    failed.append({"clip": cid, "reason": outcome["error"]})
            bar.update(len(todo), len(failed), 0)
        return ExecResult(failed=failed, weights=run_metadata(built, {}).get("weights", {}),
                          info={"name": self.name}, pipeline=built)

    def close(self) -> None:
        pass
