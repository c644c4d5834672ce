"""Bundled refiners: post-process each kept object's mask after the filters, before the combiner.

``fill-holes`` fills the holes of each mask (fill_holes.py); ``merge-parts`` joins masks that
together fill one proposer box (merge_parts.py, SAM's piano keys as one piano);
``largest-component`` keeps each mask's largest piece; ``clip-to-box`` cuts each mask to its box. Registered through the one
registration hook; nothing heavy is imported here.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_refiners.clip_to_box import ClipToBox
    from avseg_refiners.fill_holes import FillHoles
    from avseg_refiners.largest_component import LargestComponent
    from avseg_refiners.merge_parts import MergeParts

    register(FillHoles)
    register(MergeParts)
    register(LargestComponent)
    register(ClipToBox)
