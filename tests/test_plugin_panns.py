"""The ``panns`` tagger: tiny Cnn14, parity with panns-inference's Cnn14, checkpoint loading, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

requires("torch")
requires("torchlibrosa")
requires("panns_inference", import_it=False)

import avseg_panns  # noqa: E402
import torch  # noqa: E402
from avseg_panns.tagger import CNN14_ARGS, TINY_LABELS, PannsTagger, upstream_models  # noqa: E402

from avseg.audio import resample  # noqa: E402
from avseg.audioset import audioset_labels  # noqa: E402
from avseg.errors import AvsegError, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from avseg.types import AudioWindow  # noqa: E402


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def tagger(runtime: Runtime) -> PannsTagger:
    return PannsTagger(PannsTagger.Config(), runtime)


def _waves(n: int, sr: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return [
        (0.3 * np.sin(2 * np.pi * (250 + 125 * i) * t) + 0.05 * rng.standard_normal(len(t))).astype(
            np.float32
        )
        for i in range(n)
    ]


def test_tiny_is_real_cnn14(tagger: PannsTagger) -> None:
    assert tagger.weights_used() == "tiny"
    assert tagger.vocabulary == TINY_LABELS
    assert type(tagger.model).__name__ == "Cnn14"
    assert tagger.model.fc_audioset.out_features == len(TINY_LABELS)
    tags = tagger.tag([AudioWindow(w, 32000) for w in _waves(2, 32000)])
    assert len(tags) == 2
    for t in tags:
        assert sorted(t.names) == sorted(TINY_LABELS)
        assert np.all(np.diff(t.scores) <= 0) and np.all((t.scores > 0) & (t.scores < 1))
    assert tagger.tag([]) == []


def test_parity_with_upstream_forward(tagger: PannsTagger, runtime: Runtime) -> None:
    """Plugin scores == Cnn14(...)(waveform)["clipwise_output"] for the same model, one forward."""
    waves = _waves(3, 32000, seed=1)
    before = runtime.counters["panns.forward_passes"]
    ours = tagger.predict([AudioWindow(w, 32000) for w in waves])
    assert runtime.counters["panns.forward_passes"] - before == 1
    with torch.inference_mode():
        ref = tagger.model(torch.from_numpy(np.stack(waves)))["clipwise_output"].numpy()
    np.testing.assert_array_equal(ours, ref)


def test_resampling_padding_and_length_groups(tagger: PannsTagger) -> None:
    (w16,) = _waves(1, 16000, seed=2)
    np.testing.assert_array_equal(
        tagger.predict([AudioWindow(w16, 16000)]),
        tagger.predict([AudioWindow(resample(w16, 16000, 32000, "soxr_hq"), 32000)]),
    )
    # the resampler is librosa.load's (upstream's loader), bit for bit; scipy's would differ
    librosa = requires("librosa")
    (prepared,) = tagger.prepare([AudioWindow(w16, 16000)])
    np.testing.assert_array_equal(prepared, librosa.resample(w16, orig_sr=16000, target_sr=32000))
    assert np.abs(prepared - resample(w16, 16000, 32000, "polyphase")).max() > 1e-4
    (short,) = _waves(1, 32000, seconds=0.5, seed=3)
    (rep,) = tagger.prepare([AudioWindow(short, 32000)])
    np.testing.assert_array_equal(rep, np.tile(short, 2))
    # windows of different lengths are never padded to each other: each scores as it would alone
    a, b = _waves(2, 32000, seed=4)
    (long,) = _waves(1, 32000, seconds=1.5, seed=5)
    mixed = tagger.predict([AudioWindow(a, 32000), AudioWindow(long, 32000), AudioWindow(b, 32000)])
    alone = tagger.predict([AudioWindow(long, 32000)])
    pair = tagger.predict([AudioWindow(a, 32000), AudioWindow(b, 32000)])
    np.testing.assert_array_equal(mixed[1], alone[0])
    np.testing.assert_array_equal(mixed[[0, 2]], pair)


def test_checkpoint_loads_through_weights_manager(tmp_path, tagger: PannsTagger) -> None:
    """A checkpoint laid out like Cnn14_mAP=0.431.pth ({"model": state_dict}, 527 classes) loads.

    The tiny model's trunk plus a fresh 527-way head stands in for the real weights; the
    expected scores are computed from the tiny model's own ``embedding`` output and that head.
    """
    state = {k: v.clone() for k, v in tagger.model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    state["fc_audioset.weight"] = torch.randn(527, 2048, generator=g) * 0.05
    state["fc_audioset.bias"] = torch.randn(527, generator=g) * 0.05
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"iteration": 0, "model": state}, path)
    loaded = PannsTagger(PannsTagger.Config(checkpoint=str(path)), Runtime(device="cpu"))
    assert loaded.weights_used() == {"Cnn14_mAP=0.431.pth": str(path)}
    assert loaded.vocabulary == audioset_labels() and len(loaded.vocabulary) == 527
    waves = _waves(2, 32000, seed=6)
    ours = loaded.predict([AudioWindow(w, 32000) for w in waves])
    with torch.inference_mode():
        emb = tagger.model(torch.from_numpy(np.stack(waves)))["embedding"]
        ref = torch.sigmoid(emb @ state["fc_audioset.weight"].t() + state["fc_audioset.bias"]).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)  # Linear vs matmul+add: float32 rounding


def test_wrong_checkpoint_contents(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"model": {"fc_audioset.weight": torch.zeros(3, 2048)}}, path)
    with pytest.raises(AvsegError) as exc:
        PannsTagger(PannsTagger.Config(checkpoint=str(path)), Runtime(device="cpu"))
    assert "\n" not in str(exc.value) and "not a PANNs Cnn14" in str(exc.value)


def test_missing_weights_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    with pytest.raises(WeightsMissing) as exc:
        PannsTagger(PannsTagger.Config(), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg and "Cnn14_mAP=0.431.pth" in msg and "avseg weights fetch panns" in msg


def test_wrong_explicit_checkpoint(tmp_path) -> None:
    bad = tmp_path / "missing.pth"
    with pytest.raises(WeightsMissing) as exc:
        PannsTagger(PannsTagger.Config(checkpoint=str(bad)), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg and f"(looked in {bad})" in msg


def test_upstream_import_downloads_nothing(tmp_path) -> None:
    """Loading Cnn14 never runs panns_inference/config.py (which wgets a CSV into ~/panns_data)."""
    code = (
        "import sys; from avseg_panns.tagger import upstream_models; m = upstream_models(); "
        "assert hasattr(m, 'Cnn14'); assert 'panns_inference' not in sys.modules; "
        "assert not any(k.startswith('panns_inference.') for k in sys.modules)"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "panns_data").exists()
    # the only thing written under HOME is matplotlib's own font cache (models.py imports pyplot)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(w.startswith((".cache/matplotlib/", ".config/matplotlib/")) for w in written), written
    assert upstream_models().Cnn14.__init__.__code__.co_varnames[1:8] == (
        "sample_rate",
        "window_size",
        "hop_size",
        "mel_bins",
        "fmin",
        "fmax",
        "classes_num",
    )
    assert set(CNN14_ARGS) == {"sample_rate", "window_size", "hop_size", "mel_bins", "fmin", "fmax"}


def test_registry() -> None:
    from avseg.registry import load_registry

    reg = load_registry(plugins=[("panns", avseg_panns)], entry_points=False)
    assert reg.get("tagger", "panns") is PannsTagger


def test_import_is_light() -> None:
    code = (
        "import sys, avseg_panns; assert 'torch' not in sys.modules and 'panns_inference' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
