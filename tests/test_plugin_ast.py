"""The ``ast`` tagger: tiny variant, parity with transformers' AST, padding, errors, registry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

requires("torch")
requires("transformers")

import avseg_ast  # noqa: E402
import torch  # noqa: E402
from avseg_ast.tagger import TINY_LABELS, ASTTagger  # noqa: E402

from avseg.audio import resample  # noqa: E402
from avseg.errors import WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from avseg.types import AudioWindow, Tags  # noqa: E402


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def tagger(runtime: Runtime) -> ASTTagger:
    return ASTTagger(ASTTagger.Config(), runtime)


def _waves(n: int, sr: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    out = []
    for i in range(n):
        tone = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t)
        out.append((tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def test_tiny_variant_shape_and_vocabulary(tagger: ASTTagger) -> None:
    assert tagger.vocabulary == TINY_LABELS
    assert tagger.weights_used() == "tiny"
    assert tagger.model.config.hidden_size == 32 and tagger.model.config.num_mel_bins == 128
    tags = tagger.tag([AudioWindow(w, 16000) for w in _waves(3, 16000)])
    assert len(tags) == 3 and all(isinstance(t, Tags) for t in tags)
    for t in tags:
        assert sorted(t.names) == sorted(TINY_LABELS)
        assert np.all(np.diff(t.scores) <= 0)  # sorted descending
        assert np.all((t.scores > 0) & (t.scores < 1))
    assert tagger.tag([]) == []


def test_parity_with_transformers(tagger: ASTTagger, runtime: Runtime) -> None:
    """Plugin probabilities == sigmoid(model(**feature_extractor(...)).logits) on the same model."""
    from transformers import ASTFeatureExtractor

    waves = _waves(3, 16000, seed=1)
    before = runtime.counters["ast.forward_passes"]
    ours = tagger.predict([AudioWindow(w, 16000) for w in waves])
    assert runtime.counters["ast.forward_passes"] - before == 1  # one batched forward per clip
    fe = ASTFeatureExtractor()  # the upstream defaults: 16 kHz, 128 bins, 1024 frames, AudioSet mean/std
    inputs = fe(waves, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        ref = torch.sigmoid(tagger.model(**inputs).logits).numpy()
    np.testing.assert_array_equal(ours, ref)
    # and the Tags carry the same numbers under the right names
    tags = tagger.tag([AudioWindow(w, 16000) for w in waves])
    for t, r in zip(tags, ref, strict=True):
        d = t.as_dict()
        assert [d[n] for n in tagger.vocabulary] == r.tolist()


def test_feature_extractor_numpy_fbank_path(monkeypatch) -> None:
    """Without torchaudio the extractor falls back to its numpy Kaldi fbank; that path works and
    agrees with torchaudio's kaldi.fbank (when torchaudio happens to be installed)."""
    import transformers.models.audio_spectrogram_transformer.feature_extraction_audio_spectrogram_transformer as fe_mod

    waves = _waves(2, 16000, seed=7)
    installed = fe_mod.ASTFeatureExtractor()(waves, sampling_rate=16000, return_tensors="np")["input_values"]
    monkeypatch.setattr(fe_mod, "is_speech_available", lambda: False)
    fe = fe_mod.ASTFeatureExtractor()
    assert hasattr(fe, "mel_filters")  # only built on the numpy path
    x = fe(waves, sampling_rate=16000, return_tensors="np")["input_values"]
    assert x.shape == (2, 1024, 128) and x.dtype == np.float32
    # 1 s = 98 Kaldi frames (25 ms / 10 ms, snip edges); later frames are zero fbank, then normalised
    np.testing.assert_allclose(x[:, 98:], 4.2677393 / (2 * 4.5689974), rtol=1e-6)
    assert np.abs(x[:, :98] - 4.2677393 / (2 * 4.5689974)).mean() > 0.1
    # both backends agree to ~4e-5 in normalised units here (float32 STFT vs torch's)
    np.testing.assert_allclose(x, installed, atol=2e-4)


