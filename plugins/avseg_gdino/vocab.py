"""gdino's prompts: the caption GroundingDINO reads, the configured vocabulary as prompt names,
and one label per detected box. Pure Python (no torch, no transformers), so their tests are fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from avseg import vocab
from avseg.errors import ConfigError


def prompt_text(labels: Sequence[str]) -> str:
    """The GroundingDINO caption for already-normalised labels: ``"dog. acoustic guitar."``."""
    return ". ".join(labels) + "." if labels else ""


def resolve_vocabulary(v: str | list[str] | None) -> list[str] | None:
    """The configured vocabulary as normalised prompt names (None when prompts come from tags)."""
    if v is None:
        return None
    names = vocab.normalise_prompts(
        vocab.resolve_vocabulary(v, vocab.OBJECT_VOCABULARIES, "proposer 'gdino'", comments=True)
    )
    if not names:
        raise ConfigError(f"proposer 'gdino': vocabulary {v!r} holds no names")
    return names


def detection_labels(detections: dict[str, Any], n_boxes: int) -> list[str]:
    """One label per detected box from a post-processed frame.

    transformers 5.23's ``post_process_grounded_object_detection`` decodes an empty batch of
    phrases as ``['']`` when no box passes the threshold (a frame with no detection, common when
    the audio tags name nothing visible); such a frame has no labels. Any other mismatch is a bug.
    """
    labels = [str(t) for t in detections["text_labels"]]
    if n_boxes == 0:
        return []
    if len(labels) != n_boxes:
        raise ValueError(f"proposer 'gdino': post-processing gave {n_boxes} boxes but {len(labels)} labels")
    return labels
