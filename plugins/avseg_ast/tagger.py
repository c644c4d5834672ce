"""``ast``: the Audio Spectrogram Transformer (transformers) as an AudioSet tagger.

Each frame's (mono) audio window is resampled to 16 kHz with ``torchaudio.functional.resample``,
padded to ``pad_to`` seconds when it is shorter (by repeating it, or with zeros: ``pad_mode``),
and turned into features by
transformers' own ``ASTFeatureExtractor`` (Kaldi-style fbank, 128 mel bins, padded/truncated to
1024 frames = 10.24 s, normalised as ``(x - (-4.2677393)) / (2 * 4.5689974)``). Without
torchaudio the extractor uses its numpy fbank path (``transformers.audio_utils.spectrogram``
with Kaldi mel scale, pre-emphasis 0.97 and DC removal); nothing here re-implements it.
The scores are ``sigmoid(logits)``: independent per-class probabilities over the checkpoint's
``id2label`` (527 AudioSet classes). All windows of a clip go through the extractor and the model
together, ``batch_size`` windows per forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avseg.audio import Resampler, window_at
from avseg.audio_config import WindowConfig
from avseg.components import ComponentConfig, Tagger
from avseg.models import ModelComponent, ModelWeights, build_model, shared_model
from avseg.runtime import Runtime
from avseg.types import AudioWindow, FloatArray, Tags
from avseg.weights import WeightFile

SAMPLE_RATE = 16_000
#: How windows reach 16 kHz: ``torchaudio.functional.resample``, as transformers' audio pipelines
#: and the AST authors' torchaudio-based loader do (docs/plugins/ast.md).
RESAMPLER: Resampler = "torchaudio"

#: The default checkpoint (BSD-3-Clause). The repo's main branch holds config.json,
#: model.safetensors, preprocessor_config.json and pytorch_model.bin; we need the first two and
#: read the preprocessor config when it is there (its values are the extractor's defaults).
AST_WEIGHTS = {
    "audioset-10-10-0.4593": WeightFile(
        filename="ast-finetuned-audioset-10-10-0.4593",
        hf_repo="MIT/ast-finetuned-audioset-10-10-0.4593",
        hf_files=("config.json", "model.safetensors"),
        licence="BSD-3-Clause",
    )
}
DEFAULT_VARIANT = "audioset-10-10-0.4593"

#: The tiny variant's labels: real AudioSet display names (a subset of the 527).
TINY_LABELS = [
    "Speech", "Male speech, man speaking", "Female speech, woman speaking", "Baby laughter",
    "Dog", "Bark", "Cat", "Horse", "Music", "Guitar", "Piano", "Violin, fiddle", "Helicopter",
    "Car", "Siren", "Silence",
]  # fmt: skip

#: The tiny variant: ASTForAudioClassification at small width/depth, with the real input geometry
#: (128 mel bins, 1024 frames) so that the real, default ASTFeatureExtractor feeds it.
TINY_CONFIG: dict[str, Any] = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    num_mel_bins=128,
    max_length=1024,
    patch_size=16,
    frequency_stride=10,
    time_stride=10,
)


def random_init_config() -> Any:
    """The ASTConfig of MIT/ast-finetuned-audioset-10-10-0.4593 (``runtime.random_init``): ASTConfig's
    defaults are that architecture (768 wide, 12 layers, 128 mel bins x 1024 frames, strides 10),
    with AudioSet's 527 labels."""
    from transformers import ASTConfig

    from avseg.audioset import audioset_labels

    labels = audioset_labels()
    return ASTConfig(id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})


