"""Checks on what a component returns, made where the pipeline receives it: the one place.

A plugin that returns the wrong type (a list instead of a :class:`FilterResult`, fewer
:class:`Proposals` than frames, an index past the end) would otherwise crash somewhere
downstream with a traceback that names no component. Each check raises a one-line
:class:`~avseg.errors.ComponentFailed` naming the component, so only that clip fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.errors import ComponentFailed
from avseg.types import Combined, Drop, FilterResult, Proposals, SegmenterOutput, Tags

if TYPE_CHECKING:
    from avseg.components import Component


def _label(comp: Component, method: str) -> str:
    return f"{comp.kind} {comp.name!r} (from {comp.provider}) {method}()"


def _what(value: Any) -> str:
    if isinstance(value, list | tuple):
        inner = f" of {type(value[0]).__name__}" if value else ""
        return f"a {type(value).__name__}{inner} of length {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _fail(comp: Component, method: str, value: Any, expected: str) -> ComponentFailed:
    return ComponentFailed(f"{_label(comp, method)} returned {_what(value)}; expected {expected}")


def _per_frame(comp: Component, method: str, value: Any, n: int, cls: type, name: str) -> list[Any]:
    if not isinstance(value, list | tuple) or len(value) != n or not all(isinstance(v, cls) for v in value):
        raise _fail(comp, method, value, f"a list of {n} {name}")
    return list(value)


def tags(comp: Component, value: Any, n: int) -> list[Tags]:
    return _per_frame(comp, "tag", value, n, Tags, "Tags")


def proposals(comp: Component, value: Any, n: int,
              shapes: Sequence[tuple[int, ...]] | None = None) -> list[Proposals]:
    """One Proposals per frame; masks, when given, at their frame's (H, W) (``shapes``)."""
    out = _per_frame(comp, "propose", value, n, Proposals, "Proposals")
    for i, (p, hw) in enumerate(zip(out, shapes or [])):
        if p.masks is not None and tuple(p.masks.shape[1:]) != tuple(hw[:2]):
            raise ComponentFailed(f"{_label(comp, 'propose')} returned masks of shape {p.masks.shape} for "
                                  f"frame {i} of size {hw[0]}x{hw[1]} (H x W); masks must be at the frame's size")
    return out


def audio_embeddings(comp: Component, value: Any, n: int) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != 2 or len(value) != n:
        raise _fail(comp, "embed_audio", value, f"an array of shape ({n}, D)")
    return value


def region_embeddings(comp: Component, value: Any, props: Sequence[Proposals]) -> list[np.ndarray]:
    ok = isinstance(value, list | tuple) and len(value) == len(props) and all(
        isinstance(e, np.ndarray) and e.ndim == 2 and len(e) == len(p) for e, p in zip(value, props))
    if not ok:
        raise _fail(comp, "embed_regions", value, f"a list of {len(props)} (N_i, D) arrays, one row per proposal")
    return list(value)


def _overrides(comp: Component, method: str) -> bool:
    """Whether the component's class defines ``method`` itself rather than taking the core's default."""
    for klass in type(comp).__mro__:
        if method in vars(klass):
            return klass.__module__ != "avseg.components"
    return False


def segments(comp: Component, value: Any, boxes: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]]
             ) -> list[SegmenterOutput]:
    """A segmenter's per-frame ``segment``: one SegmenterOutput per frame, a frame-sized mask and a
    score per box (checked here, where the default ``segment_clip`` can still name ``segment()``)."""
    outs = _per_frame(comp, "segment", value, len(boxes), SegmenterOutput, "SegmenterOutput")
    for o, b, hw in zip(outs, boxes, shapes):
        m = np.asarray(o.masks)
        if m.ndim != 3 or m.shape[0] != len(b) or tuple(m.shape[1:]) != tuple(hw) or len(np.asarray(o.scores)) != len(b):
            raise ComponentFailed(f"{_label(comp, 'segment')} returned masks of shape {m.shape}; expected "
                                  f"({len(b)}, {hw[0]}, {hw[1]}) and {len(b)} scores")
    return outs


def objects(comp: Component, method: str, value: Any, frames: Sequence[np.ndarray]) -> list[Proposals]:
    """A segmenter's ``segment_clip`` or a refiner's ``refine_clip``: one Proposals per frame,
    with one frame-sized mask (and at most one mask score) per object (an empty frame may leave
    ``masks`` unset)."""
    out = _per_frame(comp, method, value, len(frames), Proposals, "Proposals")
    for i, (p, f) in enumerate(zip(out, frames)):
        hw = tuple(f.shape[:2])
        if p.masks is None:
            if len(p):
                raise ComponentFailed(f"{_label(comp, method)} gave frame {i} {len(p)} objects without masks; "
                                      "expected Proposals with masks")
            continue
        shape = tuple(np.shape(p.masks))
        if len(shape) != 3 or shape[0] != len(p) or shape[1:] != hw:
            raise ComponentFailed(f"{_label(comp, method)} returned masks of shape {shape} for frame {i}; "
                                  f"expected ({len(p)}, {hw[0]}, {hw[1]}): one frame-sized mask per object")
        if p.mask_scores is not None and len(p.mask_scores) != len(p):
            raise ComponentFailed(f"{_label(comp, method)} returned {len(p.mask_scores)} mask scores for frame {i}; "
                                  f"expected {len(p)}, one per object")
    return out


