"""The options several commands share: the pipeline (preset, ``--set``, one option per step kind
from the kinds table), the runtime, the executor and the dataset."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

PRESET = typer.Argument(None, help="Preset name or pipeline YAML (default: owod-bind).")
SETS = typer.Option(None, "--set", help="Override a parameter: stage.key=value, filter.NAME.key=value.")
TINY = typer.Option(False, "--tiny", help="Use every model's tiny variant (random seeded weights): a plumbing check.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
DTYPE = typer.Option("float32", "--dtype", help="float32, bf16 or fp16 (GPU only).")
CACHE_DIR = typer.Option(None, "--cache-dir", help="Stage cache folder (default: the user cache dir).")
NO_CACHE = typer.Option(False, "--no-cache", help="Do not read or write the stage cache.")
EXECUTOR = typer.Option("local", "--executor", help="local (this process) or ray (actors on a Ray cluster; "
                        "pip install 'avseg\\[ray]'). See docs/scaling.md.")
ADDRESS = typer.Option(None, "--address", help="Ray cluster: HOST:PORT or auto (default: RAY_ADDRESS, a cluster "
                       "from `ray start` on this machine, else a new local one).")
WORKERS = typer.Option(None, "--workers", help="Ray workers (default: as many as the cluster's CPUs or GPUs allow).")
GPUS_PER_WORKER = typer.Option(None, "--gpus-per-worker", help="GPUs per Ray worker, fractions allowed "
                               "(default: 1 when the cluster has GPUs and --device is not cpu, else 0).")

NO_REPORT = typer.Option(False, "--no-report", help="Do not write OUT/report.html.")
SUBSET = typer.Option(..., "--subset", help="s4, ms3, avss-v1s, avss-v1m, avss-v2, avss, or a plugin's dataset.")
SPLIT = typer.Option("test", "--split", help="train, val or test.")
ROOT = typer.Option(..., "--root", help="The subset's folder (holding its metadata CSV) or a parent of it.")


def executor_options(executor: str, address: str | None, workers: int | None,
                      gpus_per_worker: float | None) -> Any:
    from avseg.executors import ExecutorOptions

    return ExecutorOptions(name=executor, address=address, workers=workers, gpus_per_worker=gpus_per_worker).check()


def component_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command one option per step kind of the kinds table (``--tagger`` ... ``--filter``,
    repeatable for a repeatable kind) in place of its ``components`` parameter, which then
    receives them as ``{override: value}`` (``{"tagger": ..., "filters": [...]}``)."""
    from avseg.kinds import KIND_TABLE

    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    rows = [k for k in KIND_TABLE if k.step]
    added = [inspect.Parameter(f"kind_{k.name}", inspect.Parameter.KEYWORD_ONLY,
                               default=typer.Option(None, k.option, help=k.help),
                               annotation=list[str] | None if k.many else str | None) for k in rows]
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name == "components":
            params += added
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation),
                                    kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        components = {k.override: (kwargs.pop(f"kind_{k.name}") or None) for k in rows}
        return fn(components=components, **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": hints.get("return")}
    return command


def pipeline_args(preset: str | None, components: dict[str, Any] | None, sets: list[str] | None) -> dict[str, Any]:
    return dict(preset=preset, **(components or {}), sets=sets or [])
