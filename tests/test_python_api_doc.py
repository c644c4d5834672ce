"""docs/python-api.md runs as written (each python block in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_python_api_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capfd: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 5
    # The guide's paths are relative to a folder holding examples/data/example.mp4.
    (tmp_path / "examples" / "data").mkdir(parents=True)
    (tmp_path / "examples" / "data" / "example.mp4").symlink_to(ROOT / "examples" / "data" / "example.mp4")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "python_api_guide"}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)
    report = (tmp_path / "runs" / "s4-eval" / "report.html").read_text()
    assert "kept" in report and "No debug trace" not in report  # evaluate(debug=True) traces are shown
    out, err = capfd.readouterr()
    assert "<avseg Result example: 5 frames" in out
    assert err == ""  # the API itself prints nothing