def filter_results(comp: Component, value: Any, counts: Sequence[int]) -> list[FilterResult]:
    """A filter's ``filter_clip`` (its own, or the default that calls ``__call__`` per frame): one
    FilterResult per frame, each checked by :func:`filter_result` against that frame's
    ``counts[i]`` items (its tags or proposals, by the filter's target)."""
    if _overrides(comp, "filter_clip"):  # the default returns one result per frame: each checked below
        _per_frame(comp, "filter_clip", value, len(counts), FilterResult, "FilterResult")
    return [filter_result(comp, v, n) for v, n in zip(value, counts, strict=True)]


def combined(comp: Component, value: Any, hw: tuple[int, int]) -> Combined:
    """A Combined whose mask is a bool array and whose label map are at the frame's (H, W) and whose
    label map indexes ``labels``. A mask of any other dtype (uint8 0/255, float) is refused alike:
    which values mean foreground is the combiner's decision, so it converts (``mask > 0``)."""
    if not isinstance(value, Combined):
        raise _fail(comp, "combine", value, "a Combined")
    mask = value.mask
    if not isinstance(mask, np.ndarray) or tuple(mask.shape) != tuple(hw) or mask.dtype != np.bool_:
        raise ComponentFailed(f"{_label(comp, 'combine')} returned mask={_what(mask)}"
                              f"{f' of {mask.dtype}' if isinstance(mask, np.ndarray) else ''}; expected a bool "
                              f"array of the frame's size {hw[0]}x{hw[1]} (H x W); convert it, e.g. mask > 0")
    labels = value.labels
    if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
        raise ComponentFailed(f"{_label(comp, 'combine')} returned labels={_what(labels)}; expected a list of str")
    lm = value.label_map
    if lm is not None and (not isinstance(lm, np.ndarray) or tuple(lm.shape) != tuple(hw)
                           or lm.dtype.kind not in "iu" or (lm.size and not 0 <= int(lm.min()) <= int(lm.max())
                                                            <= len(labels))):
        raise ComponentFailed(f"{_label(comp, 'combine')} returned label_map={_what(lm)}; expected None or an "
                              f"integer array of the frame's size {hw[0]}x{hw[1]} with values 0..{len(labels)} "
                              "(indices into labels, 0 = background)")
    return Combined(mask, lm, list(labels))


def filter_result(comp: Component, value: Any, n: int) -> FilterResult:
    """A FilterResult whose ``keep`` holds distinct indices into the ``n`` items it was given."""
    if not isinstance(value, FilterResult):
        raise _fail(comp, "__call__", value, "a FilterResult")
    keep = value.keep
    if isinstance(keep, np.ndarray) and keep.ndim == 1 and (keep.dtype.kind in "iu" or not len(keep)):
        keep = keep.astype(np.int64).tolist()
    if not isinstance(keep, list | tuple) or not all(isinstance(i, int | np.integer) for i in keep):
        raise ComponentFailed(f"{_label(comp, '__call__')} returned keep={_what(keep)}; expected a list of indices")
    if any(not 0 <= int(i) < n for i in keep) or len(set(int(i) for i in keep)) != len(keep):
        raise ComponentFailed(f"{_label(comp, '__call__')} returned keep={list(keep)[:10]}; expected distinct "
                              f"indices in [0, {n})")
    if not isinstance(value.drops, dict):
        raise ComponentFailed(f"{_label(comp, '__call__')} returned drops={_what(value.drops)}; expected a dict")
    for j, d in value.drops.items():  # indexes the items and the trace, like keep
        if not isinstance(j, int | np.integer) or not 0 <= int(j) < n or not isinstance(d, Drop):
            raise ComponentFailed(f"{_label(comp, '__call__')} returned drops={{{j!r}: {_what(d)}}}; expected "
                                  f"indices in [0, {n}), each with an avseg.types.Drop")
    scores = value.scores
    if scores is not None:
        arr = np.asarray(scores) if isinstance(scores, list | tuple | np.ndarray) else None
        if arr is None or arr.ndim != 1 or len(arr) > n or (len(arr) and arr.dtype.kind not in "biuf"):
            raise ComponentFailed(f"{_label(comp, '__call__')} returned scores={_what(scores)}; expected None or at "
                                  f"most {n} numbers (one per input item)")
    added = value.added
    if added is not None:
        if not isinstance(added, Proposals):
            raise ComponentFailed(f"{_label(comp, '__call__')} returned added={_what(added)}; expected None or "
                                  "avseg.types.Proposals")
        emb, reasons = value.added_embeddings, value.added_reasons
        if emb is not None and (not isinstance(emb, np.ndarray) or emb.ndim != 2 or len(emb) != len(added)):
            raise ComponentFailed(f"{_label(comp, '__call__')} returned added_embeddings={_what(emb)}; expected "
                                  f"None or a ({len(added)}, D) array")
        if reasons is not None and (not isinstance(reasons, list | tuple) or len(reasons) != len(added)
                                    or not all(isinstance(r, str) for r in reasons)):
            raise ComponentFailed(f"{_label(comp, '__call__')} returned added_reasons={_what(reasons)}; expected "
                                  f"None or {len(added)} strings")
    value.keep = [int(i) for i in keep]
    return value
