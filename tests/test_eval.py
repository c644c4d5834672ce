"""`avseg eval` / `avseg score` end to end on synthetic AVSBench trees, with a weight-free proposer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avseg.data import open_dataset
from avseg.errors import UsageError
from avseg.eval import runner
from avseg.eval.metrics import BinaryMetrics
from avseg.eval.runner import run_eval
from avseg.eval.score import score_predictions
from avseg.runtime import Runtime
from avseg.testing import corrupt_file, make_ms3_tree, make_s4_tree
from tests.helpers import cli, step_of

SALIENCY = {"proposer": "saliency", "filters": ["score-threshold"]}


S4_TREE = {"size": 64}  # the shared s4 fixture (tests/conftest.py), at 64 px


def evaluate(root: Path, out: Path, subset: str = "s4", **kw) -> dict:  # type: ignore[no-untyped-def]
    return run_eval(root=root, subset=subset, split="test", out=out, pipeline=dict(SALIENCY),
                    runtime=Runtime(device="cpu"), progress=False, **kw)


def test_eval_writes_layout_and_metrics(s4: Path, tmp_path: Path) -> None:
    m = evaluate(s4, tmp_path)
    assert m["n_clips"] == 3 and m["n_frames"] == 15 and m["failed"] == []
    assert {"miou", "fscore", "fscore_dataset", "config"} <= set(m)
    assert m["miou"] > 0.8  # the saliency proposer finds the synthetic shapes
    ds = open_dataset(s4, "s4", "test")
    for clip in ds:
        for i in range(5):
            assert (tmp_path / "masks" / ds.pred_relpath(clip, i)).is_file()
    rows = (tmp_path / "per_clip.csv").read_text().splitlines()
    assert rows[0].startswith("clip,category,j,f") and len(rows) == 4
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["miou"] == m["miou"] and step_of(saved["config"], "proposer")["type"] == "saliency"  # type: ignore[index]


def test_score_reproduces_eval(s4: Path, tmp_path: Path) -> None:
    m = evaluate(s4, tmp_path)
    s = score_predictions(s4, "s4", "test", tmp_path / "masks")
    for k in ("miou", "fscore", "fscore_dataset", "n_frames"):
        assert s[k] == m[k]
    assert s["missing_predictions"] == 0


def test_score_matches_hand_computed_metrics(s4: Path, tmp_path: Path) -> None:
    """Predictions = GT everywhere except one clip's first frame, left empty."""
    ds = open_dataset(s4, "s4", "test")
    clips = list(ds)
    for clip in clips:
        for i in ds.annotated_frames(clip):
            gt = ds.gt_mask(clip, i)
            assert gt is not None
            pred = np.zeros_like(gt) if (clip is clips[0] and i == 0) else gt
            p = tmp_path / ds.pred_relpath(clip, i)
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pred.astype(np.uint8) * 255).save(p)
    s = score_predictions(s4, "s4", "test", tmp_path)
    # 15 frames: 14 perfect (IoU 1), one empty prediction on a non-empty GT (IoU 0) -> 14/15
    assert s["miou"] == s["miou_frame"] == pytest.approx(14 / 15, abs=1e-9)
    # one batch of 3 videos: F curve is the mean over 15 frames; perfect frames give F=1 at every
    # threshold, the empty one gives 0 -> max over thresholds 14/15
    assert s["fscore"] == pytest.approx(14 / 15, abs=1e-6)
    (tmp_path / ds.pred_relpath(clips[1], 2)).unlink()
    s = score_predictions(s4, "s4", "test", tmp_path)
    assert s["missing_predictions"] == 1 and s["miou"] == pytest.approx(13 / 15, abs=1e-9)


