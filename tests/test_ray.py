"""`--executor ray`: the same outputs as a local run, a killed worker, ablation grids, one-line errors.

The Ray tests share one local cluster of 2 CPUs (starting one takes seconds) and one synthetic S4
test split of 8 clips. They are skipped, saying why, when Ray is not installed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from avseg.cli import main
from tests.deps import requires
from tests.helpers import cli

# owod-bind's tau_BB (0.5) and tau_BIND (0.7) keep no box with random tiny weights, which would make
# every mask empty; 0 and -1 keep every box so that SAM's masks (and so the byte comparison) have content. Two boxes
# per frame keep the test fast.
SETS = ["--set", "proposer.top_k=2", "--set", "filter.score-threshold.threshold=0.0",
        "--set", "filter.bind.cosine_threshold=-1"]
METRICS = ("miou", "fscore", "fscore_dataset", "n_clips", "n_frames")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = requires("ray")
    # Workers get Ray's default of one thread per 1-CPU worker (conftest sets 2 for this process), as
    # in a real `avseg eval --executor ray`; the local reference run keeps 2 threads.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OMP_NUM_THREADS", raising=False)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield ray
    ray.shutdown()


S4_TREE = {"n_per_split": {"test": 8}, "size": 32}  # the shared s4 fixture (tests/conftest.py)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray")


def avseg(*args: str) -> int:
    """The CLI in-process (so that it joins the test's Ray cluster); its exit code."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return int(e.value.code or 0)


def evaluate(s4: Path, out: Path, cache: Path, *extra: str, expect: int = 0) -> dict[str, Any]:
    code = avseg("eval", "owod-bind", "--tiny", "--root", str(s4), "--subset", "s4", "--out", str(out),
                 "--cache-dir", str(cache), *SETS, *extra)
    assert code == expect
    return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]


def masks(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "masks").rglob("*.png"))}


@pytest.fixture(scope="module")
def local(s4: Path, work: Path) -> dict[str, Any]:
    """A local run, with its own cache: the reference every Ray run must reproduce."""
    return evaluate(s4, work / "local", work / "cache-local")


def test_ray_eval_equals_local_run(ray_cluster: Any, s4: Path, work: Path, local: dict[str, Any]) -> None:
    # A fresh cache: the workers compute every stage themselves.
    m = evaluate(s4, work / "ray", work / "cache-ray", "--executor", "ray", "--workers", "2")
    for k in METRICS:
        assert m[k] == local[k], k
    assert m["failed"] == [] and m["n_clips"] == 8
    assert m["executor"]["name"] == "ray" and m["executor"]["workers"] == 2
    # the workers' counters reach the driver: the same work as one process did
    assert m["counters"] == local["counters"]
    assert m["weights"] == local["weights"]
    ref = masks(work / "local")
    assert len(ref) == 40 and any(np.asarray(Image.open(io.BytesIO(b))).any() for b in ref.values())
    assert masks(work / "ray") == ref
    rows = lambda out: [r[:5] for r in csv.reader((out / "per_clip.csv").open())]  # noqa: E731 (time_s differs)
    assert rows(work / "ray") == rows(work / "local")


def test_killed_workers_then_rerun_keep_metrics(monkeypatch: pytest.MonkeyPatch, ray_cluster: Any, s4: Path,
                                                work: Path, local: dict[str, Any]) -> None:
    ids = [r[0] for r in csv.reader((work / "local" / "per_clip.csv").open())][1:]
    # `twice` early, while most clips still wait: its dead worker must not take the next one
    once, twice = ids[5], ids[1]
    deaths = work / "deaths"
    deaths.mkdir()
    for name in (f"{once}.1", f"{twice}.1", f"{twice}.2"):
        (deaths / name).touch()
    # A worker exits abruptly (os._exit) when it starts `once` (the first time) and `twice` (twice).
    monkeypatch.setenv("AVSEG_TEST_WORKER_EXIT", str(deaths))
    out = work / "killed"
    m = evaluate(s4, out, work / "cache-ray", "--executor", "ray", "--workers", "2", expect=1)
    assert list(deaths.iterdir()) == []
    assert m["executor"]["worker_deaths"] == 3 and m["executor"]["retried_clips"] == sorted([once, twice])
    # `once` ran again on a replacement worker; `twice` failed alone (scored as empty), and the rest finished
    assert [f["clip"] for f in m["failed"]] == [twice] and "worker died 2 times" in m["failed"][0]["reason"]
    assert m["n_clips"] == 8 and not (out / "clips" / f"{twice}.json").exists()
    monkeypatch.delenv("AVSEG_TEST_WORKER_EXIT")
    rerun = evaluate(s4, out, work / "cache-ray", "--executor", "ray", "--workers", "2")
    assert rerun["n_skipped_finished"] == 7 and rerun["failed"] == []
    for k in METRICS:
        assert rerun[k] == local[k], k
    assert masks(out) == masks(work / "local")


