"""The ``clap`` tagger: tiny variant, parity with transformers' ClapModel, vocabularies, caching, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

requires("torch")
requires("transformers")

import avseg_clap  # noqa: E402
import torch  # noqa: E402
from avseg_clap.tagger import ClapTagger, resolve_vocabulary  # noqa: E402

from avseg.audio import resample  # noqa: E402
from avseg.errors import ConfigError, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from avseg.types import AudioWindow  # noqa: E402

VOCAB = ["Dog", "Violin, fiddle", "lawn_mowing", "Siren", "Speech"]


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def tagger(runtime: Runtime) -> ClapTagger:
    return ClapTagger(ClapTagger.Config(vocabulary=VOCAB), runtime)


def _waves(n: int, sr: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return [
        (0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))).astype(
            np.float32
        )
        for i in range(n)
    ]


def test_tiny_tags(tagger: ClapTagger) -> None:
    assert tagger.weights_used() == "tiny"
    assert tagger.vocabulary == VOCAB
    assert tagger.prompts()[2] == "This is a sound of lawn mowing."  # underscores read as spaces
    tags = tagger.tag([AudioWindow(w, 48000) for w in _waves(2, 48000)])
    assert len(tags) == 2
    for t in tags:
        assert sorted(t.names) == sorted(VOCAB)
        assert np.all(np.diff(t.scores) <= 0)
        assert float(t.scores.sum()) == pytest.approx(1.0, abs=1e-5)  # softmax over the vocabulary
    assert tagger.tag([]) == []


def test_parity_with_clap_model(tagger: ClapTagger) -> None:
    """Plugin logits == get_audio_features/get_text_features on the processor's outputs (same model)."""
    waves = _waves(3, 48000, seed=1)
    ours = tagger.logits([AudioWindow(w, 48000) for w in waves])
    model, proc = tagger.model, tagger.processor
    audio_in = proc.feature_extractor(
        waves, sampling_rate=48000, truncation="rand_trunc", padding="repeatpad", return_tensors="pt"
    )
    text_in = proc.tokenizer(tagger.prompts(), padding=True, return_tensors="pt")
    with torch.inference_mode():
        a = model.get_audio_features(**audio_in).pooler_output
        t = model.get_text_features(**text_in).pooler_output
        ref = (a @ t.t() * model.logit_scale_a.exp()).numpy()
        fwd = model(**text_in, **audio_in).logits_per_audio
    np.testing.assert_array_equal(ours, ref)
    # the model's forward normalises with x / ||x|| instead of F.normalize: equal to float32 rounding
    np.testing.assert_allclose(ours, fwd.numpy(), rtol=1e-5, atol=1e-5)
    probs = tagger.predict([AudioWindow(w, 48000) for w in waves])
    np.testing.assert_allclose(probs, torch.from_numpy(ref).softmax(dim=-1).numpy(), rtol=1e-6, atol=1e-7)


def test_sigmoid_activation(runtime: Runtime, tagger: ClapTagger) -> None:
    sig = ClapTagger(ClapTagger.Config(vocabulary=VOCAB, activation="sigmoid"), runtime)
    assert sig.model is tagger.model  # one model per process
    windows = [AudioWindow(w, 48000) for w in _waves(2, 48000, seed=2)]
    logits = tagger.logits(windows)
    np.testing.assert_allclose(sig.predict(windows), 1 / (1 + np.exp(-logits.astype(np.float64))), rtol=1e-5)


def test_repeatpad_no_random_crop(tagger: ClapTagger) -> None:
    """A 1 s window is repeated 10x and zero-padded to 10 s by the extractor: deterministic."""
    (w,) = _waves(1, 48000, seed=3)
    fe = tagger.processor.feature_extractor
    got = tagger.audio_inputs([AudioWindow(w, 48000)])
    tiled = np.pad(np.tile(w, 10), (0, fe.nb_max_samples - 10 * len(w)))
    want = fe([tiled], sampling_rate=48000, truncation="rand_trunc", return_tensors="pt")
    assert not got["is_longer"].any()
    torch.testing.assert_close(got["input_features"], want["input_features"], rtol=0, atol=0)
    # a window longer than 10 s is cut to its first 10 s, never cropped at random
    (long,) = _waves(1, 48000, seconds=10.5, seed=4)
    x1 = tagger.audio_inputs([AudioWindow(long, 48000)])["input_features"]
    x2 = tagger.audio_inputs([AudioWindow(long, 48000)])["input_features"]
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)


def test_resampling_and_padding(tagger: ClapTagger) -> None:
    (w16,) = _waves(1, 16000, seed=5)
    np.testing.assert_array_equal(
        tagger.logits([AudioWindow(w16, 16000)]),
        tagger.logits([AudioWindow(resample(w16, 16000, 48000, "soxr_hq"), 48000)]),
    )
    # the resampler is librosa.load's (LAION-CLAP's loader), bit for bit; scipy's would differ
    librosa = requires("librosa")
    want = librosa.resample(w16, orig_sr=16000, target_sr=48000)
    torch.testing.assert_close(
        tagger.audio_inputs([AudioWindow(w16, 16000)])["input_features"],
        tagger.audio_inputs([AudioWindow(want, 48000)])["input_features"], rtol=0, atol=0,
    )
    other = tagger.audio_inputs([AudioWindow(resample(w16, 16000, 48000, "polyphase"), 48000)])["input_features"]
    assert float((other - tagger.audio_inputs([AudioWindow(want, 48000)])["input_features"]).abs().max()) > 1e-3
    (short,) = _waves(1, 48000, seconds=0.25, seed=6)
    repeated = tagger.audio_inputs([AudioWindow(short, 48000)])["input_features"]
    want = tagger.audio_inputs([AudioWindow(np.tile(short, 4), 48000)])["input_features"]
    torch.testing.assert_close(repeated, want, rtol=0, atol=0)


