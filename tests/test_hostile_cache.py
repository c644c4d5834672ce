"""Hostile cache folders (issue 26): `cache clear` deletes only what the cache wrote, and an
entry that was damaged or changed is a counted, warned miss, never a traceback or a silent use."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import avseg
from avseg.cache import StageCache
from avseg.testing import SR, tone
from tests.helpers import cli, one_line

TAG = "CACHEDIR.TAG"  # the standard cache-directory tag the cache writes



def test_clear_refuses_a_folder_that_is_not_a_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "thesis.tex").write_text("years of work")
    (home / "notes.txt").write_text("keep me")
    code, out, err = cli(capsys, "cache", "clear", "--cache-dir", str(home))
    assert code == 2 and "not an avseg stage cache" in one_line(err) and "removed" not in out
    assert (home / "docs" / "thesis.tex").read_text() == "years of work" and (home / "notes.txt").exists()
    # a file given as the cache folder: refused too, and kept
    code, _, err = cli(capsys, "cache", "clear", "--cache-dir", str(home / "notes.txt"))
    assert code == 2 and "nothing removed" in one_line(err) and (home / "notes.txt").exists()


def test_clear_removes_only_the_entries_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cache"
    c = StageCache(root)
    for i in range(3):
        c.put_arrays("stage/owod", f"{i:02d}" * 20, {"a": np.ones(4)}, {"m": i})
    c.put_arrays("memo/sam.image", "ee" * 20, {"a": np.ones(4)})
    assert (root / TAG).is_file()
    # things the cache did not write, beside and among its entries
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.npz").write_bytes(b"precious")
    entry_dir = next((root / "stage" / "owod").iterdir())
    (entry_dir / "mine.txt").write_text("mine")
    (root / "stage" / "README").write_text("readme")
    (root / "stage" / "owod" / "ab").symlink_to(outside, target_is_directory=True)
    (root / "stage" / "linked.npz").symlink_to(outside / "precious.npz")
    code, out, err = cli(capsys, "cache", "clear", "--cache-dir", str(root))
    assert code == 0 and "removed 4 entries" in out, err
    assert (outside / "precious.npz").read_bytes() == b"precious"
    assert (entry_dir / "mine.txt").read_text() == "mine" and (root / "stage" / "README").exists()
    assert (root / "stage" / "linked.npz").is_symlink()
    assert not list(root.rglob("*.json")) and StageCache(root).info() == {}
    assert (root / TAG).is_file()  # still a cache
    assert not (root / "memo").exists()  # folders left empty go


def _rewrite(path: Path, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)  # type: ignore[operator]
    path.write_bytes(buf.getvalue())


def _bomb(path: Path) -> None:
    """A zip whose one member inflates to 200 MB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("a.npy", "w") as f:
        f.write(b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (209715200,), }"
                .ljust(118, b" ") + b"\n")
        chunk = bytes(1 << 20)
        for _ in range(200):
            f.write(chunk)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("damage", ["other-values", "missing-key", "wrong-shape", "wrong-dtype", "bomb",
                                    "record-lies", "garbage"])
def test_changed_entries_are_counted_misses(tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    c = StageCache(tmp_path)
    c.counters = {}
    key = "ab" * 20
    good = {"boxes": np.arange(8, dtype=np.float32).reshape(2, 4), "names": np.asarray(["dog", "cat"])}
    c.put_arrays("stage/x", key, good)
    path = next(tmp_path.rglob("*.npz"))
    got = c.get_arrays("stage/x", key)
    assert got is not None and np.array_equal(got["boxes"], good["boxes"]) and "__avseg__" not in got
    if damage == "other-values":  # same keys, shapes and dtypes, other values
        _rewrite(path, {"boxes": good["boxes"] + 1, "names": good["names"]})
    elif damage == "missing-key":
        _rewrite(path, {"boxes": good["boxes"]})
    elif damage == "wrong-shape":
        _rewrite(path, {"boxes": np.zeros((3,), np.float32), "names": good["names"]})
    elif damage == "wrong-dtype":
        _rewrite(path, {"boxes": good["boxes"].astype(np.int64), "names": good["names"]})
    elif damage == "bomb":
        _bomb(path)
    elif damage == "record-lies":  # our own record, with other values than it says
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["boxes"] = arrays["boxes"] * 2
        _rewrite(path, arrays)
    else:
        path.write_bytes(b"PK\x03\x04" + bytes(100))
    assert c.get_arrays("stage/x", key) is None
    assert c.counters == {"cache.invalid": 1} and len(c.rejected) == 1
    # a rewrite (what a miss does) makes it a hit again
    c.put_arrays("stage/x", key, good)
    again = c.get_arrays("stage/x", key)
    assert again is not None and np.array_equal(again["boxes"], good["boxes"])


def test_a_tampered_cache_changes_no_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every entry rewritten with other values: the run recomputes, warns once, and the masks
    are those of a run without the cache."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    wave = tone([440.0], 2.0)
    args = dict(proposer="saliency", filters=["score-threshold"], tiny=True)
    want = avseg.load(cache=False, **args)((frames, (wave, SR))).masks
    cache = tmp_path / "cache"
    avseg.load(cache=cache, **args)((frames, (wave, SR)))
    entries = list(cache.rglob("*.npz"))
    assert entries
    for p in entries:
        with np.load(p) as z:
            arrays = {k: z[k] for k in z.files if k != "__avseg__"}
        _rewrite(p, {k: (v + 3 if v.dtype.kind in "fiu" and v.size else v) for k, v in arrays.items()})
    capsys.readouterr()
    res = avseg.load(cache=cache, **args)((frames, (wave, SR)))
    err = capsys.readouterr().err
    assert np.array_equal(res.masks, want)
    assert res.meta["counters"].get("cache.invalid") == len(entries)
    assert err.count("not used") == 1 and "Traceback" not in err