def test_ablate_on_ray_runs_a_two_cell_grid(capsys: pytest.CaptureFixture[str], ray_cluster: Any, s4: Path,
                                            work: Path, local: dict[str, Any]) -> None:
    grid = work / "grid.yaml"
    grid.write_text("base: owod-bind\nset: ['proposer.top_k=2', 'filter.score-threshold.threshold=0.0']\naxes:\n  filter.bind.cosine_threshold: [-1.0, 0.9]\n")

    def ablate(out: Path, cache: Path, *extra: str) -> list[dict[str, str]]:
        code, _, err = cli(capsys, "ablate", str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out),
                           "--tiny", "--limit", "4", "--cache-dir", str(cache), *extra)
        assert code == 0, err
        return list(csv.DictReader((out / "results.csv").open()))

    ray_rows = ablate(work / "ablate-ray", work / "cache-ray", "--executor", "ray", "--workers", "2")
    local_rows = ablate(work / "ablate-local", work / "cache-local")
    assert [r["filter.bind.cosine_threshold"] for r in ray_rows] == ["-1.0", "0.9"]
    for r, lr in zip(ray_rows, local_rows):
        assert r["n_clips"] == "4" and r["failed"] == "0"
        assert {k: r[k] for k in ("cell", "miou", "fscore", "fscore_dataset")} == \
               {k: lr[k] for k in ("cell", "miou", "fscore", "fscore_dataset")}
        cell = json.loads((work / "ablate-ray" / "cells" / r["cell"] / "metrics.json").read_text())
        assert cell["executor"]["name"] == "ray"
    assert masks(work / "ablate-ray" / "cells" / ray_rows[0]["cell"]) == \
        masks(work / "ablate-local" / "cells" / local_rows[0]["cell"])


