"""Pipeline specs: composing a preset with the CLI's options (the public entry points).

:func:`compose` starts from a preset (normalised to steps: legacy keys are converted there, see
avseg/spec_mapping.py), swaps the components the CLI (or ``avseg.load``) names, one keyword per
step kind of the kinds table, and applies ``--set``. The spec mapping itself (presets,
normalisation, ``--set``) lives in avseg/spec_mapping.py, resolution and the chain checks in
avseg/resolved.py; their names are re-exported here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from avseg.components import Filter
from avseg.errors import UsageError, did_you_mean
from avseg.kinds import KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, STEP_KINDS
from avseg.registry import Registry
from avseg.resolved import ResolvedSpec, ResolvedStage, resolve, validate_chain
from avseg.spec_mapping import (
    DEFAULT_PRESET,
    LEGACY_KEYS,
    all_presets,
    apply_set,
    builtin_presets,
    first_stage,
    legacy_to_steps,
    load_preset,
    normalise,
    stages_of,
    step_body,
    step_io,
    step_kind,
)
from avseg.steps import arrange

__all__ = ["DEFAULT_PRESET", "LEGACY_KEYS", "ResolvedSpec", "ResolvedStage", "all_presets", "apply_set",
           "builtin_presets", "compose", "first_stage", "legacy_to_steps", "load_preset", "normalise", "resolve",
           "stages_of", "step_body", "step_kind", "validate_chain"]

Step = dict[str, dict[str, Any]]


def compose(
    preset: str | None = None,
    *,
    sets: Sequence[str] = (),
    registry: Registry | None = None,
    **components: Any,
) -> dict[str, Any]:
    """A preset with components swapped and parameters set, as the CLI options describe it: a
    normalised (``steps:``) spec.

    ``components`` holds one keyword per step kind of the kinds table (``tagger=``,
    ``proposer=``, ``embedder=``, ``segmenter=`` a name; ``filters=``, ``refiners=`` ... a list):
    naming a component that the preset already uses keeps the preset's parameters for it (and
    its place); ``none`` removes an optional step; a new single step goes where its inputs exist
    (a tagger first, a proposer after it, an embedder/segmenter before the first filter that
    needs it); naming any of a repeatable kind replaces the preset's list of that kind (filters
    are placed after what they need; other repeatable kinds, such as refiners, go last, in the
    order given).
    """
    known = {KINDS_BY_NAME[k].override: k for k in STEP_KINDS}
    for key in components:
        if key not in known:
            raise UsageError(f"unknown pipeline option {key!r}{did_you_mean(key, known)}")
    if preset is None and registry is not None and len(registry.presets.get(DEFAULT_PRESET, [])) > 1:
        preset = f"avseg:{DEFAULT_PRESET}"  # the implicit default is the bundled one, even when a plugin reuses its name
    spec = normalise(load_preset(preset or DEFAULT_PRESET, registry), registry)
    named: dict[str, str | None] = {k: components.get(KINDS_BY_NAME[k].override) for k in SINGLE_KINDS}
    filters: Sequence[str] | None = components.get("filters")
    others = {k: list(v) for k in MANY_KINDS if k != "filter"
              and (v := components.get(KINDS_BY_NAME[k].override)) is not None}
    steps: list[Step] = spec["steps"]
    last: list[Step] = []
    for kind, names in others.items():
        old_bodies = {step_body(x)["type"]: step_body(x) for x in steps if step_kind(x) == kind}
        steps[:] = [x for x in steps if step_kind(x) != kind]
        last += [{kind: copy.deepcopy(old_bodies[n]) if n in old_bodies else {"type": n}}
                 for n in names if n.lower() != "none"]
    floating: list[Step] = []
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
        old = {b["type"]: b for b in stages_of(spec, "filter")}
        steps[:] = [x for x in steps if step_kind(x) != "filter"]
        floating += [{"filter": copy.deepcopy(old[n]) if n in old else {"type": n}} for n in filters if n.lower() != "none"]
    steps += floating + last  # so that --set finds them; placed below
    for s in sets:
        apply_set(spec, s)
    if floating:
        fixed = [x for x in steps if not any(x is f for f in floating + last)]
        if registry is None:  # without classes, keep the order given: resolve() checks it
            steps[:] = fixed + floating + last
            return spec
        needs, gives = step_io(registry)
        by_kind = {step_kind(f): f for f in floating if step_kind(f) != "filter"}
        steps[:] = arrange(
            fixed, [f for f in floating if step_kind(f) == "filter"], kind_of=step_kind, needs_of=needs,
            produces_of=lambda x: gives(x) or frozenset(), embedder=by_kind.get("embedder"),
            segmenter=by_kind.get("segmenter"), keep_unused_embedder=True,
        ) + last
    if registry is not None:
        _prune_inherited(spec, {k for k, v in named.items() if v and k != "proposer"},
                         proposer_changed=named["proposer"] is not None, registry=registry)
    return spec


def _prune_inherited(spec: dict[str, Any], named: set[str], proposer_changed: bool, registry: Registry) -> None:
    """Drop optional steps kept from the preset that the composed chain no longer uses.

    ``--proposer saliency --filter score-threshold`` on top of owod-bind should not load
    ImageBind (no filter uses embeddings) nor SAM (the new proposer gives masks itself).
    Steps named on the command line are always kept.
    """
    single = {k: first_stage(spec, k) for k in SINGLE_KINDS}
    proposer = single["proposer"]
    if proposer is None:
        return
    try:
        pcls = registry.get("proposer", proposer["type"])
        pcaps = pcls.capabilities(pcls.Config(**{k: v for k, v in proposer.items() if k != "type"}))
        fcls = [registry.get("filter", f["type"]) for f in stages_of(spec, "filter")]
    except Exception:  # resolve() reports these properly
        return
    needs = set().union(*(c.needs for c in fcls if issubclass(c, Filter))) if fcls else set()
    embedder, segmenter, tagger = single["embedder"], single["segmenter"], single["tagger"]
    if embedder:  # an embedder of masked regions needs the segmenter too
        try:
            ecls = registry.get("embedder", embedder["type"])
            needs |= ecls.capabilities(ecls.Config(**{k: v for k, v in embedder.items() if k != "type"})).needs
        except Exception:
            pass
    tag_filters = any(getattr(c, "target", None) == "tags" for c in fcls)
    notes: list[str] = []
    gone: set[str] = set()
    if "embedder" not in named and embedder and "embeddings" not in needs:
        notes.append(f"dropped the preset's embedder {embedder['type']!r}: no filter uses embeddings")
        gone.add("embedder")
    if "segmenter" not in named and segmenter and proposer_changed and pcaps.gives_masks and "masks" not in needs:
        notes.append(f"dropped the preset's segmenter {segmenter['type']!r}: proposer "
                     f"{proposer['type']!r} gives masks")
        gone.add("segmenter")
    wants_tags = tag_filters or "tags" in needs or (pcaps.needs_prompts and not pcaps.has_vocabulary)
    if "tagger" not in named and tagger and not wants_tags:
        notes.append(f"dropped the preset's tagger {tagger['type']!r}: nothing uses audio tags")
        gone.add("tagger")
    if gone:
        spec["steps"] = [x for x in spec["steps"] if step_kind(x) not in gone]
    if notes:
        spec.setdefault("notes", []).extend(notes)
