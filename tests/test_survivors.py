"""Behaviour at the boundaries where injected one-line bugs once survived the whole suite (issue 21).

Each test drives a public entry point (``avseg.load`` with a registry, the CLI) and asserts what a
user sees: kept and dropped objects, a mask, a label map, a cache counter, a refused resume. The
components below are test doubles configured per test (no class-level state): they stand in for
model outputs so that a score can sit exactly at a threshold, or the best object need not be first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from PIL import Image as PILImage
from pydantic import Field

import avseg
from avseg import hookimpl
from avseg.components import Capabilities, ComponentConfig, Filter, FrameContext, Proposer, Tagger
from avseg.errors import AvsegError, ChainError
from avseg.registry import load_registry
from avseg.testing import make_s4_tree
from avseg.types import AudioWindow, FilterResult, Image, Proposals, Tags
from tests.deps import requires
from tests.helpers import cli

REPO = Path(__file__).resolve().parents[1]
H, W = 32, 48


# -- test doubles: outputs fixed by their config --------------------------------------------------
class FixedTagsConfig(ComponentConfig):
    names: list[str] = Field(default_factory=lambda: ["Bark", "Speech"])
    probs: list[float] = Field(default_factory=lambda: [0.75, 0.25])


class FixedTags(Tagger):
    name: ClassVar[str] = "fixed-tags"
    description: ClassVar[str] = "the same tags for every window"
    Config = FixedTagsConfig

    @property
    def vocabulary(self) -> list[str]:
        return list(self.config.names)  # type: ignore[attr-defined]

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        cfg = self.config
        return [Tags.from_scores(cfg.names, cfg.probs) for _ in windows]  # type: ignore[attr-defined]


class EchoPrompts(Proposer):
    """A text-prompted proposer: one box per prompt, labelled with the prompt."""

    name: ClassVar[str] = "echo-prompts"
    description: ClassVar[str] = "one labelled box per prompt"

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs_prompts=True, gives_labels=True, gives_masks=True)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        assert prompts is not None
        out = []
        for f, pr in zip(frames, prompts):
            h, w = f.shape[:2]
            boxes = np.array([[4 * k, 0, 4 * k + 4, 4] for k in range(len(pr))], np.float32).reshape(-1, 4)
            masks = np.zeros((len(pr), h, w), bool)
            for k in range(len(pr)):
                masks[k, 0:4, 4 * k:4 * k + 4] = True
            out.append(Proposals(boxes, np.full(len(pr), 0.8, np.float32), list(pr), masks))
        return out


class FixedBoxesConfig(ComponentConfig):
    boxes: list[list[int]] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    labels: list[str] | None = None


class FixedBoxes(Proposer):
    """The configured boxes, each with its box as its mask, on every frame."""

    name: ClassVar[str] = "fixed-boxes"
    description: ClassVar[str] = "configured boxes with box masks"
    Config = FixedBoxesConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        assert isinstance(config, FixedBoxesConfig)
        return Capabilities(gives_masks=True, gives_labels=config.labels is not None)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        cfg = self.config
        assert isinstance(cfg, FixedBoxesConfig)
        out = []
        for f in frames:
            masks = np.zeros((len(cfg.boxes), *f.shape[:2]), bool)
            for k, (x0, y0, x1, y1) in enumerate(cfg.boxes):
                masks[k, y0:y1, x0:x1] = True
            out.append(Proposals(np.array(cfg.boxes, np.float32).reshape(-1, 4), np.array(cfg.scores, np.float32),
                                 list(cfg.labels) if cfg.labels is not None else None, masks))
        return out


class KeepIndexConfig(ComponentConfig):
    offset: int = 0


class KeepIndex(Filter):
    """A buggy filter: keeps index ``len(proposals) + offset``."""

    name: ClassVar[str] = "keep-index"
    description: ClassVar[str] = "returns an index past the end"
    Config = KeepIndexConfig

    def __call__(self, ctx: FrameContext) -> FilterResult:
        n = len(ctx.proposals) if ctx.proposals is not None else 0
        return FilterResult(keep=[n + self.config.offset])  # type: ignore[attr-defined]


class Doubles:
    @hookimpl
    def register_taggers(self, register: Any) -> None:
        register(FixedTags)

    @hookimpl
    def register_proposers(self, register: Any) -> None:
        register(EchoPrompts)
        register(FixedBoxes)

    @hookimpl
    def register_filters(self, register: Any) -> None:
        register(KeepIndex)


@pytest.fixture
def registry() -> Any:
    return load_registry(plugins=[("doubles", Doubles())])


def write_spec(path: Path, steps: list[dict[str, Any]], **top: Any) -> Path:
    path.write_text(yaml.safe_dump({"steps": steps, **top}, sort_keys=False))
    return path


def clip(n: int = 2) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """(frames, (waveform, sample_rate)): what avseg.load's pipeline takes as arrays."""
    frames = np.full((n, H, W, 3), 90, np.uint8)
    sr = 16000
    return frames, (np.sin(2 * np.pi * 440 * np.arange(n * sr) / sr).astype(np.float32) * 0.3, sr)


