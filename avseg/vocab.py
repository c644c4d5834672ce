"""Label vocabularies given as a component option: a named vocabulary, a text file, or a list.

The shipped vocabularies themselves come from :func:`avseg.data.s4_categories`,
:func:`avseg.data.avss_label_names` and :func:`avseg.audioset.audioset_labels`; a component
maps the names it accepts to them (or to its own rendering of them) and calls
:func:`resolve_vocabulary`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from avseg.errors import ConfigError

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


__all__ = ["NamedVocabularies", "read_vocabulary_file", "resolve_vocabulary"]
