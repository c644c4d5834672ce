"""Metrics that plugins add with ``register_metrics``: computed per clip into its state file (so a
resumed eval keeps them) and averaged into ``metrics.json`` under ``plugin_metrics``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from avseg.errors import one_line
from avseg.registry import Metric


def clip_state(metrics: Mapping[str, Metric], clip_id: str, preds: Sequence[npt.ArrayLike],
               gts: Sequence[npt.ArrayLike]) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per metric key, ``[sum, count]`` over this clip's annotated frames (or ``[value, 1]`` per
    clip), and per metric that raised, the one-line reason. A failing metric costs only its own
    number: the clip's masks and official scores stand.

    Masks are given to the metric as boolean arrays (prediction: above 127 of 255)."""
    p = [np.asarray(x) > (127 if np.asarray(x).dtype == np.uint8 else 0.5) for x in preds]
    g = [np.asarray(x).astype(bool) for x in gts]
    out: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    for key, m in metrics.items():
        try:
            if m.per == "frame":
                values = [float(m.fn(a, b)) for a, b in zip(p, g)]
            else:
                values = [float(m.fn(p, g))] if p else []
            bad = next((v for v in values if not np.isfinite(v)), None)
            if bad is not None:  # a NaN would be saved as null and break every later summary
                errors[key] = f"metric {key!r} returned {bad} on clip {clip_id}"
                continue
            if values:
                out[key] = [float(sum(values)), float(len(values))] if m.per == "frame" else [values[0], 1.0]
        except Exception as exc:
            errors[key] = f"metric {key!r} failed on clip {clip_id}: {one_line(exc)}"
    return out, errors


def summarise(states: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The mean of each metric over all frames (per-frame metrics) or clips (per-clip metrics);
    None for a metric that failed on any clip (a mean over the others would not say so)."""
    total: dict[str, list[float]] = {}
    failed = {key for s in states for key in s.get("plugin_metric_errors", {})}
    for s in states:
        for key, (value, n) in s.get("plugin_metrics", {}).items():
            acc = total.setdefault(key, [0.0, 0.0])
            acc[0] += value
            acc[1] += n
    out: dict[str, float | None] = {k: round(v / n, 6) for k, (v, n) in total.items() if n}
    out.update({k: None for k in failed})
    return dict(sorted(out.items()))


def clip_value(state: Mapping[str, Any], key: str) -> str:
    """One clip's value of metric ``key`` for per_clip.csv: its mean, ``failed``, or empty when absent."""
    if key in state.get("plugin_metric_errors", {}):
        return "failed"
    entry = state.get("plugin_metrics", {}).get(key)
    try:
        value, n = float(entry[0]), float(entry[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return ""
    return f"{value / n:.6f}" if n else ""


def failures(states: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every plugin metric failure of these clips, one line each."""
    return [reason for s in states for reason in s.get("plugin_metric_errors", {}).values()]