# -- without a cluster ------------------------------------------------------------------------------
def test_without_ray_the_executor_is_one_line_naming_the_extra(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch, s4: Path,
                                                               tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = cli(capsys, "eval", "owod-bind", "--tiny", "--root", str(s4), "--subset", "s4",
                       "--out", str(tmp_path / "o"), "--executor", "ray")
    assert code == 1
    assert err.strip().count("\n") == 0 and "pip install 'avseg[ray]'" in err
    assert not (tmp_path / "o").exists()  # nothing started


@pytest.mark.parametrize(("args", "message"), [
    (["--executor", "dask"], "--executor 'dask': expected one of local, ray"),
    (["--workers", "2"], "--workers applies to --executor ray only"),
    (["--address", "auto"], "--address applies to --executor ray only"),
    (["--executor", "ray", "--workers", "0"], "--workers must be at least 1"),
    (["--executor", "ray", "--gpus-per-worker", "-0.5"], "--gpus-per-worker -0.5: expected a number from 0 to 64"),
])
def test_executor_options_are_checked_first(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                                            message: str) -> None:
    code, _, err = cli(capsys, "eval", "owod-bind", "--tiny", "--root", str(tmp_path / "missing"), "--subset", "s4",
                       "--out", str(tmp_path / "o"), *args)
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_ray_worker_count_must_fit_the_cluster(capsys: pytest.CaptureFixture[str], ray_cluster: Any, s4: Path,
                                               tmp_path: Path) -> None:
    code, _, err = cli(capsys, "eval", "owod-bind", "--tiny", "--root", str(s4), "--subset", "s4",
                       "--out", str(tmp_path / "o"), "--executor", "ray", "--workers", "3")
    assert code == 2 and "--workers 3" in err and "the Ray cluster has 2 CPUs" in err


def test_unreachable_address_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         s4: Path, tmp_path: Path) -> None:
    ray = requires("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh `avseg` process
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = cli(capsys, "eval", "owod-bind", "--tiny", "--root", str(s4), "--subset", "s4",
                       "--out", str(tmp_path / "o"), "--executor", "ray", "--address", f"127.0.0.1:{port}")
    assert code == 2 and f"--address 127.0.0.1:{port}: cannot reach a Ray cluster" in err
    assert err.strip().count("\n") == 0


def test_default_executor_never_imports_ray() -> None:
    code = ("import sys, avseg.cli, avseg.eval.runner, avseg.ablate, avseg.executors;"
            "from avseg.executors import make_executor; make_executor();"
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plan_eval_sees_what_run_eval_will_do(s4: Path, tmp_path: Path) -> None:
    """What an ablation queues ahead on Ray: the clips run_eval would run, nothing for a foreign folder."""
    from avseg.data import open_dataset
    from avseg.eval.runner import run_eval
    from avseg.executors.plan import plan_eval
    from avseg.registry import load_registry
    from avseg.runtime import Runtime

    registry, runtime, out = load_registry(), Runtime(device="cpu"), tmp_path / "o"
    pipeline = {"proposer": "saliency", "filters": ["score-threshold"]}
    ids = open_dataset(s4, "s4", "test").ids
    planned = plan_eval(root=s4, subset="s4", split="test", out=out, pipeline=pipeline, runtime=runtime,
                        registry=registry, limit=3)
    assert planned is not None and planned[1] == ids[:3] and not out.exists()  # planning writes nothing
    m = run_eval(root=s4, subset="s4", split="test", out=out, pipeline=pipeline, runtime=runtime, registry=registry,
                 limit=2, progress=False)
    planned = plan_eval(root=s4, subset="s4", split="test", out=out, pipeline=pipeline, runtime=runtime,
                        registry=registry, limit=3)
    assert planned is not None and planned[1] == ids[2:3] and planned[0].config == m["config"]
    other = {**pipeline, "sets": ["filter.score-threshold.threshold=0.6"]}
    assert plan_eval(root=s4, subset="s4", split="test", out=out, pipeline=other, runtime=runtime,
                     registry=registry) is None


class _FakeRay:
    """Just enough of Ray for the executor's sizing: a joined cluster of 16 CPUs and 4 GPUs."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 16.0, "GPU": 4.0}

    def remote(self, cls: type) -> Any:
        fake = self

        class Handle:
            def options(self, **kw: Any) -> Any:
                fake.options = kw
                return self

            def remote(self, *args: Any) -> object:
                return object()

        return Handle()


@pytest.mark.parametrize(("workers", "gpus", "device", "expect"), [
    (None, None, "auto", (4, 1.0)),      # one worker per GPU by default
    (None, 0.5, "auto", (8, 0.5)),       # fractional: two workers share a GPU
    (2, 0.25, "cuda", (2, 0.25)),
    (None, None, "cpu", (16, 0.0)),      # --device cpu: CPU workers, as many as CPUs
    (5, None, "auto", "--workers 5 with --gpus-per-worker 1 needs 5 CPUs and 5 GPUs; the Ray cluster has 16 CPUs and 4 GPUs"),
])
def test_workers_and_gpus_follow_the_cluster(monkeypatch: pytest.MonkeyPatch, workers: int | None,
                                             gpus: float | None, device: str, expect: Any) -> None:
    from avseg.errors import UsageError
    from avseg.executors import ray as ray_executor

    monkeypatch.setattr(ray_executor, "import_ray", _FakeRay)
    ex = ray_executor.RayExecutor(workers=workers, gpus_per_worker=gpus)
    settings = {"device": device, "dtype": "float32", "tiny": True, "random_init": False, "seed": 0, "cache_dir": None}
    if isinstance(expect, str):
        with pytest.raises(UsageError, match=re.escape(expect)):
            ex._start(settings)
        return
    ex._start(settings)
    assert (ex.workers, ex.gpus) == expect and len(ex.idle) == expect[0]
    assert ex.ray.options["num_gpus"] == expect[1] and ex.ray.options["num_cpus"] == 1


@pytest.mark.timeout(300)
def test_a_clip_that_kills_its_worker_twice_fails_alone_and_eval_finishes(
        monkeypatch: pytest.MonkeyPatch, ray_cluster: Any, s4: Path, work: Path) -> None:
    """Commit 130e911: a worker that died for good went back to the idle pool, so the next clip
    sent to it started one actor more than the 2-CPU cluster has room for, and eval hung (here:
    the timeout fails the test). A model-free pipeline; the first clip queued dies twice while
    the other seven still wait."""
    from avseg.data import open_dataset

    ids = open_dataset(s4, "s4", "test").ids
    deaths = work / "deaths-first"
    deaths.mkdir()
    for n in (1, 2):
        (deaths / f"{ids[0]}.{n}").touch()
    monkeypatch.setenv("AVSEG_TEST_WORKER_EXIT", str(deaths))
    out = work / "first-dies"
    code = avseg("eval", "--root", str(s4), "--subset", "s4", "--out", str(out), "--proposer", "saliency",
                 "--filter", "score-threshold", "--no-cache", "--executor", "ray", "--workers", "2")
    m = json.loads((out / "metrics.json").read_text())
    assert code == 1 and list(deaths.iterdir()) == []
    assert [f["clip"] for f in m["failed"]] == [ids[0]] and m["executor"]["worker_deaths"] == 2
    assert m["n_clips"] == 8 and sorted(p.stem for p in (out / "clips").glob("*.json")) == sorted(ids[1:])
