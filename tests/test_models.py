"""avseg.models: the one model lifecycle (weights resolution and record, share key, tiny/random/
pretrained dispatch, strict checkpoint loading). The plugins' own tests prove each plugin uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from avseg.errors import AvsegError, WeightsMissing
from avseg.models import (
    CheckpointMismatch,
    ModelWeights,
    build_model,
    load_checkpoint,
    mismatch_report,
    resolve_weights,
    share_key,
    shared_model,
)
from avseg.runtime import Runtime
from avseg.weights import WeightFile
from tests.deps import requires

CKPT = WeightFile("model.pth")
TEXT = WeightFile("bert-base", hf_repo="org/bert-base", hf_files=("config.json",))


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in (("AVSEG_WEIGHTS_DIR", "w"), ("HF_HUB_CACHE", "hf"), ("TORCH_HOME", "th")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.mark.parametrize("rt, mode", [(Runtime(tiny=True, seed=3), "tiny"), (Runtime(random_init=True, seed=3), "random")])
def test_random_weights_look_nothing_up_and_record_the_mode(no_weights: Path, rt: Runtime, mode: str) -> None:
    w = resolve_weights("proposer 'x'", rt, "v", [CKPT], ["/does/not/exist.pth"])
    assert (w.mode, w.seed, w.files, w.path, w.used()) == (mode, 3, (), None, mode)
    assert w.tag() == f"{mode}-s3"


def test_pretrained_resolution_order_and_record(no_weights: Path) -> None:
    rt = Runtime()
    with pytest.raises(WeightsMissing) as ei:
        resolve_weights("proposer 'x'", rt, "v", [CKPT])
    assert "proposer 'x' (v)" in str(ei.value) and "\n" not in str(ei.value)
    in_dir = no_weights / "w" / "model.pth"
    in_dir.parent.mkdir(parents=True)
    in_dir.write_bytes(b"x")
    hub = no_weights / "th" / "hub" / "checkpoints" / "model.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"y")
    assert resolve_weights("x", rt, "v", [CKPT]).path == in_dir  # the weights dir before torch hub's
    in_dir.unlink()
    assert resolve_weights("x", rt, "v", [CKPT]).path == hub
    mine = no_weights / "mine.pth"
    mine.write_bytes(b"z")
    text = no_weights / "bert"
    text.mkdir()
    (text / "config.json").write_text("{}")
    w = resolve_weights("x", rt, "v", [CKPT, TEXT], [str(mine), str(text)])  # explicit paths win
    assert w.used() == {"model.pth": str(mine), "bert-base": str(text)}
    assert (w.path, w.file(1)) == (mine, text)
    with pytest.raises(WeightsMissing):  # an explicit path that is wrong is an error, not a fall-through
        resolve_weights("x", rt, "v", [CKPT], [str(no_weights / "nowhere.pth")])


def test_tag_names_the_checkpoint_and_its_folder(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "sam vit.pth", tmp_path / "b" / "sam vit.pth"
    ta = ModelWeights("pretrained", 0, (("f", a),)).tag()
    tb = ModelWeights("pretrained", 0, (("f", b),)).tag()
    assert ta.startswith("sam_vit.pth-") and ta != tb and "/" not in ta


def test_share_key_separates_everything_that_changes_the_model() -> None:
    rt = Runtime(device="cpu")
    base = ModelWeights("tiny", 0)
    key = share_key("m", "v", base, rt)
    others = {
        share_key("n", "v", base, rt),
        share_key("m", "w", base, rt),
        share_key("m", "v", ModelWeights("random", 0), rt),
        share_key("m", "v", ModelWeights("tiny", 1), rt),
        share_key("m", "v", ModelWeights("pretrained", 0, (("f", Path("/a")),)), rt),
        share_key("m", "v", ModelWeights("pretrained", 0, (("f", Path("/b")),)), rt),
        share_key("m", "v", base, rt, "video"),
    }
    assert key not in others and len(others) == 7
    assert share_key("m", "v", base, Runtime(device="cpu")) == key
    # the seed does not matter for a checkpoint
    p0, p1 = (ModelWeights("pretrained", s, (("f", Path("/a")),)) for s in (0, 1))
    assert share_key("m", "v", p0, rt) == share_key("m", "v", p1, rt)


def test_shared_model_builds_once_per_key() -> None:
    rt = Runtime(device="cpu")
    built: list[int] = []

    def build() -> object:
        built.append(1)
        return object()

    w = ModelWeights("tiny", 0)
    first = shared_model(rt, "m", "v", w, build)
    assert shared_model(rt, "m", "v", w, build) is first and len(built) == 1
    assert shared_model(rt, "m", "v", ModelWeights("tiny", 1), build) is not first and len(built) == 2


@pytest.mark.parametrize("mode", ["tiny", "random", "pretrained"])
def test_build_model_dispatches_on_the_mode(mode: str) -> None:
    w = ModelWeights(mode, 0, (("f", Path("/p")),) if mode == "pretrained" else ())
    got = build_model(w, tiny=lambda: "tiny", random=lambda: "random", pretrained=lambda ww: f"pretrained {ww.path}")
    assert got == {"tiny": "tiny", "random": "random", "pretrained": "pretrained /p"}[mode]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="weights mode"):
        resolve_weights("x", Runtime(), None, [], mode="real")


def test_mismatch_report_is_one_line_and_counts() -> None:
    msg = mismatch_report("ckpt.pth", ["a", "b", "c", "d"], ["e"])
    assert msg == "ckpt.pth does not fit the model: 4 missing keys (a, b, c, ...), 1 unexpected (e)"
    assert mismatch_report("p", [], ["x"], expected="an X checkpoint") == "p is not an X checkpoint: 1 unexpected (x)"


def test_load_checkpoint_is_strict_unless_told_why() -> None:
    torch = requires("torch")  # the loader itself needs torch; the rest of this file does not
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    load_checkpoint(model, state, "ok.pth")
    assert torch.equal(model[0].weight, torch.ones(3, 2))
    lacking = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(CheckpointMismatch, match=r"^old.pth does not fit the model: 1 missing key \(1.running_var\)$"):
        load_checkpoint(model, lacking, "old.pth")
    load_checkpoint(model, lacking, "old.pth", may_lack=lambda k: k.endswith("running_var"))
    extra = {**state, "head.weight": torch.zeros(1)}
    with pytest.raises(CheckpointMismatch, match="1 unexpected"):
        load_checkpoint(model, extra, "x.pth")
    load_checkpoint(model, extra, "x.pth", may_carry=lambda k: k.startswith("head."))
    with pytest.raises(CheckpointMismatch) as ei:  # a shape mismatch: one line, naming the file
        load_checkpoint(model, {**state, "0.weight": torch.ones(4, 2)}, "big.pth", expected="a tiny checkpoint")
    assert str(ei.value).startswith("big.pth is not a tiny checkpoint: size mismatch") and "\n" not in str(ei.value)
    assert isinstance(ei.value, AvsegError)