def run(spec: Path, registry: Any, cache: Any = False, **overrides: Any) -> Any:
    return avseg.load(spec, registry=registry, cache=cache, **overrides)(clip())


def boxes_step(boxes: list[list[int]], scores: list[float], labels: list[str] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"type": "fixed-boxes", "boxes": boxes, "scores": scores}
    if labels is not None:
        cfg["labels"] = labels
    return {"proposer": cfg}


def box_mask(box: list[int]) -> np.ndarray:
    m = np.zeros((H, W), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


# -- the proposer's stage cache key covers its prompts --------------------------------------------
def test_proposer_recomputes_when_its_prompts_change(tmp_path: Path, registry: Any) -> None:
    """Same frames, other audio tags: the cache must not serve boxes grounded on the old tags."""
    spec = write_spec(tmp_path / "p.yaml", [{"tagger": {"type": "fixed-tags"}},
                                            {"filter": {"type": "tag-threshold", "threshold": 0.5}},
                                            {"proposer": {"type": "echo-prompts"}}])
    cache = tmp_path / "cache"
    r1 = run(spec, registry, cache)
    assert [o.label for o in r1.frames[0].kept] == ["Bark"]
    low = {"filter.tag-threshold.threshold": 0.2}
    r2 = run(spec, registry, cache, set=low)
    assert r2.counters.get("tagger.fixed-tags.cache_hit") == 1  # the tagger's output is reused ...
    assert sorted(o.label for o in r2.frames[0].kept) == ["Bark", "Speech"]  # ... the proposer's is not
    assert r2.counters.get("proposer.echo-prompts.computed") == 1
    r3 = run(spec, registry, cache, set=low)  # the same prompts again: now a hit
    assert r3.counters.get("proposer.echo-prompts.cache_hit") == 1
    assert sorted(o.label for o in r3.frames[0].kept) == ["Bark", "Speech"]


# -- the source fingerprint covers the core helpers a plugin imports -----------------------------
FINGERPRINT_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np, yaml
import avseg
from avseg import hookimpl
from avseg.components import Capabilities, Proposer
from avseg.registry import load_registry
from avseg.types import Proposals

class One(Proposer):
    name = "one-box"
    description = "one box"
    @classmethod
    def capabilities(cls, config):
        return Capabilities(gives_masks=True)
    def propose(self, frames, prompts=None):
        return [Proposals(np.array([[0, 0, 4, 4]], np.float32), np.ones(1, np.float32), None,
                          np.ones((1, *f.shape[:2]), bool)) for f in frames]

class Plug:
    @hookimpl
    def register_proposers(self, register):
        register(One)

out = Path(sys.argv[1])
spec = out / "spec.yaml"
spec.write_text(yaml.safe_dump({"steps": [{"proposer": "one-box"}, {"filter": "score-threshold"}]}))
pipe = avseg.load(spec, registry=load_registry(plugins=[("plug", Plug())]), cache=False)
frames = np.zeros((1, 8, 8, 3), np.uint8)
res = pipe((frames, (np.zeros(16000, np.float32), 16000)))
res.save(out / "run")
run = json.loads((out / "run" / "run.json").read_text())
print(json.dumps({"core": avseg.__file__, "fp": run["components"]["filter:score-threshold"]["fingerprint"]}))
"""


def test_editing_a_core_module_a_plugin_imports_changes_its_fingerprint(tmp_path: Path) -> None:
    """score-threshold (avseg_filters) builds its results with avseg.types: an edit there can change
    what it keeps, so run.json's fingerprint (and the stage cache key) must change with it."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "avseg", src / "avseg", ignore=ignore)
    shutil.copytree(REPO / "plugins" / "avseg_filters", src / "avseg_filters", ignore=ignore)
    script = tmp_path / "fp.py"
    script.write_text(FINGERPRINT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(src), "AVSEG_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def fingerprint() -> str:
        work = Path(tempfile_dir(tmp_path))
        p = subprocess.run([sys.executable, str(script), str(work)], capture_output=True, text=True, env=env,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout.strip().splitlines()[-1])
        assert Path(got["core"]).resolve().is_relative_to(src.resolve())  # the copy, not the installed core
        return str(got["fp"])

    before = fingerprint()
    assert fingerprint() == before  # stable while nothing changes
    types_py = src / "avseg" / "types.py"
    types_py.write_text(types_py.read_text() + "\n# an edit to a core helper the filter imports\n")
    assert fingerprint() != before


_counter = [0]


def tempfile_dir(base: Path) -> Path:
    _counter[0] += 1
    d = base / f"work{_counter[0]}"
    d.mkdir()
    return d


# -- thresholds keep what sits exactly at them ----------------------------------------------------
def test_score_threshold_keeps_a_score_exactly_at_the_threshold(tmp_path: Path, registry: Any) -> None:
    boxes = [[0, 0, 8, 8], [10, 0, 18, 8], [20, 0, 28, 8]]
    spec = write_spec(tmp_path / "s.yaml", [boxes_step(boxes, [0.75, 0.5, 0.25]),
                                            {"filter": {"type": "score-threshold", "threshold": 0.5}}])
    frame = run(spec, registry).frames[0]
    assert [o.score for o in frame.kept] == [0.75, 0.5]
    assert [(o.score, o.dropped_by) for o in frame.dropped] == [(0.25, "score-threshold")]


def test_tag_threshold_keeps_a_probability_exactly_at_the_threshold(tmp_path: Path, registry: Any) -> None:
    spec = write_spec(tmp_path / "t.yaml", [{"tagger": {"type": "fixed-tags", "probs": [0.5, 0.25]}},
                                            {"filter": {"type": "tag-threshold", "threshold": 0.5}},
                                            {"proposer": {"type": "echo-prompts"}}])
    frame = run(spec, registry).frames[0]
    assert frame.tags == {"Bark": 0.5}
    assert [o.label for o in frame.kept] == ["Bark"]  # the proposer was prompted with it


# -- combiners: the best object, not the first ----------------------------------------------------
BEST_MIDDLE = ([[0, 0, 8, 8], [10, 0, 18, 8], [20, 0, 28, 8]], [0.3, 0.9, 0.5])


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_top1_keeps_the_best_object_wherever_it_is(tmp_path: Path, registry: Any, order: list[int]) -> None:
    boxes, scores = BEST_MIDDLE
    b, s = [boxes[i] for i in order], [scores[i] for i in order]
    spec = write_spec(tmp_path / "t.yaml", [boxes_step(b, s, [["a", "b", "c"][i] for i in order])],
                      combiner="top1")
    res = run(spec, registry)
    np.testing.assert_array_equal(res.masks[0], box_mask(boxes[1]))
    assert res.frames[0].labels == ["b"]


@pytest.mark.parametrize("combiner", ["label-map", "union"])
@pytest.mark.parametrize("best_first", [True, False])
def test_the_better_object_wins_an_overlap_in_the_label_map(tmp_path: Path, registry: Any, combiner: str,
                                                            best_first: bool) -> None:
    worse, better = ([0, 0, 16, 16], 0.3, "dog"), ([8, 8, 24, 24], 0.9, "car")
    objs = [better, worse] if best_first else [worse, better]
    spec = write_spec(tmp_path / "l.yaml", [boxes_step([o[0] for o in objs], [o[1] for o in objs],
                                                       [o[2] for o in objs])], combiner=combiner)
    res = run(spec, registry)
    frame, lm = res.frames[0], res.label_maps
    assert lm is not None

    def label_at(y: int, x: int) -> str | None:
        v = int(lm[0, y, x])
        return frame.labels[v - 1] if v else None

    assert label_at(12, 12) == "car"  # the overlap
    assert label_at(2, 2) == "dog" and label_at(20, 20) == "car" and label_at(30, 40) is None


# -- step order: a tagger must come before a prompted proposer ------------------------------------
def test_a_tagger_after_a_prompted_proposer_is_refused(tmp_path: Path, registry: Any) -> None:
    spec = write_spec(tmp_path / "o.yaml", [{"proposer": {"type": "echo-prompts"}}, {"tagger": {"type": "fixed-tags"}}])
    with pytest.raises(ChainError) as e:
        avseg.load(spec, registry=registry, cache=False)
    assert "echo-prompts" in str(e.value) and "\n" not in str(e.value)


def test_tagger_after_gdino_is_refused_before_any_model_loads(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_spec(tmp_path / "g.yaml", [{"proposer": "gdino"}, {"tagger": "ast"}, {"segmenter": "sam"}])
    code, _, err = cli(capsys, "presets", "show", str(bad))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "gdino" in lines[0], err
    # the same steps in the right order are accepted: the refusal is about the order alone
    ok = write_spec(tmp_path / "ok.yaml", [{"tagger": "ast"}, {"proposer": "gdino"}, {"segmenter": "sam"}])
    code, _, err = cli(capsys, "presets", "show", str(ok))
    assert code == 0, err


# -- GT masks: foreground is >= 128 ----------------------------------------------------------------
def test_gt_pixels_of_128_are_foreground_and_127_background(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from avseg.data import open_dataset

    root = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 1}, size=16)
    gt = np.full((16, 16), 127, np.uint8)
    gt[:, :6] = 128
    for f in root.rglob("gt_masks/**/*.png"):
        PILImage.fromarray(gt).save(f)
    ds = open_dataset(root, "s4", "test")
    pred_dir = tmp_path / "pred"
    for c in ds:
        for i in ds.annotated_frames(c):
            p = pred_dir / ds.pred_relpath(c, i)
            p.parent.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray((gt >= 128).astype(np.uint8) * 255).save(p)
    code, out, err = cli(capsys, "score", "--root", str(root), "--subset", "s4", "--pred", str(pred_dir), "--json")
    assert code == 0, err
    m = json.loads(out)
    assert m["n_frames"] == 5 and m["miou"] == pytest.approx(1.0)


# -- a filter's keep index n (one past the end) is refused where it is returned ------------------
@pytest.mark.parametrize("offset", [0, 1])
def test_keep_index_n_is_a_one_line_error_naming_the_filter(tmp_path: Path, registry: Any,
                                                            capsys: pytest.CaptureFixture[str], offset: int) -> None:
    spec = write_spec(tmp_path / "k.yaml", [boxes_step([[0, 0, 8, 8], [10, 0, 18, 8]], [0.9, 0.8]),
                                            {"filter": {"type": "keep-index", "offset": offset}}])
    with pytest.raises(AvsegError) as e:
        run(spec, registry)
    msg = str(e.value)
    assert "keep-index" in msg and "\n" not in msg and f"[{2 + offset}]" in msg


# -- NMS at a non-default IoU ---------------------------------------------------------------------
@pytest.mark.parametrize("use_masks", [True, False])
@pytest.mark.parametrize(("iou", "kept"), [(0.5, 2), (0.55, 2), (0.6, 3), (0.65, 3), (0.7, 3)])
def test_nms_filter_honours_its_iou_threshold(tmp_path: Path, registry: Any, iou: float, kept: int,
                                              use_masks: bool) -> None:
    """Box 1 overlaps box 0 with IoU exactly 0.6 (by box and by mask); box 2 is apart.
    Suppressed only when the IoU is above the threshold."""
    boxes = [[0, 0, 10, 10], [0, 0, 10, 6], [20, 0, 30, 10]]
    spec = write_spec(tmp_path / "n.yaml", [boxes_step(boxes, [0.9, 0.8, 0.7]),
                                            {"filter": {"type": "nms", "iou_threshold": iou, "use_masks": use_masks}}])
    frame = run(spec, registry).frames[0]
    assert len(frame.kept) == kept
    if kept == 2:
        assert [o.id for o in frame.kept] == [0, 2] and frame.dropped[0].dropped_by == "nms"


# -- resume never mixes two configurations --------------------------------------------------------
def test_resume_refuses_progress_files_of_another_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 1}, size=16)
    out = tmp_path / "out"
    base = ["eval", "--root", str(root), "--subset", "s4", "--out", str(out), "--proposer", "saliency",
            "--filter", "score-threshold", "--no-cache"]
    code, _, err = cli(capsys, *base)
    assert code == 0, err
    (out / "config.json").unlink()  # lost: only the progress files' own config ids remain
    code, _, err = cli(capsys, *base, "--set", "filter.score-threshold.threshold=0.99")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "different pipeline config" in lines[0], err
    (out / "config.json").unlink(missing_ok=True)
    code, _, err = cli(capsys, *base)  # its own config: resumed, nothing recomputed
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["n_skipped_finished"] == 1


