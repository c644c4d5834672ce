"""The official AVSBench metrics, registered through ``register_metrics`` as a bundled plugin (as
the built-in dataset readers are), so the registry lists every metric with its provider and a
plugin cannot take one of their names.

They are ``per="dataset"`` metrics: the official scores are not means of a per-frame or per-clip
value (``miou`` averages batch means, ``fscore`` takes the max over thresholds of the mean F curve
of each batch, on probabilities rather than boolean masks), so the eval computes them with the
official accumulators (:class:`avseg.eval.metrics.BinaryMetrics`) and writes them at the top of
``metrics.json`` as always; only the plugins' per-frame and per-clip metrics go through
:mod:`avseg.eval.plugin_metrics` (``Registry.metric_table``) into ``plugin_metrics``.
Each function here gives exactly the value ``BinaryMetrics.result`` puts under its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from avseg.eval.metrics import BinaryMetrics, ClipScores
from avseg.hookspecs import hookimpl

#: what each official metric is (``avseg plugins --kind metric`` shows it)
OFFICIAL_METRICS: dict[str, str] = {
    "miou": "official J: the mean of the batch means of the frame IoU (--batch-videos clips a batch)",
    "miou_frame": "the mean frame IoU over all frames (independent of batching)",
    "fscore": "official F (beta^2 = 0.3): the mean over batches of the max of the batch's mean F curve",
    "fscore_b1": "official F at one video per batch",
    "fscore_dataset": "the max of the mean F curve over all frames (independent of batching)",
}


def official(name: str, clips: Iterable[ClipScores | dict[str, Any]], batch_videos: int = 4) -> float:
    """The official metric ``name`` of these clips' scores (in dataset order)."""
    return BinaryMetrics.from_states(clips).result(batch_videos=batch_videos)[name]


def metric_fn(name: str) -> Callable[..., float]:
    fn = partial(official, name)
    fn.__doc__ = OFFICIAL_METRICS[name]  # type: ignore[misc]  # what the listing shows
    return fn


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    for name in OFFICIAL_METRICS:
        register(name, metric_fn(name), per="dataset")
