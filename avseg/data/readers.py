"""The built-in dataset readers by ``--subset`` name, registered through ``register_datasets`` as a
default plugin (like the bundled presets), so they reach the registry the way a plugin's do."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from avseg.data.avss import AVSS_LABELS, AVSSDataset
from avseg.data.base import Dataset
from avseg.data.ms3 import MS3Dataset
from avseg.data.s4 import S4Dataset
from avseg.hookspecs import hookimpl


def _avss_subset(label: str) -> Callable[[str | Path, str], Dataset]:
    reader = partial(AVSSDataset, label=label)
    # what `avseg plugins --kind dataset` shows (a partial's own docstring is functools')
    reader.__doc__ = f"AVSBench-semantic, its {label} clips only."
    return reader


SUBSETS = ("s4", "ms3", "avss-v1s", "avss-v1m", "avss-v2", "avss")
#: ``reader(root, split) -> Dataset``; plugins add more with the same ``register_datasets`` hook
BUILTIN_READERS: dict[str, Callable[[str | Path, str], Dataset]] = {
    "s4": S4Dataset,
    "ms3": MS3Dataset,
    "avss": AVSSDataset,
    **{f"avss-{label}": _avss_subset(label) for label in AVSS_LABELS},
}


@hookimpl
def register_datasets(register: Callable[[str, Callable[[str | Path, str], Dataset]], None]) -> None:
    for name, reader in BUILTIN_READERS.items():
        register(name, reader)