class ASTTagger(ModelComponent, Tagger):
    """AudioSet tags from the Audio Spectrogram Transformer (sigmoid probabilities, 527 classes).

    Short windows are padded to ``pad_to`` seconds (default 1.0) before feature extraction:
    repeated by default (``pad_mode="repeat"``), or zero-padded (``"zero"``). The extractor then
    pads the fbank itself to 1024 frames with zeros, exactly as for AST's training data. With
    ``pad_to: 0`` (the paper presets) the window reaches the extractor as cut, so a 960 ms window
    is zero-padded only by the extractor, as the paper pads "to a maximum of 960 msec".
    """

    name: ClassVar[str] = "ast"
    description: ClassVar[str] = (
        "Audio Spectrogram Transformer (transformers) AudioSet tagger, sigmoid scores"
    )
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers", "torchaudio")
    extra: ClassVar[str | None] = "ast"
    weights: ClassVar[dict[str, list[WeightFile]]] = {k: [v] for k, v in AST_WEIGHTS.items()}
    default_variant: ClassVar[str | None] = DEFAULT_VARIANT

    class Config(WindowConfig):
        checkpoint: str | None = Field(
            None, description="a local folder with config.json + model.safetensors (an AST checkpoint)"
        )
        pad_to: float = Field(
            1.0, ge=0.0, le=10.24, description="pad windows shorter than this (seconds); 0 = no waveform padding: "
            "the feature extractor zero-pads the fbank to 1024 frames (the paper presets)",
        )

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.import_requirements()
        weights = self.resolve_weights(DEFAULT_VARIANT, [AST_WEIGHTS[DEFAULT_VARIANT]], [self.config.checkpoint])
        self.model, self.feature_extractor = shared_model(runtime, "ast", DEFAULT_VARIANT, weights, self._build)
        id2label = self.model.config.id2label
        self._vocabulary = [str(id2label[i]) for i in range(len(id2label))]

    def _build(self) -> tuple[Any, Any]:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

        def seeded(cfg: Any) -> tuple[Any, Any]:
            import torch

            torch.manual_seed(self.runtime.seed)
            return ASTForAudioClassification(cfg), ASTFeatureExtractor(num_mel_bins=cfg.num_mel_bins,
                                                                       max_length=cfg.max_length)

        def pretrained(w: ModelWeights) -> tuple[Any, Any]:
            path = w.file(0)
            model = ASTForAudioClassification.from_pretrained(str(path), local_files_only=True)
            if (path / "preprocessor_config.json").is_file():
                return model, ASTFeatureExtractor.from_pretrained(str(path), local_files_only=True)
            return model, ASTFeatureExtractor(num_mel_bins=model.config.num_mel_bins,
                                              max_length=model.config.max_length)

        assert self.model_weights is not None
        model, fe = build_model(
            self.model_weights,
            tiny=lambda: seeded(ASTConfig(**TINY_CONFIG, id2label=dict(enumerate(TINY_LABELS)),
                                          label2id={n: i for i, n in enumerate(TINY_LABELS)})),
            random=lambda: seeded(random_init_config()),
            pretrained=pretrained,
        )
        model = model.to(device=self.runtime.torch_device(), dtype=self.runtime.torch_dtype()).eval()
        return model, fe

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    def prepare(self, windows: Sequence[AudioWindow]) -> list[FloatArray]:
        """The 16 kHz, padded waveforms the feature extractor gets."""
        return [window_at(w, SAMPLE_RATE, self.config.pad_to, self.config.pad_mode, resampler=RESAMPLER) for w in windows]

    def predict(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, C) sigmoid probabilities over :attr:`vocabulary`, one row per window."""
        import torch

        waves = self.prepare(windows)
        if not waves:
            return np.zeros((0, len(self._vocabulary)), np.float32)
        device, dtype = self.runtime.torch_device(), self.runtime.torch_dtype()
        bs = self.config.batch_size
        out: list[FloatArray] = []
        for i in range(0, len(waves), bs):
            chunk = waves[i : i + bs]
            feats = self.feature_extractor(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            x = feats["input_values"].to(device=device, dtype=dtype)
            with torch.inference_mode():
                logits = self.model(input_values=x).logits
            out.append(torch.sigmoid(logits).float().cpu().numpy())
            self.runtime.count("ast.forward_passes")
        self.runtime.count("ast.windows", len(waves))
        return np.concatenate(out, axis=0).astype(np.float32)

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        probs = self.predict(windows)
        return [Tags.from_scores(self._vocabulary, p) for p in probs]
