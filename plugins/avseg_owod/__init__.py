"""Class-agnostic open-world box proposer (``owod``): OWLv2's objectness head, via transformers.

Importing this package is cheap: torch and transformers load only when the proposer is built.
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_owod.proposer import OwlV2ObjectnessProposer

    register(OwlV2ObjectnessProposer)
