"""A stage-cache entry is used only when its integrity record matches what it holds, says why it
is not used otherwise (the warning a user sees names the array), never unpickles anything, and
``clear`` removes only files laid out as entries. Fast, for ``make mutants`` on avseg/cache.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from avseg.cache import StageCache, make_key

KEY = "ab" * 20
GOOD = {"boxes": np.arange(8, dtype=np.float32).reshape(2, 4), "names": np.asarray(["dog", "cat"])}


def entry(tmp_path: Path) -> tuple[StageCache, Path]:
    c = StageCache(tmp_path)
    c.counters = {}
    c.put_arrays("stage/x", KEY, GOOD)
    return c, next(tmp_path.rglob("*.npz"))


def rewrite_keeping_the_record(path: Path, change: Any) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def why(c: StageCache) -> str:
    assert c.counters == {"cache.invalid": 1} and len(c.rejected) == 1, c.rejected
    return c.rejected[0].split(": ", 1)[1]


def test_an_array_of_another_dtype_than_recorded_is_named(tmp_path: Path) -> None:
    c, path = entry(tmp_path)
    rewrite_keeping_the_record(path, lambda a: a.update(boxes=a["boxes"].astype(np.int64)))
    assert c.get_arrays("stage/x", KEY) is None
    assert why(c) == "array 'boxes' is <i8 [2, 4] but recorded as ['<f4', [2, 4]]"


def test_an_array_of_another_shape_than_recorded_is_named(tmp_path: Path) -> None:
    c, path = entry(tmp_path)
    rewrite_keeping_the_record(path, lambda a: a.update(boxes=a["boxes"].reshape(4, 2)))
    assert c.get_arrays("stage/x", KEY) is None
    assert why(c) == "array 'boxes' is <f4 [4, 2] but recorded as ['<f4', [2, 4]]"


def test_an_extra_array_is_named(tmp_path: Path) -> None:
    c, path = entry(tmp_path)
    rewrite_keeping_the_record(path, lambda a: a.update(extra=np.zeros(1)))
    assert c.get_arrays("stage/x", KEY) is None
    assert why(c) == "it holds arrays ['boxes', 'extra', 'names'] but records ['boxes', 'names']"


class Marker:
    """Unpickling it creates a file: the cache must never unpickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def test_an_entry_holding_a_pickle_is_never_unpickled(tmp_path: Path) -> None:
    c, path = entry(tmp_path)
    marker = tmp_path / "unpickled"
    obj = np.empty(1, dtype=object)
    obj[0] = Marker(marker)
    rewrite_keeping_the_record(path, lambda a: a.update(boxes=obj))
    assert c.get_arrays("stage/x", KEY) is None
    assert not marker.exists()
    assert why(c).startswith("unreadable: ")


def test_clear_removes_only_files_laid_out_as_entries(tmp_path: Path) -> None:
    c, _ = entry(tmp_path)
    stray = tmp_path / "ab" / f"{KEY}.npz"  # key-shaped, but no namespace folder above its ab/
    stray.parent.mkdir()
    stray.write_bytes(b"mine")
    size = sum(f.stat().st_size for f in (tmp_path / "stage").rglob("*") if f.is_file())
    assert c.info() == {"stage/x": {"entries": 1, "bytes": size}}
    assert c.clear() == 1
    assert stray.read_bytes() == b"mine"
    assert not list((tmp_path / "stage").rglob("*.npz")) if (tmp_path / "stage").exists() else True


def test_clear_never_follows_a_link_out_of_the_folder(tmp_path: Path) -> None:
    c, _ = entry(tmp_path / "cache")
    outside = tmp_path / "outside" / "ab"
    outside.mkdir(parents=True)
    theirs = outside / f"{KEY}.npz"
    theirs.write_bytes(b"theirs")
    (tmp_path / "cache" / "stage" / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert set(c.info()) == {"stage/x"}
    assert c.clear() == 1
    assert theirs.read_bytes() == b"theirs"


def test_a_key_does_not_depend_on_the_order_of_a_configs_fields() -> None:
    """The same parameters written in another order are the same cache entry (a hit, not a recompute)."""
    assert make_key("owod", {"a": 1, "b": [1, 2]}, "clip") == make_key("owod", {"b": [1, 2], "a": 1}, "clip")
    assert make_key("owod", {"a": 1}) != make_key("owod", {"a": 2}) != make_key("owd", {"a": 1})
