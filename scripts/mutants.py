"""Mutation testing of the modules that decide avseg's output (``make mutants``; docs/testing.md).

Drives cosmic-ray (the ``dev`` extra) over each module, each mutant against ONLY the fast tests
that cover that module (``MODULES`` below). Modules run in ``--jobs`` parallel workers; each worker
has its OWN scratch copy of the repository, so a mutant applied in one worker's copy is never
seen by another worker's tests (and the working tree is never mutated, even if this is killed).
Per module it prints the unmutated test time, mutants, killed, survived and the kill rate, raw and
over the mutants not argued equivalent, then every survivor as a one-line diff: those listed in
``scripts/equivalent_mutants.yaml`` (matched by module and the line before and after) with the
argument that they change no behaviour, the rest as gaps; ``--json`` saves the lot.

    python scripts/mutants.py                      # every module, 2 workers
    python scripts/mutants.py metrics nms          # some modules (names from --list)
    python scripts/mutants.py --estimate           # mutant counts x unmutated test time / jobs
    python scripts/mutants.py --minutes 50         # stop starting modules after 50 minutes
    python scripts/mutants.py --report mutants.json --markdown   # a saved run, as docs/testing.md shows it

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
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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


R = "not video and not audio and not torch and not frames_folder and not open_input"  # test_data: the readers
E = "tests/test_filter_edges.py"  # thresholds, nms and combiners called directly: fast
AVIS = "not minilm and not importing"  # the avis tests that load no model (nor start a child interpreter)
#: name -> what to mutate and which tests judge it; the order is the order they run in
MODULES: dict[str, Target] = {
    "metrics": Target("avseg/eval/metrics.py", ("tests/test_metrics.py", "tests/test_metrics_edges.py")),
    "thresholds": Target("plugins/avseg_filters/thresholds.py", ("tests/test_filters.py", E),
                         extra=("-k", "threshold or tag or score or keep or first")),
    "nms": Target("plugins/avseg_filters/nms.py", ("tests/test_filters.py", E), extra=("-k", "nms or iou")),
    "topk": Target("plugins/avseg_filters/topk.py", ("tests/test_topk.py", "tests/test_filters.py")),
    "combiners": Target("avseg/combiners.py", (E,),
                        extra=("-k", "top1 or overlap or label or union or nothing or paint")),
    "bind": Target("plugins/avseg_filters/bind.py", ("tests/test_filter_bind.py", "tests/test_filter_edges_av.py"),
                   extra=("-k", "not registered and not old_threshold")),
    "avis": Target("plugins/avseg_avis/scoring.py", ("tests/test_avis.py", "tests/test_filter_edges_av.py"),
                   extra=("-k", AVIS)),
    "avis-filter": Target("plugins/avseg_avis/__init__.py", ("tests/test_avis.py", "tests/test_filter_edges_av.py"),
                          only=("AvisFilter",), extra=("-k", AVIS)),
    "tree": Target("avseg/tree.py", ("tests/test_tree.py", "tests/test_avis.py", "tests/test_filter_edges_av.py"),
                   only=("normalize_label", "AVTree", "parse_tree"), extra=("-k", AVIS)),
    "av-sync": Target("plugins/avseg_sync/avsync.py", ("tests/test_av_sync.py", "tests/test_filter_edges_av.py",
                                                       "tests/test_av_sync_edges.py"),
                      only=("_region", "_iou", "audio_envelope", "best_lagged_correlation", "AVSync"),
                      extra=("-k", "scores or boundary or lagged or frames_only or one_frame or avsync")),
    **{r: Target(f"plugins/avseg_refiners/{r.replace('-', '_')}.py",
                 ("tests/test_refiners.py", "tests/test_refiners_parts.py", "tests/test_filter_edges_av.py"),
                 extra=("-k", f"{r.replace('-', '_')} or refiners_leave"))
       for r in ("fill-holes", "merge-parts", "largest-component", "clip-to-box")},
    "cache-keys": Target("avseg/cache.py", ("tests/test_cache_entries.py", "tests/test_cache.py",
                                            "tests/test_hostile_cache.py", "tests/test_cache_edges.py"),
                         only=("make_key", "content_hash_of", "_record", "_checked_load", "StageCache"),
                         extra=("-k", "not two_processes and not tampered")),
    "fingerprint": Target("avseg/fingerprint.py", ("tests/test_fingerprint.py", "tests/test_fingerprint_edges.py"),
                          extra=("-k", "not editable and fingerprint")),
    "steps": Target("avseg/steps.py", ("tests/test_step_order.py",)),
    "validate": Target("avseg/validate.py", ("tests/test_component_returns.py",)),
    # no torch; the numpy-only windows first, scipy/PyAV ones after; anyio's plugin costs ~0.2 s per run
    "audio": Target("avseg/audio.py", ("tests/test_audio_windows.py", "tests/test_audio_rules.py", "tests/test_audio.py"),
                    extra=("-k", "not librosa and not torchaudio and not upstream", "-p", "no:anyio",
                           "-p", "no:platformdirs"), minutes=20.0),  # 235 mutants: about 14 minutes
    "images": Target("avseg/data/images.py", ("tests/test_image_rules.py",)),
    "readers": Target("avseg/data/readers.py", ("tests/test_dataset_readers.py",)),
    "readers-base": Target("avseg/data/base.py", ("tests/test_dataset_readers.py", "tests/test_data.py",
                           "tests/test_reader_edges.py"), extra=("-k", R)),
    "readers-s4": Target("avseg/data/s4.py", ("tests/test_dataset_readers.py", "tests/test_data.py"), extra=("-k", R)),
    "readers-ms3": Target("avseg/data/ms3.py", ("tests/test_dataset_readers.py", "tests/test_data.py"), extra=("-k", R)),
    "readers-avss": Target("avseg/data/avss.py", ("tests/test_dataset_readers.py", "tests/test_data.py",
                           "tests/test_reader_edges.py"), extra=("-k", R)),
    "resume": Target("avseg/eval/folder.py", ("tests/test_resume_rules.py",), extra=("-k", "not real_eval"),
                     only=("config_id", "component_change", "check_config", "_unit", "_check_state", "load_states")),
    "owod-post": Target("plugins/avseg_owod/proposer.py", ("tests/test_owod_postprocess.py",),
                        only=("postprocess", "shrink_for")),
    "sam-post": Target("plugins/avseg_sam/segmenter.py", ("tests/test_sam_decode.py",),
                       extra=("-k", "not postprocess_masks")),
    # upstream-parity (segment_anything) is in test_sam_decode.py; this judge needs only torch
    "sam-masks": Target("plugins/avseg_sam/model.py", ("tests/test_sam_masks.py",), only=("postprocess_masks",)),
    "gdino-post": Target("plugins/avseg_gdino/proposer.py", ("tests/test_gdino_prompts.py",),
                         only=("authors_resize_shape",), extra=("-k", "authors_resize_shape_by_hand")),
    "gdino-vocab": Target("plugins/avseg_gdino/vocab.py", ("tests/test_gdino_prompts.py",),
                          extra=("-k", "not groundingdino_transforms")),
    # node ids in this order: the config checks (no model) first, so most mutants die before the build
    "ast-pre": Target("plugins/avseg_ast/tagger.py", tuple(f"tests/test_plugin_ast.py::test_{t}" for t in (
        "config_validation", "pad_to_bounds", "wrong_explicit_checkpoint", "tiny_variant_shape_and_vocabulary",
        "a_window_exactly_pad_to_long_is_not_padded", "no_windows_and_batch_boundaries", "parity_with_transformers",
        "paper_window_reaches_the_extractor_unpadded", "resampling_and_padding", "local_checkpoint_loads",
        "a_checkpoint_preprocessor_config_is_used")), only=("ASTTagger",)),
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


def scratch_copy(parent: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of the repository, without bytecode."""
    dst = parent / "repo"
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