def test_resampling_and_padding(tagger: ASTTagger) -> None:
    w44 = _waves(1, 44100, seed=2)[0]
    ours = tagger.predict([AudioWindow(w44, 44100)])
    ref = tagger.predict([AudioWindow(resample(w44, 44100, 16000, "torchaudio"), 16000)])
    np.testing.assert_array_equal(ours, ref)
    # the resampler is torchaudio's (transformers' audio pipelines, the authors' torchaudio loader),
    # bit for bit; scipy's polyphase filter would give other samples
    import torch
    import torchaudio

    (prepared,) = tagger.prepare([AudioWindow(w44, 44100)])
    want = torchaudio.functional.resample(torch.from_numpy(w44.copy())[None], 44100, 16000)[0].numpy()
    np.testing.assert_array_equal(prepared, want)
    assert np.abs(prepared - resample(w44, 44100, 16000, "polyphase")).max() > 1e-4

    short = _waves(1, 16000, seconds=0.3, seed=3)[0]
    (rep,) = tagger.prepare([AudioWindow(short, 16000)])
    assert len(rep) == 16000
    np.testing.assert_array_equal(rep[: len(short)], short)
    np.testing.assert_array_equal(rep[len(short) : 2 * len(short)], short)  # repeated, not silent
    zero = ASTTagger(ASTTagger.Config(pad_mode="zero"), tagger.runtime)
    (z,) = zero.prepare([AudioWindow(short, 16000)])
    assert len(z) == 16000 and not z[len(short) :].any()
    assert zero.model is tagger.model  # shared once per process
    # a window already >= pad_to is left alone
    (full,) = tagger.prepare([AudioWindow(_waves(1, 16000, 1.5)[0], 16000)])
    assert len(full) == 24000


def test_batching_does_not_change_results(runtime: Runtime) -> None:
    waves = [AudioWindow(w, 16000) for w in _waves(3, 16000, seed=4)]
    one = ASTTagger(ASTTagger.Config(batch_size=1), runtime).predict(waves)
    many = ASTTagger(ASTTagger.Config(batch_size=8), runtime).predict(waves)
    # different batch sizes may pick different CPU kernels: equal up to float32 rounding
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6)
    assert "batch_size" not in ASTTagger.Config(batch_size=3).output_params()


