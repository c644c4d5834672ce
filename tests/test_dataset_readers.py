"""The built-in dataset readers reach the registry through ``register_datasets``, as a plugin's do
(what ``avseg plugins --kind dataset`` lists), each under its ``--subset`` name."""

from __future__ import annotations

from avseg.data import SUBSETS
from avseg.data.avss import AVSSDataset
from avseg.data.ms3 import MS3Dataset
from avseg.data.s4 import S4Dataset
from avseg.registry import load_registry


def test_every_builtin_subset_is_registered_by_avseg() -> None:
    reg = load_registry(entry_points=False)
    assert set(SUBSETS) <= set(reg.datasets)
    found = {name: reg.datasets[name][0] for name in SUBSETS}
    assert {e.provider for e in found.values()} == {"avseg"}
    assert found["s4"].obj is S4Dataset and found["ms3"].obj is MS3Dataset and found["avss"].obj is AVSSDataset
    v1m = found["avss-v1m"].obj
    assert v1m.func is AVSSDataset and v1m.keywords == {"label": "v1m"}  # type: ignore[attr-defined]
    assert v1m.__doc__ == "AVSBench-semantic, its v1m clips only."
