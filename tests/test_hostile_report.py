"""Hostile report inputs (issue 26): a tampered eval or ablate folder never runs script in its
report, never makes the report write outside its folder, and never gives a traceback."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from html.parser import HTMLParser
from pathlib import Path

import pytest

from avseg.cli import main
from avseg.testing import make_s4_tree
from tests.helpers import cli, one_line

PIPE = ["--proposer", "saliency", "--filter", "score-threshold", "--no-cache"]
# each payload, if it ran, would set an attribute that the escaped text can never contain
JS = "document.documentElement.setAttribute('data-pwned','yes')"
PAYLOADS = [f"<script>{JS}</script>", f"<img src=x onerror=\"{JS}\">", f"'><svg onload=\"{JS}\">",
            f"\"><iframe srcdoc='<script>parent.{JS}</script>'></iframe>"]



def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def require_chromium() -> str:
    found = chromium()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":  # CI installs it (scripts/install_chromium.sh)
            pytest.fail("no headless Chromium on PATH under CI=true: run scripts/install_chromium.sh")
        pytest.skip("no headless Chromium on PATH (scripts/install_chromium.sh installs it with apt)")
    return found


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.handlers: list[str] = []
        self.bad_tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.handlers += [k for k, _ in attrs if k.startswith("on")]
        if tag in ("iframe", "svg", "object", "embed"):
            self.bad_tags.append(tag)


@pytest.fixture(scope="module")
def s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_s4_tree(tmp_path_factory.mktemp("s4"), n_per_split={"test": 2}, size=32)


@pytest.fixture(scope="module")
def made(s4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "ev"
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as e:
        main(["eval", *PIPE, "--root", str(s4), "--subset", "s4", "--out", str(out), "--debug", "--no-report"])
    assert e.value.code in (0, None)
    return out


@pytest.fixture
def ev(made: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ev"
    shutil.copytree(made, out)
    return out


def tamper(ev: Path) -> None:
    """Script in every value the report shows, in every type it may take."""
    m = json.loads((ev / "metrics.json").read_text())
    p = itertools.cycle(PAYLOADS)
    m.update(miou=next(p), n_clips=[next(p)], n_frames={"x": next(p)}, fscore=next(p), subset=next(p),
             semantic={"miou": next(p), "fscore": [next(p)]}, tiny=next(p),
             failed=[{"clip": next(p), "reason": next(p)}, next(p)], counters={next(p): next(p)},
             config={"proposer": {"type": next(p)}, "filters": [{"type": next(p)}, next(p)]})
    (ev / "metrics.json").write_text(json.dumps(m))
    rows = list(csv.DictReader((ev / "per_clip.csv").open()))
    rows[0]["category"], rows[0]["time_s"], rows[0]["n_frames"] = next(p), next(p), next(p)
    with (ev / "per_clip.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for dbg in (ev / "debug").glob("*.json"):
        d = json.loads(dbg.read_text())
        fr = d["frames"][0]
        fr["tags"] = {next(p): next(p)}
        fr["items"] = [{"id": next(p), "box": [0, 0, 1, 1], "score": next(p), "label": next(p), "kept": False,
                        "scores": {next(p): next(p), "bind": [next(p)]}, "dropped_by": next(p), "reason": {"r": next(p)}},
                       {"kind": "tag", "tag": next(p), "dropped_by": next(p)}]
        dbg.write_text(json.dumps(d))


def test_a_tampered_report_runs_no_script_in_chromium(ev: Path, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    tamper(ev)
    code, out, err = cli(capsys, "report", str(ev))
    assert code == 0 and "Traceback" not in err, err
    page = (ev / "report.html").read_text()
    tags = Tags()
    tags.feed(page)
    assert tags.scripts == 1 and not tags.handlers and not tags.bad_tags  # only the sorting script
    assert "&lt;script&gt;" in page  # shown, escaped
    browser = require_chromium()
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (ev / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert "</html>" in dom and "Per clip, worst first" in dom, r.stderr[-2000:]
    assert 'data-pwned="yes"' not in dom  # no payload ran
    assert "setAttribute('data-pwned','yes')" in dom  # the payloads are there, as text


def test_ablate_report_never_follows_a_cell_out_of_its_folder(made: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim"
    shutil.copytree(made, victim)
    ab = tmp_path / "ab"
    (ab / "cells").mkdir(parents=True)
    shutil.copytree(made, ab / "cells" / "0-ok")
    (ab / "cells" / "1-link").symlink_to(victim, target_is_directory=True)
    cells = ["0-ok", "../../victim", str(victim), "1-link", "..", "cells/../../victim"]
    with (ab / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cell", "miou"])
        w.writerows([c, "0.5"] for c in cells)
    code, _, err = cli(capsys, "report", str(ab))
    assert code == 0, err
    assert (ab / "cells" / "0-ok" / "report.html").is_file()
    assert not (victim / "report.html").exists() and not (victim / "report_files").exists()
    page = (ab / "report.html").read_text()
    assert page.count("<a href=") == 1  # only the cell inside cells/ is linked


def test_eval_report_refuses_a_symlinked_images_folder(ev: Path, s4: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(ev / "report_files", ignore_errors=True)
    (ev / "report_files").symlink_to(outside, target_is_directory=True)
    code, _, err = cli(capsys, "report", str(ev), "--root", str(s4))
    assert code == 1 and "leads outside" in one_line(err)
    assert list(outside.iterdir()) == []


def _deep(n: int) -> str:
    return "[" * n + "]" * n


BAD = {
    "metrics-not-utf8": ("metrics.json", b'{"miou": "\xff\xfe"}'),
    "metrics-a-list": ("metrics.json", b"[1, 2]"),
    "metrics-deep": ("metrics.json", _deep(100_000).encode()),
    "metrics-truncated": ("metrics.json", b'{"miou": 0.'),
    "per-clip-not-utf8": ("per_clip.csv", b"clip,category,j,f\n\xff\xfeclip,\xc3,0.5,0.5\n"),
    "per-clip-garbage": ("per_clip.csv", b"clip,j\nx,nan\ny,inf\nz,abc\n\x00\x00,1e999\n"),
    "per-clip-ragged": ("per_clip.csv", b"clip,category,j,f\na,b,0.1,0.2,extra,more\nc\n"),
    "per-clip-huge-field": ("per_clip.csv", b'clip,j,f\n"' + b"a" * 200_000 + b'",0.1,0.1\n'),
    "debug-not-utf8": ("debug/*", b'{"frames": [{"frame": 0, "tags": {"\xff": 1}}]}'),
    "debug-types": ("debug/*", json.dumps({"frames": [{"frame": "x"}, {"frame": 1, "items": "s", "tags": [1]},
                                                      {"frame": 2, "items": [1, {"box": 1, "scores": [1]}],
                                                       "tags": {"a": "b"}}, 7]}).encode()),
    "debug-a-list": ("debug/*", b"[]"),
    "debug-deep": ("debug/*", _deep(100_000).encode()),
    "metrics-root-a-number": ("metrics.json", b'{"root": 5, "subset": ["s4"], "failed": 3, "config": 7}'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_tampered_eval_files_give_a_report_or_one_line(ev: Path, case: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    name, data = BAD[case]
    targets = sorted((ev / "debug").glob("*.json")) if name == "debug/*" else [ev / name]
    for t in targets:
        t.write_bytes(data)
    code, out, err = cli(capsys, "report", str(ev))
    if code == 0:
        assert "Traceback" not in err and (ev / "report.html").is_file()
    else:
        assert code == 1 and name in one_line(err)


@pytest.mark.parametrize("case", ["results-not-utf8", "results-ragged", "results-empty", "grid-not-utf8",
                                  "results-nul"])
def test_tampered_ablate_files_give_a_report_or_one_line(made: Path, tmp_path: Path, case: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ab = tmp_path / "ab"
    (ab / "cells").mkdir(parents=True)
    shutil.copytree(made, ab / "cells" / "0-a")
    results = {"results-not-utf8": b"cell,miou,proposer\n0-a,0.5,\xff<script>x</script>\n",
               "results-ragged": b"cell,miou\n0-a,0.5,extra,extra\n1\n",
               "results-empty": b"",
               "grid-not-utf8": b"cell,miou\n0-a,nan\n",
               "results-nul": b"cell,miou\n0-a\x00,0.5\n"}[case]
    (ab / "results.csv").write_bytes(results)
    (ab / "grid.yaml").write_bytes(b"base: x\n\xff\xfe <script>alert(1)</script>\n")
    code, out, err = cli(capsys, "report", str(ab))
    if code == 0:
        assert "Traceback" not in err
        page = (ab / "report.html").read_text()
        assert "<script>x" not in page and "<script>alert" not in page
    else:
        assert code == 1 and "results.csv" in one_line(err)


@pytest.mark.parametrize("args,word", [(["--max-sheets", "-1"], "--max-sheets"),
                                       (["--root", "/nonexistent/avseg"], "--root")])
def test_report_options_are_checked(ev: Path, args: list[str], word: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "report", str(ev), *args)
    assert code == 2 and word in one_line(err)


def test_non_utf8_dataset_root_keeps_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = make_s4_tree(tmp_path / "data", n_per_split={"test": 2}, size=32)
    next(made.rglob("*.wav")).unlink()  # that clip fails, its reason naming the file under the root
    root = tmp_path / os.fsdecode(b"data\xff")
    made.rename(root)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "eval", *PIPE, "--root", str(root), "--subset", "s4", "--out", str(out))
    assert code == 1 and "Traceback" not in err, err
    assert (out / "metrics.json").is_file() and (out / "report.html").is_file()
    assert "data\ufffd" in (out / "report.html").read_text()  # the undecodable byte, shown replaced
    assert "report_files/" in (out / "report.html").read_text()  # the sheets were found at that root
