"""Pipeline specs: composing a preset with the CLI's options (the public entry points).

:func:`compose` starts from a preset, swaps the components the CLI (or ``avseg.load``) names,
one keyword per step kind of the kinds table, and applies ``--set``. The spec mapping itself
(presets, normalisation, ``--set``) lives in avseg/spec_mapping.py, resolution and the chain
checks in avseg/resolved.py; their names are re-exported here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from avseg.components import Component, ComponentConfig, Filter
from avseg.errors import UsageError, did_you_mean
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, STEP_KINDS, consumes, produces
from avseg.registry import Registry
from avseg.resolved import ResolvedSpec, ResolvedStage, legacy_steps, resolve, validate_chain
from avseg.spec_mapping import (
    DEFAULT_PRESET,
    SINGLE_STAGES,
    _single,
    all_presets,
    apply_set,
    builtin_presets,
    filter_stages,
    load_preset,
    normalise,
    stages_of,
    step_body,
    step_kind,
)
from avseg.steps import arrange

__all__ = ["DEFAULT_PRESET", "SINGLE_STAGES", "ResolvedSpec", "ResolvedStage", "all_presets", "apply_set",
           "builtin_presets", "compose", "filter_stages", "legacy_steps", "legacy_to_steps", "load_preset",
           "normalise", "resolve", "stages_of", "step_body", "step_kind", "validate_chain"]


def compose(
    preset: str | None = None,
    *,
    sets: Sequence[str] = (),
    registry: Registry | None = None,
    **components: Any,
) -> dict[str, Any]:
    """A preset with components swapped and parameters set, as the CLI options describe it.

    ``components`` holds one keyword per step kind of the kinds table (``tagger=``,
    ``proposer=``, ``embedder=``, ``segmenter=`` a name; ``filters=``, ``refiners=`` ... a list):
    naming a component that the preset already uses keeps the preset's parameters for it;
    ``none`` removes an optional stage; naming any of a repeatable kind replaces the preset's
    list of that kind (filters are placed after what they need; other repeatable kinds, such as
    refiners, go last, in the order given).
    """
    known = {KINDS_BY_NAME[k].override: k for k in STEP_KINDS}
    for key in components:
        if key not in known:
            raise UsageError(f"unknown pipeline option {key!r}{did_you_mean(key, known)}")
    if preset is None and registry is not None and len(registry.presets.get(DEFAULT_PRESET, [])) > 1:
        preset = f"avseg:{DEFAULT_PRESET}"  # the implicit default is the bundled one, even when a plugin reuses its name
    spec = normalise(load_preset(preset or DEFAULT_PRESET, registry))
    named: dict[str, str | None] = {k: components.get(KINDS_BY_NAME[k].override) for k in SINGLE_KINDS}
    filters: Sequence[str] | None = components.get("filters")
    others = {k: list(v) for k in MANY_KINDS if k != "filter"
              and (v := components.get(KINDS_BY_NAME[k].override)) is not None}
    if others and "steps" not in spec:
        # steps are the form every later kind is written in: the legacy keys become steps here
        spec = legacy_to_steps(spec, registry)
    if "steps" in spec:
        _compose_steps(spec, named, filters, sets, registry, others)
        return spec
    tagger, proposer, embedder, segmenter = (named[k] for k in ("tagger", "proposer", "embedder", "segmenter"))
    for stage, name in named.items():
        if name is None:
            continue
        if name.lower() == "none":
            if stage == "proposer":
                raise UsageError("--proposer none: every pipeline needs a proposer")
            spec[stage] = None
        elif spec.get(stage) is None or spec[stage]["type"] != name:
            spec[stage] = {"type": name}
    if filters is not None:
        old = {f["type"]: f for f in spec["filters"]}
        spec["filters"] = [copy.deepcopy(old[n]) if n in old else {"type": n} for n in filters if n.lower() != "none"]
    for s in sets:
        apply_set(spec, s)
    if registry is not None:
        named_kinds = {k for k, v in (("tagger", tagger), ("embedder", embedder), ("segmenter", segmenter)) if v}
        _prune_inherited(spec, named_kinds, proposer_changed=proposer is not None, registry=registry)
    return spec


def _compose_steps(spec: dict[str, Any], named: dict[str, str | None], filters: Sequence[str] | None,
                   sets: Sequence[str], registry: Registry | None,
                   others: dict[str, list[str]] | None = None) -> None:
    """``compose`` on a steps spec: swap components in place, insert missing ones where their
    inputs exist, replace the filters (placed after what they need) and the other repeatable
    kinds (``others``, placed last), apply ``--set``."""
    steps: list[dict[str, dict[str, Any]]] = spec["steps"]
    last: list[dict[str, dict[str, Any]]] = []
    for kind, names in (others or {}).items():
        old_bodies = {step_body(x)["type"]: step_body(x) for x in steps if step_kind(x) == kind}
        steps[:] = [x for x in steps if step_kind(x) != kind]
        last += [{kind: copy.deepcopy(old_bodies[n]) if n in old_bodies else {"type": n}}
                 for n in names if n.lower() != "none"]
    floating: list[dict[str, dict[str, Any]]] = []
    for kind, name in named.items():
        if name is None:
            continue
        at = [i for i, x in enumerate(steps) if step_kind(x) == kind]
        if name.lower() == "none":
            if kind == "proposer":
                raise UsageError("--proposer none: every pipeline needs a proposer")
            steps[:] = [x for x in steps if step_kind(x) != kind]
        elif at:
            if step_body(steps[at[0]])["type"] != name:
                steps[at[0]] = {kind: {"type": name}}
        elif kind in ("tagger", "proposer"):
            steps.insert(0 if kind == "tagger" else int(bool(steps) and step_kind(steps[0]) == "tagger"),
                         {kind: {"type": name}})
        else:
            floating.append({kind: {"type": name}})
    if filters is not None:
        old = {b["type"]: b for b in filter_stages(spec)}
        steps[:] = [x for x in steps if step_kind(x) != "filter"]
        floating += [{"filter": copy.deepcopy(old[n]) if n in old else {"type": n}} for n in filters if n.lower() != "none"]
    steps += floating + last  # so that --set finds them; placed below
    for s in sets:
        apply_set(spec, s)
    if not floating:
        if registry is not None:
            _prune_steps(spec, named, registry)
        return
    fixed = [x for x in steps if not any(x is f for f in floating + last)]
    if registry is None:  # without classes, keep the order given: resolve() checks it
        steps[:] = fixed + floating + last
        return
    consumed, produced = _step_io(registry)
    by_kind = {step_kind(f): f for f in floating if step_kind(f) != "filter"}
    steps[:] = arrange(
        fixed, [f for f in floating if step_kind(f) == "filter"], kind_of=step_kind, needs_of=consumed,
        produces_of=lambda x: produced(x) or frozenset(), embedder=by_kind.get("embedder"),
        segmenter=by_kind.get("segmenter"), keep_unused_embedder=True,
    ) + last
    _prune_steps(spec, named, registry)


def legacy_to_steps(spec: dict[str, Any], registry: Registry | None) -> dict[str, Any]:
    """A normalised tagger/proposer/embedder/segmenter/filters spec as a ``steps:`` spec, in the
    order it executes (the legacy order, see :func:`legacy_steps`); the other keys are kept."""
    if registry is None:
        from avseg.registry import load_registry

        registry = load_registry()
    rs = resolve(spec, registry)
    bodies: dict[int, tuple[str, dict[str, Any]]] = {}
    for kind in SINGLE_KINDS:
        stage = getattr(rs, kind)
        if stage is not None:
            bodies[id(stage)] = (kind, spec[kind])
    for stage, body in zip(rs.filters, spec["filters"]):
        bodies[id(stage)] = ("filter", body)
    out = {k: v for k, v in spec.items() if k not in (*SINGLE_KINDS, "filters")}
    out["steps"] = [{bodies[id(s)][0]: copy.deepcopy(bodies[id(s)][1])} for s in rs.steps]
    return out


def _step_io(registry: Registry) -> tuple[Callable[[dict[str, Any]], frozenset[str] | None],
                                          Callable[[dict[str, Any]], frozenset[str] | None]]:
    """consumes/produces of a step mapping, or None when its class or config is not valid yet."""

    def io(x: dict[str, Any], fn: Callable[[str, type[Component], ComponentConfig], frozenset[str]]) -> frozenset[str] | None:
        kind, body = step_kind(x), step_body(x)
        try:
            cls = registry.get(kind, body["type"])
            return fn(kind, cls, cls.Config(**{k: v for k, v in body.items() if k != "type"}))
        except Exception:  # resolve() reports these properly
            return None

    return (lambda x: io(x, consumes)), (lambda x: io(x, produces))


def _prune_steps(spec: dict[str, Any], named: dict[str, str | None], registry: Registry) -> None:
    """``_prune_inherited`` for a steps spec: the same rules, applied to its steps."""
    view: dict[str, Any] = {k: _single(spec, k) for k in SINGLE_STAGES}
    view["filters"] = filter_stages(spec)
    if view["proposer"] is None:
        return
    kept = dict(view)
    _prune_inherited(view, {k for k, v in named.items() if v and k != "proposer"},
                     proposer_changed=named["proposer"] is not None, registry=registry)
    gone = {k for k in SINGLE_STAGES if kept[k] is not None and view[k] is None}
    spec["steps"] = [x for x in spec["steps"] if step_kind(x) not in gone]
    if view.get("notes"):
        spec.setdefault("notes", []).extend(view["notes"])


def _prune_inherited(spec: dict[str, Any], named: set[str], proposer_changed: bool, registry: Registry) -> None:
    """Drop optional stages kept from the preset that the composed chain no longer uses.

    ``--proposer saliency --filter score-threshold`` on top of owod-bind should not load
    ImageBind (no filter uses embeddings) nor SAM (the new proposer gives masks itself).
    Stages named on the command line are always kept.
    """
    try:
        pcls = registry.get("proposer", spec["proposer"]["type"])
        pcaps = pcls.capabilities(pcls.Config(**{k: v for k, v in spec["proposer"].items() if k != "type"}))
        fcls = [registry.get("filter", f["type"]) for f in spec["filters"]]
    except Exception:  # resolve() reports these properly
        return
    needs = set().union(*(c.needs for c in fcls if issubclass(c, Filter))) if fcls else set()
    if spec["embedder"]:  # an embedder of masked regions needs the segmenter too
        try:
            ecls = registry.get("embedder", spec["embedder"]["type"])
            needs |= ecls.capabilities(ecls.Config(**{k: v for k, v in spec["embedder"].items() if k != "type"})).needs
        except Exception:
            pass
    tag_filters = any(getattr(c, "target", None) == "tags" for c in fcls)
    notes = spec.setdefault("notes", [])
    if "embedder" not in named and spec["embedder"] and "embeddings" not in needs:
        notes.append(f"dropped the preset's embedder {spec['embedder']['type']!r}: no filter uses embeddings")
        spec["embedder"] = None
    if "segmenter" not in named and spec["segmenter"] and proposer_changed and pcaps.gives_masks and "masks" not in needs:
        notes.append(f"dropped the preset's segmenter {spec['segmenter']['type']!r}: proposer "
                     f"{spec['proposer']['type']!r} gives masks")
        spec["segmenter"] = None
    wants_tags = tag_filters or "tags" in needs or (pcaps.needs_prompts and not pcaps.has_vocabulary)
    if "tagger" not in named and spec["tagger"] and not wants_tags:
        notes.append(f"dropped the preset's tagger {spec['tagger']['type']!r}: nothing uses audio tags")
        spec["tagger"] = None
    if not notes:
        del spec["notes"]
