"""`avseg report`: report.html over eval and ablate folders, and the debug view's layout."""

from __future__ import annotations

import csv
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from avseg.outputs import debug_view
from avseg.types import FrameResult, Proposals, Tags
from tests.helpers import cli

# the example plugin's saliency proposer: no model, so an eval takes a second
PIPE = ["--proposer", "saliency", "--filter", "score-threshold", "--no-cache"]


class Page(HTMLParser):
    """Every link and image of a page, and the clip ids of the per-clip table in order."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.clip_rows: list[str] = []
        self.scripts_src: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "img" and a.get("src"):
            self.images.append(str(a["src"]))
        if tag in ("script", "link") and (a.get("src") or a.get("href")):
            self.scripts_src.append(str(a.get("src") or a.get("href")))
        if tag == "tr" and a.get("data-clip"):
            self.clip_rows.append(str(a["data-clip"]))


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


def check_links_resolve(page: Page, base: Path) -> None:
    assert not page.scripts_src, "the report must not load scripts or styles from elsewhere"
    for ref in page.links + page.images:
        if ref.startswith("#"):
            assert ref[1:] in page.ids, f"dangling anchor {ref}"
            continue
        if ref.startswith("data:"):
            continue
        assert not urlparse(ref).scheme, f"{ref}: the report must work offline"
        assert (base / unquote(ref)).is_file(), f"{base / ref} does not exist"


S4_TREE = {"n_per_split": {"test": 3}, "size": 48}  # the shared s4 fixture (tests/conftest.py)


@pytest.fixture(scope="module")
def eval_dir(s4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "ev"
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from avseg.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf), redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as e:
        main(["eval", *PIPE, "--root", str(s4), "--subset", "s4", "--split", "test", "--out", str(out), "--debug"])
    assert e.value.code in (0, None), buf.getvalue()
    assert f"report: {out / 'report.html'}" in buf.getvalue()  # eval prints where its report is
    return out


def test_eval_report_worst_clip_first_and_every_link_resolves(eval_dir: Path) -> None:
    page = parse(eval_dir / "report.html")
    with (eval_dir / "per_clip.csv").open() as f:
        rows = list(csv.DictReader(f))
    worst = min(rows, key=lambda r: (float(r["j"]), float(r["f"])))["clip"]
    assert len(page.clip_rows) == 3 and page.clip_rows[0] == worst
    check_links_resolve(page, eval_dir)
    sheets = [s for s in page.images if s.startswith("report_files/")]
    assert len(sheets) == 3  # one contact sheet per clip
    w, h = Image.open(eval_dir / sheets[0]).size
    assert h > 2 * 100 and w > 5 * 100  # five annotated S4 frames, ground truth above prediction


def test_eval_report_header_names_the_combiner_and_the_providers(eval_dir: Path) -> None:
    import avseg

    html = (eval_dir / "report.html").read_text()
    head = html[html.index("<h1>"):html.index("<h2>")]
    assert "combiner: union" in head
    assert "steps: proposer:saliency -&gt; filter:score-threshold" in head
    assert (f"providers: avseg {avseg.__version__} (filter:score-threshold), avseg-example-plugin 0.1.0 "
            "(proposer:saliency)") in head


def test_eval_report_shows_traces_from_eval_debug(eval_dir: Path) -> None:
    text = (eval_dir / "report.html").read_text()
    assert (eval_dir / "debug").is_dir() and "kept 1 of 1 proposals" in text and "score-threshold" in text
    assert "No debug trace" not in text


def test_report_without_debug_traces_or_dataset(eval_dir: Path, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(eval_dir, moved, ignore=shutil.ignore_patterns("debug", "report*"))
    (moved / "metrics.json").write_text((moved / "metrics.json").read_text().replace('"root"', '"root_was"'))
    code, out, err = cli(capsys, "report", str(moved))
    assert code == 0, err
    assert out.strip() == f"report: {moved / 'report.html'}"
    text = (moved / "report.html").read_text()
    assert "pass --root" in text and "avseg eval --debug" in text
    check_links_resolve(parse(moved / "report.html"), moved)


def test_report_on_a_folder_that_is_neither_fails_in_one_line(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    code, _, err = cli(capsys, "report", str(tmp_path))
    assert code == 2 and "neither an eval folder" in err and len(err.strip().splitlines()) == 1


def test_ablate_report_links_each_cells_report(s4: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind\naxes:\n  proposer: [saliency]\n  filters: [score-threshold]\n"
                    "  filter.score-threshold.threshold: [0.1, 0.5, 0.95]\n")
    out = tmp_path / "ab"
    code, stdout, err = cli(capsys, "ablate", str(grid), "--root", str(s4), "--subset", "s4", "--split", "test",
                            "--out", str(out), "--no-cache")
    assert code == 0, err
    assert f"report: {out / 'report.html'}" in stdout
    page = parse(out / "report.html")
    check_links_resolve(page, out)
    cell_reports = [x for x in page.links if x.startswith("cells/") and x.endswith("/report.html")]
    assert len(cell_reports) == 3
    for rel in cell_reports:
        check_links_resolve(parse(out / rel), (out / rel).parent)
    assert any(s.startswith("plot_") for s in page.images)


def test_no_report_skips_it(s4: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "eval", *PIPE, "--root", str(s4), "--subset", "s4", "--split", "test",
                         "--out", str(tmp_path), "--limit", "1", "--no-report")
    assert code == 0, err
    assert "report:" not in out and not (tmp_path / "report.html").exists()


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(chromium() is None, reason="no headless Chromium on PATH (make test-all installs it with apt)")
def test_report_renders_in_headless_chromium(eval_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    r = subprocess.run([str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1200,1400", f"--screenshot={shot}", (eval_dir / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape[:2] == (1400, 1200)
    dark = (img.sum(axis=2) < 200).mean()  # text
    pictures = (np.abs(img - 255).sum(axis=2) > 150).mean()  # the contact sheets in view
    assert img.std() > 20 and dark > 0.002 and pictures > 0.05, (img.std(), dark, pictures)


def test_debug_view_is_readable_on_small_frames() -> None:
    """The legend goes beside the frame; small frames are enlarged; drawn boxes are numbered."""
    frame = np.full((160, 160, 3), 90, np.uint8)
    props = Proposals(np.array([[10, 10, 60, 60]], np.float32), np.array([0.9], np.float32), ["dog"])
    trace = [
        {"id": 0, "box": [10, 10, 60, 60], "score": 0.9, "label": "dog", "kept": True, "scores": {"bind": 0.8}},
        {"id": 1, "box": [100, 100, 150, 150], "score": 0.4, "label": "a very long label name indeed", "kept": False,
         "scores": {"bind": 0.1}, "dropped_by": "bind", "reason": "cosine 0.10 < 0.70"},
    ]
    fr = FrameResult(0, np.zeros((160, 160), bool), props, Tags(["Bark"], np.array([0.7])), trace=trace)
    view = debug_view(frame, fr)
    h, w = view.shape[:2]
    assert h >= 320 and w > 320 + 150  # enlarged 2x, with a legend panel to the right
    region = view[:320, :320]
    untouched = region[200:300, 140:190]  # away from both boxes: the frame itself, nothing written on it
    assert (untouched == 90).all()
    legend = view[:, 330:]
    assert (legend != legend[0, 0]).any(axis=2).mean() > 0.01  # text in the legend


def test_the_report_summarises_the_executed_steps_in_order() -> None:
    from avseg.report import _config_summary

    steps = ["proposer:owod", "filter:score-threshold", "segmenter:sam", "refiner:fill-holes"]
    assert _config_summary({"steps": steps, "filters": []}) == ("steps: proposer:owod -> filter:score-threshold -> "
                                                               "segmenter:sam -> refiner:fill-holes; combiner: union")
    # an older record without steps, or a tampered one, falls back to the legacy keys
    assert _config_summary({"proposer": {"type": "owod"}, "filters": [{"type": "bind"}]}) == \
        "proposer: owod; filters: bind; combiner: union"
    assert _config_summary({"steps": [{"x": 1}], "proposer": {"type": "owod"}, "combiner": {"type": "top1"}}) == \
        "proposer: owod; filters: none; combiner: top1"
    # the providers, grouped by distribution; a tampered entry is skipped
    comps = {"proposer:owod": {"provider": "avseg", "version": "1"}, "filter:x": {"provider": "theirs", "version": "2"},
             "segmenter:sam": {"provider": "avseg", "version": "1"}, "bad": "not a dict"}
    assert _config_summary({"steps": ["proposer:owod"]}, comps).endswith(
        "providers: avseg 1 (proposer:owod, segmenter:sam), theirs 2 (filter:x)")
