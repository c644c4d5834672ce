"""The 527 AudioSet class names, as AST and PANNs checkpoints spell them, and a deny-list.

The names ship as package data (``avseg/data/audioset_labels.txt``, one per line, in the
checkpoints' ``id2label`` index order) so that trees can be validated and tag vectors read
without loading any model.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

#: Tags that describe the recording, the room or the signal rather than something that could
#: be seen making the sound. They never select an object (AVIS) and make useless detector prompts.
#:
#: "Music" (and its genres) is deliberately *not* here: music has real, often visible sources
#: (instruments, singers). It is merely unspecific, and is frequently an off-screen soundtrack,
#: so the shipped AVIS tree does not use it as a leaf either; a specific tag ("Violin, fiddle",
#: "Piano") is what links a sound to an instrument. Deny-listing it would stop a user's tree from
#: mapping it. The non-diegetic music classes ("Background music", "Soundtrack music", "Theme
#: music") *are* listed: by definition nothing in the frame plays them.
NON_VISUAL_TAGS: frozenset[str] = frozenset(
    {
        "Silence",
        "Noise",
        "Static",
        "White noise",
        "Pink noise",
        "Hum",
        "Mains hum",
        "Environmental noise",
        "Inside, small room",
        "Inside, large room or hall",
        "Inside, public space",
        "Outside, urban or manmade",
        "Outside, rural or natural",
        "Reverberation",
        "Echo",
        "Sound effect",
        "Field recording",
        "Distortion",
        "Sidetone",
        "Cacophony",
        "Sine wave",
        "Harmonic",
        "Chirp tone",
        "Pulse",
        "Throbbing",
        "Wind noise (microphone)",
        "Effects unit",
        "Chorus effect",
        "Background music",
        "Soundtrack music",
        "Theme music",
    }
)


@lru_cache(maxsize=1)
def _labels() -> tuple[str, ...]:
    text = resources.files("avseg").joinpath("data", "audioset_labels.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 527:  # a truncated install would silently mis-index every tag vector
        raise RuntimeError(f"avseg/data/audioset_labels.txt has {len(names)} names, expected 527")
    return names


def audioset_labels() -> list[str]:
    """The 527 AudioSet display names in class-index order (a fresh list; the file is read once)."""
    return list(_labels())


__all__ = ["NON_VISUAL_TAGS", "audioset_labels"]
