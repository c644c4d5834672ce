"""Label vocabularies given as a component option: a named vocabulary, a text file, or a list.

The shipped vocabularies themselves come from :func:`avseg.data.s4_categories`,
:func:`avseg.data.avss_label_names` and :func:`avseg.audioset.audioset_labels`; a component
maps the names it accepts to them (or to its own rendering of them) and calls
:func:`resolve_vocabulary`. The object vocabularies that text-prompted detectors (gdino, sam3)
accept, and their prompt normalisation, live here too, so no plugin imports another's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from avseg.audioset import audioset_labels
from avseg.data.avss import avss_label_names
from avseg.data.s4 import s4_categories
from avseg.errors import ConfigError, did_you_mean
from avseg.labels import normalise_labels

#: Named vocabularies a component accepts: lowercase name -> a function giving the label names.
NamedVocabularies = Mapping[str, Callable[[], Sequence[str]]]


#: The 80 COCO detection classes, in the order COCO-trained detectors index them.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

def read_vocabulary_file(path: str | Path, who: str, *, comments: bool = False) -> list[str]:
    """The stripped, non-empty lines of a UTF-8 text file (one label per line).

    With ``comments`` a line whose first non-blank character is ``#`` is skipped. Raises a
    one-line :class:`ConfigError` naming the file when it cannot be read or holds no names;
    ``who`` (``"tagger 'clap'"``) starts the message.
    """
    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{who}: cannot read vocabulary file {p}: {exc.strerror or exc}") from None
    names = [ln.strip() for ln in lines if not (comments and ln.lstrip().startswith("#"))]
    names = [n for n in names if n]
    if not names:
        raise ConfigError(f"{who}: vocabulary file {p} holds no names")
    return names


def resolve_vocabulary(
    value: str | Sequence[str], named: NamedVocabularies, who: str, *, comments: bool = False
) -> list[str]:
    """Label names from a vocabulary option: a list of names, one of ``named`` (case-insensitive),
    or the path of a text file with one label per line (see :func:`read_vocabulary_file`).

    Names are stripped and empty ones dropped; nothing else is changed (no de-duplication, no
    case folding). Raises a one-line :class:`ConfigError` when ``value`` is neither a name nor an
    existing file, or when it holds no names.
    """
    if not isinstance(value, str):
        names = [n for n in (str(s).strip() for s in value) if n]
        if not names:
            raise ConfigError(f"{who}: the vocabulary list holds no names")
        return names
    get = named.get(value.lower())
    if get is not None:
        return [n for n in (str(s).strip() for s in get()) if n]
    if not Path(value).expanduser().is_file():
        raise ConfigError(
            f"{who}: vocabulary {value!r} is neither one of {', '.join(named)} "
            "nor a text file (one label per line)"
        )
    return read_vocabulary_file(value, who, comments=comments)


# ------------------------------------------------ object vocabularies (gdino, sam3 prompts)

#: S4 categories are sound events; GroundingDINO needs the visible object that makes the sound
S4_OBJECT_NAMES = {
    "baby_laughter": "baby", "female_singing": "woman", "male_speech": "man", "dog_barking": "dog",
    "cat_meowing": "cat", "lions_roaring": "lion", "horse_clip-clop": "horse",
    "coyote_howling": "coyote", "mynah_bird_singing": "bird",
    "playing_acoustic_guitar": "acoustic guitar", "playing_tabla": "tabla",
    "playing_violin": "violin", "playing_piano": "piano", "playing_ukulele": "ukulele",
    "playing_glockenspiel": "glockenspiel", "helicopter": "helicopter", "race_car": "race car",
    "driving_buses": "bus", "ambulance_siren": "ambulance",
    "typing_on_computer_keyboard": "computer keyboard", "chainsawing_trees": "chainsaw",
    "cap_gun_shooting": "gun", "lawn_mowing": "lawn mower",
}  # fmt: skip

OBJECT_VOCABULARY_ALIASES = {
    "avsbench-s4": "avsbench-s4", "s4": "avsbench-s4", "ms3": "avsbench-s4",
    "avss": "avss", "avsbench-semantic": "avss", "avsbench-ss": "avss",
    "coco": "coco",
}  # fmt: skip


def s4_vocabulary() -> list[str]:
    """Object names for AVSBench-S4's categories (a sound event becomes the object making it)."""
    out = []
    for c in s4_categories():
        name = S4_OBJECT_NAMES.get(c)
        if name is None:  # an unknown category: drop a leading verb, use the words
            name = re.sub(r"^playing_", "", c).replace("_", " ")
        out.append(name)
    return out


def avss_vocabulary() -> list[str]:
    """AVSBench-semantic's 70 object classes (no background), normalised (hyphens as spaces)."""
    return normalise_labels(avss_label_names()[1:])


_CANONICAL_OBJECT_VOCABULARIES: NamedVocabularies = {
    "avsbench-s4": s4_vocabulary,
    "avss": avss_vocabulary,
    "coco": lambda: list(COCO_CLASSES),
}

#: Every name an object detector's ``vocabulary`` option (gdino, sam3) accepts (case-insensitive), aliases included.
OBJECT_VOCABULARIES: NamedVocabularies = {
    alias: _CANONICAL_OBJECT_VOCABULARIES[key] for alias, key in OBJECT_VOCABULARY_ALIASES.items()
}


def object_vocabulary(name: str) -> list[str]:
    return list(OBJECT_VOCABULARIES[name.lower()]())


def all_builtin_vocabulary_words() -> list[str]:
    """Every phrase of the bundled vocabularies and AudioSet's tag names (for the tiny tokenizer)."""
    return (
        s4_vocabulary()
        + avss_vocabulary()
        + list(COCO_CLASSES)
        + s4_categories()
        + avss_label_names()[1:]
        + audioset_labels()
    )


def frame_prompts(vocabulary: Sequence[str] | None, n: int, prompts: Sequence[list[str]] | None,
                  who: str) -> list[list[str]]:
    """The normalised labels each of ``n`` frames is prompted with (a vocabulary wins over tags);
    gdino and sam3 share it."""
    if vocabulary is not None:
        return [list(vocabulary) for _ in range(n)]
    if prompts is None:
        return [[] for _ in range(n)]
    if len(prompts) != n:
        raise ValueError(f"{who}: {n} frames but {len(prompts)} prompt lists")
    return [normalise_prompts(p) for p in prompts]


def check_object_vocabulary(v: str | list[str] | None) -> str | list[str] | None:
    """A ``vocabulary`` option's validator (gdino, sam3): a list with a name in it, a named
    vocabulary, or an existing file, checked when the config is built, before any model loads."""
    if v is None:
        return v
    if isinstance(v, list):
        if not normalise_prompts(v):
            raise ValueError("vocabulary: the list has no non-empty names")
        return v
    if v.lower() in OBJECT_VOCABULARY_ALIASES or Path(v).expanduser().is_file():
        return v
    raise ValueError(
        f"vocabulary: {v!r} is neither a named vocabulary nor an existing file"
        + did_you_mean(v, OBJECT_VOCABULARY_ALIASES)
    )


def normalise_prompts(labels: Sequence[str]) -> list[str]:
    """The prompt names for ``labels``: :func:`avseg.labels.normalise_labels` (lowercase; ``_``,
    ``-``, ``.`` to spaces; no leading article; empty and duplicate names dropped), the same
    normaliser eval uses to map the labels the model returns back to classes."""
    return normalise_labels(labels)
