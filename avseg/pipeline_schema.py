"""The shape of a preset or pipeline YAML file, as pydantic models and as a JSON Schema.

:class:`PipelineFile` is what a spec may hold; :func:`json_schema` generates the JSON Schema an
editor (VS Code's YAML extension, say) checks a user's YAML with, published as
``docs/pipeline.schema.json`` (``avseg presets schema`` writes it). Registration checks every
plugin preset against the same models (:func:`preset_problem`), and the bundled presets are
tested against the JSON Schema. A stage's own options (``threshold: 0.5``) depend on the
component, so the schema leaves them open; resolution checks them against the component's
``Config``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from avseg.audio import AudioSpec
from avseg.frames import FramesSpec
from avseg.kinds import STEP_KINDS
from avseg.provenance import PROVENANCES

SCHEMA_ID = "https://avseg.invalid/pipeline.schema.json"
STEP_PATTERN = rf"^({'|'.join(STEP_KINDS)}):\S+$"


class Stage(BaseModel):
    """One component and its options: ``{type: NAME, option: value, ...}`` (``dist:NAME`` picks
    one of two distributions' components of that name)."""

    model_config = ConfigDict(extra="allow", title="Stage")

    type: str = Field(min_length=1, description="The component's name, or dist:name.")


StageRef = str | Stage


class Step(BaseModel):
    """One step of ``steps:``: exactly one ``kind: component`` entry."""

    model_config = ConfigDict(extra="forbid", title="Step",
                              json_schema_extra={"minProperties": 1, "maxProperties": 1})

    tagger: StageRef | None = Field(None, description="Audio windows -> tags.")
    proposer: StageRef | None = Field(None, description="Frames (+ prompts) -> candidate objects.")
    embedder: StageRef | None = Field(None, description="Audio windows and regions -> embeddings.")
    segmenter: StageRef | None = Field(None, description="Boxes -> masks.")
    filter: StageRef | None = Field(None, description="Keeps a subset of tags or objects.")
    refiner: StageRef | None = Field(None, description="Post-processes the kept objects' masks before the combiner.")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if len(self.model_fields_set) != 1:
            raise ValueError("a step is exactly one 'kind: component' entry, such as {segmenter: sam}")
        return self


class PipelineFile(BaseModel):
    """A preset or pipeline YAML file (``avseg run my.yaml``, ``register_presets``).

    Write ``steps:`` (the executed order). The legacy ``tagger``/``proposer``/``embedder``/
    ``segmenter``/``filters`` keys are still accepted (not together with ``steps:``): they are
    converted into steps once, when the file is loaded, in the order the pre-steps pipeline ran
    them (tag filters after the tagger, the embedder and segmenter just before the first filter
    needing them); ``avseg presets show FILE`` prints the result.
    """

    model_config = ConfigDict(extra="forbid", title="avseg pipeline", json_schema_extra={
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID})

    description: str | None = Field(None, description="One line for `avseg presets` and the report.")
    name: str | None = Field(None, description="The pipeline's name, when it is not a preset's file name.")
    provenance: Literal[PROVENANCES] | None = Field(  # type: ignore[valid-type]
        None, description="paper, authors-code or extended (the default): see docs/reproducing.md.")
    notes: str | list[str] | None = Field(None, description="Free text about the pipeline (kept, not interpreted).")
    steps: list[Annotated[str, StringConstraints(pattern=STEP_PATTERN)] | Step] | None = Field(
        None, description="The steps in executed order: {kind: name}, {kind: {type: name, ...}} or 'kind:name'.")
    tagger: StageRef | None = Field(None, description="Legacy, converted to steps at load: the tagger (or null).")
    proposer: StageRef | None = Field(None, description="Legacy, converted to steps at load: the proposer.")
    embedder: StageRef | None = Field(None, description="Legacy, converted to steps at load: the embedder (or null).")
    segmenter: StageRef | None = Field(None, description="Legacy, converted to steps at load: the segmenter (or null).")
    filters: list[StageRef] | None = Field(None, description="Legacy, converted to steps at load: the filters, in order.")
    combiner: StageRef | None = Field(None, description="What turns a frame's kept objects into its mask "
                                                        "(default union).")
    audio: AudioSpec | None = Field(None, description="How each frame's audio window is cut (shared by every "
                                                      "tagger and embedder).")
    frames: FramesSpec | None = Field(None, description="The size every model sees (e.g. {size: [224, 224]}); "
                                                        "masks come back at the input's size.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`PipelineFile` (draft 2020-12)."""
    schema = PipelineFile.model_json_schema()
    return {"$schema": schema.pop("$schema"), "$id": schema.pop("$id"), **schema}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def preset_problem(spec: Any) -> str | None:
    """Why ``spec`` is not a valid preset, in one line (the first error); None when it is."""
    try:
        PipelineFile.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("str", "Stage", "Step",
                                                                                 "list[", "function-")))
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        return f"{loc or 'spec'}: {msg}"
    return None
