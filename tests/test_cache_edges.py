"""Stage-cache edges: the key's form, entries that are compressed or carry a malformed record
(a miss, warned about once per folder), what ``info`` lists and what ``clear`` removes and
returns. Fast, for ``make mutants`` on avseg/cache.py."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from avseg import cache
from avseg.cache import RECORD, StageCache, content_hash_of, make_key

KEY = "cd" * 20


def fresh(tmp_path: Path) -> StageCache:
    c = StageCache(tmp_path / "c")
    c.counters = {}
    return c


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def write_entry(path: Path, arrays: dict[str, np.ndarray], record: dict | None = None,
                compress: int = zipfile.ZIP_STORED) -> None:
    rec = record if record is not None else cache._record(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            zf.writestr(f"{k}.npy", npy(v), compress_type=compress)
        zf.writestr(f"{RECORD}.npy", npy(np.frombuffer(json.dumps(rec).encode(), np.uint8)))


def test_cache_key_is_40_hex_and_changes_with_each_part() -> None:
    k = make_key("owod", 1, {"t": 0.5}, "clip")
    assert len(k) == 40 and int(k, 16) >= 0
    assert len({k, make_key("owod", 2, {"t": 0.5}, "clip"), make_key("owod", 1, {"t": 0.6}, "clip"),
                make_key("owod", 1, {"t": 0.5}, "clip2")}) == 4


def test_cache_entry_in_a_one_level_namespace_is_listed_and_cleared(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    c.put_arrays("owod", KEY, {"x": np.arange(3)})
    assert c.get_arrays("owod", KEY)["x"].tolist() == [0, 1, 2]
    assert c.info()["owod"]["entries"] == 1
    assert c.clear(["owod"]) == 1 and c.info() == {}


def test_cache_info_lists_a_namespace_holding_only_metadata(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    c.put_arrays("stage/sam", KEY, {"x": np.arange(3)}, meta={"a": 1})
    next(c.root.rglob("*.npz")).unlink()
    info = c.info()["stage/sam"]
    assert info["entries"] == 0 and info["bytes"] > 0


def test_cache_clear_leaves_a_file_not_named_as_an_entry_in_an_entry_folder(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    c.put_arrays("stage/sam", KEY, {"x": np.arange(3)})
    notes = c.root / "stage" / "sam" / "cd" / "cd-notes.txt"
    notes.write_text("mine")
    assert c.info()["stage/sam"]["entries"] == 1
    assert c.clear() == 1 and notes.read_text() == "mine"


def test_cache_clear_returns_zero_for_a_missing_or_empty_folder(tmp_path: Path) -> None:
    assert StageCache(tmp_path / "none").clear() == 0
    (tmp_path / "empty").mkdir()
    assert StageCache(tmp_path / "empty").clear() == 0


def test_cache_clear_goes_on_when_another_process_removed_an_entry(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    c = fresh(tmp_path)
    for k in ("ab" * 20, "cd" * 20, "ef" * 20):
        c.put_arrays("stage/sam", k, {"x": np.arange(3)})
    real = Path.unlink
    first: list[Path] = []

    def racing_unlink(self: Path, missing_ok: bool = False) -> None:
        if not first:
            first.append(self)
            real(self)  # removed by someone else just before us
        real(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", racing_unlink)
    assert c.clear() == 2
    assert not list(c.root.rglob("*.npz"))


def test_cache_compressed_entry_is_a_miss_even_when_it_fits_in_the_file(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    a = {"x": np.random.default_rng(0).integers(0, 255, 4000).astype(np.uint8)}  # incompressible
    write_entry(c._path("stage/x", KEY, ".npz"), a, compress=zipfile.ZIP_DEFLATED)
    assert c.get_arrays("stage/x", KEY) is None
    assert "compressed" in c.rejected[0] and c.counters == {"cache.invalid": 1}


def test_cache_deflated_member_of_unchanged_size_is_still_compressed(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    r = np.random.default_rng(1).integers(0, 256, 4000).astype(np.uint8)
    path = c._path("stage/x", KEY, ".npz")
    for n in range(1050, 1200):  # random bytes whose deflated size equals their size (1066 here)
        write_entry(path, {"x": r[:n]}, compress=zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("x.npy")
        if info.compress_size == info.file_size:
            break
    else:
        pytest.fail("no deflated member of unchanged size found")
    assert c.get_arrays("stage/x", KEY) is None and "compressed" in c.rejected[0]


def test_cache_record_whose_layout_is_not_a_mapping_is_a_miss(tmp_path: Path) -> None:
    c = fresh(tmp_path)
    a = {"x": np.arange(3)}
    write_entry(c._path("stage/x", KEY, ".npz"), a, record={"arrays": ["x"], "sha256": content_hash_of(a)})
    assert c.get_arrays("stage/x", KEY) is None
    assert "integrity record is unreadable" in c.rejected[0]


def test_cache_warns_once_per_folder_and_cuts_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cache, "_WARNED", set())
    c = fresh(tmp_path)
    ns = "stage/" + "n" * 150
    c._path(ns, KEY, ".npz").mkdir(parents=True)  # a folder where the entry should be: unreadable
    assert c.get_arrays(ns, KEY) is None and c.get_arrays(ns, KEY) is None
    assert c.counters == {"cache.invalid": 2}
    assert capsys.readouterr().err.count("warning: stage cache entry") == 1
    msg = c.rejected[0].split(": unreadable: ", 1)[1]
    assert msg.startswith("IsADirectoryError: ") and len(msg) == len("IsADirectoryError: ") + 120


def test_cache_members_of_exactly_the_files_size_are_not_larger_than_it(tmp_path: Path) -> None:
    """A forged central directory declaring the members' sizes to add up to exactly the file's
    size: not "larger than the file" (the boundary), so it is refused later, as unreadable."""
    c = StageCache(tmp_path)
    c.counters = {}
    c.put_arrays("stage/x", KEY, {"a": np.arange(4.0)})
    path = next(tmp_path.rglob("*.npz"))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        delta = len(data) - sum(i.file_size for i in zf.infolist())
    at = data.index(b"PK\x01\x02")  # the first member's central directory entry: stored, so both sizes
    for off in (20, 24):
        size = int.from_bytes(data[at + off:at + off + 4], "little") + delta
        data[at + off:at + off + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert sum(i.file_size for i in zf.infolist()) == path.stat().st_size
    assert c.get_arrays("stage/x", KEY) is None and c.counters == {"cache.invalid": 1}
    assert "larger than the file" not in c.rejected[0] and "unreadable" in c.rejected[0], c.rejected
