"""av-sync at its boundaries, model-free, on crafted arrays and clips: the region of a box off the
frame, the envelope's windows, the lag window's ends, the linker's IoU at its threshold, which
sampled frame's region measures each full-rate step, the dilation's reach and the trace's numbers.
Every test name holds ``avsync``: the av-sync selection of scripts/mutants.py runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avseg_sync.avsync import AVSync, AVSyncConfig, _iou, _region, audio_envelope, best_lagged_correlation

from avseg.components import ClipContext
from avseg.types import AudioWindow, FullRateVideo, Proposals


def _filter(**kw: object) -> AVSync:
    return AVSync(AVSyncConfig(**kw), None)  # type: ignore[arg-type]


def _ctx(frames: list[np.ndarray], times: list[float], idx: list[int], boxes: list[list[list[float]]],
         wave: np.ndarray | None = None, sr: int = 1000, video: bool = True) -> ClipContext:
    """A clip whose sampled frames are ``frames[idx]``, with ``boxes[i]`` proposed on sampled frame i."""
    n = len(idx)
    if wave is None:
        wave = np.zeros(int(np.ceil(times[-1] * sr)) + sr // 10, np.float32)
    props = [Proposals(np.asarray(b, np.float32).reshape(-1, 4), np.ones(len(b), np.float32)) for b in boxes]
    windows = [AudioWindow(wave[:sr], sr, 0.0, 1.0) for _ in idx]
    return ClipContext("c", [frames[k] for k in idx], [times[k] for k in idx], windows, [None] * n, props,
                       [None] * n, [None] * n, [None] * n, FullRateVideo(frames, times) if video else None,
                       (wave, sr), [])


# -- the region of a box and the IoU ---------------------------------------------------------------
@pytest.mark.parametrize("box, rows, cols", [
    ([0, 0, 3, 2], (0, 2), (0, 3)),  # at the top-left corner: row and column 0 belong to it
    ([-5, -4, 3, 2], (0, 2), (0, 3)),  # off the top-left: clipped to the frame, not emptied
    ([0, -5, 5, 0], None, None),  # ends at row 0: nothing
    ([0, -5, 5, -3], None, None),  # wholly above the frame: nothing
    ([-5, 0, 0, 5], None, None),  # ends at column 0: nothing
    ([-5, 0, -3, 5], None, None),  # wholly left of the frame: nothing
])
def test_avsync_region_of_a_box_at_and_off_the_frame_edge(box: list[float], rows: tuple[int, int] | None,
                                                          cols: tuple[int, int] | None) -> None:
    props = Proposals(np.asarray([box], np.float32), np.ones(1, np.float32))
    m = _region(props, 0, 8, 10)
    want = np.zeros((8, 10), bool)
    if rows is not None and cols is not None:
        want[rows[0]:rows[1], cols[0]:cols[1]] = True
    np.testing.assert_array_equal(m, want)


def test_avsync_iou_of_two_empty_regions_is_zero_and_of_overlap_is_a_fraction() -> None:
    empty = np.zeros((4, 4), bool)
    assert _iou(empty, empty) == 0.0
    a, b = empty.copy(), empty.copy()
    a[0, 0:2] = True
    b[0, 1:3] = True
    assert _iou(a, b) == pytest.approx(1 / 3)


# -- the audio envelope's windows ------------------------------------------------------------------
def _rms(seg: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(seg.astype(np.float64)))))


def test_avsync_envelope_windows_are_half_a_step_either_side_clipped_at_zero() -> None:
    wave = (np.arange(300) % 7 + 1).astype(np.float32)  # every window's RMS differs
    out = audio_envelope(wave, 100, [0.0, 0.1, 0.2])  # step 0.1 s = 10 samples: [0, 5), [5, 15), [15, 25)
    np.testing.assert_allclose(out, [_rms(wave[0:5]), _rms(wave[5:15]), _rms(wave[15:25])], rtol=1e-6)


def test_avsync_envelope_with_two_times_uses_their_interval() -> None:
    wave = (np.arange(300) % 7 + 1).astype(np.float32)
    out = audio_envelope(wave, 100, [0.5, 0.75])  # step 0.25 s, not the one-time default of 1 s
    np.testing.assert_allclose(out, [_rms(wave[37:62]), _rms(wave[62:87])], rtol=1e-6)


def test_avsync_envelope_of_one_time_uses_a_one_second_window() -> None:
    wave = (np.arange(300) % 7 + 1).astype(np.float32)
    out = audio_envelope(wave, 10, [1.0])  # [0.5 s, 1.5 s) = samples [5, 15)
    np.testing.assert_allclose(out, [_rms(wave[5:15])], rtol=1e-6)


def test_avsync_envelope_window_shorter_than_a_sample_is_one_sample() -> None:
    wave = np.asarray([0.5, 1.0, 2.0, 4.0] * 10, np.float32)
    out = audio_envelope(wave, 10, [0.0, 0.01, 0.02])  # each window is the sample at its start
    np.testing.assert_allclose(out, [0.5, 0.5, 0.5])


def test_avsync_envelope_past_the_end_of_the_audio_is_zero() -> None:
    out = audio_envelope(np.ones(10, np.float32), 10, [5.0, 6.0])
    np.testing.assert_array_equal(out, [0.0, 0.0])


# -- the lagged correlation ------------------------------------------------------------------------
def test_avsync_lagged_finds_a_lag_exactly_at_max_lag_either_way() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(60).astype(np.float32)
    r, lag = best_lagged_correlation(np.roll(a, -2), a, 2)  # v[k] = a[k + 2]
    assert lag == 2 and r > 0.99
    r, lag = best_lagged_correlation(np.roll(a, 2), a, 2)  # v[k] = a[k - 2]
    assert lag == -2 and r > 0.99


def test_avsync_lagged_of_too_short_curves_is_zero_at_lag_zero() -> None:
    assert best_lagged_correlation(np.asarray([1, 2], np.float32), np.asarray([2, 1], np.float32), 1) == (0.0, 0)


@pytest.mark.parametrize("v, a, lag", [
    ([1, 1, 1, 1, 9], [5, 4, 3, 2, 1], 1),  # the picture is flat at lag +1: r = 0 there beats the negative ones
    ([5, 4, 3, 2, 1], [1, 1, 1, 1, 9], -1),  # the sound is flat at lag -1
])
def test_avsync_lagged_a_flat_window_scores_zero_not_nothing(v: list[float], a: list[float], lag: int) -> None:
    r, got = best_lagged_correlation(np.asarray(v, np.float32), np.asarray(a, np.float32), 1)
    assert (r, got) == (0.0, lag)


def test_avsync_lagged_a_spread_of_exactly_1e_9_is_not_flat() -> None:
    v = np.asarray([0, 2e-9, 0, 2e-9, 0, 2e-9], np.float64)  # std exactly 1e-9 (the flatness bound)
    assert v.std() == 1e-9
    a = np.asarray([0, 1, 0, 1, 0, 1], np.float64)
    r, lag = best_lagged_correlation(v, a, 0)
    assert lag == 0 and r == pytest.approx(1.0)
    r, lag = best_lagged_correlation(a, v, 0)
    assert lag == 0 and r == pytest.approx(1.0)


# -- the linker ------------------------------------------------------------------------------------
def _flat(n: int, h: int = 40, w: int = 60) -> list[np.ndarray]:
    return [np.full((h, w, 3), 100, np.uint8) for _ in range(n)]


def _tracks(boxes: list[list[list[float]]], **kw: object) -> list[dict[int, int]]:
    frames = _flat(len(boxes))
    ctx = _ctx(frames, [k / 10 for k in range(len(boxes))], list(range(len(boxes))), boxes)
    return [tr.members for tr in _filter(**kw).link(ctx)]


def test_avsync_linker_links_an_iou_exactly_at_its_threshold() -> None:
    # IoU of [0,0,4,4] and [0,0,4,2] = 8 / 16 = 0.5
    assert _tracks([[[0, 0, 4, 4]], [[0, 0, 4, 2]]], iou_threshold=0.5) == [{0: 0, 1: 0}]
    assert _tracks([[[0, 0, 4, 4]], [[0, 0, 4, 2]]], iou_threshold=0.51) == [{0: 0}, {1: 0}]


def test_avsync_linker_never_links_disjoint_regions_even_at_threshold_zero() -> None:
    assert _tracks([[[0, 0, 4, 4]], [[10, 10, 14, 14]]], iou_threshold=0.0) == [{0: 0}, {1: 0}]


def test_avsync_linker_does_not_link_a_positive_iou_under_the_threshold() -> None:
    # IoU of [0,0,10,10] and [0,0,10,1] = 0.1 < 0.3
    assert _tracks([[[0, 0, 10, 10]], [[0, 0, 10, 1]]]) == [{0: 0}, {1: 0}]


def test_avsync_linker_gives_a_track_the_object_it_overlaps_most_even_when_listed_second() -> None:
    # frame 1: object 0 overlaps the track by 0.4, object 1 by 0.9
    out = _tracks([[[0, 0, 10, 10]], [[0, 0, 10, 4], [0, 0, 10, 9]]])
    assert out == [{0: 0, 1: 1}, {1: 0}]


def test_avsync_linker_goes_on_after_a_pair_whose_object_is_taken() -> None:
    # tracks A = rows 0-9, B = rows 10-19; frame 1: object 0 = rows 2-13 overlaps A (0.57), then B (0.22);
    # object 1 = row 19 overlaps B by 0.1 only: its pair comes after the skipped (B, object 0) pair
    out = _tracks([[[0, 0, 10, 10], [0, 10, 10, 20]], [[0, 2, 10, 14], [0, 19, 10, 20]]], iou_threshold=0.05)
    assert out == [{0: 0, 1: 0}, {0: 1, 1: 1}]


# -- measuring: which region, the dilation, the video -----------------------------------------------
def _two_region_clip(**kw: object) -> tuple[ClipContext, AVSync]:
    """20 frames at 20 fps; sampled at 0.25 s and 0.75 s. One track: box [0,0,10,10] on the first
    sampled frame, [5,0,15,10] on the second (IoU 1/3). Only columns 0-2 change (every frame), which
    only the first sampled frame's region sees (the blur spreads a change by 2 px: to column 4)."""
    frames = _flat(20)
    for k in range(20):
        frames[k][:, 0:3] = 0 if k % 2 else 255
    times = [k / 20 for k in range(20)]
    ctx = _ctx(frames, times, [5, 15], [[[0, 0, 10, 10]], [[5, 0, 15, 10]]])
    return ctx, _filter(dilate=0, **kw)


