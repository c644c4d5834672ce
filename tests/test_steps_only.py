"""Steps are the only internal form (issue 22): legacy keys and CLI options become steps once, at
the edge (normalise/compose); everything after works on steps; files of the previous version
are read back or refused with one line naming the file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from avseg.errors import ConfigError, UsageError
from avseg.registry import load_registry
from avseg.spec import LEGACY_KEYS, ResolvedSpec, compose, normalise, resolve

PRESETS = Path(__file__).parents[1] / "avseg" / "presets"


@pytest.fixture(scope="module")
def reg():  # type: ignore[no-untyped-def]
    return load_registry()


def _order(spec: dict) -> list[str]:  # type: ignore[type-arg]
    return [f"{k}:{b['type']}" for x in spec["steps"] for k, b in x.items()]


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_preset_is_written_as_steps(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw.get("steps"), list) and raw["steps"], path.name
    assert not set(LEGACY_KEYS) & set(raw), path.name
    assert {"description", "provenance", "audio", "frames"} <= set(raw), path.name


def test_resolved_spec_carries_only_steps(reg) -> None:  # type: ignore[no-untyped-def]
    fields = {f.name for f in dataclasses.fields(ResolvedSpec)}
    assert fields == {"steps", "warnings", "audio", "frames", "combiner"}
    rs = resolve(compose("owod-bind", registry=reg), reg)
    assert rs.first("segmenter") is rs.steps[-1] and rs.first("tagger") is None
    assert [s.name for s in rs.of_kind("filter")] == ["score-threshold", "bind"]
    d = rs.as_dict()
    assert not set(LEGACY_KEYS) & set(d)
    assert [next(iter(x)) for x in d["steps"]] == ["proposer", "filter", "embedder", "filter", "segmenter"]
    assert d["steps"][1]["filter"]["threshold"] == 0.5  # every parameter, in the step's mapping


LEGACY_OWOD_BIND = """\
proposer: {type: owod}
embedder: imagebind
segmenter: {type: sam}
tagger: null
filters:
  - {type: score-threshold, threshold: 0.5}
  - {type: bind, mode: cosine, cosine_threshold: 0.7}
frames: {size: [224, 224]}
audio: {window: 0.96, channels: first}
"""


def test_a_legacy_spec_file_becomes_steps_at_load(reg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "old.yaml"
    f.write_text(LEGACY_OWOD_BIND)
    spec = compose(str(f), registry=reg, sets=["filter[bind].cosine_threshold=0.5"])
    assert not set(LEGACY_KEYS) & set(spec)
    # the order the pre-steps executor ran: the embedder just before the filter needing it, SAM last
    assert _order(spec) == ["proposer:owod", "filter:score-threshold", "embedder:imagebind", "filter:bind",
                            "segmenter:sam"]
    got, want = resolve(spec, reg), resolve(compose("owod-bind", registry=reg), reg)
    assert [(s.kind, s.name) for s in got.steps] == [(s.kind, s.name) for s in want.steps]
    assert got.of_kind("filter")[1].config.cosine_threshold == 0.5  # type: ignore[attr-defined]
    # a tag filter right after the tagger; a segmenter before the first filter needing masks
    spec = normalise({"tagger": "ast", "proposer": "gdino", "segmenter": "sam",
                      "filters": [{"type": "tag-threshold"}]}, reg)
    assert _order(spec) == ["tagger:ast", "filter:tag-threshold", "proposer:gdino", "segmenter:sam"]


def test_a_legacy_embedder_no_filter_uses_is_left_out_with_a_note(reg) -> None:  # type: ignore[no-untyped-def]
    spec = normalise({"proposer": "sam-grid", "embedder": "imagebind", "filters": ["nms"]}, reg)
    assert _order(spec) == ["proposer:sam-grid", "filter:nms"]
    assert any("'imagebind'" in n and "no filter uses its embeddings" in n for n in spec["notes"])
    assert any("no filter uses" in w for w in resolve(spec, reg).warnings)


def test_legacy_and_steps_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        normalise({"steps": [{"proposer": "owod"}], "filters": ["bind"]})


def test_a_config_recorded_by_the_previous_version_loads_as_steps(reg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """run.json's ``config`` before steps-only: legacy keys, with the order as "kind:name" strings."""
    old = {"steps": ["proposer:owod", "filter:score-threshold", "segmenter:sam", "embedder:imagebind", "filter:bind"],
           "tagger": None, "proposer": {"type": "owod"}, "embedder": {"type": "imagebind", "regions": "masked"},
           "segmenter": {"type": "sam"}, "filters": [{"type": "score-threshold", "threshold": 0.2},
                                                     {"type": "bind", "mode": "softmax"}],
           "audio": {"window": 0.96}, "frames": {"size": None}}
    f = tmp_path / "recorded.yaml"
    f.write_text(yaml.safe_dump(old))
    spec = compose(str(f), registry=reg)
    assert _order(spec) == old["steps"]
    rs = resolve(spec, reg)
    assert rs.first("embedder").config.regions == "masked"  # type: ignore[union-attr]
    # and today's record loads back to the same resolved chain
    again = resolve(rs.as_dict(), reg)
    assert again.as_dict() == rs.as_dict()


