"""SAM 3 plugin: the ``sam3`` proposer (text prompts -> every instance, with masks, labels and scores).

Wraps transformers' Sam3Model (and Sam3VideoModel with ``track: true``). Nothing heavy is imported
here: torch and transformers load when the proposer is built.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_sam3.proposer import Sam3Proposer

    register(Sam3Proposer)