def test_avsync_each_full_rate_step_is_measured_in_the_nearest_sampled_frames_region() -> None:
    ctx, flt = _two_region_clip()
    res = flt.filter_clip(ctx)
    extra = res[0].extra
    assert extra is not None and extra[0]["track"] == 0 == res[1].extra[0]["track"]  # type: ignore[index]
    visual = np.asarray(extra[0]["curves"]["visual"])
    assert len(visual) == 19
    # step k lies at (k + 0.5) / 20 s: nearer 0.25 s for k <= 9, nearer 0.75 s after
    assert (visual[:10] > 0).all() and (visual[10:] == 0).all(), visual


def test_avsync_an_empty_region_has_a_zero_visual_curve() -> None:
    frames = _flat(10)
    for k in range(10):
        frames[k][:, 0:3] = 0 if k % 2 else 255
    ctx = _ctx(frames, [k / 10 for k in range(10)], [2, 7], [[[0, 0, 10, 10], [5, 5, 5, 5]], [[0, 0, 10, 10]]])
    res = _filter(dilate=0).filter_clip(ctx)
    extra = res[0].extra
    assert extra is not None and extra[1]["curves"]["visual"] == [0.0] * 9
    assert res[0].scores is not None and res[0].scores[1] == 0.0


def _rim_clip(side: str) -> ClipContext:
    """A box at columns 30-39; columns 0-25 (left) or 44-59 (right) flicker, so the blurred change
    reaches column 27 (42): a region grown by 3 px sees it, one grown by 2 px does not."""
    frames = _flat(10)
    cols = slice(0, 26) if side == "left" else slice(44, 60)
    for k in range(10):
        frames[k][:, cols] = 0 if k % 2 else 255
    return _ctx(frames, [k / 10 for k in range(10)], [2, 7], [[[30, 10, 40, 30]], [[30, 10, 40, 30]]])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dilate, sees", [(0, False), (1, False), (2, False), (3, True)])
