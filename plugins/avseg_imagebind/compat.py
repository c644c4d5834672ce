"""Importing ImageBind (``imagebind-unofficial==0.1.1``) in today's environment, without edits to it.

``import imagebind.models.imagebind_model`` runs ``imagebind/__init__.py``, which imports
``imagebind.data`` and with it torchaudio, pytorchvideo and ``pkg_resources``. Three things break
on current releases; each is fixed here, at import time, for this process only:

1. ``pytorchvideo`` (0.1.5, the last release) imports ``torchvision.transforms.functional_tensor``,
   which torchvision renamed to ``_functional_tensor`` (0.17). We alias the old name to the new
   module in ``sys.modules`` before importing, only when the old name does not import.
2. ``imagebind.data`` imports ``pkg_resources`` (gone in setuptools >= 81; the ``imagebind`` extra
   pins ``setuptools<81``). If it is missing anyway we put a minimal stand-in
   (``resource_filename`` only, which is all ImageBind calls) in ``sys.modules`` for the duration
   of the import and take it out again, so no other library sees a fake ``pkg_resources``.
3. ImageBind uses einops without declaring it (the extra lists it); a missing module of any kind
   becomes a one-line :class:`~avseg.errors.DependencyMissing`.

torchaudio's ``load`` needs torchcodec, which is not usable here; the embedder never calls it: it
feeds waveforms that avseg decoded itself into ImageBind's own audio transforms (see
``embedder.py``). The deprecation warnings these imports emit are silenced.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

from avseg.errors import DependencyMissing

#: the modules ImageBind's import chain needs, in the order we check them
REQUIRED_MODULES: tuple[str, ...] = (
    "torch", "torchvision", "torchaudio", "timm", "einops", "ftfy", "regex", "iopath", "pytorchvideo", "imagebind",
)  # fmt: skip


def _alias_functional_tensor() -> None:
    """Fix 1: ``torchvision.transforms.functional_tensor`` -> ``_functional_tensor``."""
    old = "torchvision.transforms.functional_tensor"
    if old in sys.modules:
        return
    try:
        importlib.import_module(old)
    except ImportError:
        sys.modules[old] = importlib.import_module("torchvision.transforms._functional_tensor")


def _pkg_resources_stand_in() -> types.ModuleType | None:
    """Fix 2: a minimal ``pkg_resources`` when setuptools no longer ships it, else None."""
    import importlib.util
    from importlib.resources import files

    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return None

    mod = types.ModuleType("pkg_resources")
    mod.__doc__ = "avseg stand-in for ImageBind's one call to pkg_resources.resource_filename"

    def resource_filename(package: str, resource: str) -> str:
        return str(files(package).joinpath(resource))

    mod.resource_filename = resource_filename  # type: ignore[attr-defined]
    return mod


def load_imagebind() -> tuple[Any, Any]:
    """``(imagebind.models.imagebind_model, imagebind.data)``, imported with the fixes above.

    Raises a one-line DependencyMissing naming the first module that cannot be imported.
    """
    if "imagebind.models.imagebind_model" in sys.modules and "imagebind.data" in sys.modules:
        return sys.modules["imagebind.models.imagebind_model"], sys.modules["imagebind.data"]
    for name in REQUIRED_MODULES:
        if name == "imagebind":
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(name)
        except ImportError:
            raise DependencyMissing(
                f"embedder 'imagebind' needs {name}: pip install 'avseg[imagebind]'"
            ) from None
    _alias_functional_tensor()
    stand_in = _pkg_resources_stand_in()
    if stand_in is not None:
        sys.modules["pkg_resources"] = stand_in
    try:
        with warnings.catch_warnings():
            # pkg_resources' and torch.jit's deprecation warnings fire on import; they are not ours.
            warnings.simplefilter("ignore")
            model_mod = importlib.import_module("imagebind.models.imagebind_model")
            data_mod = importlib.import_module("imagebind.data")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "imagebind"
        raise DependencyMissing(
            f"embedder 'imagebind' needs {missing} (importing imagebind failed: {str(exc).splitlines()[0]}): "
            "pip install 'avseg[imagebind]'"
        ) from None
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
    return model_mod, data_mod
