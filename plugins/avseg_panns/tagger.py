"""``panns``: PANNs CNN14 (``panns-inference``'s model code) as an AudioSet tagger.

The model class is ``Cnn14`` from the ``panns_inference`` package, but the package itself is
never imported: its ``__init__`` imports ``panns_inference.config``, which at import time
downloads the AudioSet label CSV into ``~/panns_data`` (with ``wget``). We load only its
``models.py`` (and the ``pytorch_utils.py`` it imports) from the installed package folder,
under a private package name, so nothing is downloaded and nothing is written to the home
directory. Labels come from avseg's shipped AudioSet list (same 527-class order as the
checkpoint), and the checkpoint goes through avseg's weights manager.

Input: each (mono) window resampled to 32 kHz with ``librosa.load``'s resampler (soxr HQ, as
upstream's inference code loads audio) and padded to ``pad_to`` seconds when shorter
(repeated by default, or zero-padded). Cnn14 computes its own log-mel spectrogram
(torchlibrosa: 1024-point STFT, hop 320, 64 mel bins, 50-14000 Hz). Scores are
``clipwise_output``, which is already a sigmoid.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avseg.audio import Resampler, window_at
from avseg.audio_config import WindowConfig
from avseg.components import ComponentConfig, Tagger
from avseg.errors import DependencyMissing
from avseg.models import ModelComponent, ModelWeights, build_model, load_checkpoint, shared_model
from avseg.runtime import Runtime
from avseg.types import AudioWindow, FloatArray, Tags
from avseg.weights import WeightFile

SAMPLE_RATE = 32_000
#: How windows reach the model's rate: ``librosa.load(sr=...)``'s resampler (soxr HQ), as the
#: upstream inference code does (see this plugin's docs page).
RESAMPLER: Resampler = "soxr_hq"

#: Cnn14's constructor arguments for the AudioSet checkpoint (classes_num is the vocabulary size).
CNN14_ARGS: dict[str, int] = dict(
    sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000
)

PANNS_WEIGHTS = {
    "cnn14": WeightFile(
        filename="Cnn14_mAP=0.431.pth",
        url="https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1",
        licence="MIT",
    )
}
DEFAULT_VARIANT = "cnn14"

#: The tiny variant's labels: real AudioSet display names. Cnn14 has no size knobs, so the tiny
#: variant is the real architecture with a 16-class head and seeded random weights.
TINY_LABELS = [
    "Speech", "Male speech, man speaking", "Female speech, woman speaking", "Baby laughter",
    "Dog", "Bark", "Cat", "Horse", "Music", "Guitar", "Piano", "Violin, fiddle", "Helicopter",
    "Car", "Siren", "Silence",
]  # fmt: skip

_UPSTREAM_PACKAGE = "_avseg_panns_inference"


def upstream_models() -> types.ModuleType:
    """``panns_inference/models.py`` imported without running ``panns_inference/__init__.py``.

    A synthetic package whose ``__path__`` is the installed ``panns_inference`` folder lets
    ``models.py`` resolve its relative import (``.pytorch_utils``) while ``config.py`` (the
    downloader) is never executed.
    """
    name = f"{_UPSTREAM_PACKAGE}.models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("panns_inference")  # locates the folder; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissing("tagger 'panns' needs panns_inference: pip install 'avseg[panns]'")
    if _UPSTREAM_PACKAGE not in sys.modules:
        pkg = types.ModuleType(_UPSTREAM_PACKAGE)
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__package__ = _UPSTREAM_PACKAGE
        sys.modules[_UPSTREAM_PACKAGE] = pkg
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise DependencyMissing(f"tagger 'panns' needs {missing}: pip install 'avseg[panns]'") from None


class PannsTagger(ModelComponent, Tagger):
    """AudioSet tags from PANNs CNN14 (sigmoid ``clipwise_output``, 527 classes)."""

    name: ClassVar[str] = "panns"
    description: ClassVar[str] = "PANNs CNN14 (panns-inference model code) AudioSet tagger, sigmoid scores"
    requires: ClassVar[tuple[str, ...]] = ("torch", "torchlibrosa", "panns_inference", "soxr")
    extra: ClassVar[str | None] = "panns"
    weights: ClassVar[dict[str, list[WeightFile]]] = {k: [v] for k, v in PANNS_WEIGHTS.items()}
    default_variant: ClassVar[str | None] = DEFAULT_VARIANT

    class Config(WindowConfig):
        checkpoint: str | None = Field(
            None, description="Cnn14_mAP=0.431.pth (or a .safetensors conversion of its 'model' dict)"
        )
        pad_to: float = Field(1.0, ge=0.05, le=60.0, description="pad windows shorter than this (seconds)")

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.import_requirements(("torch", "torchlibrosa"))
        upstream_models()  # fail early, with one line, when panns_inference is missing
        if self.weights_mode == "tiny":  # a 16-class head; random and pretrained: the real 527 classes
            self._vocabulary = list(TINY_LABELS)
        else:
            from avseg.audioset import audioset_labels

            self._vocabulary = audioset_labels()
        weights = self.resolve_weights(DEFAULT_VARIANT, [PANNS_WEIGHTS[DEFAULT_VARIANT]], [self.config.checkpoint])
        self.model = shared_model(runtime, "panns", DEFAULT_VARIANT, weights, self._build)

    def _build(self) -> Any:
        import torch

        from avseg.weights import load_state_dict

        models = upstream_models()

        def seeded() -> Any:  # tiny: a 16-class head; random: the real sizes
            torch.manual_seed(self.runtime.seed)
            return models.Cnn14(**CNN14_ARGS, classes_num=len(self._vocabulary))

        def pretrained(w: ModelWeights) -> Any:
            model = models.Cnn14(**CNN14_ARGS, classes_num=len(self._vocabulary))
            load_checkpoint(model, load_state_dict(w.file(0)), str(w.file(0)),
                            expected="a PANNs Cnn14 AudioSet checkpoint")
            return model

        assert self.model_weights is not None
        model = build_model(self.model_weights, tiny=seeded, random=seeded, pretrained=pretrained)
        return model.to(device=self.runtime.torch_device(), dtype=self.runtime.torch_dtype()).eval()

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    def prepare(self, windows: Sequence[AudioWindow]) -> list[FloatArray]:
        """The 32 kHz, padded waveforms Cnn14 gets."""
        return [window_at(w, SAMPLE_RATE, self.config.pad_to, self.config.pad_mode, resampler=RESAMPLER) for w in windows]

    def predict(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, C) ``clipwise_output`` over :attr:`vocabulary`, one row per window.

        Windows of equal length go through the model together (``batch_size`` at a time);
        windows are never padded to each other's length, which would change their scores.
        """
        import torch

        waves = self.prepare(windows)
        out = np.zeros((len(waves), len(self._vocabulary)), np.float32)
        if not waves:
            return out
        device, dtype = self.runtime.torch_device(), self.runtime.torch_dtype()
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(waves):
            groups.setdefault(len(w), []).append(i)
        bs = self.config.batch_size
        for idx in groups.values():
            for j in range(0, len(idx), bs):
                chunk = idx[j : j + bs]
                x = torch.from_numpy(np.stack([waves[i] for i in chunk])).to(device=device, dtype=dtype)
                with torch.inference_mode():
                    probs = self.model(x)["clipwise_output"]
                out[chunk] = probs.float().cpu().numpy()
                self.runtime.count("panns.forward_passes")
        self.runtime.count("panns.windows", len(waves))
        return out

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        return [Tags.from_scores(self._vocabulary, p) for p in self.predict(windows)]
