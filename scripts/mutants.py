"""Mutation testing of the modules that decide avseg's output (``make mutants``; docs/testing.md).

Drives cosmic-ray (the ``dev`` extra) one module at a time, each mutant against ONLY the fast
tests that cover that module (``MODULES`` below), in a scratch copy of the repository (the
working tree is never mutated, even if this is killed). Per module it prints mutants, killed,
survived and the kill rate, then every survivor as a one-line diff; ``--json`` saves the lot.

    python scripts/mutants.py                      # every module, in the order below
    python scripts/mutants.py metrics nms          # some modules (names from --list)
    python scripts/mutants.py --minutes 50         # stop starting modules after 50 minutes

The mutation operators are the realistic one-line bugs (a comparison at its boundary or
negated, +/- and *// swapped, a constant off by one, a condition negated, a bool flipped, a
loop skipped), not every operator cosmic-ray knows: see ``KEEP``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    path: str  # relative to the repository root
    tests: tuple[str, ...]  # pytest arguments: the fast tests that cover it
    only: tuple[str, ...] = ()  # mutate only these top-level functions/classes (default: all)
    minutes: float = 12.0  # stop this module after this long (the rest is reported "not run")
    extra: tuple[str, ...] = field(default=())  # extra pytest arguments (e.g. -k)


S = "tests/test_survivors.py"
#: name -> what to mutate and which tests judge it; the order is the order they run in
MODULES: dict[str, Target] = {
    "metrics": Target("avseg/eval/metrics.py", ("tests/test_metrics.py", "tests/test_metrics_edges.py")),
    "thresholds": Target("plugins/avseg_filters/thresholds.py", ("tests/test_filters.py", S),
                         extra=("-k", "threshold or tag or score or size or fallback or deny or top")),
    "nms": Target("plugins/avseg_filters/nms.py", ("tests/test_filters.py", S), extra=("-k", "nms")),
    "topk": Target("plugins/avseg_filters/topk.py", ("tests/test_filters.py",)),
    "combiners": Target("avseg/combiners.py", (S,), extra=("-k", "top1 or overlap or label_map")),
    "cache-keys": Target("avseg/cache.py", ("tests/test_cache.py", "tests/test_cache_identity.py", S),
                         only=("_package_files", "_core_module_file", "_core_imports", "_core_dependencies",
                               "source_files", "source_fingerprint", "make_key"),
                         extra=("-k", "not owod")),
    "steps": Target("avseg/steps.py", ("tests/test_steps.py", S), extra=("-k", "not owod and not tiny")),
    "validate": Target("avseg/validate.py", ("tests/test_hostile_inputs.py", S),
                       extra=("-k", "keep or returned or validate or wrong or mask or index")),
    "audio": Target("avseg/audio.py", ("tests/test_audio.py",), extra=("-k", "not librosa and not torchaudio")),
    "images": Target("avseg/data/images.py", ("tests/test_data.py", S), extra=("-k", "not owod")),
    "resume": Target("avseg/eval/folder.py", ("tests/test_eval.py", S),
                     only=("config_id", "component_change", "check_config", "load_states"),
                     extra=("-k", "resume or config or progress or repair")),
    "owod-post": Target("plugins/avseg_owod/proposer.py", ("tests/test_owod_postprocess.py",),
                        only=("postprocess", "shrink_for")),
    "sam-post": Target("plugins/avseg_sam/segmenter.py", ("tests/test_sam_decode.py",),
                       extra=("-k", "not postprocess_masks")),
    "sam-masks": Target("plugins/avseg_sam/model.py", ("tests/test_sam_decode.py",),
                        only=("postprocess_masks",), extra=("-k", "postprocess_masks")),
    "gdino-post": Target("plugins/avseg_gdino/proposer.py", ("tests/test_gdino_prompts.py",),
                         only=("prompt_text", "resolve_vocabulary", "authors_resize_shape", "detection_labels"),
                         extra=("-k", "not groundingdino_transforms")),
    "ast-pre": Target("plugins/avseg_ast/tagger.py", ("tests/test_plugin_ast.py",), only=("ASTTagger",),
                      extra=("-k", "tiny_variant or parity or resampling or paper or pad_to or exactly or boundaries "
                                   "or checkpoint or config_validation")),
    "imagebind-pre": Target("avseg/regions.py", ("tests/test_regions.py",), extra=("-k", "not segmenter_before")),
    "sam2-tracks": Target("plugins/avseg_sam2/tracks.py", ("tests/test_sam2_tracks.py",)),
}

#: cosmic-ray operators kept (the rest are excluded): realistic one-line bugs
KEEP = [
    *(f"core/ReplaceComparisonOperator_{a}_{b}" for a, b in [
        ("Lt", "LtE"), ("LtE", "Lt"), ("Gt", "GtE"), ("GtE", "Gt"), ("Lt", "GtE"), ("GtE", "Lt"),
        ("Gt", "LtE"), ("LtE", "Gt"), ("Eq", "NotEq"), ("NotEq", "Eq"), ("Is", "IsNot"), ("IsNot", "Is")]),
    *(f"core/ReplaceBinaryOperator_{a}_{b}" for a, b in [("Add", "Sub"), ("Sub", "Add"), ("Mul", "Div"),
                                                         ("Div", "Mul"), ("FloorDiv", "Div")]),
    "core/ReplaceUnaryOperator_USub_UAdd", "core/ReplaceUnaryOperator_Delete_Not",
    "core/NumberReplacer", "core/AddNot", "core/ReplaceTrueWithFalse", "core/ReplaceFalseWithTrue",
    "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd", "core/ZeroIterationForLoop",
    "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak",
]


def tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        sys.exit(f"error: {name} not found beside {sys.executable}; install the dev extra: pip install -e '.[dev]'")
    return str(exe)


def line_ranges(path: Path, only: tuple[str, ...]) -> list[str]:
    """'start-end' of each named top-level function or class in ``path``."""
    tree = ast.parse(path.read_text())
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    missing = [n for n in only if n not in found]
    if missing:
        print(f"  note: {path.name} has no {', '.join(missing)} (renamed?); mutating the others")
    return [f"{found[n].lineno}-{found[n].end_lineno}" for n in only if n in found]


def scratch_copy() -> Path:
    """The tracked and untracked-but-not-ignored files of the repository, without bytecode."""
    dst = Path(tempfile.mkdtemp(prefix="avseg-mutants-")) / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def toml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def run_module(name: str, t: Target, repo: Path, work: Path, timeout: float, minutes: float) -> dict[str, object]:
    cfg, session = work / f"{name}.toml", work / f"{name}.sqlite"
    tests = " ".join([*t.tests, *(json.dumps(a) if " " in a else a for a in t.extra)])
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly --timeout 300 {tests}"
    lines = line_ranges(repo / t.path, t.only) if t.only else []
    keep = "|".join(KEEP)
    cfg.write_text("\n".join([
        "[cosmic-ray]",
        f"module-path = {json.dumps(t.path)}",
        f"timeout = {timeout}",
        "excluded-modules = []",
        f"test-command = {json.dumps(command)}",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "[cosmic-ray.filters.operators-filter]",
        f"exclude-operators = {toml_list([f'(?!({keep})$)'])}",
        "[cosmic-ray.filters.line-filter]",
        f"lines = {{ {json.dumps(t.path)} = {toml_list(lines)} }}" if lines else "",
        "",
    ]))
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'plugins'}", "PYTHONDONTWRITEBYTECODE": "1"}

    def cr(*args: str, limit: float | None = None) -> None:
        subprocess.run(list(args), cwd=repo, env=env, check=False, timeout=limit, capture_output=True)

    cr(tool("cosmic-ray"), "init", str(cfg), str(session))
    cr(tool("cr-filter-operators"), str(session), str(cfg))
    if lines:
        cr(tool("cr-filter-lines"), "--config", str(cfg), str(session))
    try:  # the tests must pass unmutated, within the module's cap
        base = subprocess.run(command, shell=True, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        return {"module": name, "path": t.path, "error": f"the unmutated tests took over {minutes:g} minutes"}
    if base.returncode != 0:
        return {"module": name, "path": t.path, "error": "the tests fail without any mutation: "
                + (base.stdout.strip().splitlines() or ["?"])[-1]}
    t0 = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):  # what ran is in the session; the rest is "not run"
        cr(tool("cosmic-ray"), "exec", str(cfg), str(session), limit=minutes * 60)
    # a killed exec may leave the last mutant applied: restore the file from the worktree
    shutil.copy2(ROOT / t.path, repo / t.path)
    dump = subprocess.run([tool("cosmic-ray"), "dump", str(session)], cwd=repo, env=env, capture_output=True,
                          text=True).stdout
    killed = survived = not_run = incompetent = 0
    survivors: list[str] = []
    for row in dump.splitlines():
        item, result = json.loads(row)
        if result is None:
            not_run += 1
            continue
        if result["worker_outcome"] == "skipped":
            continue
        if result["worker_outcome"] != "normal":
            incompetent += 1
        elif result["test_outcome"] == "survived":
            survived += 1
            m = item["mutations"][0]
            diff = [ln for ln in (result.get("diff") or "").splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
            survivors.append(f"{t.path}:{m['start_pos'][0]} {m['operator_name']}: {' | '.join(diff)}")
        else:
            killed += 1
    done = killed + survived
    return {"module": name, "path": t.path, "mutants": done, "killed": killed, "survived": survived,
            "incompetent": incompetent, "not_run": not_run, "kill_rate": round(killed / done, 3) if done else None,
            "seconds": round(time.monotonic() - t0), "survivors": survivors,
            "tests": " ".join([*t.tests, *t.extra]), "only": list(t.only)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help="module names (default: all, see --list)")
    ap.add_argument("--list", action="store_true", help="list the modules and their tests")
    ap.add_argument("--minutes", type=float, default=55.0, help="start no module after this many minutes")
    ap.add_argument("--module-minutes", type=float, default=None, help="override each module's time cap")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds for one mutant's test run")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.list:
        for n, t in MODULES.items():
            print(f"{n:14} {t.path}{' (' + ', '.join(t.only) + ')' if t.only else ''}\n{'':14} tests: "
                  f"{' '.join([*t.tests, *t.extra])}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"error: unknown module {unknown[0]!r}; --list shows them", file=sys.stderr)
        return 2
    names = args.modules or list(MODULES)
    repo = scratch_copy()
    work = repo.parent
    print(f"mutating a copy in {repo}", flush=True)
    t0, results = time.monotonic(), []
    for name in names:
        if time.monotonic() - t0 > args.minutes * 60:
            results.append({"module": name, "path": MODULES[name].path, "error": "not run (time budget)"})
            continue
        t = MODULES[name]
        print(f"== {name}: {t.path}", flush=True)
        r = run_module(name, t, repo, work, args.timeout, args.module_minutes or t.minutes)
        results.append(r)
        print(f"   {json.dumps({k: v for k, v in r.items() if k != 'survivors'})}", flush=True)
        for s in r.get("survivors", []):  # type: ignore[union-attr]
            print(f"   survived: {s}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    print("\n| module | file | mutants | killed | survived | not run | kill rate |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if "error" in r:
            print(f"| {r['module']} | `{r['path']}` | {r['error']} | | | | |")
        else:
            rate = "-" if r["kill_rate"] is None else f"{100 * float(r['kill_rate']):.1f}%"  # type: ignore[arg-type]
            print(f"| {r['module']} | `{r['path']}` | {r['mutants']} | {r['killed']} | {r['survived']} | "
                  f"{r['not_run']} | {rate} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
