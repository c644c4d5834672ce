"""How avseg reads image files: frames as 8-bit RGB, masks (GT and predictions) as booleans.

Frames, whatever their bit depth or mode:

- 8-bit RGB is used as is; grayscale (``L``, ``1``), palette (``P``) and ``CMYK``/``YCbCr`` are
  converted to RGB by Pillow; ``RGBA``/``LA``/``PA`` drop their alpha channel;
- 16-bit (and 32-bit integer) grayscale is scaled from [0, 65535] to [0, 255]
  (Pillow's own conversion clips it, turning most 16-bit frames solid white);
- 32-bit float grayscale is taken as [0, 1] when its maximum is at most 1, else as [0, 255].

Masks, one rule for ground truth and predictions:

- single-channel images (8-bit ``L``, 16-bit ``I;16``, 32-bit ``I``/``F``) are scaled to [0, 1]
  (by 255, 65535, 65535 and 1) and a pixel is foreground when its value is above 0.5, as the
  official scripts binarise (so >= 128 for 8-bit and >= 32768 for 16-bit); ``avseg score``
  sweeps the F-score's thresholds over the same [0, 1] values;
- 1-bit images: foreground where set; palette (``P``) images: every non-zero *index* is
  foreground, whatever colour the palette gives it; an alpha channel (``LA``) is ignored;
- RGB(A) images count only when every pixel is grey (all channels equal) and are then read as
  8-bit single-channel; an RGB mask whose channels differ (a red-on-black mask, say) is refused
  with a one-line error naming the file, because no brightness rule reads it right.

Images larger than :data:`MAX_SIDE` pixels on a side are refused before they are decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avseg.errors import InputError, one_line
from avseg.types import BoolArray, Image

#: the largest accepted width or height (pixels)
MAX_SIDE = 8192

_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _check_size(path: Path, what: str, width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InputError(f"{what} {path} is {width}x{height}; the largest accepted side is {MAX_SIDE} px "
                         "(downscale it first)")
    if width < 1 or height < 1:
        raise InputError(f"{what} {path} is empty ({width}x{height})")


def open_image(path: Path, what: str) -> Any:
    """A lazily opened PIL image whose size has been checked (nothing is decoded yet)."""
    import warnings

    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():  # our own size limit (below) is stricter than Pillow's warning
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            im = PILImage.open(path)
    except FileNotFoundError:
        raise InputError(f"cannot read {what} {path}: file not found") from None
    except Exception as exc:  # UnidentifiedImageError, DecompressionBombError, OSError
        raise InputError(f"cannot read {what} {path}: {one_line(exc, with_type=False)}") from None
    try:
        _check_size(path, what, *im.size)
    except InputError:
        im.close()
        raise
    return im


def image_size(path: str | Path, what: str = "frame") -> tuple[int, int]:
    """(width, height) from the file header, checked against :data:`MAX_SIDE`; decodes nothing."""
    with open_image(Path(path), what) as im:
        return int(im.size[0]), int(im.size[1])


def _grey_to_rgb(grey: np.ndarray) -> Image:
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def to_rgb8(im: Any) -> Image:
    """A decoded PIL image as (H, W, 3) uint8 RGB, by the frame rule of this module."""
    mode = im.mode
    if mode in _INT_MODES:
        arr = np.asarray(im).astype(np.float64)
        return _grey_to_rgb(np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8))
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
        return _grey_to_rgb(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def read_rgb(path: str | Path, what: str = "frame", size: tuple[int, int] | None = None) -> Image:
    """Decode an image file as RGB uint8 (the frame rule above). With ``size`` (width, height), a
    frame of another size is resized to it (bilinear). Errors are InputErrors naming the file."""
    from PIL import Image as PILImage

    p = Path(path)
    im = open_image(p, what)
    try:
        with im:
            arr = to_rgb8(im)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {what} {p}: {one_line(exc, with_type=False)}") from None
    if size is not None and (arr.shape[1], arr.shape[0]) != size:
        arr = np.asarray(PILImage.fromarray(arr).resize(size, PILImage.Resampling.BILINEAR), np.uint8)
    return np.ascontiguousarray(arr)


def mask_values(im: Any, path: Path, what: str = "mask") -> np.ndarray:
    """A decoded PIL image as mask values: bool (1-bit, palette), uint8 0..255 (8-bit and grey
    RGB), or float32 in [0, 1] (16/32-bit); see the module's mask rule."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=bool)
    if mode == "P":
        return np.asarray(im, dtype=np.uint8) > 0
    if mode in ("L", "LA"):
        return np.asarray(im.getchannel(0), dtype=np.uint8)
    if mode in _INT_MODES:
        return np.clip(np.asarray(im).astype(np.float64) / 65535.0, 0.0, 1.0).astype(np.float32)
    if mode == "F":
        return np.clip(np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0), 0.0, 1.0).astype(np.float32)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    r = rgb[..., 0]
    if not (np.array_equal(r, rgb[..., 1]) and np.array_equal(r, rgb[..., 2])):
        raise InputError(f"{what} {path} is a colour ({mode}) image whose channels differ; save masks as "
                         "single-channel PNGs (grayscale 0/255, or palette indices with 0 = background)")
    return np.ascontiguousarray(r)


def threshold(values: np.ndarray) -> BoolArray:
    """Foreground where the [0, 1]-scaled value is above 0.5 (uint8: >= 128, 16-bit: >= 32768)."""
    if values.dtype == np.bool_:
        return values
    if values.dtype == np.uint8:
        return values >= 128
    return values > np.float32(0.5)


def read_mask_values(path: str | Path, what: str = "prediction") -> np.ndarray:
    """A mask file's values by the mask rule, before thresholding (the F-score sweeps them)."""
    p = Path(path)
    im = open_image(p, what)
    try:
        with im:
            return mask_values(im, p, what)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {what} {p}: {one_line(exc, with_type=False)}") from None


def read_mask(path: str | Path, what: str = "mask") -> BoolArray:
    """Read a GT or predicted mask file as a boolean (H, W) array by the mask rule above."""
    return threshold(read_mask_values(path, what))
