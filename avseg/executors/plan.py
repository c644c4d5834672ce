"""Planning an evaluation ahead of running it, so that a parallel executor can queue it early."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avseg.executors.base import EvalJob
from avseg.registry import Registry
from avseg.runtime import Runtime


def plan_eval(*, root: Path, subset: str, split: str, out: Path, pipeline: dict[str, Any], runtime: Runtime,
              registry: Registry, limit: int | None = None,
              clips: Sequence[str] | None = None) -> tuple[EvalJob, list[str]] | None:
    """The job and the clips still to do that ``run_eval`` with the same arguments hands its executor.

    Writes nothing. None when ``out`` holds another config's results: ``run_eval`` refuses that
    folder itself, with its usual message, when its turn comes.
    """
    from avseg.data import open_dataset
    from avseg.errors import AvsegError
    from avseg.eval import folder
    from avseg.eval.runner import STATE_DIR, config_identity, eval_job, is_semantic, load_states
    from avseg.run_record import component_versions
    from avseg.spec import compose, resolve

    spec = compose(registry=registry, **pipeline)
    resolved = resolve(spec, registry)
    dataset = open_dataset(root, subset, split, registry=registry).select(limit=limit, clips=clips)
    ident = config_identity(resolved.as_dict(), subset, split, runtime.tiny, component_versions(resolved))
    cfg = out / "config.json"
    if cfg.exists():
        try:
            old = json.loads(cfg.read_text())
        except ValueError:
            old = None
        if old != ident:
            return None
    semantic = is_semantic(subset)
    try:
        finished = load_states(out, ident, semantic, wanted=set(dataset.ids)) if (out / STATE_DIR).is_dir() else {}
    except AvsegError:  # an unreadable state file: run_eval reports it with the --repair command
        return None
    todo = [cid for cid in dataset.ids if cid not in finished]
    return eval_job(root, subset, split, out, spec, resolved, runtime, semantic, folder.config_id(ident)), todo
