"""`avseg tree validate` and `avseg tree show` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli


def test_validate_names_the_misspelled_class(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = tmp_path / "t.yaml"
    tree.write_text('broad_sources:\n  animal:\n    dog: ["Bark", "Dgo"]\n')
    code, out, _ = cli(capsys, "tree", "validate", str(tree))
    assert code == 1 and "'Dgo'" in out and "Dog" in out
    tree.write_text('broad_sources:\n  animal:\n    dog: ["Bark", "Dog"]\n')
    code, out, _ = cli(capsys, "tree", "validate", str(tree))
    assert code == 0 and out.strip().endswith("ok")


def test_bad_yaml_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = tmp_path / "t.yaml"
    tree.write_text("broad_sources: [unclosed\n")
    code, _, err = cli(capsys, "tree", "validate", str(tree))
    assert code == 2 and str(tree) in err and err.count("\n") == 1


def test_show_branch(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "tree", "show", "dog")
    assert code == 0 and "Bark" in out
    code, _, err = cli(capsys, "tree", "show", "dgo")
    assert code == 2 and "did you mean" in err


def test_validate_without_a_file_validates_the_shipped_tree(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import avseg.tree

    code, out, _ = cli(capsys, "tree", "validate")
    assert code == 0 and out.strip() == "avseg/trees/default.yaml: ok"
    broken = avseg.tree.parse_tree({"broad_sources": {"animal": {"dog": ["Dgo"]}}}, "shipped")
    monkeypatch.setattr(avseg.tree, "_default_tree", lambda: broken)
    code, out, _ = cli(capsys, "tree", "validate")
    assert code == 1 and "'Dgo'" in out
