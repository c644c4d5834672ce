"""SAM plugins: the ``sam`` segmenter (box prompts -> masks) and the ``sam-grid`` proposer.

Both wrap Meta's ``segment_anything`` (``sam`` can also run transformers' SamModel with
``backend=hf``) and share one model and one image encoding per frame. Nothing heavy is imported
here: torch, segment_anything and transformers load when a component is built.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_sam.segmenter import SamSegmenter

    register(SamSegmenter)
    from avseg_sam.grid import SamGridProposer

    register(SamGridProposer)
