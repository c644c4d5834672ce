"""The JSON Schema of preset and pipeline YAML (avseg.pipeline_schema, docs/pipeline.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from avseg import hookimpl
from avseg.pipeline_schema import json_schema, json_schema_text, preset_problem
from avseg.registry import load_registry
from avseg.spec import all_presets, builtin_presets

DOCS_SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "pipeline.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_the_generated_one() -> None:
    """docs/pipeline.schema.json is what `avseg presets schema` writes (regenerate it after a change)."""
    assert DOCS_SCHEMA.read_text() == json_schema_text()


def test_every_bundled_and_registered_preset_validates() -> None:
    v = validator()
    presets = {**builtin_presets(), **all_presets(load_registry())}
    assert len(presets) >= 10
    for name, spec in presets.items():
        errors = [e.message for e in v.iter_errors(spec)]
        assert not errors, (name, errors)
        assert preset_problem(spec) is None, name


@pytest.mark.parametrize("spec,where", [
    ({"proposer": "owod", "filtres": [{"type": "nms"}]}, "filtres"),
    ({"steps": [{"proposer": "owod"}], "combiner": "union", "audoi": {"window": 1}}, "audoi"),
    ({"steps": [{"proposer": "owod", "segmenter": "sam"}]}, "steps"),
    ({"steps": ["propser:owod"]}, "steps"),
    ({"proposer": {"typ": "owod"}}, "proposer"),
    ({"proposer": "owod", "provenance": "papers"}, "provenance"),
    ({"proposer": "owod", "audio": {"window": 0}}, "audio"),
])
def test_a_misspelt_or_malformed_key_is_rejected(spec: dict[str, Any], where: str) -> None:
    errors = list(validator().iter_errors(spec))
    assert errors and any(where in (list(e.absolute_path)[:1] or [e.message])[0] or where in e.message
                          for e in errors), [e.message for e in errors]
    problem = preset_problem(spec)
    assert problem is not None and problem.startswith(where), problem


def test_the_schema_file_checks_a_users_yaml(tmp_path: Path) -> None:
    """As an editor would: the published file, a user's YAML with a misspelt key."""
    v = jsonschema.Draft202012Validator(json.loads(DOCS_SCHEMA.read_text()))
    ok = yaml.safe_load("description: mine\nsteps:\n  - proposer: {type: owod, score_threshold: 0.3}\n"
                        "  - segmenter: sam\n  - filter:nms\ncombiner: union\naudio: {window: 0.96}\n")
    assert not list(v.iter_errors(ok))
    bad = yaml.safe_load("descripton: mine\nsteps:\n  - proposer: owod\n")
    assert [e.message for e in v.iter_errors(bad)] == ["Additional properties are not allowed ('descripton' was "
                                                       "unexpected)"]


def test_a_plugin_preset_with_a_misspelt_key_is_a_broken_plugin() -> None:
    class Plugin:
        @hookimpl
        def register_presets(self, register: Any) -> None:
            register("mine", {"proposer": "saliency", "filtres": ["nms"]})

    reg = load_registry(plugins=[("mine", Plugin())], entry_points=False)
    [b] = reg.broken
    assert b.reason == "preset 'mine': filtres: unknown key"
    assert "mine" not in reg.presets and "owod-bind" in reg.presets


def test_every_step_kind_of_the_kinds_table_is_a_schema_step() -> None:
    """A new kind in avseg/kinds.py must be writable in a preset's steps: (the schema follows the table)."""
    from avseg.kinds import STEP_KINDS
    from avseg.pipeline_schema import STEP_PATTERN, Step

    assert set(Step.model_fields) == set(STEP_KINDS)
    import re

    assert all(re.match(STEP_PATTERN, f"{k}:x") for k in STEP_KINDS)