def test_avsync_dilate_grows_the_region_by_exactly_that_many_pixels(dilate: int, sees: bool, side: str) -> None:
    extra = _filter(dilate=dilate).filter_clip(_rim_clip(side))[0].extra
    assert extra is not None
    visual = np.asarray(extra[0]["curves"]["visual"])
    assert (visual > 0).all() if sees else (visual == 0).all(), visual


def test_avsync_sampled_frames_smaller_than_the_video_have_their_regions_resized() -> None:
    frames = _flat(10, 40, 60)
    for k in range(10):
        frames[k][:, 0:3] = 0 if k % 2 else 255
    ctx = _ctx(frames, [k / 10 for k in range(10)], [2, 7], [[[0, 0, 5, 5]], [[0, 0, 5, 5]]])
    ctx.frames = [f[::2, ::2] for f in ctx.frames]  # 20 x 30 sampled frames; the box covers columns 0-9 of the video
    extra = _filter(dilate=0).filter_clip(ctx)[0].extra
    assert extra is not None
    assert (np.asarray(extra[0]["curves"]["visual"]) > 0).all()


def test_avsync_a_two_frame_video_is_used_and_a_one_frame_video_is_not() -> None:
    frames = _flat(2)
    ctx = _ctx(frames, [0.0, 0.0417], [0], [[[0, 0, 5, 5]]])
    res = _filter().filter_clip(ctx)
    assert ctx.warnings == [] and res[0].extra is not None
    assert res[0].extra[0]["fps"] == round(1 / 0.0417, 3) == 23.981  # rounded to 3 decimals
    ctx = _ctx(_flat(3), [0.0, 0.1, 0.2], [0, 1, 2], [[[0, 0, 5, 5]]] * 3)
    ctx.video = FullRateVideo(ctx.video.frames[:1], ctx.video.times[:1])  # type: ignore[union-attr]
    res = _filter().filter_clip(ctx)
    assert any("no full-rate video" in w for w in ctx.warnings)
    assert res[0].extra is not None and len(res[0].extra[0]["curves"]["visual"]) == 2


