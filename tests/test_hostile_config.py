"""Hostile configs (issue 26): `--set` through a value, YAML keys given twice or not names,
and pipeline files with odd top-level keys: one line each, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, one_line

FAST = ["--proposer", "saliency", "--filter", "score-threshold"]



@pytest.mark.parametrize("assignment,word", [
    ("filter.score-threshold.threshold.x=1", "threshold is a value (0.5)"),
    ("combiner.type.x=1", "type is a value ('union')"),
    ("filter.0.threshold.x.y=1", "threshold is a value"),
])
def test_set_through_a_value_is_one_line(assignment: str, word: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "presets", "show", "owod-bind", *FAST, "--set", assignment)
    line = one_line(err)
    assert code == 2 and word in line and assignment.split("=")[0] in line


def test_set_on_a_combiner_named_in_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text("proposer: saliency\nfilters: [score-threshold]\ncombiner: union\n")
    code, out, err = cli(capsys, "presets", "show", str(spec), "--set", "combiner.type.x=1")
    assert code == 2 and "type is a value" in one_line(err)


@pytest.mark.parametrize("text,word", [
    ("1: x\nproposer: saliency\n", "the key 1 (int) is not a name"),
    ("proposer: saliency\nproposer: owod\n", "the key 'proposer' is given twice (first on line 1)"),
    ("proposer: {type: saliency, blur: 1, blur: 2}\n", "the key 'blur' is given twice"),
    ("proposer: saliency\nyes: 1\n", "the key True (bool) is not a name"),
    ("proposer: saliency\n~: 1\n", "the key None (NoneType) is not a name"),
    ("proposer: saliency\n[a]: 1\n", "line 2"),
])
def test_pipeline_file_keys_are_names_given_once(tmp_path: Path, text: str, word: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(text)
    code, _, err = cli(capsys, "presets", "show", str(spec))
    line = one_line(err)
    assert code == 2 and word in line and str(spec) in line


def test_grid_keys_given_twice_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind\naxes:\n  proposer.top_k: [1, 2]\n  proposer.top_k: [3]\n")
    code, _, err = cli(capsys, "ablate", str(grid), "--root", str(tmp_path), "--subset", "s4",
                       "--out", str(tmp_path / "o"))
    assert code == 2 and "'proposer.top_k' is given twice" in one_line(err)


@pytest.mark.parametrize("layout", ["empty", "flat", "other-names"])
def test_score_with_no_prediction_where_expected_is_an_error(tmp_path: Path, layout: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from avseg.testing import make_s4_tree

    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 2}, size=16)
    pred = tmp_path / "pred"
    pred.mkdir()
    if layout == "flat":  # every mask written beside the others, not in per-clip folders
        for i in range(3):
            Image.new("L", (16, 16)).save(pred / f"clip_{i}.png")
    elif layout == "other-names":
        (pred / "x").mkdir()
        (pred / "x" / "notes.txt").write_text("x")
    code, out, err = cli(capsys, "score", "--root", str(root), "--subset", "s4", "--pred", str(pred))
    line = one_line(err)
    assert code == 1 and "none of the 10 expected predictions exists" in line and str(pred) in line
    found = {"empty": "holds nothing", "flat": "3 PNG files, e.g. clip_0.png",
             "other-names": "no PNG files (1 other files)"}[layout]
    assert found in line
