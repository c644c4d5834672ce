"""The built-in dataset readers reach the registry through ``register_datasets``, as a plugin's do
(what ``avseg plugins --kind dataset`` lists), each under its ``--subset`` name."""

from __future__ import annotations

from pathlib import Path

import pytest

from avseg.data import SUBSETS
from avseg.data.avss import AVSSDataset
from avseg.data.ms3 import MS3Dataset
from avseg.data.s4 import S4Dataset
from avseg.errors import InputError
from avseg.registry import load_registry
from avseg.testing import make_ms3_tree, make_s4_tree


def test_every_builtin_subset_is_registered_by_avseg() -> None:
    reg = load_registry(entry_points=False)
    assert set(SUBSETS) <= set(reg.datasets)
    found = {name: reg.datasets[name][0] for name in SUBSETS}
    assert {e.provider for e in found.values()} == {"avseg"}
    assert found["s4"].obj is S4Dataset and found["ms3"].obj is MS3Dataset and found["avss"].obj is AVSSDataset
    v1m = found["avss-v1m"].obj
    assert v1m.func is AVSSDataset and v1m.keywords == {"label": "v1m"}  # type: ignore[attr-defined]
    assert v1m.__doc__ == "AVSBench-semantic, its v1m clips only."


def _rewrite_csv(path: Path, header: str | None = None, extra_row: str | None = None) -> list[str]:
    lines = path.read_text().splitlines()
    if header is not None:
        lines[0] = header
    if extra_row is not None:
        lines.append(extra_row)
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_a_metadata_csv_with_other_column_names_is_read_by_the_official_positions(tmp_path: Path) -> None:
    """name, start_time, category, split (S4) and video_id, split (MS3), whatever the header says."""
    s4 = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 2}, size=16)
    csv = next(s4.rglob("s4_meta_data.csv"))
    rows = [line.split(",") for line in _rewrite_csv(csv, header="a,b,c,d")[1:]]
    ds = S4Dataset(s4, "test")
    assert ds.ids == [r[0] for r in rows if r[3] == "test"]
    clip = ds.clip(ds.ids[0])
    want = next(r for r in rows if r[0] == ds.ids[0])
    assert clip.category == want[2] and clip.meta["start_time"] == want[1]
    ms3 = make_ms3_tree(tmp_path / "ms3", n_per_split={"train": 0, "val": 0, "test": 2}, size=16)
    csv = next(ms3.rglob("ms3_meta_data.csv"))
    rows = [line.split(",") for line in _rewrite_csv(csv, header="x,y")[1:]]
    assert MS3Dataset(ms3, "test").ids == [r[0] for r in rows if r[1] == "test"]


def test_a_short_row_is_named(tmp_path: Path) -> None:
    s4 = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 1}, size=16)
    csv = next(s4.rglob("s4_meta_data.csv"))
    n = len(_rewrite_csv(csv, extra_row="clipx,0,dog"))
    with pytest.raises(InputError, match=rf"^{csv}: row {n}: expected 4 columns, got 3$"):
        S4Dataset(s4, "test")
    ms3 = make_ms3_tree(tmp_path / "ms3", n_per_split={"train": 0, "val": 0, "test": 1}, size=16)
    csv = next(ms3.rglob("ms3_meta_data.csv"))
    n = len(_rewrite_csv(csv, extra_row="clipy"))
    with pytest.raises(InputError, match=rf"^{csv}: row {n}: expected 2 columns, got 1$"):
        MS3Dataset(ms3, "test")


def test_a_row_may_omit_a_trailing_start_time(tmp_path: Path) -> None:
    s4 = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 1}, size=16)
    csv = next(s4.rglob("s4_meta_data.csv"))
    lines = csv.read_text().splitlines()
    name, start, cat, split = lines[1].split(",")
    csv.write_text(f"name,category,split,start_time\n{name},{cat},{split}\n")
    ds = S4Dataset(s4, "test")
    assert ds.ids == [name] and ds.clip(name).meta["start_time"] == "" and ds.clip(name).category == cat
