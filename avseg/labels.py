"""The one label normaliser: how prompts, detector labels, tree names and AVSS classes compare.

GroundingDINO is prompted with normalised names and returns the decoded tokens of the phrase it
matched (``"emergency car"``, or ``"hi - hat"`` for a prompt holding a hyphen); the AVSS label
map calls the class ``emergency-car``; the tree holds ``playing_violin``-style dataset names.
Every place that compares such names (the gdino proposer's prompts, the audio-visual tree, eval's
label indexer) calls :func:`normalise_label`, so a class cannot be named one way on the way in and
another way on the way out.
"""

from __future__ import annotations

from collections.abc import Iterable

_ARTICLES = ("a ", "an ", "the ")


def normalise_label(text: str) -> str:
    """Lower case; ``_``, ``-`` and ``.`` become spaces; one space between words; no leading article.

    ``"Emergency-Car"``, ``"emergency_car"``, ``"emergency - car"`` and ``"the emergency car"``
    all give ``"emergency car"``. ``.`` goes because GroundingDINO uses it to separate phrases.
    """
    s = " ".join(str(text).lower().replace("_", " ").replace("-", " ").replace(".", " ").split())
    for article in _ARTICLES:
        if s.startswith(article) and len(s) > len(article):
            return s[len(article) :]
    return s


def normalise_labels(labels: Iterable[str]) -> list[str]:
    """Each label normalised, empty names dropped, duplicates dropped keeping the first."""
    out: list[str] = []
    seen: set[str] = set()
    for label in labels:
        t = normalise_label(label)
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out
