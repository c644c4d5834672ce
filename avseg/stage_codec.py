"""The stage cache's codec: a stage's output as named arrays (what the cache stores) and back.

Masks are bit-packed; tags keep their names and scores; a proposer's own drops (``Proposals.drops``) travel with its proposals.
Entries are read back from disk, so the cache verifies them before this decodes them
(avseg/cache.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avseg.types import CandidateDrop, Proposals, Tags

Arrays = dict[str, np.ndarray]


def _pack_masks(masks: np.ndarray) -> Arrays:
    return {"shape": np.asarray(masks.shape, np.int64), "bits": np.packbits(masks.astype(bool), axis=None)}


def _unpack_masks(a: Arrays, prefix: str) -> np.ndarray:
    shape = tuple(int(x) for x in a[prefix + "shape"])
    n = int(np.prod(shape))
    return np.unpackbits(a[prefix + "bits"], count=n).astype(bool).reshape(shape)


def proposals_to_arrays(props: Sequence[Proposals]) -> Arrays:
    out: Arrays = {"n": np.asarray([len(props)])}
    for i, p in enumerate(props):
        if p.drops:
            out[f"{i}.drops.boxes"] = np.asarray([d.box for d in p.drops], np.float32).reshape(-1, 4)
            out[f"{i}.drops.scores"] = np.asarray([d.score for d in p.drops], np.float32)
            out[f"{i}.drops.reasons"] = np.asarray([d.reason for d in p.drops], dtype=np.str_)
            out[f"{i}.drops.labels"] = np.asarray([d.label or "" for d in p.drops], dtype=np.str_)
        out[f"{i}.boxes"], out[f"{i}.scores"] = p.boxes, p.scores
        if p.labels is not None:
            out[f"{i}.labels"] = np.asarray(p.labels, dtype=np.str_)
        if p.masks is not None:
            for k, v in _pack_masks(p.masks).items():
                out[f"{i}.masks.{k}"] = v
        if p.mask_scores is not None:
            out[f"{i}.mask_scores"] = p.mask_scores
    return out


def arrays_to_proposals(a: Arrays) -> list[Proposals]:
    out = []
    for i in range(int(a["n"][0])):
        labels = [str(x) for x in a[f"{i}.labels"]] if f"{i}.labels" in a else None
        masks = _unpack_masks(a, f"{i}.masks.") if f"{i}.masks.shape" in a else None
        ms = a.get(f"{i}.mask_scores")
        drops = []
        if f"{i}.drops.boxes" in a:
            drops = [CandidateDrop([float(v) for v in b], float(sc), str(r), str(lab) or None)
                     for b, sc, r, lab in zip(a[f"{i}.drops.boxes"], a[f"{i}.drops.scores"],
                                              a[f"{i}.drops.reasons"], a[f"{i}.drops.labels"])]
        out.append(Proposals(a[f"{i}.boxes"], a[f"{i}.scores"], labels, masks, ms, drops))
    return out


def tags_to_arrays(tags: Sequence[Tags]) -> Arrays:
    out: Arrays = {"n": np.asarray([len(tags)])}
    for i, t in enumerate(tags):
        out[f"{i}.names"], out[f"{i}.scores"] = np.asarray(t.names, dtype=np.str_), t.scores
    return out


def arrays_to_tags(a: Arrays) -> list[Tags]:
    return [Tags([str(x) for x in a[f"{i}.names"]], a[f"{i}.scores"]) for i in range(int(a["n"][0]))]