# -- the energy feature and the trace --------------------------------------------------------------
def _sounding_clip() -> tuple[ClipContext, np.ndarray, list[float]]:
    """30 frames at 30/1.001 fps; box [20,10,40,30] brightens two frames after each audio burst (lag -2)."""
    fps = 30 / 1.001
    times = [k / fps for k in range(30)]
    rng = np.random.default_rng(3)
    env = (rng.random(30) > 0.6).astype(float)
    frames = _flat(30)
    for k in range(30):
        frames[k][10:30, 20:40] = 100 + int(120 * env[k - 2]) if k >= 2 else 100
    sr = 2000
    t = np.arange(int(1.1 * sr)) / sr
    wave = ((0.1 + 0.8 * np.interp(t, times, env)) * np.sin(2 * np.pi * 170 * t)).astype(np.float32)
    ctx = _ctx(frames, times, [5, 15, 25], [[[20, 10, 40, 30]]] * 3, wave=wave, sr=sr)
    return ctx, wave, times


def test_avsync_energy_feature_is_the_mean_of_consecutive_envelope_values() -> None:
    ctx, wave, times = _sounding_clip()
    extra = _filter(audio_feature="energy").filter_clip(ctx)[0].extra
    env = audio_envelope(wave, 2000, times).astype(np.float64)
    want = (env[:-1] + env[1:]) / 2
    assert extra is not None
    np.testing.assert_allclose(extra[0]["curves"]["audio"], want, atol=2e-5)


def test_avsync_trace_rounds_score_lag_fps_and_curves_and_gives_the_lag_in_seconds() -> None:
    ctx, _, _ = _sounding_clip()
    res = _filter(max_lag=0.2).filter_clip(ctx)
    assert res[0].scores is not None and res[0].extra is not None
    score, extra = float(res[0].scores[0]), res[0].extra[0]
    fps = 30 / 1.001
    assert extra["lag_frames"] == -2 and score > 0.8
    assert extra["sync"] == round(score, 4) and extra["sync"] != round(score, 3)
    assert extra["fps"] == round(fps, 3) == 29.97
    assert extra["lag_s"] == round(-2 / fps, 4) == -0.0667
    visual = _filter(max_lag=0.2).filter_clip(ctx)[0].extra[0]["curves"]["visual"]  # type: ignore[index]
    assert any(round(x, 3) != x for x in visual) and all(round(x, 4) == x for x in visual)
    audio = extra["curves"]["audio"]
    assert any(round(x, 4) != x for x in audio) and all(round(x, 5) == x for x in audio)


def test_avsync_trace_of_a_one_frame_clip_has_a_zero_lag_in_seconds() -> None:
    frame = np.full((30, 40, 3), 80, np.uint8)
    ctx = _ctx([frame], [0.9], [0], [[[0, 0, 10, 10]]])
    res = _filter().filter_clip(ctx)
    assert res[0].keep == [] and res[0].extra is not None
    assert res[0].extra[0]["lag_s"] == 0.0 and res[0].extra[0]["fps"] == 0.0


@pytest.mark.parametrize("keep", ["threshold", "best"])
def test_avsync_a_clip_without_objects_keeps_nothing_and_does_not_fail(keep: str) -> None:
    ctx = _ctx(_flat(4), [0.0, 0.1, 0.2, 0.3], [0, 2], [[], []])
    res = _filter(keep=keep).filter_clip(ctx)
    assert [(r.keep, r.drops, r.scores) for r in res] == [([], {}, []), ([], {}, [])]


def test_avsync_asks_the_pipeline_for_the_full_rate_video(tmp_path: Path) -> None:
    from avseg.session import open_pipeline
    from avseg.synth import synth

    video = synth(tmp_path / "s.mp4", layout="video", seed=0, size=(64, 48), seconds=2)
    res = open_pipeline("av-sync", cache=False)(video)
    assert not [w for w in res.meta.get("warnings", []) if "no full-rate video" in w]
