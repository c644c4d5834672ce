"""SAM 2 plugin: the ``sam2`` segmenter (box prompts -> masks; ``propagate: true`` tracks them through the clip).

Wraps transformers' Sam2Model / Sam2VideoModel (and EdgeTAM's, ``variant: edgetam``). Nothing heavy
is imported here: torch and transformers load when the segmenter is built.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_sam2.segmenter import Sam2Segmenter

    register(Sam2Segmenter)
