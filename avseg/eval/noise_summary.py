"""What metrics.json says about the mixed noise: the setting and the SNR measured on the clips."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from avseg.audio import AudioSpec


def noise_summary(audio: AudioSpec, states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    measured = []
    for st in states:
        v = (st.get("audio_noise") or {}).get("measured_snr") if isinstance(st.get("audio_noise"), dict) else None
        if isinstance(v, (int, float)) and math.isfinite(v):
            measured.append(float(v))
    return {"noise": audio.noise, "snr": audio.snr, "noise_seed": audio.noise_seed,
            "measured_snr_mean": round(sum(measured) / len(measured), 3) if measured else None,
            "clips_measured": len(measured)}