def test_text_embeddings_computed_once(runtime: Runtime) -> None:
    vocab = ["Cat", "Horse", "Piano"]
    windows = [AudioWindow(w, 48000) for w in _waves(1, 48000, seed=7)]
    before = runtime.counters["clap.text_embeddings"]
    a = ClapTagger(ClapTagger.Config(vocabulary=vocab), runtime)
    a.tag(windows)
    a.tag(windows)
    assert runtime.counters["clap.text_embeddings"] - before == 3
    b = ClapTagger(ClapTagger.Config(vocabulary=vocab, activation="sigmoid"), runtime)
    b.tag(windows)  # same model, template and vocabulary: memoised
    assert runtime.counters["clap.text_embeddings"] - before == 3
    c = ClapTagger(ClapTagger.Config(vocabulary=vocab, prompt_template="the sound of {}"), runtime)
    c.tag(windows)  # a new template is a new vocabulary of prompts
    assert runtime.counters["clap.text_embeddings"] - before == 6
    assert not np.array_equal(a.text_embeddings(), c.text_embeddings())


def test_vocabularies(tmp_path) -> None:
    audioset = resolve_vocabulary("audioset")
    assert len(audioset) == 527 and audioset[0] == "Speech" and "Violin, fiddle" in audioset
    s4 = resolve_vocabulary("avsbench-s4")
    assert len(s4) == 23 and "dog_barking" in s4
    f = tmp_path / "labels.txt"
    f.write_text("Dog\n\n  Cat  \nChainsaw\n", encoding="utf-8")
    assert resolve_vocabulary(str(f)) == ["Dog", "Cat", "Chainsaw"]
    assert resolve_vocabulary(["a", "b"]) == ["a", "b"]
    with pytest.raises(ConfigError, match="neither"):
        resolve_vocabulary(str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match="repeats"):
        resolve_vocabulary(["a", "a"])


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ClapTagger.Config(prompt_template="no slot")
    with pytest.raises(ValueError):
        ClapTagger.Config(activation="relu")
    with pytest.raises(ValueError):
        ClapTagger.Config(vocabulary=[])
    params = ClapTagger.Config().output_params()
    assert "batch_size" not in params and "text_batch_size" not in params
    assert params["vocabulary"] == "audioset"


def test_missing_weights_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissing) as exc:
        ClapTagger(ClapTagger.Config(vocabulary=VOCAB), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg and "laion/clap-htsat-unfused" in msg and "avseg weights fetch clap" in msg


def test_wrong_explicit_checkpoint(tmp_path) -> None:
    with pytest.raises(WeightsMissing) as exc:
        ClapTagger(ClapTagger.Config(vocabulary=VOCAB, checkpoint=str(tmp_path)), Runtime(device="cpu"))
    msg = str(exc.value)
    assert "\n" not in msg and f"(looked in {tmp_path})" in msg


def test_local_checkpoint_loads(tmp_path, tagger: ClapTagger) -> None:
    """A checkpoint folder laid out like laion/clap-htsat-unfused (pytorch_model.bin) loads and agrees."""
    tagger.model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(tagger.model.state_dict(), tmp_path / "pytorch_model.bin")
    tagger.processor.save_pretrained(tmp_path)
    tagger.processor.feature_extractor.save_pretrained(tmp_path)  # preprocessor_config.json
    loaded = ClapTagger(ClapTagger.Config(vocabulary=VOCAB, checkpoint=str(tmp_path)), Runtime(device="cpu"))
    assert loaded.weights_used() == {"clap-htsat-unfused": str(tmp_path)}
    windows = [AudioWindow(w, 48000) for w in _waves(2, 48000, seed=8)]
    np.testing.assert_array_equal(loaded.logits(windows), tagger.logits(windows))


def test_registry() -> None:
    from avseg.registry import load_registry

    reg = load_registry(plugins=[("clap", avseg_clap)], entry_points=False)
    assert reg.get("tagger", "clap") is ClapTagger


def test_import_is_light() -> None:
    code = "import sys, avseg_clap; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_features_equal_the_authors_htsat_front_end(tagger: ClapTagger) -> None:
    """LAION-CLAP's HTSAT computes its log-mel inside the model with torchlibrosa (audio_cfg: 64 mel
    bins 50-14000 Hz, window 1024, hop 480): the tagger's transformers features equal that front end
    on the same (repeat-padded) waveform; transformers' default extractor (fmin 0) does not."""
    requires("torchlibrosa")
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram
    from transformers import ClapFeatureExtractor

    (w,) = _waves(1, 48000, seed=9)
    got = tagger.audio_inputs([AudioWindow(w, 48000)])["input_features"][0, 0].numpy()
    full = np.tile(w, 10)  # repeatpad: whole copies up to 10 s
    spec = Spectrogram(n_fft=1024, hop_length=480, win_length=1024, window="hann", center=True, pad_mode="reflect",
                       freeze_parameters=True)
    mel = LogmelFilterBank(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10, top_db=None,
                           freeze_parameters=True)
    with torch.no_grad():
        ref = mel(spec(torch.from_numpy(full)[None]))[0, 0].numpy()
    assert got.shape == ref.shape == (1001, 64)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)  # dB; measured 1.3e-4
    default = ClapFeatureExtractor()([full], sampling_rate=48000, truncation="rand_trunc", padding="repeatpad",
                                     return_tensors="np")["input_features"][0, 0]
    assert np.abs(default - ref).max() > 1.0
