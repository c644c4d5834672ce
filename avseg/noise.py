"""Off-screen noise mixed into a clip's audio at a set SNR (``audio.noise`` / ``audio.snr``).

BAVS claims robustness to background noise and off-screen sounds; this measures it. The noise is
white, pink (1/f power), or an audio file (mono, resampled, looped to the clip's length). It is
scaled so that the clip's signal power over the noise power, both measured over the whole clip
and every channel, is ``snr`` dB, and it is seeded by the clip id and ``noise_seed``, so a rerun
mixes the same noise. The pipeline mixes it before anything hears the audio.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from avseg.errors import InputError, UsageError
from avseg.types import FloatArray

KINDS = ("white", "pink")


def noise_rng(clip_id: str, seed: int) -> np.random.Generator:
    """The same generator for the same clip and seed, in any process."""
    h = hashlib.blake2b(f"{clip_id}\x00{seed}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(h, "little"))


def make_noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> FloatArray:
    """``n`` samples of white or pink noise, or of the audio file ``kind`` (looped from a random start)."""
    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    if kind == "pink":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        return np.fft.irfft(spec / np.sqrt(f), n).astype(np.float32)  # 1/f power: -3 dB per octave
    from avseg.audio import load_audio, to_mono

    path = Path(kind)
    if not path.is_file():
        raise InputError(f"audio.noise {kind!r}: not white, pink or an audio file")
    wave, fsr = load_audio(path)
    mono = to_mono(wave, "mix")
    if len(mono) == 0 or not np.any(mono):
        raise InputError(f"audio.noise {path}: the file is silent")
    if fsr != sr:  # linear interpolation is enough for a noise bed
        t = np.arange(int(len(mono) * sr / fsr)) / sr
        mono = np.interp(t, np.arange(len(mono)) / fsr, mono).astype(np.float32)
    start = int(rng.integers(0, len(mono)))
    reps = int(np.ceil((n + start) / len(mono))) + 1
    return np.tile(mono, reps)[start:start + n].astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def mix_at_snr(wave: FloatArray, sr: int, kind: str, snr_db: float, rng: np.random.Generator) -> tuple[FloatArray, float]:
    """``wave`` ``(channels, samples)`` plus noise at ``snr_db`` (the same noise on every channel);
    returns the mix (clipped to [-1, 1]) and the SNR measured on it before clipping (inf for
    a silent clip, which gets no noise: an SNR of silence is undefined)."""
    a = np.asarray(wave, np.float32).reshape(-1, np.asarray(wave).shape[-1])
    p_sig = power(a)
    if p_sig <= 0.0 or a.shape[1] == 0:
        return a, float("inf")
    noise = make_noise(kind, a.shape[1], sr, rng)
    noise *= np.float32(np.sqrt(p_sig / (power(noise) * 10 ** (snr_db / 10))))
    mixed = a + noise[None, :]
    measured = 10 * np.log10(p_sig / power(np.broadcast_to(noise, a.shape)))
    return np.clip(mixed, -1.0, 1.0).astype(np.float32), float(measured)


def noise_sets(noise: str | None, snr: float | None) -> list[str]:
    """``--audio-noise KIND --snr DB`` as the ``--set audio.*`` assignments they stand for."""
    if noise is None and snr is None:
        return []
    if noise is None or snr is None:
        raise UsageError("--audio-noise and --snr go together: give both (e.g. --audio-noise white --snr 10)")
    if not np.isfinite(snr):
        raise UsageError(f"--snr {snr}: expected a finite number of dB")
    if noise not in KINDS and not Path(noise).is_file():
        raise UsageError(f"--audio-noise {noise!r}: expected white, pink or an existing audio file")
    quoted = noise.replace("'", "''")
    return [f"audio.noise='{quoted}'", f"audio.snr={float(snr)}"]
