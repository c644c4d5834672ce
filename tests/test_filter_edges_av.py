"""bind, avis (and its audio-visual tree), av-sync and the refiners at their boundaries, called
directly: the fast tests ``make mutants`` adds to each module's own (scripts/mutants.py)."""

from __future__ import annotations