def test_missing_weights_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissing) as exc:
        ASTTagger(ASTTagger.Config(), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "MIT/ast-finetuned-audioset-10-10-0.4593" in msg and "avseg weights fetch ast" in msg


def test_wrong_explicit_checkpoint(tmp_path) -> None:
    bad = tmp_path / "not-a-checkpoint"
    bad.mkdir()
    with pytest.raises(WeightsMissing) as exc:
        ASTTagger(ASTTagger.Config(checkpoint=str(bad)), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"(looked in {bad})" in msg  # an explicit path that is wrong does not fall through


def test_local_checkpoint_loads(tmp_path, tagger: ASTTagger) -> None:
    """A saved (tiny) checkpoint folder loads through the non-tiny path and gives the same scores."""
    tagger.model.save_pretrained(tmp_path)
    loaded = ASTTagger(ASTTagger.Config(checkpoint=str(tmp_path)), Runtime(device="cpu"))
    assert loaded.weights_used() == {"ast-finetuned-audioset-10-10-0.4593": str(tmp_path)}
    assert loaded.vocabulary == TINY_LABELS
    waves = [AudioWindow(w, 16000) for w in _waves(2, 16000, seed=5)]
    np.testing.assert_array_equal(loaded.predict(waves), tagger.predict(waves))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ASTTagger.Config(pad_to=-1)
    with pytest.raises(ValueError):
        ASTTagger.Config(top_k=3)  # filtering is the filters' job
    with pytest.raises(ValueError):
        ASTTagger.Config(pad_mode="reflect")


def test_registry() -> None:
    from avseg.registry import load_registry

    reg = load_registry(plugins=[("ast", avseg_ast)], entry_points=False)
    assert reg.get("tagger", "ast") is ASTTagger


def test_import_is_light() -> None:
    code = "import sys, avseg_ast; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_paper_window_reaches_the_extractor_unpadded(tagger: ASTTagger) -> None:
    """pad_to: 0 (the paper presets): the 960 ms window is not padded as a waveform; AST's feature
    extractor zero-pads its fbank to 1024 frames, as it pads every clip (CMSF pads to 960 ms)."""
    (w,) = _waves(1, 16000, seconds=0.96, seed=5)
    paper = ASTTagger(ASTTagger.Config(pad_to=0.0), tagger.runtime)
    (prepared,) = paper.prepare([AudioWindow(w, 16000)])
    np.testing.assert_array_equal(prepared, w)  # 15360 samples, untouched
    x = paper.feature_extractor([prepared], sampling_rate=16000, return_tensors="np")["input_values"][0]
    n = 94  # kaldi frames of 15360 samples (25 ms window, 10 ms shift)
    zero = (0.0 - paper.feature_extractor.mean) / (paper.feature_extractor.std * 2)
    np.testing.assert_allclose(x[n:], zero, atol=1e-6)  # fbank rows past the window: zeros, normalised
    assert not np.allclose(x[n - 1], zero)
    # the default (repeat to 1.0 s) hears something else
    assert not np.array_equal(paper.predict([AudioWindow(w, 16000)]), tagger.predict([AudioWindow(w, 16000)]))


def test_features_equal_the_authors_fbank(tagger: ASTTagger) -> None:
    """The AST authors' dataloader (mean removal, ``kaldi.fbank`` htk_compat/hanning/128 bins/no
    dither, zero-padded to 1024 frames, normalised with AudioSet's mean/std x 2) gives the input the
    tagger's feature extractor gives. ImageBind ships that code verbatim as ``waveform2melspec``
    ("Based on YuanGongND/ast ... dataloader.py#L102"), so it serves as the reference."""
    requires("torchaudio")

    requires("imagebind", "pytorchvideo", import_it=False)  # it ships the AST authors' fbank code
    from avseg_imagebind.compat import load_imagebind

    waveform2melspec = load_imagebind()[1].waveform2melspec
    (w,) = _waves(1, 16000, seed=11)
    w = w + np.float32(0.02)  # a DC offset: the authors remove the mean first
    x = tagger.feature_extractor([tagger.prepare([AudioWindow(w, 16000)])[0]], sampling_rate=16000,
                                 return_tensors="np")["input_values"][0]
    ref = waveform2melspec(torch.from_numpy(w.copy())[None], 16000, 128, 1024)[0].T.numpy()
    ref = (ref - (-4.2677393)) / (4.5689974 * 2)
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-4)  # measured 2.8e-5 (mean removal vs per-frame DC)


# -- boundaries of the tagger's pre-processing (mutation testing, docs/testing.md) -------------------


def test_pad_to_bounds() -> None:
    assert ASTTagger.Config(pad_to=0.0).pad_to == 0.0
    assert ASTTagger.Config(pad_to=10.24).pad_to == 10.24  # the extractor's 1024 frames
    for bad in (-0.001, 10.25):
        with pytest.raises(ValueError):
            ASTTagger.Config(pad_to=bad)


def test_a_window_exactly_pad_to_long_is_not_padded(tagger: ASTTagger) -> None:
    (w,) = _waves(1, 16000, seconds=1.0, seed=8)
    (same,) = tagger.prepare([AudioWindow(w, 16000)])
    np.testing.assert_array_equal(same, w)
    (short,) = tagger.prepare([AudioWindow(w[:15999], 16000)])  # one sample short: repeated to 16000
    assert len(short) == 16000 and short[-1] == w[0]
    half = ASTTagger(ASTTagger.Config(pad_to=0.5), tagger.runtime)
    (p,) = half.prepare([AudioWindow(w[:4000], 16000)])
    assert len(p) == 8000


def test_no_windows_and_batch_boundaries(runtime: Runtime, tagger: ASTTagger) -> None:
    empty = tagger.predict([])
    assert empty.shape == (0, len(TINY_LABELS)) and empty.dtype == np.float32
    two = ASTTagger(ASTTagger.Config(batch_size=2), runtime)
    waves = [AudioWindow(w, 16000) for w in _waves(3, 16000, seed=9)]
    ref = tagger.predict(waves)  # one row per window, whatever the batch
    for n, passes in [(2, 1), (3, 2), (1, 1)]:
        before = runtime.counters["ast.forward_passes"]
        probs = two.predict(waves[:n])
        assert runtime.counters["ast.forward_passes"] - before == passes
        assert probs.shape == (n, len(TINY_LABELS)) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, ref[:n], rtol=1e-5, atol=1e-6)
    # each window's tags are its own row, best first
    tags = tagger.tag(waves)
    for t, p in zip(tags, ref, strict=True):
        assert t.names[0] == TINY_LABELS[int(np.argmax(p))]
        assert float(t.scores[0]) == float(p.max())


def test_a_checkpoint_preprocessor_config_is_used(tmp_path, tagger: ASTTagger) -> None:
    """A checkpoint folder's preprocessor_config.json (here: other normalisation numbers) is read,
    not replaced by the extractor's defaults."""
    from transformers import ASTFeatureExtractor

    tagger.model.save_pretrained(tmp_path)
    ASTFeatureExtractor(mean=-2.0, std=3.0).save_pretrained(tmp_path)
    loaded = ASTTagger(ASTTagger.Config(checkpoint=str(tmp_path)), Runtime(device="cpu"))
    assert (loaded.feature_extractor.mean, loaded.feature_extractor.std) == (-2.0, 3.0)
    waves = [AudioWindow(w, 16000) for w in _waves(1, 16000, seed=6)]
    assert not np.array_equal(loaded.predict(waves), tagger.predict(waves))
