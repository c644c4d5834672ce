"""GroundingDINO text-prompted box proposer (``gdino``), via Hugging Face transformers.

Importing this package is cheap: torch and transformers load only when the proposer is built.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_gdino.proposer import GroundingDinoProposer

    register(GroundingDinoProposer)