@pytest.mark.parametrize("assignment,check", [
    ("filter[bind].cosine_threshold=0.3", lambda rs: rs.of_kind("filter")[1].config.cosine_threshold == 0.3),
    ("filter.bind.cosine_threshold=0.4", lambda rs: rs.of_kind("filter")[1].config.cosine_threshold == 0.4),
    ("filter.0.threshold=0.6", lambda rs: rs.of_kind("filter")[0].config.threshold == 0.6),
    ("proposer.top_k=7", lambda rs: rs.proposer.config.top_k == 7),
    ("proposer[owod].top_k=8", lambda rs: rs.proposer.config.top_k == 8),
    ("audio.window=1.0", lambda rs: rs.audio.window == 1.0),
    ("frames.size=null", lambda rs: rs.frames.size is None),
])
def test_every_set_form_reaches_the_steps(reg, assignment: str, check) -> None:  # type: ignore[no-untyped-def]
    assert check(resolve(compose("owod-bind", sets=[assignment], registry=reg), reg))


@pytest.mark.parametrize("assignment,message", [
    ("proposer[sam-grid].points_per_side=4", "no proposer 'sam-grid'"),
    ("filter[avis].tag_threshold=0.1", "no filter 'avis'"),
    ("filter[bind.cosine_threshold=0.1", "KIND[NAME].param"),
    ("tagger.threshold=0.1", "no tagger"),
])
def test_set_forms_refuse_what_the_pipeline_lacks(reg, assignment: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        compose("owod-bind", sets=[assignment], registry=reg)


def test_an_eval_folder_of_the_previous_version_is_refused_in_one_line(tmp_path: Path) -> None:
    from avseg.eval import folder

    ident = {"pipeline": {"steps": [{"proposer": {"type": "owod"}}]}, "subset": "s4", "split": "test", "tiny": True}
    old = {**ident, "pipeline": {"steps": ["proposer:owod"], "proposer": {"type": "owod"}, "filters": []}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(UsageError) as e:
        folder.check_config(tmp_path, ident, overwrite=False, repair=False)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "config.json") in msg and "--overwrite" in msg and "before steps" in msg
    # today's form of another config is the ordinary refusal; --overwrite replaces the old record
    (tmp_path / "config.json").write_text(json.dumps({**ident, "tiny": False}))
    with pytest.raises(UsageError, match="different pipeline config"):
        folder.check_config(tmp_path, ident, overwrite=False, repair=False)
    (tmp_path / "config.json").write_text(json.dumps(old))
    folder.check_config(tmp_path, ident, overwrite=True, repair=False)
    assert json.loads((tmp_path / "config.json").read_text()) == ident


def test_the_report_header_reads_both_recorded_forms() -> None:
    from avseg.report import _config_summary

    today = {"steps": [{"proposer": {"type": "owod"}}, {"filter": {"type": "bind"}}], "combiner": {"type": "top1"}}
    previous = {"steps": ["proposer:owod", "filter:bind"], "proposer": {"type": "owod"}, "filters": [{"type": "bind"}]}
    assert _config_summary(today).startswith("steps: proposer:owod -> filter:bind; combiner: top1")
    assert _config_summary(previous).startswith("steps: proposer:owod -> filter:bind; combiner: union")
    # untrusted: a step that is neither form falls back to the legacy keys
    assert _config_summary({"steps": [3, {"a": 1, "b": 2}], "proposer": {"type": "owod"}}).startswith(
        "proposer: owod; filters: none; combiner: union")
    assert _config_summary("nonsense") == "filters: none; combiner: union"