# -- OWLv2's own NMS -------------------------------------------------------------------------------
def test_owod_nms_iou_suppresses_overlapping_boxes() -> None:
    """Widened boxes overlap: the proposer's own NMS (nms_iou) must drop some, more at a lower IoU,
    and no two kept boxes may overlap by more than it."""
    requires("torch", "transformers")
    import torch

    from avseg.runtime import Runtime

    reg = load_registry()
    cls = reg.get("proposer", "owod")
    frames = [np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)]

    runtime = Runtime(device="cpu", tiny=True, seed=7)
    props = {n: cls(cls.Config(box_threshold=0.0, top_k=None, nms_iou=n), runtime) for n in (None, 0.5, 0.2)}
    models = {id(p.model): p.model for p in props.values()}  # shared once per runtime, or not
    with torch.no_grad():  # every box wider and taller than its patch: neighbours overlap
        for model in models.values():
            model.box_head.dense2.bias[2:] += 1.5

    def max_iou(b: np.ndarray) -> float:
        best = 0.0
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                ix = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
                iy = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
                inter = ix * iy
                a = (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])
                best = max(best, inter / (a - inter))
        return best

    all_boxes, loose, tight = (props[n].propose(frames)[0] for n in (None, 0.5, 0.2))
    assert max_iou(all_boxes.boxes) > 0.5
    assert len(all_boxes) > len(loose) > len(tight) > 0
    assert max_iou(loose.boxes) <= 0.5 + 1e-6 and max_iou(tight.boxes) <= 0.2 + 1e-6
    assert list(tight.scores) == sorted(tight.scores, reverse=True)


def test_label_map_names_unlabelled_objects_in_keep_order(tmp_path: Path, registry: Any) -> None:
    """label-map gives unlabelled objects instance labels object-1, object-2, ... (kept order);
    the better one still wins their overlap."""
    spec = write_spec(tmp_path / "i.yaml", [boxes_step([[0, 0, 16, 16], [8, 8, 24, 24]], [0.3, 0.9])],
                      combiner="label-map")
    res = run(spec, registry)
    frame, lm = res.frames[0], res.label_maps
    assert frame.labels == ["object-1", "object-2"] and lm is not None
    assert frame.labels[int(lm[0, 2, 2]) - 1] == "object-1" and frame.labels[int(lm[0, 12, 12]) - 1] == "object-2"
