"""scripts/mutants.py (``make mutants``): its module list points at real code and tests, and its
list of argued-equivalent survivors is read and matched the way docs/testing.md says."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutants():
    spec = importlib.util.spec_from_file_location("avseg_mutants_script", ROOT / "scripts" / "mutants.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def test_every_module_names_a_file_its_functions_and_test_files_that_exist(mutants):
    for name, t in mutants.MODULES.items():
        path = ROOT / t.path
        assert path.is_file(), f"{name}: {t.path} is gone"
        top = {n.name for n in ast.parse(path.read_text()).body
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
        # a renamed function would silently leave its lines unmutated
        assert set(t.only) <= top, f"{name}: {sorted(set(t.only) - top)} not in {t.path}"
        for test in t.tests:
            assert (ROOT / test.split("::")[0]).is_file(), f"{name}: {test} is gone"


def test_the_equivalents_list_loads_and_names_known_modules(mutants):
    equivalent = mutants.load_equivalents()
    assert set(equivalent) <= set(mutants.MODULES)
    assert all(why for items in equivalent.values() for why in items.values())


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "eq.yaml"
    p.write_text(text)
    return p


def test_an_entry_without_its_argument_or_for_an_unknown_module_is_refused(mutants, tmp_path):
    with pytest.raises(SystemExit, match="metrics item 1 needs non-empty 'was', 'now' and 'why'"):
        mutants.load_equivalents(write(tmp_path, "metrics:\n- {was: 'a = 1', now: 'a = 2', why: ' '}\n"))
    with pytest.raises(SystemExit, match="unknown module 'metric'"):
        mutants.load_equivalents(write(tmp_path, "metric:\n- {was: 'a = 1', now: 'a = 2', why: same}\n"))


def survivor(was: str, now: str) -> dict[str, object]:
    return {"line": 3, "operator": "NumberReplacer", "was": was, "now": now}


def test_survivors_are_matched_by_module_and_both_lines_whitespace_aside(mutants, tmp_path):
    eq = mutants.load_equivalents(write(tmp_path, "metrics:\n- {was: 'a = f(x, 1)', now: 'a = f(x,  2)', why: same}\n"
                                                  "- {was: 'b = 0', now: 'b = 1', why: unread}\n"))
    listed, other = survivor("a = f(x, 1)", "a = f(x, 2)"), survivor("a = f(x, 1)", "a = f(x, 0)")
    r = {"module": "metrics", "survivors": [other, listed], "not_run": 0}
    found, gaps, stale = mutants.classify(r, eq)
    assert [(s["now"], why) for s, why in found] == [("a = f(x, 2)", "same")]
    assert gaps == [other]  # the other mutant of the same line is a gap
    assert stale == [("b = 0", "b = 1")]  # listed, but it did not survive a complete run
    # the same survivor in another module is not excused by this module's list
    assert mutants.classify({**r, "module": "nms"}, eq)[0] == []
    # a module cut short by its cap: what did not run is unknown, so nothing is called stale
    assert mutants.classify({**r, "not_run": 4}, eq)[2] == []


def test_the_report_counts_the_kill_rate_over_non_equivalent_mutants(mutants, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mutants, "EQUIVALENTS", write(tmp_path, "metrics:\n- {was: 'b = 0', now: 'b = 1', why: unread}\n"))
    result = {"module": "metrics", "path": "avseg/eval/metrics.py", "baseline_s": 1.0, "baseline_cpu_s": 1.0,
              "mutants": 20, "killed": 18, "survived": 2, "not_run": 0,
              "survivors": [survivor("b = 0", "b = 1"), survivor("c = 0", "c = 1")]}
    mutants.print_table([result], False, 2)
    mutants.print_survivors([result])
    out = capsys.readouterr().out
    # 18 of 20 raw; 18 of the 19 not argued equivalent
    assert "| 20 | 18 | 2 | 1 | 0 | 90.0% | 94.7% |" in out
    assert "NOT ARGUED" in out and "`c = 0` -> `c = 1`" in out
    assert "`b = 0` -> `b = 1`: unread" in out