@dataclass
class Worker:
    """One parallel worker: its own scratch copy, pytest temp and session files."""

    work: Path  # holds repo/, tmp/ and the sessions
    repo: Path

    @classmethod
    def make(cls, root: Path, index: int) -> Worker:
        work = root / f"w{index}"
        (work / "tmp").mkdir(parents=True)
        return cls(work, scratch_copy(work))

    def env(self) -> dict[str, str]:
        # TMPDIR: every temp file of the tests (stage caches, trees) stays in this worker. One torch/OpenMP
        # thread per worker: on a busy machine spinning OpenMP threads tripled a torch judge's CPU time
        return {**os.environ, "PYTHONPATH": f"{self.repo}{os.pathsep}{self.repo / 'plugins'}",
                "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(self.work / "tmp"), "OMP_NUM_THREADS": "1"}


def test_command(t: Target, w: Worker) -> str:
    tests = " ".join([*t.tests, *(json.dumps(a) if " " in a else a for a in t.extra)])
    return (f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly --timeout 300 "
            f"--basetemp {w.work / 'pytest'} {tests}")


#: runs its arguments and prints the CPU seconds they used (user + system, children included)
CPU_TIMED = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print('avseg-mutants-cpu', u.ru_utime + u.ru_stime, flush=True); sys.exit(r.returncode)")


def run_group(args: list[str], cwd: Path, env: dict[str, str], limit: float | None) -> tuple[int, str]:
    """(exit code, stdout) of ``args``, run in its own process group so that a timeout also ends
    the pytest runs it started (raises ``TimeoutExpired`` after killing them)."""
    with subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          start_new_session=True) as p:
        try:
            out = p.communicate(timeout=limit)[0]
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise
        return p.returncode, out


