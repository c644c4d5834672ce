"""``clap``: zero-shot audio tagging with CLAP (transformers' ``ClapModel`` + ``ClapProcessor``).

Every window is scored against a text vocabulary: each label ``l`` becomes the prompt
``prompt_template.format(l)`` (underscores in ``l`` read as spaces, so ``dog_barking`` is
prompted as "dog barking" but reported as ``dog_barking``). The score matrix is

    logits = exp(logit_scale_a) * normalize(audio_embeds) @ normalize(text_embeds).T

(exactly ``ClapModel``'s ``logits_per_audio``), turned into probabilities by a softmax over the
vocabulary (``activation="softmax"``, default) or an element-wise sigmoid (``"sigmoid"``).

Text embeddings are computed once per (model, template, vocabulary) and memoised through
:meth:`avseg.runtime.Runtime.memo` (namespace ``clap.text``; the ``clap.text_embeddings`` counter
records how many prompts were encoded).

Audio: each (mono) window is resampled to 48 kHz with ``librosa.load``'s resampler (soxr HQ, as
LAION-CLAP's loader), padded to ``pad_to`` seconds when shorter (repeated
by default, or zero-padded), and given to ``ClapFeatureExtractor`` with
``truncation="rand_trunc", padding="repeatpad"`` for the unfused checkpoints. A window shorter
than the extractor's 10 s is repeated (whole copies) and zero-padded to 10 s: no random crop
happens. Longer windows are cut to their first 10 s here, so that the extractor's random crop
never runs and the scores stay deterministic. For fused checkpoints (``enable_fusion``) the
extractor marks one random short input as "longer"; we reset ``is_longer`` to its true value
(all False for windows up to 10 s) for the same reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from avseg import vocab
from avseg.audio import Resampler, window_at
from avseg.audio_config import WindowConfig
from avseg.audioset import audioset_labels
from avseg.components import ComponentConfig, Tagger
from avseg.data import s4_categories
from avseg.errors import ConfigError
from avseg.models import ModelComponent, ModelWeights, build_model, share_key, shared_model
from avseg.runtime import Runtime
from avseg.types import AudioWindow, FloatArray, Tags
from avseg.weights import WeightFile

SAMPLE_RATE = 48_000
#: How windows reach the model's rate: ``librosa.load(sr=...)``'s resampler (soxr HQ), as the
#: upstream inference code does (see this plugin's docs page).
RESAMPLER: Resampler = "soxr_hq"
#: LAION-CLAP's HTSAT front end (its ``audio_cfg``: 64 mel bins 50-14000 Hz, 1024-point window,
#: hop 480 at 48 kHz). transformers' ``ClapFeatureExtractor()`` defaults to ``frequency_min=0``,
#: 19 dB away from it; with these values it equals the authors' torchlibrosa front end to 1e-4 dB
#: (docs/plugins/clap.md). Checkpoint folders bring their own ``preprocessor_config.json``.
HTSAT_MEL: dict[str, Any] = dict(frequency_min=50, frequency_max=14000)

#: laion/clap-htsat-unfused (Apache-2.0). Its main branch holds pytorch_model.bin (no safetensors),
#: config.json, preprocessor_config.json and the RoBERTa tokenizer (tokenizer.json, vocab.json, merges.txt).
CLAP_WEIGHTS = {
    "htsat-unfused": WeightFile(
        filename="clap-htsat-unfused",
        hf_repo="laion/clap-htsat-unfused",
        hf_files=("config.json", "pytorch_model.bin", "preprocessor_config.json", "tokenizer.json"),
        licence="Apache-2.0",
    )
}
DEFAULT_VARIANT = "htsat-unfused"

#: The vocabulary names ``vocabulary`` accepts (case-insensitive).
NAMED_VOCABULARIES: vocab.NamedVocabularies = {
    "audioset": audioset_labels,
    "avsbench-s4": s4_categories,
    "s4": s4_categories,
}

#: Tiny variant: ClapModel at small sizes. The audio side keeps the real input geometry (64 mel
#: bins, spec_size 256) so that the real, default ClapFeatureExtractor feeds it.
TINY_TEXT_CONFIG: dict[str, Any] = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=130,  # RoBERTa positions start at padding_idx + 1 = 2
    projection_dim=16,
)
TINY_AUDIO_CONFIG: dict[str, Any] = dict(
    hidden_size=64,  # = patch_embeds_hidden_size * 2 ** (len(depths) - 1)
    patch_embeds_hidden_size=8,
    depths=[1, 1, 1, 1],
    num_attention_heads=[1, 1, 2, 2],
    window_size=8,
    spec_size=256,
    num_mel_bins=64,
    projection_dim=16,
    enable_fusion=False,
)
TINY_MAX_TOKENS = 128


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-level alphabet (the 256 symbols a byte-level BPE starts from)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_tokenizer() -> Any:
    """A RoBERTa tokenizer (the class CLAP checkpoints use) built offline, in memory.

    Byte-level BPE with RoBERTa's special-token ids (<s>=0, <pad>=1, </s>=2, <unk>=3), the 256
    byte symbols and no merges: every string tokenises (one token per byte), nothing is downloaded
    and no file is written.
    """
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in _bytes_to_unicode():
        vocab[ch] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=TINY_MAX_TOKENS)


def random_init_config() -> Any:
    """laion/clap-htsat-unfused's architecture (``runtime.random_init``): ClapConfig's defaults are
    that model (HTSAT audio tower 96->768 wide, depths 2-2-6-2, no fusion; RoBERTa-base text
    tower, 50265 tokens; 512-d projections)."""
    from transformers import ClapConfig

    return ClapConfig()


def resolve_vocabulary(spec: str | list[str]) -> list[str]:
    """``"audioset"``, ``"avsbench-s4"``, a text file (one label per line) or a list -> label names."""
    names = vocab.resolve_vocabulary(spec, NAMED_VOCABULARIES, "tagger 'clap'")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"tagger 'clap': vocabulary repeats {', '.join(repr(d) for d in dup[:5])}")
    return names


class ClapTagger(ModelComponent, Tagger):
    """Zero-shot tags from CLAP: audio vs. prompts for any vocabulary (softmax or sigmoid scores)."""

    name: ClassVar[str] = "clap"
    description: ClassVar[str] = "CLAP (transformers) zero-shot tagger over any label vocabulary"
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers", "soxr")
    extra: ClassVar[str | None] = "clap"
    weights: ClassVar[dict[str, list[WeightFile]]] = {k: [v] for k, v in CLAP_WEIGHTS.items()}
    default_variant: ClassVar[str | None] = DEFAULT_VARIANT

    class Config(WindowConfig):
        checkpoint: str | None = Field(
            None, description="a local folder holding a transformers CLAP checkpoint"
        )
        vocabulary: str | list[str] = Field(
            "audioset",
            description="'audioset', 'avsbench-s4', a text file with one label per line, or a list",
        )
        prompt_template: str = Field("This is a sound of {}.", description="text prompt; '{}' is the label")
        activation: Literal["softmax", "sigmoid"] = "softmax"
        pad_to: float = Field(1.0, ge=0.0, le=10.0, description="pad windows shorter than this (seconds)")
        text_batch_size: int = Field(256, ge=1, json_schema_extra={"affects_output": False})

        @field_validator("prompt_template")
        @classmethod
        def _one_slot(cls, v: str) -> str:
            if v.count("{}") != 1:
                raise ValueError("prompt_template must contain '{}' exactly once")
            return v

        @field_validator("vocabulary")
        @classmethod
        def _non_empty(cls, v: str | list[str]) -> str | list[str]:
            if isinstance(v, list) and not [s for s in v if str(s).strip()]:
                raise ValueError("vocabulary list is empty")
            if isinstance(v, str) and not v.strip():
                raise ValueError("vocabulary is empty")
            return v

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.import_requirements()
        self._vocabulary = resolve_vocabulary(self.config.vocabulary)
        weights = self.resolve_weights(DEFAULT_VARIANT, [CLAP_WEIGHTS[DEFAULT_VARIANT]], [self.config.checkpoint])
        self._model_tag = share_key("clap", DEFAULT_VARIANT, weights, runtime)
        self.model, self.processor = shared_model(runtime, "clap", DEFAULT_VARIANT, weights, self._build)
        self._text_embeds: FloatArray | None = None

    def _build(self) -> tuple[Any, Any]:
        import torch
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

        def seeded(tiny: bool) -> tuple[Any, Any]:
            tok = tiny_tokenizer()
            if tiny:
                cfg = ClapConfig(
                    text_config={**TINY_TEXT_CONFIG, "vocab_size": len(tok)},
                    audio_config=TINY_AUDIO_CONFIG,
                    projection_dim=16,
                )
            else:  # the offline byte-level tokenizer's ids are valid in RoBERTa's 50265-token vocabulary
                cfg = random_init_config()
            torch.manual_seed(self.runtime.seed)
            return ClapModel(cfg), ClapProcessor(feature_extractor=ClapFeatureExtractor(**HTSAT_MEL), tokenizer=tok)

        def pretrained(w: ModelWeights) -> tuple[Any, Any]:
            return (ClapModel.from_pretrained(str(w.file(0)), local_files_only=True),
                    ClapProcessor.from_pretrained(str(w.file(0)), local_files_only=True))

        assert self.model_weights is not None
        model, processor = build_model(self.model_weights, tiny=lambda: seeded(True), random=lambda: seeded(False),
                                       pretrained=pretrained)
        model = model.to(device=self.runtime.torch_device(), dtype=self.runtime.torch_dtype()).eval()
        return model, processor

    # ------------------------------------------------------------------ interface

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    def prompts(self) -> list[str]:
        return [self.config.prompt_template.format(n.replace("_", " ")) for n in self._vocabulary]

    @property
    def fusion(self) -> bool:
        return bool(getattr(self.model.config.audio_config, "enable_fusion", False))

    def audio_inputs(self, windows: Sequence[AudioWindow]) -> dict[str, Any]:
        """The processor's audio inputs for ``windows`` (48 kHz, padded, at most 10 s each)."""
        fe = self.processor.feature_extractor
        cfg = self.config
        waves = [window_at(w, SAMPLE_RATE, cfg.pad_to, cfg.pad_mode, min_samples=1, resampler=RESAMPLER) for w in windows]
        waves = [w[: fe.nb_max_samples] for w in waves]  # never let the extractor crop at random
        inputs = fe(
            waves,
            sampling_rate=SAMPLE_RATE,
            truncation="fusion" if self.fusion else "rand_trunc",
            padding="repeatpad",
            return_tensors="pt",
        )
        if self.fusion:  # the extractor flags one random short input as "longer"; none is
            inputs["is_longer"] = inputs["is_longer"].new_zeros(inputs["is_longer"].shape)
        return dict(inputs)

    def text_embeddings(self) -> FloatArray:
        """(V, D) L2-normalised text embeddings of :meth:`prompts`, computed once per vocabulary."""
        if self._text_embeds is not None:
            return self._text_embeds
        prompts = self.prompts()
        h = hashlib.blake2b(digest_size=16)
        h.update(self._model_tag.encode())
        h.update(b"\0")
        h.update("\n".join(prompts).encode("utf-8"))

        def compute() -> dict[str, np.ndarray]:
            import torch

            device = self.runtime.torch_device()
            tok = self.processor.tokenizer
            out: list[np.ndarray] = []
            step = self.config.text_batch_size
            for i in range(0, len(prompts), step):
                enc = tok(prompts[i : i + step], padding=True, truncation=True, return_tensors="pt")
                with torch.inference_mode():
                    emb = self.model.get_text_features(
                        input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)
                    ).pooler_output
                out.append(emb.float().cpu().numpy())
            self.runtime.count("clap.text_embeddings", len(prompts))
            return {"text_embeds": np.concatenate(out, axis=0).astype(np.float32)}

        self._text_embeds = self.runtime.memo("clap.text", h.hexdigest(), compute)["text_embeds"]
        return self._text_embeds

    def _logits(self, windows: Sequence[AudioWindow]) -> Any:
        import torch

        if not windows:
            return torch.zeros((0, len(self._vocabulary)), dtype=torch.float32)
        device, dtype = self.runtime.torch_device(), self.runtime.torch_dtype()
        text = torch.from_numpy(self.text_embeddings()).to(device=device, dtype=dtype)
        out = []
        bs = self.config.batch_size
        for i in range(0, len(windows), bs):
            inputs = self.audio_inputs(windows[i : i + bs])
            with torch.inference_mode():
                audio = self.model.get_audio_features(
                    input_features=inputs["input_features"].to(device=device, dtype=dtype),
                    is_longer=inputs["is_longer"].to(device),
                ).pooler_output
                logits = torch.matmul(audio, text.t()) * self.model.logit_scale_a.exp()
            out.append(logits.float().cpu())
            self.runtime.count("clap.audio_forward_passes")
        self.runtime.count("clap.windows", len(windows))
        return torch.cat(out, dim=0)

    def logits(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, V) ``exp(logit_scale_a) * cos(audio, text)``: ClapModel's ``logits_per_audio``."""
        return np.asarray(self._logits(windows).numpy(), dtype=np.float32)

    def predict(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, V) probabilities over :attr:`vocabulary` (softmax over it, or sigmoid per label)."""
        import torch

        logits = self._logits(windows)
        probs = (
            torch.sigmoid(logits) if self.config.activation == "sigmoid" else torch.softmax(logits, dim=-1)
        )
        return np.asarray(probs.numpy(), dtype=np.float32)

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        return [Tags.from_scores(self._vocabulary, p) for p in self.predict(windows)]
