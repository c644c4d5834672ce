"""Which distribution ships what: the bundled plugins, the distribution of a component's code,
and the ``pip install`` hint for what a component lacks. Its own module (not the registry's)
because components need the hint when a dependency is missing, and the registry needs components.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avseg.components import Component

#: the distribution that ships the bundled plugins
BUNDLED = "avseg"
#: bundled plugins, registered in code (plugin name -> module); not entry points, so that
#: selecting third-party plugins never removes them
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("presets", "avseg.presets"),
    ("datasets", "avseg.data.readers"),
    ("metrics", "avseg.eval.builtin_metrics"),
    ("filters", "avseg_filters"),
    ("refiners", "avseg_refiners"),
    ("sam", "avseg_sam"),
    ("ast", "avseg_ast"),
    ("gdino", "avseg_gdino"),
    ("owod", "avseg_owod"),
    ("imagebind", "avseg_imagebind"),
    ("avis", "avseg_avis"),
    ("panns", "avseg_panns"),
    ("clap", "avseg_clap"),
    ("mmdet", "avseg_mmdet"),
    ("sam2", "avseg_sam2"),
    ("sam3", "avseg_sam3"),
    ("sync", "avseg_sync"),
)


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(cls: type) -> str:
    """The distribution that ships ``cls``'s code: ``avseg`` for the bundled plugins."""
    top = cls.__module__.split(".")[0]
    if top == "avseg" or top in {m.split(".")[0] for _, m in DEFAULT_PLUGINS}:
        return BUNDLED
    dists = _packages_distributions().get(top)
    return dists[0] if dists else top


def install_hint(cls: type[Component], provider: str | None = None) -> str:
    """``pip install 'dist[extra]'`` naming the component's own distribution ('' for a bundled
    component without an extra: avseg itself is installed)."""
    dist = provider or distribution_of(cls)
    if cls.extra:
        return f"pip install '{dist}[{cls.extra}]'"
    return "" if dist == BUNDLED else f"pip install '{dist}'"


def dependency_status(cls: type[Component]) -> tuple[bool, list[str]]:
    """Whether the component's Python requirements are importable, without importing them."""
    missing = []
    for mod in cls.requires:
        try:
            if importlib.util.find_spec(mod) is None:
                missing.append(mod)
        except (ImportError, ValueError):
            missing.append(mod)
    return not missing, missing