def run_module(name: str, t: Target, w: Worker, timeout: float, minutes: float,
               estimate: bool = False) -> dict[str, object]:
    """Mutate ``t`` in ``w``'s copy; with ``estimate``, count the mutants and time the tests only."""
    repo, env = w.repo, w.env()
    cfg, session = w.work / f"{name}.toml", w.work / f"{name}.sqlite"
    command = test_command(t, w)
    lines = line_ranges(repo / t.path, t.only) if t.only else []
    keep = "|".join(KEEP)

    def write_cfg(timeout: float) -> None:
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

    def cr(*args: str, limit: float | None = None) -> str:
        return run_group(list(args), repo, env, limit)[1]

    def pending() -> int:
        return sum(json.loads(row)[1] is None for row in cr(tool("cosmic-ray"), "dump", str(session)).splitlines())

    head: dict[str, object] = {"module": name, "path": t.path}
    b0 = time.monotonic()
    try:  # the tests must pass unmutated, within the module's cap
        code, out = run_group([sys.executable, "-c", CPU_TIMED, "sh", "-c", command], repo, env, minutes * 60)
    except subprocess.TimeoutExpired:
        return {**head, "error": f"the unmutated tests took over {minutes:g} minutes"}
    head["baseline_s"] = round(time.monotonic() - b0, 1)
    # CPU seconds: about what the run takes on an idle machine, whatever the load now
    cpu = [ln.split()[1] for ln in out.splitlines() if ln.startswith("avseg-mutants-cpu ")]
    head["baseline_cpu_s"] = round(float(cpu[-1]), 1) if cpu else None
    if code != 0:
        return {**head, "error": "the tests fail without any mutation: " + (out.strip().splitlines() or ["?"])[-1]}
    # a mutant that loops forever costs its whole timeout: allow ~10x the unmutated run, not minutes
    head["timeout_s"] = limit = round(min(timeout, max(30.0, 10 * float(head["baseline_s"]))))  # type: ignore[arg-type]
    write_cfg(limit)
    session.unlink(missing_ok=True)
    cr(tool("cosmic-ray"), "init", str(cfg), str(session))
    cr(tool("cr-filter-operators"), str(session), str(cfg))
    if lines:
        cr(tool("cr-filter-lines"), "--config", str(cfg), str(session))
    if estimate:
        return {**head, "mutants": pending()}
    t0 = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):  # what ran is in the session; the rest is "not run"
        cr(tool("cosmic-ray"), "exec", str(cfg), str(session), limit=minutes * 60)
    # a killed exec may leave the last mutant applied: restore the file from the worktree
    shutil.copy2(ROOT / t.path, repo / t.path)
    killed = survived = not_run = incompetent = 0
    survivors: list[dict[str, object]] = []
    for row in cr(tool("cosmic-ray"), "dump", str(session)).splitlines():
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
            survivors.append({"line": m["start_pos"][0], "operator": m["operator_name"].removeprefix("core/"),
                              "was": " ".join(ln[1:].strip() for ln in diff if ln[0] == "-"),
                              "now": " ".join(ln[1:].strip() for ln in diff if ln[0] == "+")})
        else:
            killed += 1
    done = killed + survived
    return {**head, "mutants": done, "killed": killed, "survived": survived,
            "incompetent": incompetent, "not_run": not_run, "kill_rate": round(killed / done, 3) if done else None,
            "seconds": round(time.monotonic() - t0), "survivors": survivors,
            "tests": " ".join([*t.tests, *t.extra]), "only": list(t.only)}


