"""The stage cache: atomic entries, concurrent processes, info and clear."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from avseg.cache import StageCache, make_key
from avseg.cli import main


def test_round_trip_and_keys(tmp_path: Path) -> None:
    c = StageCache(tmp_path)
    k = make_key("sam", "1.0", {"variant": "vit_b"}, ["clip", "hash"])
    assert k == make_key("sam", "1.0", {"variant": "vit_b"}, ["clip", "hash"])
    assert k != make_key("sam", "1.0", {"variant": "vit_h"}, ["clip", "hash"])
    assert c.get_arrays("stage/sam", k) is None
    c.put_arrays("stage/sam", k, {"a": np.arange(3), "names": np.asarray(["dog", "cat"])}, {"what": "x"})
    got = c.get_arrays("stage/sam", k)
    assert got is not None and got["a"].tolist() == [0, 1, 2] and got["names"].tolist() == ["dog", "cat"]
    assert c.get_meta("stage/sam", k) == {"what": "x"}
    assert not list(tmp_path.rglob("*.tmp"))


def test_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    c = StageCache(tmp_path)
    c.put_arrays("stage/x", "ab" * 20, {"a": np.ones(4)})
    next(tmp_path.rglob("*.npz")).write_bytes(b"PK\x03\x04 broken")
    assert c.get_arrays("stage/x", "ab" * 20) is None


def _writer(root: str, n: int) -> None:
    c = StageCache(root)
    for i in range(n):
        c.put_arrays("stage/w", "cd" * 20, {"v": np.full(200_000, i % 2, np.int8)})


def test_two_processes_never_see_a_half_written_entry(tmp_path: Path) -> None:
    p = mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), 60))
    p.start()
    c = StageCache(tmp_path)
    seen = 0
    while p.is_alive() or seen == 0:
        got = c.get_arrays("stage/w", "cd" * 20)
        if got is not None:
            v = got["v"]
            assert len(v) == 200_000 and (v == v[0]).all()  # one whole write, never a mix or a prefix
            seen += 1
    p.join()
    assert p.exitcode == 0 and seen > 0


def test_cache_info_and_clear_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StageCache(tmp_path)
    for i in range(3):
        c.put_arrays("stage/owod", f"{i:02d}" * 20, {"a": np.ones(10)})
    c.put_arrays("stage/imagebind", "ff" * 20, {"a": np.ones(10)})
    with pytest.raises(SystemExit):
        main(["cache", "info", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "stage/owod" in out and " 3 entries" in out and "stage/imagebind" in out
    with pytest.raises(SystemExit):
        main(["cache", "clear", "--component", "owod", "--cache-dir", str(tmp_path)])
    assert "removed 3 entries" in capsys.readouterr().out
    assert set(StageCache(tmp_path).info()) == {"stage/imagebind"}
    with pytest.raises(SystemExit):
        main(["cache", "clear", "--cache-dir", str(tmp_path)])
    assert StageCache(tmp_path).info() == {}


def test_clear_by_component_reaches_its_memo_entries_not_by_dtype(tmp_path: Path) -> None:
    """A memo namespace ends in variant/kind/tag/dtype: ``--component sam`` must clear SAM's image
    embeddings, and a dtype is not a component."""
    c = StageCache(tmp_path)
    c.put_arrays("memo/sam-image/vit_b/random/0/float32", "aa" * 20, {"a": np.ones(4)})
    c.put_arrays("stage/owod", "bb" * 20, {"a": np.ones(4)})
    assert c.clear(["float32"]) == 0
    assert c.clear(["sam"]) == 1
    assert set(StageCache(tmp_path).info()) == {"stage/owod"}
