"""What a resumed ``avseg eval`` accepts from an output folder: the folder's ``config.json`` must be
this run's config (or ``--overwrite``), and each progress file must be whole, in range and made by
this config; anything else stops the eval with one line and the ``--repair`` command, and
``--repair`` deletes just those files. The folder is written as an eval writes it, with the eval's
own metrics and writers (a module fixture; one test checks that a real eval's folder holds the same
keys and resumes); each test damages a copy and asks the resume checks of avseg/eval/folder.py
directly, so that ``make mutants`` can judge them quickly (without the real eval).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avseg.errors import UsageError
from avseg.eval.folder import check_config, config_id, load_states
from avseg.eval.metrics import BinaryMetrics
from avseg.outputs import atomic_write_json

#: the identity a real eval records (see test_a_real_eval_folder_is_what_these_tests_damage)
IDENT: dict[str, Any] = {
    "pipeline": {"steps": [{"proposer": {"type": "saliency"}}, {"filter": {"type": "score-threshold"}}]},
    "subset": "s4", "split": "test", "tiny": False,
    "steps": [{"proposer": {"type": "saliency"}}, {"filter": {"type": "score-threshold"}}],
    "components": {"filter:score-threshold": {"provider": "avseg-filters", "version": "1.0", "fingerprint": "f" * 16},
                   "proposer:saliency": {"provider": "avseg", "version": "1.0", "fingerprint": "a" * 16}},
}
CLIPS = ("clip-a", "clip-b", "clip-c")


def write_folder(out: Path, ident: dict[str, Any]) -> Path:
    """An eval folder with three finished clips of five frames, each scored by the eval's own
    metrics (frame 2 of every clip has an empty ground truth), written as an eval writes them."""
    check_config(out, ident, overwrite=False, repair=False)
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 1
    pred = np.zeros((8, 8), np.uint8)
    pred[3:7, 3:7] = 1
    for cid in CLIPS:
        gts = [gt, gt, np.zeros_like(gt), gt, gt]
        state = {"clip_id": cid, "binary": BinaryMetrics().add_clip(cid, [pred] * 5, gts, list(range(5))).to_dict(),
                 "empty": {}, "category": "cat", "time": 0.5, "warnings": [], "config_id": config_id(ident)}
        atomic_write_json(out / "clips" / f"{cid}.json", state)
    return out


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("resume") / "out", IDENT)


def test_a_real_eval_folder_is_what_these_tests_damage(tmp_path: Path, done: Path) -> None:
    """A real eval's folder resumes and holds what :func:`write_folder` writes (the same keys),
    so the fast tests below damage the files avseg writes (deselected in ``make mutants``)."""
    from avseg.cli import main
    from avseg.testing import make_s4_tree

    root = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 3}, size=16)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["eval", "--root", str(root), "--subset", "s4", "--out", str(out), "--proposer", "saliency", "--filter",
              "score-threshold", "--no-cache"])
    assert not e.value.code
    real = ident(out)
    check_config(out, real, overwrite=False, repair=False)
    states = load_states(out, real)
    assert sorted(states) == [f.stem for f in files(out)] and len(states) == 3
    ours = json.loads(files(done)[0].read_text())
    for s in states.values():
        assert set(s) == set(ours) and set(s["binary"]) == set(ours["binary"])
        assert s["config_id"] == config_id(real)
    assert set(real) == set(IDENT) and set(real["components"]) == set(IDENT["components"])


@pytest.fixture
def out(done: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(done, dst)
    return dst


def ident(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "config.json").read_text()))


def files(out: Path) -> list[Path]:
    return sorted((out / "clips").glob("*.json"))


def edit(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


# -- config.json -------------------------------------------------------------------------------
def test_the_same_config_resumes_every_clip(out: Path) -> None:
    me = ident(out)
    check_config(out, me, overwrite=False, repair=False)
    assert sorted(load_states(out, me)) == [f.stem for f in files(out)]
    assert sorted(load_states(out, me, wanted={files(out)[1].stem})) == [files(out)[1].stem]
    assert json.loads((out / "config.json").read_text()) == me
    # the same identity built in another key order is the same config
    reordered = json.loads(json.dumps(dict(reversed(list(me.items())))))
    assert sorted(load_states(out, reordered)) == [f.stem for f in files(out)]


def test_another_config_is_refused_unless_overwritten(out: Path) -> None:
    other = {**ident(out), "split": "val"}
    with pytest.raises(UsageError, match=rf"^{out} holds results of a different pipeline config; choose another "
                                         r"--out or pass --overwrite$"):
        check_config(out, other, overwrite=False, repair=True)
    check_config(out, other, overwrite=True, repair=False)  # overwrite: the old clips go
    assert files(out) == [] and json.loads((out / "config.json").read_text()) == other


def test_a_config_without_components_differing_is_a_different_config(out: Path) -> None:
    me = {k: v for k, v in ident(out).items() if k != "components"}
    (out / "config.json").write_text(json.dumps(me))
    check_config(out, me, overwrite=False, repair=False)
    with pytest.raises(UsageError, match="different pipeline config"):
        check_config(out, {**me, "tiny": not me.get("tiny")}, overwrite=False, repair=False)


@pytest.mark.parametrize("field", ["provider", "version", "fingerprint"])
def test_changed_component_code_is_named(out: Path, field: str) -> None:
    me = ident(out)
    name = sorted(me["components"])[-1]
    now = json.loads(json.dumps(me))
    now["components"][name][field] = "new"
    old = me["components"][name].get(field)
    with pytest.raises(UsageError, match=rf"^{out} holds results made by other code: {name} {field} changed from "
                                         rf"{old!r} to 'new'; choose another --out or pass --overwrite$"):
        check_config(out, now, overwrite=False, repair=False)


def test_a_new_component_or_missing_versions(out: Path) -> None:
    me = ident(out)
    more = json.loads(json.dumps(me))
    more["components"]["brand-new"] = {"provider": "x", "version": "1", "fingerprint": "f"}
    with pytest.raises(UsageError, match="different pipeline config"):  # not blamed on code: another pipeline
        check_config(out, more, overwrite=False, repair=False)
    old = {**me, "components": None}
    (out / "config.json").write_text(json.dumps(old))
    with pytest.raises(UsageError, match="made by other code: it records no component versions"):
        check_config(out, me, overwrite=False, repair=False)


@pytest.mark.parametrize("content", ["{", "[1, 2]", "\"text\""])
def test_an_unreadable_config_is_repaired_keeping_the_clips(out: Path, content: str) -> None:
    me = ident(out)
    (out / "config.json").write_text(content)
    with pytest.raises(UsageError, match=rf"^{out / 'config.json'} is unreadable \(.+\); finished clips are kept "
                                         r"when you repair it with: .*--repair"):
        check_config(out, me, overwrite=False, repair=False)
    check_config(out, me, overwrite=False, repair=True)
    assert json.loads((out / "config.json").read_text()) == me and len(load_states(out, me)) == 3


# -- progress files ----------------------------------------------------------------------------
def test_progress_files_of_another_config_are_refused_then_repaired(out: Path) -> None:
    me = ident(out)
    first, second, third = files(out)
    for f in (first, third):
        edit(f, lambda d: d.update(config_id="0" * 16))
    with pytest.raises(UsageError, match=rf"^progress file {first} was made by a different pipeline config and 1 "
                                         r"more progress files; choose another --out, or recompute just those "
                                         r"clips with: .*--repair"):
        load_states(out, me)
    assert sorted(load_states(out, me, repair=True)) == [second.stem]
    assert files(out) == [second]


def test_an_unreadable_file_is_named_before_another_configs(out: Path) -> None:
    me = ident(out)
    first, second, _ = files(out)
    edit(first, lambda d: d.update(config_id="0" * 16))
    second.write_text("{")
    with pytest.raises(UsageError, match=rf"^progress file {second} is unreadable \(.+\) and 1 more progress files; "
                                         r"recompute just those clips with: .*--repair"):
        load_states(out, me)


def test_one_unreadable_file_alone(out: Path) -> None:
    f = files(out)[2]
    f.write_text("[]")
    with pytest.raises(UsageError, match=rf"^progress file {f} is unreadable \(ValueError: expected a JSON object, got list\); "
                                         r"recompute"):
        load_states(out, ident(out))


def set_iou(v: float) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["binary"]["iou"].__setitem__(0, v)


def set_curve(fn: Callable[[list[float]], Any]) -> Callable[[dict[str, Any]], Any]:
    return lambda d: fn(d["binary"]["fcurves"][1])


@pytest.mark.parametrize(("damage", "why"), [
    (lambda d: d.update(clip_id="other"), "clip_id 'other' does not match the file name"),
    (lambda d: d["binary"].update(clip_id="other"), "binary.clip_id 'other' does not match the file name"),
    (lambda d: d["binary"]["iou"].pop(), "4 IoUs and 5 F curves for 5 frames"),
    (lambda d: d["binary"]["fcurves"].pop(), "5 IoUs and 4 F curves for 5 frames"),
    (set_iou(1.0 + 1e-6), "an IoU outside [0, 1]"),
    (set_iou(-1e-6), "an IoU outside [0, 1]"),
    (set_iou(float("nan")), "an IoU outside [0, 1]"),
    (set_curve(lambda c: c.pop()), "an F curve that is not 255 values in [0, 1]"),
    (set_curve(lambda c: c.append(0.5)), "an F curve that is not 255 values in [0, 1]"),
    (set_curve(lambda c: c.__setitem__(-1, 1.01)), "an F curve that is not 255 values in [0, 1]"),
    (lambda d: d.update(warnings="w"), "warnings: expected a list of strings"),
    (lambda d: d.update(warnings=["w", 3]), "warnings: expected a list of strings"),
    (lambda d: d.update(category=3), "category: expected a string"),
    (lambda d: d.update(plugin_metrics=[]), "plugin_metrics: expected a mapping of [sum, count] pairs"),
    (lambda d: d.update(plugin_metrics={"m": [1.0]}), "plugin_metrics: expected a mapping of [sum, count] pairs"),
    (lambda d: d.update(plugin_metrics={"m": [1.0, "2"]}), "plugin_metrics: expected a mapping of [sum, count] pairs"),
    (lambda d: d.update(plugin_metrics={"m": [float("inf"), 2]}), "plugin_metrics: expected a mapping of [sum, count]"
                                                                  " pairs"),
    (lambda d: d.update(plugin_metrics={"m": 1.0}), "plugin_metrics: expected a mapping of [sum, count] pairs"),
    (lambda d: d.update(plugin_metric_errors=[]), "plugin_metric_errors: expected a mapping of strings"),
    (lambda d: d.update(plugin_metric_errors={"m": 1}), "plugin_metric_errors: expected a mapping of strings"),
])
def test_a_damaged_progress_file_is_named_with_why(out: Path, damage: Callable[[dict[str, Any]], Any],
                                                   why: str) -> None:
    f = files(out)[1]
    edit(f, damage)
    with pytest.raises(UsageError) as e:
        load_states(out, ident(out))
    assert str(e.value).startswith(f"progress file {f} is unreadable (ValueError: {why})"), str(e.value)
    assert sorted(load_states(out, ident(out), repair=True)) == [files(out)[0].stem, files(out)[1].stem]


@pytest.mark.parametrize("damage", [
    set_iou(1.0 + 1e-10), set_iou(-1e-10), set_iou(0.0),  # rounding at the ends is tolerated
    set_curve(lambda c: c.__setitem__(0, 1.0 + 1e-10)),
    lambda d: d.update(category=None), lambda d: d.update(warnings=["a warning"]),
    lambda d: d.update(plugin_metrics={"m": [1, 2], "n": [0.5, 1.0]}, plugin_metric_errors={"k": "failed"}),
    lambda d: d.pop("config_id"),  # an older file without one: the folder's config.json vouches for it
])
def test_what_a_progress_file_may_hold(out: Path, damage: Callable[[dict[str, Any]], Any]) -> None:
    f = files(out)[1]
    edit(f, damage)
    assert f.stem in load_states(out, ident(out))


def test_empty_gt_frames_have_no_curve(out: Path) -> None:
    f = files(out)[0]
    edit(f, lambda d: d["binary"]["fcurves"].__setitem__(2, None))
    assert f.stem in load_states(out, ident(out))


# -- the semantic areas of an AVSS eval -----------------------------------------------------------
def with_areas(out: Path, change: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    """Every progress file given per-class areas (3 classes, zeros included); ``change`` damages the second."""
    for i, f in enumerate(files(out)):
        def add(d: dict[str, Any], f: Path = f) -> None:
            d["semantic"] = {"clip_id": f.stem, "frames": list(range(5)), "inter": [[0, 1, 2]] * 5,
                             "pred": [[0, 2, 2]] * 5, "label": [[3, 1, 4]] * 5}
        edit(f, add)
        if i == 1 and change is not None:
            edit(f, change)
    return files(out)[1]


def test_semantic_areas_resume(out: Path) -> None:
    with_areas(out)
    assert len(load_states(out, ident(out), semantic=True)) == 3
    f = with_areas(out, lambda d: d["semantic"].update(frames=[], inter=[], pred=[], label=[]))
    assert f.stem in load_states(out, ident(out), semantic=True)  # no annotated frame: no rows
    f = with_areas(out, lambda d: d["semantic"].update(inter=[[]] * 5, pred=[[]] * 5, label=[[]] * 5))
    assert f.stem in load_states(out, ident(out), semantic=True)  # rows without classes


@pytest.mark.parametrize(("damage", "why"), [
    (lambda d: d["semantic"]["inter"].pop(), "semantic: the per-frame area lists differ in length"),
    (lambda d: d["semantic"]["pred"].pop(), "semantic: the per-frame area lists differ in length"),
    (lambda d: d["semantic"]["label"].pop(), "semantic: the per-frame area lists differ in length"),
    (lambda d: d["semantic"]["frames"].pop(), "semantic: the per-frame area lists differ in length"),
    (lambda d: d["semantic"]["label"].__setitem__(4, [3, 1]), "semantic: per-class areas of unequal length or "
                                                              "negative"),
    (lambda d: d["semantic"]["pred"].__setitem__(0, [0, -1, 2]), "semantic: per-class areas of unequal length or "
                                                                 "negative"),
])
def test_damaged_semantic_areas_are_named(out: Path, damage: Callable[[dict[str, Any]], Any], why: str) -> None:
    f = with_areas(out, damage)
    with pytest.raises(UsageError) as e:
        load_states(out, ident(out), semantic=True)
    assert str(e.value).startswith(f"progress file {f} is unreadable (ValueError: {why})"), str(e.value)
    assert len(load_states(out, ident(out), semantic=False)) == 3  # a binary eval does not read them


def test_a_long_reason_is_cut_at_80_characters(out: Path) -> None:
    f = files(out)[1]
    edit(f, lambda d: d.update(clip_id="x" * 100))
    with pytest.raises(UsageError) as e:
        load_states(out, ident(out))
    reason = f"clip_id '{'x' * 100}' does not match the file name"[:80]
    assert str(e.value).startswith(f"progress file {f} is unreadable (ValueError: {reason}); "), str(e.value)


# -- what the checks must still tell apart (survivors of make mutants) ---------------------------
def test_a_legacy_config_is_refused_with_why(out: Path) -> None:
    legacy = {**ident(out), "pipeline": {"tagger": "ast", "proposer": "owod", "filters": ["score-threshold"]}}
    (out / "config.json").write_text(json.dumps(legacy))
    with pytest.raises(UsageError, match=r"records its pipeline in the form avseg wrote before steps"):
        check_config(out, IDENT, overwrite=False, repair=False)
    # the same legacy record as this run's own identity is this run's folder, not refused
    check_config(out, legacy, overwrite=False, repair=False)


def test_a_changed_parameter_and_component_is_a_different_config(out: Path) -> None:
    now = json.loads(json.dumps(ident(out)))
    now["split"] = "val"
    now["components"]["proposer:saliency"]["version"] = "2.0"
    with pytest.raises(UsageError, match=r"holds results of a different pipeline config"):
        check_config(out, now, overwrite=False, repair=False)


def test_a_changed_component_after_a_new_one_is_named(out: Path) -> None:
    me = ident(out)
    comps = {"a-new:one": {"provider": "x", "version": "1", "fingerprint": "f"},
             **json.loads(json.dumps(me["components"]))}
    comps["proposer:saliency"]["version"] = "2.0"
    with pytest.raises(UsageError, match=r"made by other code: proposer:saliency version changed from '1.0' to '2.0'"):
        check_config(out, {**me, "components": comps}, overwrite=False, repair=False)


def test_the_config_id_is_16_hex_digits_and_follows_the_identity() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", config_id(IDENT))
    assert config_id({**IDENT, "split": "val"}) != config_id(IDENT)


def test_an_unreadable_configs_reason_is_cut_at_80_characters(out: Path) -> None:
    content = "{" + " " * 1000 + "x"
    with pytest.raises(ValueError) as parsed:
        json.loads(content)
    reason = " ".join(str(parsed.value).split())
    assert len(reason) > 80
    (out / "config.json").write_text(content)
    with pytest.raises(UsageError) as e:
        check_config(out, IDENT, overwrite=False, repair=False)
    assert f"is unreadable (JSONDecodeError: {reason[:80]}); " in str(e.value), str(e.value)


@pytest.mark.parametrize("iou", [-1e-9, 1.0 + 1e-9])
def test_an_iou_at_the_tolerance_resumes(out: Path, iou: float) -> None:
    f = files(out)[1]
    edit(f, set_iou(iou))
    assert f.stem in load_states(out, IDENT)


def test_a_repair_goes_on_when_another_repair_removed_a_bad_file(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import avseg.eval.folder as folder

    first, second, third = files(out)
    first.write_text("[]")
    third.write_text("[]")
    check = folder._check_state

    def racing(s: Any, stem: str, semantic: bool) -> None:
        try:
            check(s, stem, semantic)
        except Exception:
            (out / "clips" / f"{stem}.json").unlink()  # another repair of this folder got there first
            raise

    monkeypatch.setattr(folder, "_check_state", racing)
    assert sorted(load_states(out, IDENT, repair=True)) == [second.stem]
    assert files(out) == [second]