def print_table(results: list[dict[str, object]], estimate: bool, jobs: int) -> None:
    if estimate:
        print("\n| module | file | mutants | unmutated tests (s) | their CPU (s) | estimate (min) |\n"
              "| --- | --- | ---: | ---: | ---: | ---: |")
        total = 0.0
        for r in results:
            if "error" in r:
                print(f"| {r['module']} | `{r['path']}` | {r['error']} | | | |")
                continue
            per = r["baseline_cpu_s"] or r["baseline_s"]
            cost = int(r["mutants"]) * float(per)  # type: ignore[call-overload, arg-type]
            total += cost
            print(f"| {r['module']} | `{r['path']}` | {r['mutants']} | {r['baseline_s']} | {r['baseline_cpu_s']} | "
                  f"{cost / 60:.1f} |")
        print(f"\nestimate: {total / 60:.1f} minutes of test runs / {jobs} jobs = {total / 60 / jobs:.1f} minutes on an "
              "idle machine (each mutant costs about the unmutated tests' CPU time; a killed one less, with -x)")
        return
    equivalent = load_equivalents()
    print("\n| module | file | unmutated tests (s) | their CPU (s) | mutants | killed | survived | of which "
          "equivalent | not run | kill rate | kill rate, non-equivalent |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = [0, 0, 0, 0]
    for r in results:
        if "error" in r:
            print(f"| {r['module']} | `{r['path']}` | {r.get('baseline_s', '')} | {r.get('baseline_cpu_s', '')} | "
                  f"{r['error']} | | | | | | |")
            continue
        eq, _, _ = classify(r, equivalent)
        done, killed = int(r["mutants"]), int(r["killed"])  # type: ignore[call-overload]
        totals = [totals[0] + done, totals[1] + killed, totals[2] + len(eq), totals[3] + int(r["not_run"])]  # type: ignore[call-overload]
        print(f"| {r['module']} | `{r['path']}` | {r['baseline_s']} | {r['baseline_cpu_s']} | {done} | {killed} | "
              f"{r['survived']} | {len(eq)} | {r['not_run']} | {rate(killed, done)} | {rate(killed, done - len(eq))} |")
    done, killed, eq_n, not_run = totals
    print(f"| **all** | | | | {done} | {killed} | {done - killed} | {eq_n} | {not_run} | {rate(killed, done)} | "
          f"{rate(killed, done - eq_n)} |")


def rate(killed: int, of: int) -> str:
    # rounded down: 2762 of 2763 is 99.9%, never "100.0%"
    return f"{(1000 * killed // of) / 10:.1f}%" if of else "-"


#: survivors argued equivalent (docs/testing.md), matched by module + the line before and after
EQUIVALENTS = ROOT / "scripts" / "equivalent_mutants.yaml"


def _norm(code: object) -> str:
    return " ".join(str(code).split())


def load_equivalents(path: Path | None = None) -> dict[str, dict[tuple[str, str], str]]:
    """module -> {(original line, mutated line): why it changes no behaviour}."""
    import yaml  # a core dependency of avseg

    path = path or EQUIVALENTS
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    out: dict[str, dict[tuple[str, str], str]] = {}
    for module, items in (data or {}).items():
        if module not in MODULES:
            raise SystemExit(f"error: {path.name}: unknown module {module!r}; --list shows them")
        for i, e in enumerate(items):
            if not (isinstance(e, dict) and all(isinstance(e.get(k), str) and e[k].strip() for k in ("was", "now", "why"))):
                raise SystemExit(f"error: {path.name}: {module} item {i + 1} needs non-empty 'was', 'now' and 'why'")
            out.setdefault(module, {})[_norm(e["was"]), _norm(e["now"])] = e["why"].strip()
    return out


def classify(r: dict[str, object], equivalent: dict[str, dict[tuple[str, str], str]]
             ) -> tuple[list[tuple[dict[str, object], str]], list[dict[str, object]], list[tuple[str, str]]]:
    """(argued equivalent with why, not argued, listed but not a survivor of this run) for one module's result."""
    known = equivalent.get(str(r["module"]), {})
    eq: list[tuple[dict[str, object], str]] = []
    gaps: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    for s in r.get("survivors", []):  # type: ignore[attr-defined]
        if isinstance(s, str):  # results saved before survivors were structured: "path:line op: -was | +now"
            head, _, diff = s.partition(": -")
            was, _, now = diff.rpartition(" | +")
            s = {"line": head.split(" ")[0].rsplit(":", 1)[-1], "operator": head.split(" ")[-1].removeprefix("core/"),
                 "was": was.strip(), "now": now.strip()}
        key = (_norm(s["was"]), _norm(s["now"]))
        if key in known:
            eq.append((s, known[key]))
            seen.add(key)
        else:
            gaps.append(s)
    stale = [k for k in known if k not in seen] if not r.get("not_run") else []
    return eq, gaps, stale


def print_survivors(results: list[dict[str, object]], markdown: bool = False) -> None:
    """Each module's survivors: the argued equivalents (with why) and the rest, which are gaps."""
    equivalent = load_equivalents()
    for r in results:
        if "error" in r:
            continue
        eq, gaps, stale = classify(r, equivalent)
        if not (eq or gaps or stale):
            continue
        print(f"\n#### {r['module']} (`{r['path']}`)\n" if markdown else f"\n== {r['module']} ({r['path']})")
        for s in gaps:
            print(f"- NOT ARGUED (a gap: kill it, or argue it in {EQUIVALENTS.name}): line {s['line']} "
                  f"{s['operator']}: `{s['was']}` -> `{s['now']}`")
        for s, why in eq:
            print(f"- line {s['line']} {s['operator']}: `{s['was']}` -> `{s['now']}`: {why}")
        for was, now in stale:
            print(f"- listed as equivalent but did not survive this run (remove it?): `{was}` -> `{now}`")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help="module names (default: all, see --list)")
    ap.add_argument("--list", action="store_true", help="list the modules and their tests")
    ap.add_argument("--jobs", type=int, default=2, help="modules run in this many parallel workers (own copies)")
    ap.add_argument("--estimate", action="store_true",
                    help="count the mutants and time the unmutated tests; print mutants x time / jobs")
    ap.add_argument("--minutes", type=float, default=55.0, help="start no module after this many minutes")
    ap.add_argument("--module-minutes", type=float, default=None, help="override each module's time cap")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds for one mutant's test run")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write the results here (the last run's file there orders this one: slowest first)")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="run nothing: print the table and the survivors of a saved --json run")
    ap.add_argument("--markdown", action="store_true", help="with --report: survivors as docs/testing.md lists them")
    args = ap.parse_args()
    if args.report:
        try:
            saved = json.loads(args.report.read_text())
        except (OSError, ValueError) as e:
            print(f"error: --report {args.report}: not a results file of this script ({e})", file=sys.stderr)
            return 2
        print_table(saved, False, args.jobs)
        print_survivors(saved, markdown=args.markdown)
        return 0
    if args.list:
        for n, t in MODULES.items():
            print(f"{n:14} {t.path}{' (' + ', '.join(t.only) + ')' if t.only else ''}\n{'':14} tests: "
                  f"{' '.join([*t.tests, *t.extra])}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"error: unknown module {unknown[0]!r}; --list shows them", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    names = args.modules or list(MODULES)
    jobs = min(args.jobs, len(names))
    load_equivalents()  # a broken list fails now, not after an hour
    # the slowest modules of the last run first (new ones first of all), so the workers finish together
    last: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        last = {r["module"]: float(r.get("seconds", 0)) for r in json.loads(args.json.read_text())}
    order = sorted(names, key=lambda n: -last.get(n, float("inf")))
    root = Path(tempfile.mkdtemp(prefix="avseg-mutants-"))
    print(f"mutating {jobs} copies under {root}", flush=True)
    free: queue.Queue[Worker] = queue.Queue()
    for i in range(jobs):
        free.put(Worker.make(root, i))
    t0, lock = time.monotonic(), threading.Lock()
    results: dict[str, dict[str, object]] = {}

    def one(name: str) -> None:
        t = MODULES[name]
        if time.monotonic() - t0 > args.minutes * 60:
            r: dict[str, object] = {"module": name, "path": t.path, "error": "not run (time budget)"}
        else:
            w = free.get()  # a copy no other module is using now
            try:
                with lock:
                    print(f"== {name}: {t.path} (in {w.work.name})", flush=True)
                r = run_module(name, t, w, args.timeout, args.module_minutes or t.minutes, args.estimate)
            finally:
                free.put(w)
        with lock:
            results[name] = r
            print(f"   {name}: {json.dumps({k: v for k, v in r.items() if k not in ('survivors', 'module')})}",
                  flush=True)
            for s in r.get("survivors", []):  # type: ignore[attr-defined]
                print(f"   survived: line {s['line']} {s['operator']}: `{s['was']}` -> `{s['now']}`", flush=True)
            if args.json:
                args.json.write_text(json.dumps([results[n] for n in names if n in results], indent=1))

    try:
        with ThreadPoolExecutor(jobs) as pool:
            for f in [pool.submit(one, n) for n in order]:
                f.result()
        print_table([results[n] for n in names], args.estimate, jobs)
        if not args.estimate:
            print_survivors([results[n] for n in names])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
