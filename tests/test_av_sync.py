"""av-sync: the motion proposer, the synchrony filter, the synthetic benchmark and noise at an SNR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from avseg_sync.avsync import AVSync, AVSyncConfig, best_lagged_correlation
from avseg_sync.motion import MotionConfig, MotionProposer

from avseg.components import ClipContext
from avseg.runtime import Runtime
from avseg.synth import render_scene, sampled_indices, synth
from avseg.types import AudioWindow, FullRateVideo, Proposals

SIZE = (160, 120)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_run_av_sync_keeps_the_sounding_object_and_drops_the_others(tmp_path: Path, seed: int) -> None:
    from avseg.session import open_pipeline

    video = synth(tmp_path / "scene.mp4", layout="video", seed=seed, size=SIZE, seconds=5)
    scene = render_scene(seed, size=SIZE, seconds=5)
    res = open_pipeline("av-sync", cache=False)(video)
    gts = [scene.gt[k] for k in sampled_indices(scene, 5)]
    ious = [_iou(fr.mask, gt) for fr, gt in zip(res.frames, gts)]
    assert np.mean(ious) > 0.6, ious
    kept_any = False
    for fr, gt in zip(res.frames, gts):
        for obj in fr.kept:
            m = obj.mask
            assert m is not None
            kept_any = True
            # every kept object is (mostly) the sounding one: the mover, the pulser and the static shape are dropped
            assert np.logical_and(m, gt).sum() >= 0.5 * m.sum()
    assert kept_any


def _constructed(n_frames: int = 100, fps: float = 25.0, seed: int = 0) -> tuple[ClipContext, list[int]]:
    """Three boxes on a flat video: box 1 brightens with the audio bursts, box 0 with other bursts,
    box 2 flickers at random. Five sampled frames; the same three boxes on each."""
    rng = np.random.default_rng(seed)
    sr = 8000
    times = [k / fps for k in range(n_frames)]
    env = np.zeros(n_frames)
    other = np.zeros(n_frames)
    for on in rng.choice(np.arange(5, n_frames - 10), 6, replace=False):
        env[on:on + 4] = 1.0
    for on in rng.choice(np.arange(5, n_frames - 10), 6, replace=False):
        other[on:on + 4] = 1.0
    frames = []
    for k in range(n_frames):
        f = np.full((60, 90, 3), 100, np.uint8)
        f[10:30, 5:25] = 100 + int(80 * other[k])
        f[10:30, 35:55] = 100 + int(80 * env[k])
        f[10:30, 65:85] = int(rng.integers(60, 140))
        frames.append(f)
    t = np.arange(int(n_frames / fps * sr)) / sr
    wave = (0.5 * np.interp(t, times, env) * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    idx = [10, 30, 50, 70, 90]
    boxes = np.asarray([[5, 10, 25, 30], [35, 10, 55, 30], [65, 10, 85, 30]], np.float32)
    props = [Proposals(boxes, np.ones(3, np.float32)) for _ in idx]
    windows = [AudioWindow(wave[: sr], sr, 0.0, 1.0) for _ in idx]
    ctx = ClipContext("c", [frames[k] for k in idx], [times[k] for k in idx], windows, [None] * 5, props,
                      [None] * 5, [None] * 5, [None] * 5, FullRateVideo(frames, times), (wave, sr), [])
    return ctx, idx


def _filter(**kw: object) -> AVSync:
    return AVSync(AVSyncConfig(**kw), Runtime())  # type: ignore[arg-type]


def test_av_sync_scores_the_synchronous_box_highest_and_traces_curves() -> None:
    ctx, _ = _constructed()
    res = _filter(keep="best").filter_clip(ctx)
    assert [r.keep for r in res] == [[1]] * 5  # the best track is not the first
    assert res[0].scores is not None and res[0].scores[1] > 0.8 > res[0].scores[0]
    extra = res[0].extra
    assert extra is not None and len(extra[1]["curves"]["visual"]) == 99 == len(extra[1]["curves"]["audio"])
    assert extra[1]["lag_frames"] == 0 and extra[1]["frames"] == 5
    assert "not the clip's best" in res[0].drops[0].reason


def test_av_sync_threshold_boundary_keeps_a_score_exactly_at_it() -> None:
    ctx, _ = _constructed()
    scores = _filter().filter_clip(ctx)[0].scores
    assert scores is not None
    at = float(scores[1])
    assert _filter(threshold=at).filter_clip(ctx)[0].keep == [1]
    assert _filter(threshold=min(1.0, at + 1e-6)).filter_clip(ctx)[0].keep == []


def test_av_sync_frames_only_says_so_once() -> None:
    ctx, _ = _constructed()
    ctx.video = None
    flt = _filter()
    flt.filter_clip(ctx)
    flt.filter_clip(ctx)
    assert len([w for w in ctx.warnings if "no full-rate video" in w]) == 1


def test_best_lagged_correlation_finds_the_lag() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(80).astype(np.float32)
    v = np.roll(a, -2)  # v[k] = a[k + 2]
    r, lag = best_lagged_correlation(v, a, 3)
    assert lag == 2 and r > 0.99
    assert best_lagged_correlation(v, a, 1)[0] < 0.5  # outside the lag window
    assert best_lagged_correlation(np.ones(80, np.float32), a, 3) == (0.0, 0)


def test_motion_masks_the_whole_growing_disk_and_propagates_it() -> None:
    """A disk that grows only in the first second: its mask is the disk, not the ring that changed,
    and it is proposed on the later sampled frames where it is still."""
    fps, n = 20.0, 80
    yy, xx = np.mgrid[0:80, 0:100]
    frames, times = [], []
    for k in range(n):
        r = 10 + min(k, 15) * 0.5  # grows for 15 frames, then still
        f = np.full((80, 100, 3), 90, np.uint8)
        f[(xx - 50) ** 2 + (yy - 40) ** 2 <= r * r] = (220, 40, 40)
        frames.append(f)
        times.append(k / fps)
    ts = [0.5, 1.5, 2.5, 3.5]
    sampled = [frames[int(t * fps)] for t in ts]
    out = MotionProposer(MotionConfig(), Runtime()).propose_clip(sampled, None, ts, FullRateVideo(frames, times))
    for i, p in enumerate(out):
        gt = np.all(sampled[i] == (220, 40, 40), axis=-1)
        assert len(p) == 1 and p.masks is not None
        assert _iou(p.masks[0], gt) > 0.9, i


def test_video_clip_decodes_once_for_full_rate_and_sampled_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import avseg.data.video as video_mod
    from avseg.data import read_video

    path = synth(tmp_path / "s.mp4", layout="video", seed=0, size=(64, 48), seconds=3)
    calls = {"all": 0}
    real = video_mod.decode_all

    def counting(p: Path) -> FullRateVideo:
        calls["all"] += 1
        return real(p)

    monkeypatch.setattr(video_mod, "decode_all", counting)
    monkeypatch.setattr(video_mod, "_decode_frames", lambda *a: pytest.fail("sampled frames decoded again"))
    clip = read_video(path)
    video = clip.video()
    assert video is not None and len(video) == 75 and abs(video.fps - 25) < 0.1
    frames = clip.frames()
    assert clip.video() is video and calls["all"] == 1
    assert all(f is video.frames[video.index_at(t)] for f, t in zip(frames, clip.timestamps))


def test_synth_s4_and_ms3_layouts_are_read_with_raw_videos(tmp_path: Path) -> None:
    from avseg.data import open_dataset

    synth(tmp_path / "a", layout="s4", clips=2, seed=3, size=(64, 48), seconds=5)
    synth(tmp_path / "b", layout="ms3", clips=1, seed=3, size=(64, 48), seconds=5)
    s4 = open_dataset(tmp_path / "a", "s4")
    ms3 = open_dataset(tmp_path / "b", "ms3")
    assert len(s4) == 2 and len(ms3) == 1
    clip = next(iter(ms3))
    assert clip.has_video and len(clip.frames()) == 5
    gt = ms3.gt_mask(clip, 4)
    assert gt is not None and gt.any()
    # the same seed writes the same scenes
    synth(tmp_path / "c", layout="s4", clips=2, seed=3, size=(64, 48), seconds=5)
    a = sorted(p.read_bytes() for p in (tmp_path / "a").rglob("*.png"))
    c = sorted(p.read_bytes() for p in (tmp_path / "c").rglob("*.png"))
    assert a == c


def test_eval_on_synth_is_high_and_above_keeping_every_motion_proposal(tmp_path: Path) -> None:
    from avseg.eval.runner import run_eval

    root = synth(tmp_path / "ds", layout="s4", clips=4, seed=1, size=SIZE)

    def miou(out: str, sets: list[str]) -> float:
        m = run_eval(root=root, subset="s4", split="test", out=tmp_path / out, runtime=Runtime(),
                     pipeline={"preset": "av-sync", "sets": sets}, progress=False)
        return float(m["miou"])

    full = miou("full", [])
    every = miou("every", ["filter.av-sync.threshold=-1"])
    assert full > 0.7 and full > every + 0.25, (full, every)


def test_mix_at_snr_measures_the_requested_snr_and_is_seeded(tmp_path: Path) -> None:
    from avseg.noise import mix_at_snr, noise_rng, power

    rng = np.random.default_rng(0)
    wave = (0.3 * np.sin(np.arange(32000) / 5.0)).astype(np.float32)[None]
    for kind in ("white", "pink"):
        mixed, snr = mix_at_snr(wave, 16000, kind, 5.0, noise_rng("clip", 0))
        assert abs(snr - 5.0) < 1e-3
        assert abs(10 * np.log10(power(wave) / power(mixed - wave)) - 5.0) < 0.05  # no clipping at this level
        again, _ = mix_at_snr(wave, 16000, kind, 5.0, noise_rng("clip", 0))
        other, _ = mix_at_snr(wave, 16000, kind, 5.0, noise_rng("clip", 1))
        assert np.array_equal(mixed, again) and not np.array_equal(mixed, other)
    # pink noise has more power below 500 Hz than above 4 kHz; white about the same per Hz
    pink = mix_at_snr(wave, 16000, "pink", 0.0, rng)[0][0] - wave[0]
    spec = np.abs(np.fft.rfft(pink)) ** 2
    f = np.fft.rfftfreq(len(pink), 1 / 16000)
    assert spec[(f > 50) & (f < 500)].mean() > 10 * spec[f > 4000].mean()
    import soundfile as sf

    sf.write(str(tmp_path / "n.wav"), rng.standard_normal(8000).astype(np.float32) * 0.1, 8000)
    _, snr = mix_at_snr(wave, 16000, str(tmp_path / "n.wav"), -3.0, rng)
    assert abs(snr + 3.0) < 1e-3
    silent, snr = mix_at_snr(np.zeros((1, 100), np.float32), 16000, "white", 0.0, rng)
    assert snr == float("inf") and not silent.any()


def test_noise_options_are_one_line_errors(tmp_path: Path) -> None:
    from avseg.errors import AvsegError
    from avseg.noise import noise_sets

    assert noise_sets(None, None) == []
    assert noise_sets("white", 10) == ["audio.noise='white'", "audio.snr=10.0"]
    for bad in [("white", None), (None, 3.0), ("brown", 3.0), ("white", float("nan"))]:
        with pytest.raises(AvsegError) as e:
            noise_sets(*bad)
        assert "\n" not in str(e.value)


def test_av_sync_miou_falls_as_the_snr_falls(tmp_path: Path) -> None:
    """One ablate grid over audio.snr: a table and a plot, and the mIoU falls with the SNR."""
    import csv

    from avseg.ablate import run_ablation

    root = synth(tmp_path / "ds", layout="s4", clips=4, seed=1, size=SIZE)
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: av-sync\nset: [\"audio.noise=white\"]\naxes:\n  audio.snr: [20, 0, -10]\n")
    run_ablation(grid_path=grid, root=root, subset="s4", split="test", out=tmp_path / "ab", runtime=Runtime())
    rows = list(csv.DictReader((tmp_path / "ab" / "results.csv").open()))
    miou = {float(r["audio.snr"]): float(r["miou"]) for r in rows}
    assert miou[20] >= miou[0] >= miou[-10] and miou[20] - miou[-10] >= 0.1, miou
    assert list((tmp_path / "ab").glob("plot_miou_vs_audio.snr.png"))
    cell = next(p for p in (tmp_path / "ab" / "cells").iterdir() if "-10" in p.name)
    cfg = json.loads((cell / "config.json").read_text())
    metrics = json.loads((cell / "metrics.json").read_text())
    assert "noise" in json.dumps(cfg) and metrics["audio_noise"]["snr"] == -10.0
    assert abs(metrics["audio_noise"]["measured_snr_mean"] + 10.0) < 0.01


def test_cli_synth_then_run_av_sync_needs_no_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import cli

    code, out, err = cli(capsys, "synth", str(tmp_path / "s.mp4"), "--layout", "video", "--size", "96x72",
                         "--seconds", "3", "--seed", "4")
    assert code == 0 and (tmp_path / "s.mp4").is_file(), err
    code, out, err = cli(capsys, "run", "av-sync", "--input", str(tmp_path / "s.mp4"), "--out", str(tmp_path / "o"))
    assert code == 0, err
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["n_frames"] == 3


@pytest.mark.parametrize("args, words", [
    (["synth", "X", "--size", "abc"], "--size 'abc'"),
    (["synth", "X", "--layout", "avss"], "--layout 'avss'"),
    (["synth", "X.txt", "--layout", "video"], ".mp4"),
    (["eval", "av-sync", "--root", "R", "--subset", "s4", "--out", "O", "--snr", "3"], "--audio-noise and --snr"),
    (["eval", "av-sync", "--root", "R", "--subset", "s4", "--out", "O", "--audio-noise", "nope.wav", "--snr", "3"],
     "--audio-noise 'nope.wav'"),
])
def test_cli_synth_and_noise_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import cli

    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_one_frame_clip_gives_no_motion_and_no_crash() -> None:
    frame = np.full((30, 40, 3), 80, np.uint8)
    video = FullRateVideo([frame], [0.0])
    out = MotionProposer(MotionConfig(), Runtime()).propose_clip([frame], None, [0.9], video)
    assert len(out) == 1 and len(out[0]) == 0 and out[0].masks is not None
    props = Proposals(np.asarray([[0, 0, 10, 10]], np.float32), np.ones(1, np.float32))
    ctx = ClipContext("c", [frame], [0.9], [AudioWindow(np.zeros(8000, np.float32), 8000, 0.0, 1.0)], [None],
                      [props], [None], [None], [None], video, (np.zeros(8000, np.float32), 8000), [])
    res = _filter().filter_clip(ctx)
    assert res[0].keep == [] and res[0].scores == [0.0]
