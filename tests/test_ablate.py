"""`avseg ablate`: grids, tables, plots, cache reuse across cells, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from avseg.ablate import cell_pipeline, expand_cells, load_grid
from avseg.cli import main
from avseg.errors import ConfigError
from avseg.testing import make_s4_tree


@pytest.fixture(scope="module")
def s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_s4_tree(tmp_path_factory.mktemp("s4"), n_per_split={"test": 2}, size=48)


def ablate(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["ablate", *args])
    capsys.readouterr()
    return int(e.value.code or 0)


def test_cells_are_the_cartesian_product_or_an_explicit_list(tmp_path: Path) -> None:
    g = {"base": "owod-bind", "axes": {"proposer": ["owod", "sam-grid"], "filter.bind.cosine_threshold": [0.5, 0.7]}}
    cells = expand_cells(g)
    assert len(cells) == 4 and cells[1] == {"proposer": "owod", "filter.bind.cosine_threshold": 0.7}
    assert cell_pipeline(g, cells[1]) == {"preset": "owod-bind", "sets": ["filter.bind.cosine_threshold=0.7"], "proposer": "owod"}
    assert expand_cells({"cells": [{"proposer": "owod"}]}) == [{"proposer": "owod"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes: {proposer: owod}\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_cells(load_grid(bad), bad)


def test_threshold_sweep_reuses_every_model_stage(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "base: owod-bind\n"
        "axes:\n"
        "  filter.bind.cosine_threshold: [0.0, 0.5, 0.9]\n"
    )
    out = tmp_path / "out"
    args = [str(grid), "--root", str(s4), "--subset", "s4", "--split", "test", "--out", str(out), "--tiny",
            "--cache-dir", str(tmp_path / "cache")]
    assert ablate(capsys, *args) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["filter.bind.cosine_threshold"] for r in rows] == ["0.0", "0.5", "0.9"]
    assert all(r["n_clips"] == "2" and r["failed"] == "0" for r in rows)
    first, *rest = rows
    assert int(first["computed"]) > 0
    for r in rest:  # model stages come from the cache; only SAM's decoder may see new boxes
        counters = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())["counters"]
        recomputed = {k for k, v in counters.items() if k.endswith(".computed") and v}
        assert recomputed <= {"segmenter.sam.computed"}, recomputed
        assert counters.get("sam.image_encoder", 0) == 0
        assert counters["proposer.owod.cache_hit"] == 2 and counters["embedder.imagebind.regions.cache_hit"] == 2
    md = (out / "results.md").read_text()
    assert md.startswith("| cell |") and md.count("\n") == 5
    plots = sorted(p.name for p in out.glob("plot_*.png"))
    assert plots == ["plot_fscore_dataset_vs_filter.bind.cosine_threshold.png", "plot_fscore_vs_filter.bind.cosine_threshold.png",
                     "plot_miou_vs_filter.bind.cosine_threshold.png"]
    for r in rows:
        cfg = json.loads((out / "cells" / r["cell"] / "config.json").read_text())
        assert cfg["pipeline"]["filters"][1]["cosine_threshold"] == float(r["filter.bind.cosine_threshold"])
    # a rerun (as after a kill) resumes: every clip of every cell is already finished
    assert ablate(capsys, *args) == 0
    for r in rows:
        m = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())
        assert m["n_skipped_finished"] == 2


def test_a_bad_cell_fails_before_anything_runs(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind\naxes:\n  proposer: [owod, owdo]\n")
    out = tmp_path / "out"
    assert ablate(capsys, str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out), "--tiny") == 2
    assert not (out / "cells").exists()
