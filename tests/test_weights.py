"""The weights manager: resolution order, honest listing, offline fetch, verification, safe loading."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from avseg.cli import main
from avseg.errors import AvsegError, WeightsMissing
from avseg.weights import WeightFile, fetch, load_state_dict, locate, require, verify


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in (("AVSEG_WEIGHTS_DIR", "avseg"), ("HF_HOME", "hf"), ("TORCH_HOME", "torch")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path


FILE = WeightFile(filename="model.pth", url="http://127.0.0.1:9/model.pth", sha256=None)
REPO = WeightFile(filename="tiny-repo", hf_repo="org/tiny-repo", hf_files=("config.json", "model.safetensors"))


def test_resolution_order(isolated_dirs: Path) -> None:
    res = locate(FILE)
    assert not res.found
    assert res.looked == [str(isolated_dirs / "avseg" / "model.pth"), str(isolated_dirs / "torch/hub/checkpoints/model.pth")]
    hub = isolated_dirs / "torch/hub/checkpoints/model.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert locate(FILE).path == hub
    mine = isolated_dirs / "avseg/model.pth"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"y")
    assert locate(FILE).path == mine  # AVSEG_WEIGHTS_DIR beats torch hub
    explicit = isolated_dirs / "elsewhere.pth"
    explicit.write_bytes(b"z")
    assert locate(FILE, explicit).path == explicit
    assert locate(FILE, isolated_dirs / "typo.pth").looked == [str(isolated_dirs / "typo.pth")]


def test_hf_cache_snapshot_is_found(isolated_dirs: Path) -> None:
    snap = isolated_dirs / "hf/hub/models--org--tiny-repo/snapshots/abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert not locate(REPO).found  # incomplete snapshot
    (snap / "model.safetensors").write_bytes(b"")
    ref = isolated_dirs / "hf/hub/models--org--tiny-repo/refs/main"
    ref.parent.mkdir(parents=True)
    ref.write_text("abc123")
    assert locate(REPO).path == snap


def test_missing_weights_message_is_one_actionable_line(isolated_dirs: Path) -> None:
    with pytest.raises(WeightsMissing) as e:
        require("segmenter 'sam'", "vit_b", FILE)
    msg = str(e.value)
    assert "\n" not in msg and "model.pth" in msg and str(isolated_dirs / "avseg") in msg
    assert "avseg weights fetch sam" in msg and "--tiny" in msg


def test_fetch_offline_fails_with_one_line(isolated_dirs: Path) -> None:
    with pytest.raises(AvsegError) as e:
        fetch(FILE)
    msg = str(e.value)
    assert "\n" not in msg and "cannot download http://127.0.0.1:9/model.pth" in msg
    assert str(isolated_dirs / "avseg" / "model.pth") in msg


def test_verify_size_and_sha256(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"avseg")
    digest = hashlib.sha256(b"avseg").hexdigest()
    assert verify(f, WeightFile("w.bin", size=5, sha256=digest)) is None
    assert verify(f, WeightFile("w.bin", sha256=digest[:6])) is None  # torch-hub style prefix
    assert "size 5 != expected 6" in str(verify(f, WeightFile("w.bin", size=6)))
    assert "does not match" in str(verify(f, WeightFile("w.bin", sha256="00" * 32)))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    import torch

    good = tmp_path / "good.pth"
    torch.save({"model": {"w": torch.ones(2)}}, good)
    assert load_state_dict(good)["w"].tolist() == [1.0, 1.0]

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    bad = tmp_path / "bad.pth"
    bad.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(AvsegError, match="refusing to load .*bad.pth: it needs pickle code execution"):
        load_state_dict(bad)


def test_weights_list_tells_the_truth_offline(capsys: pytest.CaptureFixture[str], isolated_dirs: Path) -> None:
    with pytest.raises(SystemExit):
        main(["weights", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    sam = [r for r in rows if r["component"] == "sam" and r["variant"] == "vit_b"][0]
    assert sam["present"] is False and sam["file"] == "sam_vit_b_01ec64.pth"
    assert str(isolated_dirs / "avseg" / "sam_vit_b_01ec64.pth") in sam["looked"]
    # place the file by hand where the message says, and the listing sees it
    (isolated_dirs / "avseg").mkdir(exist_ok=True)
    (isolated_dirs / "avseg" / "sam_vit_b_01ec64.pth").write_bytes(b"")
    with pytest.raises(SystemExit):
        main(["weights", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r for r in rows if r["component"] == "sam" and r["variant"] == "vit_b"][0]["present"] is True


def test_weights_fetch_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["weights", "fetch", "smа"])
    assert e.value.code == 2
    assert "no component" in capsys.readouterr().err


def test_a_checkpoint_folder_that_does_not_load_is_one_line(tmp_path: Path) -> None:
    from transformers import Sam2Model, Sam2Processor

    from avseg.weights import load_hf_folder

    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(AvsegError) as err:
        load_hf_folder("segmenter 'sam2'", tmp_path, Sam2Model, Sam2Processor)
    msg = str(err.value)
    assert msg.startswith(f"segmenter 'sam2': cannot load {tmp_path}: ") and "\n" not in msg
