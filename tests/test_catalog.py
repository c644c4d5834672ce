"""registry.yaml, the installed bundled plugins and docs/components.md agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from avseg.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"taggers": "tagger", "proposers": "proposer", "embedders": "embedder", "segmenters": "segmenter",
            "filters": "filter", "refiners": "refiner", "combiners": "combiner"}
CLI_NAMES = {"tagger": {"ast", "panns", "clap"}, "proposer": {"gdino", "owod", "sam-grid", "mmdet", "sam3"},
                  "embedder": {"imagebind"}, "segmenter": {"sam", "sam2"},
                  "filter": {"tag-threshold", "score-threshold", "bind", "nms", "top-k", "avis", "temporal-consistency"},
                  "refiner": {"fill-holes"}, "combiner": {"union", "top1", "label-map"}}


def catalog() -> dict[str, dict[str, dict]]:
    data = yaml.safe_load((ROOT / "registry.yaml").read_text())
    return {SECTIONS[s]: entries for s, entries in data.items()}


def test_catalog_reserves_the_cli_names() -> None:
    cat = catalog()
    for kind, names in CLI_NAMES.items():
        assert set(cat[kind]) == names


def test_every_shipped_entry_is_registered_by_avseg_and_vice_versa() -> None:
    reg = load_registry()
    cat = catalog()
    bundled = {(r.kind, r.name) for r in reg.registrations() if r.provider == "avseg"}
    listed = {(k, n) for k, entries in cat.items() for n, e in entries.items() if e.get("status") != "reserved"}
    assert bundled == listed
    for r in reg.registrations():
        if r.provider == "avseg":
            assert cat[r.kind][r.name]["plugin"] == r.cls.__module__.split(".")[0]


def test_components_doc_lists_every_component() -> None:
    doc = (ROOT / "docs" / "components.md").read_text()
    for kind, entries in catalog().items():
        for name in entries:
            assert f"`{name}`" in doc, f"docs/components.md lacks {kind} {name}"
