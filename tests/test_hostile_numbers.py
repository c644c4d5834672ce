"""Hostile numbers and in-memory inputs (issue 26): every numeric option finite and bounded, and
arrays handed to ``avseg.load(...)`` checked as files are (one audio check, one timestamp check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import avseg
from avseg.errors import AvsegError, InputError, UsageError
from avseg.testing import SR, make_s4_tree, tone
from tests.helpers import cli, one_line

FAST = dict(proposer="saliency", filters=["score-threshold"], tiny=True, cache=False)



@pytest.fixture(scope="module")
def pipe() -> avseg.session.LoadedPipeline:
    return avseg.load(**FAST)


def frames(n: int = 3, size: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]


# ------------------------------------------------------------------------- numeric options
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e9", "1.5", "65"])
def test_gpus_per_worker_must_be_finite_and_bounded(tmp_path: Path, value: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "eval", "owod-bind", "--tiny", "--root", str(tmp_path), "--subset", "s4",
                       "--out", str(tmp_path / "o"), "--executor", "ray", "--gpus-per-worker", value)
    assert code == 2 and f"--gpus-per-worker {float(value)}" in one_line(err)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 100.0])
def test_ray_executor_itself_refuses_a_bad_gpu_share(value: float) -> None:
    from avseg.executors.ray import RayExecutor

    with pytest.raises(UsageError, match="--gpus-per-worker"):
        RayExecutor(gpus_per_worker=value)


@pytest.mark.parametrize("audio", ["{window: 1e9}", "{window: 61}", "{offset: 1e12}"])
def test_audio_window_is_bounded(tmp_path: Path, audio: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(f"proposer: saliency\naudio: {audio}\n")
    code, _, err = cli(capsys, "presets", "show", str(spec))
    assert code == 2 and "60" in one_line(err)


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind\naxes:\n  filter.score-threshold.threshold: [" + ", ".join(["0.5"] * 100_000)
                    + "]\n  proposer.top_k: [" + ", ".join(["5"] * 1000) + "]\n")
    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 1}, size=16)
    code, _, err = cli(capsys, "ablate", str(grid), "--root", str(root), "--subset", "s4", "--out", str(tmp_path / "o"))
    assert code == 2 and "100,000 x 1,000 = 100,000,000 cells" in one_line(err)


# ---------------------------------------------------------------------- in-memory inputs
@pytest.mark.parametrize("sr", [10**15, 0, -16000, 16000.5, float("nan"), "16000", True])
def test_api_sample_rate_is_bounded(pipe: avseg.session.LoadedPipeline, sr: object) -> None:
    with pytest.raises(InputError, match="sample rate"):
        pipe((frames(), (tone([440.0], 3.0), sr)))


def test_nan_and_inf_arrays_are_silenced_with_a_warning_as_files_are(pipe: avseg.session.LoadedPipeline) -> None:
    wave = tone([440.0], 3.0)
    clean = pipe((frames(), (wave.copy(), SR)))
    wave[:1000] = np.nan
    wave[5000] = np.inf
    res = pipe((frames(), (wave, SR)))
    assert any("1001 NaN or infinite audio samples replaced by silence" in w for w in res.meta["warnings"])
    assert np.isfinite(res.clip.audio[0]).all()
    assert not any("NaN" in w for w in clean.meta["warnings"])


def test_complex_audio_is_refused(pipe: avseg.session.LoadedPipeline) -> None:
    with pytest.raises(InputError, match="complex"):
        pipe((frames(), (tone([440.0], 3.0).astype(np.complex64), SR)))


def test_too_few_samples_for_the_frames_warns(pipe: avseg.session.LoadedPipeline) -> None:
    res = pipe((frames(3), (np.ones(10, np.float32) * 0.1, SR)))
    assert any("the audio lasts 0.00 s but the last frame is at 2.94 s" in w for w in res.meta["warnings"])


@pytest.mark.parametrize("ts", [[0.0, float("nan"), 2.0], [0.0, -1.0, 2.0], [0.0, float("inf"), 2.0],
                                [0.0, "x", 2.0]])
def test_bad_timestamps_are_refused(pipe: avseg.session.LoadedPipeline, ts: list[object]) -> None:
    with pytest.raises(InputError, match="timestamp"):
        pipe((frames(3), (tone([440.0], 3.0), SR)), timestamps=ts)  # type: ignore[arg-type]


def test_timestamps_beyond_the_audio_warn(pipe: avseg.session.LoadedPipeline) -> None:
    res = pipe((frames(3), (tone([440.0], 3.0), SR)), timestamps=[0.5, 1.5, 1e12])
    assert any("the last frame is at 1000000000000.00 s" in w for w in res.meta["warnings"])


@pytest.mark.parametrize("bad", [None, 5, "frames", [None], [[1, 2, 3]], np.zeros((4, 4)),
                                 [np.zeros((9000, 8, 3), np.uint8)]])
def test_bad_frames_are_one_error(pipe: avseg.session.LoadedPipeline, bad: object) -> None:
    with pytest.raises(InputError, match="input frame"):
        pipe((bad, (tone([440.0], 3.0), SR)))


@pytest.mark.parametrize("wave", [None, [0.1, 0.2], np.array(["a", "b"]), np.zeros((2, 2, 2), np.float32)])
def test_bad_waveforms_are_one_error(pipe: avseg.session.LoadedPipeline, wave: object) -> None:
    with pytest.raises(AvsegError, match="input waveform"):
        pipe((frames(), (wave, SR)))