def test_killed_eval_resumes_to_identical_metrics(s4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = evaluate(s4, tmp_path / "full")
    from avseg.eval import clip as clip_unit  # the per-clip unit writes each clip's state file

    real = clip_unit.atomic_write_json
    calls = {"n": 0}

    def dying(path: Path, obj: object) -> None:
        if runner.STATE_DIR in path.parts:
            calls["n"] += 1
            if calls["n"] == 2:  # killed after the second clip's masks, before its state file
                raise KeyboardInterrupt
        real(path, obj)

    monkeypatch.setattr(clip_unit, "atomic_write_json", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate(s4, tmp_path / "killed")
    monkeypatch.setattr(clip_unit, "atomic_write_json", real)
    assert len(list((tmp_path / "killed" / "clips").glob("*.json"))) == 1
    resumed = evaluate(s4, tmp_path / "killed")
    assert resumed["n_skipped_finished"] == 1
    for k in ("miou", "fscore", "fscore_dataset", "n_frames", "n_clips"):
        assert resumed[k] == full[k]


def test_other_config_refuses_the_old_dir(s4: Path, tmp_path: Path) -> None:
    evaluate(s4, tmp_path)
    other = {"proposer": "saliency", "filters": ["score-threshold"], "sets": ["filter.score-threshold.threshold=0.6"]}
    with pytest.raises(UsageError, match="different pipeline config.*--overwrite"):
        run_eval(root=s4, subset="s4", split="test", out=tmp_path, pipeline=other, runtime=Runtime(device="cpu"),
                 progress=False)
    m = run_eval(root=s4, subset="s4", split="test", out=tmp_path, pipeline=other, runtime=Runtime(device="cpu"),
                 progress=False, overwrite=True)
    assert m["n_skipped_finished"] == 0


def test_corrupt_file_fails_only_that_clip(tmp_path: Path) -> None:
    root = make_s4_tree(tmp_path / "data", n_per_split={"test": 3})
    ds = open_dataset(root, "s4", "test")
    bad = ds.ids[1]
    corrupt_file(ds.frame_path(ds.record(bad), 2))
    m = evaluate(root, tmp_path / "out")
    assert [f["clip"] for f in m["failed"]] == [bad]
    assert "frame" in m["failed"][0]["reason"] and "\n" not in m["failed"][0]["reason"]
    assert m["n_clips"] == 3 and m["failed"][0]["scored_as_empty"] is True


def test_a_failed_clip_scores_as_an_empty_prediction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_s4_tree(tmp_path / "data", n_per_split={"test": 6})
    ds = open_dataset(root, "s4", "test")
    bad = ds.ids[4]  # in the second batch of 4
    corrupt_file(ds.frame_path(ds.record(bad), 1))
    m = evaluate(root, tmp_path / "out")
    assert [f["clip"] for f in m["failed"]] == [bad] and m["exclude_failed"] is False
    assert "all-background" in m["failed_scoring"]
    assert not list((tmp_path / "out" / "masks").rglob(f"{bad}_*.png"))  # the failed clip wrote nothing
    # Hand check: the five finished clips' masks as written, the failed clip's frames empty.
    ref = BinaryMetrics()
    for clip in ds:
        gts = [ds.gt_mask(clip, i) for i in ds.annotated_frames(clip)]
        if clip.clip_id == bad:
            preds = [np.zeros(g.shape, np.uint8) for g in gts]  # type: ignore[union-attr]
        else:
            preds = [np.asarray(Image.open(tmp_path / "out" / "masks" / ds.pred_relpath(clip, i)))
                     for i in ds.annotated_frames(clip)]
        ref.add_clip(clip.clip_id, preds, gts)
    r = ref.result(batch_videos=4, order=ds.ids)
    for k in ("miou", "miou_frame", "fscore", "fscore_b1", "fscore_dataset", "n_frames", "n_clips"):
        assert m[k] == pytest.approx(r[k], abs=1e-12), k
    assert r["miou"] < ref.result(batch_videos=4, order=[c for c in ds.ids if c != bad])["miou"]
    # `score` on the written masks (the missing ones count as empty) agrees, as does the saved file.
    s = score_predictions(root, "s4", "test", tmp_path / "out" / "masks")
    assert s["missing_predictions"] == 5 and s["miou"] == pytest.approx(m["miou"], abs=1e-12)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["miou"] == m["miou"]
    # --exclude-failed: the behaviour before, said in metrics.json; the exit code stays 1.
    code, _, _ = cli(capsys, "eval", "--root", str(root), "--subset", "s4", "--split", "test", "--proposer", "saliency",
                     "--filter", "score-threshold", "--out", str(tmp_path / "ex"), "--exclude-failed", "--no-cache")
    ex = json.loads((tmp_path / "ex" / "metrics.json").read_text())
    assert code == 1 and ex["exclude_failed"] is True and "excluded" in ex["failed_scoring"]
    assert ex["n_clips"] == 5 and ex["failed"][0]["scored_as_empty"] is False
    assert ex["miou"] == pytest.approx(ref.result(batch_videos=4, order=[c for c in ds.ids if c != bad])["miou"])


def test_score_on_thirteen_clips_reports_the_official_mean_of_batch_means(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_s4_tree(tmp_path / "data", n_per_split={"test": 13}, size=32)
    ds = open_dataset(root, "s4", "test")
    rng = np.random.default_rng(0)
    frame_ious: list[list[float]] = []
    for clip in ds:
        ious = []
        for i in ds.annotated_frames(clip):
            gt = ds.gt_mask(clip, i)
            assert gt is not None and gt.any()
            pred = gt & (rng.random(gt.shape) < rng.uniform(0.2, 1.0))  # a share of the object
            ious.append((pred & gt).sum() / ((pred | gt).sum() + 1e-7))
            p = tmp_path / "pred" / ds.pred_relpath(clip, i)
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pred.astype(np.uint8) * 255).save(p)
        frame_ious.append(ious)
    official = np.mean([np.mean([x for c in frame_ious[b : b + 4] for x in c]) for b in range(0, 13, 4)])
    code, out, _ = cli(capsys, "score", "--root", str(root), "--subset", "s4", "--split", "test",
                       "--pred", str(tmp_path / "pred"), "--json")
    s = json.loads(out)
    assert code == 0 and s["n_clips"] == 13 and s["batch_videos"] == 4
    assert s["miou"] == pytest.approx(official, abs=1e-6)
    assert s["miou_frame"] == pytest.approx(np.mean(frame_ious), abs=1e-6)
    assert abs(s["miou"] - s["miou_frame"]) > 1e-6


def test_ms3_and_limit_and_clips(tmp_path: Path) -> None:
    root = make_ms3_tree(tmp_path / "data", n_per_split={"test": 3})
    m = evaluate(root.parent, tmp_path / "a", subset="ms3", limit=2)  # parent folder as --root works too
    assert m["n_clips"] == 2
    ids = open_dataset(root, "ms3", "test").ids
    m = evaluate(root, tmp_path / "b", subset="ms3", clips=[ids[2]])
    assert m["n_clips"] == 1


def test_eval_counters_and_batch_size_parameter(s4: Path, tmp_path: Path) -> None:
    m1 = evaluate(s4, tmp_path / "a", batch_videos=1)
    m4 = evaluate(s4, tmp_path / "b", batch_videos=4)
    assert m1["fscore_dataset"] == m4["fscore_dataset"]
    assert m1["counters"] == {"proposer.saliency.computed": 3}
    states = [json.loads(p.read_text())["binary"] for p in sorted((tmp_path / "a" / "clips").glob("*.json"))]
    order = open_dataset(s4, "s4", "test").ids
    assert BinaryMetrics.from_states(states).result(batch_videos=1, order=order)["fscore"] == m1["fscore"]
