"""The config base of audio-window taggers (AST, PANNs, CLAP): padding and batching options.

Apart from :mod:`avseg.audio` so that reading audio never depends on the component classes."""

from __future__ import annotations

from pydantic import Field

from avseg.audio import PadMode
from avseg.components import ComponentConfig


class WindowConfig(ComponentConfig):
    """Config base of audio-window models: how short windows are padded (see :func:`window_at`)
    and how many windows go through the model at once.

    Subclasses narrow ``pad_to``'s range (and may change its default) by redeclaring it.
    """

    pad_to: float = Field(1.0, ge=0.0, description="pad windows shorter than this (seconds)")
    pad_mode: PadMode = Field("repeat", description="how short windows are padded")
    batch_size: int = Field(16, ge=1, json_schema_extra={"affects_output": False})
