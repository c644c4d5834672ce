"""The eval folder's lock (issue 26): an OS lock through filelock, the holder's host recorded,
and never a write through a link planted in its place."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from avseg.eval.folder import FolderLock
from avseg.testing import make_s4_tree
from tests.helpers import cli, one_line


def test_the_holder_names_its_host_and_pid_and_another_node_is_told(tmp_path: Path) -> None:
    with FolderLock(tmp_path):
        held = json.loads((tmp_path / ".lock.holder").read_text())
        assert held["host"] == socket.gethostname() and held["pid"] == os.getpid()
        # a holder on another node of a shared folder: its record is what the message shows
        (tmp_path / ".lock.holder").write_text(json.dumps({"host": "node-7", "pid": 4242, "since": "then"}))
        with pytest.raises(Exception, match="in use by another avseg eval .pid 4242 on host node-7, since then"):
            FolderLock(tmp_path).__enter__()
    assert (tmp_path / ".lock.holder").exists()  # not ours any more: left alone
    with FolderLock(tmp_path):  # released: taken again
        pass


@pytest.mark.parametrize("which", [".lock", ".lock.holder"])
def test_a_link_in_place_of_the_lock_is_never_written_through(tmp_path: Path, which: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 1}, size=16)
    precious = tmp_path / "thesis.tex"
    precious.write_text("years of work")
    out = tmp_path / "out"
    out.mkdir()
    (out / which).symlink_to(precious)
    code, _, err = cli(capsys, "eval", "--root", str(root), "--subset", "s4", "--out", str(out),
                       "--proposer", "saliency", "--filter", "score-threshold", "--no-cache")
    assert code == 2 and "is a link" in one_line(err)
    assert precious.read_text() == "years of work"
