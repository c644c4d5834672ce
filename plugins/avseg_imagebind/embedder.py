"""``imagebind``: ImageBind (huge) audio-window and region embeddings in one space.

Upstream: ``imagebind-unofficial==0.1.1`` (Meta's ImageBind code packaged for PyPI), checkpoint
``imagebind_huge.pth`` (CC-BY-NC-4.0). The model is ImageBind's own ``ImageBindModel``; the
inputs are made by ImageBind's own transforms, applied to arrays in memory instead of files:

- **regions** (as in the CMSF authors' OWOD-BIND code, made by :mod:`avseg.regions`): the frame
  with everything outside the region's mask Gaussian-blurred (21x21, ``cv2.GaussianBlur``; or
  greyed, blacked out, or kept), cropped to the region's box (rounded like ``PIL.Image.crop``;
  clamped to the frame, at least 1 pixel); ``regions: box`` ignores masks, ``masked`` needs them;
  then ``Resize(224, bicubic) -> CenterCrop(224) -> ToTensor -> Normalize(CLIP mean/std)``, the
  transform of ``imagebind.data.load_and_transform_vision_data``. Without a mask the crop is the box.
- **audio**: ``imagebind.data.load_and_transform_audio_data`` minus the file read: the window
  (mono by the pipeline's ``audio.channels``; upstream's ``kaldi.fbank`` reads channel 0, i.e.
  ``first``) resampled to 16 kHz with ``torchaudio.functional.resample`` through
  :func:`avseg.audio.window_at`, 3 clips of 2 s from pytorchvideo's
  ``ConstantClipsPerVideoSampler`` (via ``imagebind.data.get_clip_timepoints``), Kaldi fbank with
  128 mel bins padded/cut to 204 frames, normalised with mean -4.268 / std 9.138. See
  ``pad_mode`` for what happens to 1-s windows.

Outputs are what ``ImageBindModel`` returns: vision embeddings are L2-normalised; audio
embeddings are L2-normalised then multiplied by ImageBind's fixed audio logit scale (20), per
clip, and averaged over the 3 clips. ``vision @ audio.T`` is therefore ImageBind's logit, as in
the authors' ``softmax(vision @ audio.T, dim=0)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from avseg.audio import window_at
from avseg.components import ComponentConfig, Embedder
from avseg.errors import InputError
from avseg.models import ModelComponent, ModelWeights, shared_model
from avseg.models import build_model as dispatch
from avseg.regions import blur_frame, box_pixels, region_crop, region_crops
from avseg.runtime import Runtime
from avseg.types import AudioWindow, FloatArray, Image, Proposals
from avseg.weights import WeightFile, load_state_dict

IMAGEBIND_HUGE = WeightFile(
    filename="imagebind_huge.pth",
    url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
    licence="CC-BY-NC-4.0",
)
DEFAULT_VARIANT = "huge"

# imagebind.data.load_and_transform_audio_data's defaults
SAMPLE_RATE = 16_000
CLIP_DURATION = 2  # seconds
CLIPS_PER_WINDOW = 3
NUM_MEL_BINS = 128
TARGET_LENGTH = 204
AUDIO_MEAN = -4.268
AUDIO_STD = 9.138
MIN_SAMPLES = 400  # one 25 ms Kaldi frame at 16 kHz: fbank yields nothing below this

# imagebind.data.load_and_transform_vision_data's transform
IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def waveform2melspec(waveform: Any, sample_rate: int, num_mel_bins: int, target_length: int) -> Any:
    """``imagebind.data.waveform2melspec`` without its ``logging.warning`` for clips far from
    ``target_length`` (1-s windows always trigger it, and ``logging.warning`` on the root logger
    would configure logging for the whole process). Same operations in the same order,
    including the in-place mean subtraction on the (view) ``waveform``: tested equal."""
    import torch
    import torchaudio

    waveform -= waveform.mean()
    fbank = torchaudio.compliance.kaldi.fbank(
        waveform,
        htk_compat=True,
        sample_frequency=sample_rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=num_mel_bins,
        dither=0.0,
        frame_length=25,
        frame_shift=10,
    )
    fbank = fbank.transpose(0, 1)
    p = target_length - fbank.size(1)
    if p > 0:
        fbank = torch.nn.functional.pad(fbank, (0, p), mode="constant", value=0)
    elif p < 0:
        fbank = fbank[:, 0:target_length]
    return fbank.unsqueeze(0)


class ImageBindConfig(ComponentConfig):
    variant: Literal["huge"] = Field("huge", description="the ImageBind checkpoint (only 'huge' is released)")
    checkpoint: str | None = Field(None, description="a local imagebind_huge.pth (a plain state dict)")
    regions: Literal["auto", "box", "masked"] = Field(
        "auto",
        description=(
            "box: plain box crops; masked: crops with the background outside the mask replaced (needs "
            "masks: a segmenter before the embedder); auto: masked when the proposals carry masks"
        ),
    )
    background: Literal["blur", "grey", "black", "keep"] = Field(
        "blur", description="what replaces the outside of a region's mask inside its box crop (avseg.regions)"
    )
    blur_kernel: int = Field(21, ge=1, description="Gaussian kernel size (odd) for background 'blur'")
    pad_mode: Literal["upstream", "repeat", "zero"] = Field(
        "upstream",
        description=(
            "windows shorter than ImageBind's 2-s clips: 'upstream' = as ImageBind treats a short "
            "file (the fbank is zero-padded to 204 frames); 'repeat' = tile the waveform to 2 s; "
            "'zero' = append silence to 2 s"
        ),
    )
    batch_size: int = Field(
        512,
        ge=1,
        description="crops (or audio windows) per forward pass",
        json_schema_extra={"affects_output": False},
    )

    @field_validator("blur_kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"blur_kernel must be odd (cv2.GaussianBlur), got {v}")
        return v


def load_checkpoint(model: Any, path: Path) -> None:
    """Load ``path`` (a plain state dict; pickled code is refused) into ``model``, strictly, with a
    one-line error when it does not fit."""
    from avseg.models import load_checkpoint as load_strict

    load_strict(model, load_state_dict(path), str(path), expected="an ImageBind checkpoint")


class ImageBindEmbedder(ModelComponent, Embedder):
    """ImageBind audio and region embeddings; see the module docstring for the exact inputs."""

    name: ClassVar[str] = "imagebind"
    description: ClassVar[str] = (
        "ImageBind (huge): audio windows and masked region crops in one embedding space"
    )
    Config = ImageBindConfig
    requires: ClassVar[tuple[str, ...]] = (
        "torch", "torchvision", "torchaudio", "imagebind", "pytorchvideo", "timm", "einops", "ftfy", "regex", "iopath",
    )  # fmt: skip
    extra: ClassVar[str | None] = "imagebind"
    weights: ClassVar[dict[str, list[WeightFile]]] = {DEFAULT_VARIANT: [IMAGEBIND_HUGE]}
    default_variant: ClassVar[str | None] = DEFAULT_VARIANT

    config: ImageBindConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from avseg_imagebind.compat import load_imagebind

        self._ib_model, self._ib_data = load_imagebind()
        weights = self.resolve_weights(self.config.variant, [IMAGEBIND_HUGE], [self.config.checkpoint])
        self.model = shared_model(runtime, "imagebind", self.config.variant, weights, self._build)
        self.embed_dim = int(self.model.modality_heads["vision"][-1].out_features)

        from torchvision import transforms

        # imagebind.data.load_and_transform_vision_data's transform, verbatim.
        self._vision_transform = transforms.Compose(
            [
                transforms.Resize(IMAGE_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.CenterCrop(IMAGE_SIZE),
                transforms.ToTensor(),
                transforms.Normalize(mean=CLIP_MEAN, std=CLIP_STD),
            ]
        )
        self._audio_normalize = transforms.Normalize(mean=AUDIO_MEAN, std=AUDIO_STD)

    def _build(self) -> Any:
        from avseg_imagebind.tiny import TINY_KWARGS, build_huge, build_model

        def pretrained(w: ModelWeights) -> Any:
            model = self._ib_model.imagebind_huge(pretrained=False)  # architecture only, no download
            load_checkpoint(model, w.file(0))
            return model

        assert self.model_weights is not None
        model = dispatch(self.model_weights, tiny=lambda: build_model(self._ib_model, TINY_KWARGS, seed=self.runtime.seed),
                         random=lambda: build_huge(self._ib_model, seed=self.runtime.seed), pretrained=pretrained)
        return model.to(device=self.runtime.torch_device(), dtype=self.runtime.torch_dtype()).eval()

    # ----------------------------------------------------------------- audio
    def _waveform_16k(self, window: AudioWindow) -> Any:
        """(1, T) float32 tensor at 16 kHz, padded per ``pad_mode``, from the shared audio
        preparation with upstream's resampler (``torchaudio.functional.resample``; a fresh tensor:
        the in-place mean subtraction below never touches the caller's array)."""
        import torch

        pad_to = 0.0 if self.config.pad_mode == "upstream" else float(CLIP_DURATION)
        pad_mode = "zero" if self.config.pad_mode == "upstream" else self.config.pad_mode
        wave = window_at(window, SAMPLE_RATE, pad_to, pad_mode, min_samples=MIN_SAMPLES, resampler="torchaudio")
        return torch.from_numpy(np.array(wave, dtype=np.float32, copy=True).reshape(1, -1)).contiguous()

    def audio_inputs(self, windows: Sequence[AudioWindow]) -> Any:
        """(N, 3, 1, 128, 204): what ``load_and_transform_audio_data`` makes of each window."""
        import torch

        data = self._ib_data
        out = []
        for window in windows:
            wave = self._waveform_16k(window)
            sampler = data.ConstantClipsPerVideoSampler(
                clip_duration=CLIP_DURATION, clips_per_video=CLIPS_PER_WINDOW
            )
            clips = []
            for start, end in data.get_clip_timepoints(sampler, wave.size(1) / SAMPLE_RATE):
                clip = wave[:, int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
                clips.append(
                    self._audio_normalize(waveform2melspec(clip, SAMPLE_RATE, NUM_MEL_BINS, TARGET_LENGTH))
                )
            out.append(torch.stack(clips, dim=0))
        if not out:
            return torch.zeros((0, CLIPS_PER_WINDOW, 1, NUM_MEL_BINS, TARGET_LENGTH))
        return torch.stack(out, dim=0)

    def embed_audio(self, windows: Sequence[AudioWindow]) -> FloatArray:
        """(N, D): ImageBind's audio output per window (normalised x 20, averaged over 3 clips)."""
        x = self.audio_inputs(windows)
        self.runtime.count("imagebind.audio_windows", len(windows))
        return self._forward("audio", x)

    # ---------------------------------------------------------------- vision
    def region_crops(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[list[Image]]:
        """Per frame, the uint8 RGB crop of each proposal that the vision transform gets."""
        if len(frames) != len(proposals):
            raise InputError(f"embedder 'imagebind': {len(frames)} frames but {len(proposals)} proposal sets")
        cfg = self.config
        out: list[list[Image]] = []
        for frame, props in zip(frames, proposals, strict=True):
            frame = np.asarray(frame, dtype=np.uint8)
            masks = props.masks
            if masks is not None and masks.shape[1:] != frame.shape[:2]:
                raise InputError(
                    f"embedder 'imagebind': masks of shape {masks.shape[1:]} for a frame of {frame.shape[:2]}"
                )
            try:
                out.append(region_crops(frame, props.boxes, masks, cfg.regions, cfg.background, cfg.blur_kernel))
            except ValueError as exc:
                raise InputError(f"embedder 'imagebind': {exc}") from None
        return out

    def vision_inputs(self, crops: Sequence[Image]) -> Any:
        """(M, 3, 224, 224): ImageBind's vision transform of each crop."""
        import torch
        from PIL import Image as PILImage

        if not crops:
            return torch.zeros((0, 3, IMAGE_SIZE, IMAGE_SIZE))
        return torch.stack(
            [self._vision_transform(PILImage.fromarray(c).convert("RGB")) for c in crops], dim=0
        )

    def embed_regions(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[FloatArray]:
        """(N_i, D) per frame: ImageBind's (L2-normalised) vision output per region; all regions of
        all given frames go through the model together, ``batch_size`` per forward pass."""
        per_frame = self.region_crops(frames, proposals)
        flat = [c for crops in per_frame for c in crops]
        self.runtime.count("imagebind.vision_crops", len(flat))
        emb = self._forward("vision", self.vision_inputs(flat))
        out: list[FloatArray] = []
        i = 0
        for crops in per_frame:
            out.append(np.ascontiguousarray(emb[i : i + len(crops)]))
            i += len(crops)
        return out

    # --------------------------------------------------------------- forward
    def _forward(self, modality: str, x: Any) -> FloatArray:
        import torch

        if len(x) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        device, dtype = self.runtime.torch_device(), self.runtime.torch_dtype()
        bs = self.config.batch_size
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), bs):
                y = self.model({modality: x[i : i + bs].to(device=device, dtype=dtype)})[modality]
                out.append(y.float().cpu().numpy())
                self.runtime.count(f"imagebind.{modality}_forwards")
        return np.concatenate(out, axis=0).astype(np.float32)


# the crop helpers live in avseg.regions (shared by embedders); re-exported for existing imports
__all__ = ["IMAGEBIND_HUGE", "ImageBindConfig", "ImageBindEmbedder", "blur_frame", "box_pixels", "load_checkpoint",
           "region_crop", "waveform2melspec"]
