"""Bundled refiners: post-process each kept object's mask after the filters, before the combiner.

``fill-holes`` fills the holes of each mask (fill_holes.py). Registered through the one
registration hook; nothing heavy is imported here.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_refiners.fill_holes import FillHoles

    register(FillHoles)
