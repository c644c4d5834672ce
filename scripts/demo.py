"""`make demo`: run the default preset on the bundled example clip.

Uses the real pretrained weights when they are all present; otherwise says so loudly and runs
every model's tiny variant (same architectures, random seeded weights), which checks the
plumbing end to end but does not segment anything meaningful.
"""

from __future__ import annotations

import sys
from pathlib import Path

from avseg import commands as api
from avseg.registry import load_registry
from avseg.spec import DEFAULT_PRESET, compose, resolve
from avseg.weights import locate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "data" / "example.mp4"
OUT = ROOT / "demo-out"


def missing_weights(preset: str) -> list[str]:
    registry = load_registry()
    rs = resolve(compose(preset, registry=registry), registry)
    missing = []
    for stage in rs.stages():
        cls = stage.cls
        variant = getattr(stage.config, "variant", None) or cls.default_variant
        for wf in cls.weights.get(variant, []) if variant else []:
            if not locate(wf, getattr(stage.config, "checkpoint", None)).found:
                missing.append(f"{stage.kind} {stage.name}: {wf.hf_repo or wf.filename}")
    return missing


def main() -> int:
    missing = missing_weights(DEFAULT_PRESET)
    tiny = bool(missing)
    if tiny:
        bar = "!" * 78
        print(bar)
        print("!! NO PRETRAINED WEIGHTS: running the TINY variants (random weights).")
        print("!! The masks below check the plumbing only; they are not real segmentations.")
        for m in missing:
            print(f"!!   missing {m}")
        print("!! Get the weights with 'avseg weights fetch owod sam imagebind' on a connected machine.")
        print(bar)
    from rich.console import Console

    with Console(stderr=True).status("starting") as status:  # model loads take minutes on a CPU
        meta = api.run(EXAMPLE, OUT, preset=DEFAULT_PRESET, tiny=tiny, no_cache=True, debug=True,
                       on_stage=lambda label, n: status.update(f"{EXAMPLE.name} ({n} frames): {label}"))
    print(f"preset {DEFAULT_PRESET} on {EXAMPLE.relative_to(ROOT)}: {meta['n_frames']} frames")
    print(f"  masks     {OUT / 'masks'}")
    print(f"  overlays  {OUT / 'overlays'}")
    print(f"  video     {meta['overlay_video']}")
    print(f"  run.json  {OUT / 'run.json'}")
    print(f"  debug     {OUT / 'debug'}  (every proposal, its scores and why it was kept or dropped)")
    kept = sum(f["kept"] for f in meta["frames"])
    print(f"  kept {kept} objects over {meta['n_frames']} frames; stage counters: {meta['counters']}")
    if tiny and not kept:
        print("  (with random weights the ImageBind filter rarely keeps anything: the debug views show the proposals)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
