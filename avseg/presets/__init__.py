"""The bundled presets (the YAML files here), registered as a default plugin like any other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from avseg.hookspecs import hookimpl


@hookimpl
def register_presets(register: Callable[[str, dict[str, Any]], None]) -> None:
    from avseg.spec import builtin_presets

    for name, spec in builtin_presets().items():
        register(name, spec)
