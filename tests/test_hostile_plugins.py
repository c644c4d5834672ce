"""Hostile plugins (issue 26): a dataset reader or command that raises, a register_commands hook
that raises, a filter returning scores longer than its input or ``added`` of the wrong type:
one line naming the plugin or component, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from avseg import hookimpl
from avseg.components import ClipContext, ClipFilter, Filter, FrameContext
from avseg.types import FilterResult
from tests.fakes import FakeDist, module
from tests.helpers import cli, one_line

#: the shared ``s4`` fixture (tests/conftest.py), one test clip
S4_TREE = {"n_per_split": {"test": 1}, "size": 32}


def test_a_dataset_reader_that_raises_is_one_line(installed: list[FakeDist], s4: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def reader(root: Path, split: str) -> Any:
        raise KeyError("no such column")

    module("hostileplug_ds", register_datasets=hookimpl(lambda register: register("bad-ds", reader)))
    installed.append(FakeDist("hostile-ds", "1.0", {"badds": "hostileplug_ds"}))
    code, _, err = cli(capsys, "eval", "--root", str(s4), "--subset", "bad-ds", "--out", str(tmp_path / "o"),
                       "--proposer", "saliency", "--filter", "score-threshold", "--no-cache")
    line = one_line(err)
    assert code == 1 and "dataset 'bad-ds' of plugin 'badds' (from hostile-ds)" in line and "KeyError" in line


def test_a_plugin_command_that_raises_is_one_line(installed: list[FakeDist],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def add(app: Any) -> None:
        @app.command("explode")
        def explode() -> None:
            raise ZeroDivisionError("boom")

    module("hostileplug_cmd", register_commands=hookimpl(add))
    installed.append(FakeDist("hostile-cmd", "2.0", {"cmdplug": "hostileplug_cmd"}))
    code, _, err = cli(capsys, "explode")
    line = one_line(err)
    assert code == 1 and "command 'explode' of plugin 'cmdplug' (from hostile-cmd) failed" in line and "boom" in line


def test_register_commands_that_raised_is_broken_in_plugins(installed: list[FakeDist],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def add(app: Any) -> None:
        raise RuntimeError("cannot add my commands")

    module("hostileplug_rc", register_commands=hookimpl(add))
    installed.append(FakeDist("hostile-rc", "3.0", {"rcplug": "hostileplug_rc"}))
    code, out, err = cli(capsys, "plugins", "--json")
    assert code == 0, err
    rows = [r for r in json.loads(out) if r["status"] == "broken"]
    assert [r["name"] for r in rows] == ["rcplug"] and "cannot add my commands" in rows[0]["description"]


class _LongScores(Filter):
    name: ClassVar[str] = "long-scores"

    def __call__(self, ctx: FrameContext) -> FilterResult:
        n = len(ctx.proposals)
        return FilterResult(keep=list(range(n)), scores=[0.5] * (n + 3))


class _BadAdded(ClipFilter):
    name: ClassVar[str] = "bad-added"
    added: ClassVar[Any] = "dog"

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        return [FilterResult(keep=list(range(len(p))), added=self.added) for p in ctx.proposals]


@pytest.mark.parametrize("flt,needle", [
    ("long-scores", "filter 'long-scores' (from hostile-flt) __call__() returned scores=a list of float of length"),
    ("bad-added", "filter 'bad-added' (from hostile-flt) __call__() returned added=a str; expected None or "
                  "avseg.types.Proposals"),
])
def test_filter_results_of_the_wrong_shape_name_the_filter(installed: list[FakeDist], s4: Path, tmp_path: Path,
                                                           flt: str, needle: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    def reg(register: Any) -> None:
        register(_LongScores)
        register(_BadAdded)

    module("hostileplug_flt", register_filters=hookimpl(reg))
    installed.append(FakeDist("hostile-flt", "1.0", {"flt": "hostileplug_flt"}))
    code, _, err = cli(capsys, "eval", "--root", str(s4), "--subset", "s4", "--out", str(tmp_path / "o"),
                       "--proposer", "saliency", "--filter", flt, "--no-cache")
    assert code == 1 and "Traceback" not in err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert len(failed) == 1 and needle in failed[0], err


def test_a_filter_score_per_item_is_still_accepted() -> None:
    from avseg import validate

    class F:
        kind, name, provider = "filter", "ok", "x"

    res = validate.filter_result(F(), FilterResult(keep=[0], scores=np.array([0.2, 0.3])), 2)  # type: ignore[arg-type]
    assert res.keep == [0]
