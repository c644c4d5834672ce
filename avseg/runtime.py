"""Run-time services handed to every component: device, dtype, tiny mode, counters, sharing.

Components get one :class:`Runtime` per process. It lets them share a loaded model (the SAM
model behind both ``sam`` and ``sam-grid``), memoise per-frame work (one SAM image encoding
per frame) and count what they computed, which ends up in run.json.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from avseg.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from avseg.cache import StageCache

T = TypeVar("T")
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class CounterMark:
    """The counters and timings of a :class:`Runtime` at one moment (:meth:`Runtime.mark`)."""

    counters: dict[str, int]
    timings: dict[str, float]


@dataclass
class Runtime:
    device: str = "auto"  # auto | cpu | cuda[:N]
    dtype: str = "float32"  # float32 | bf16 | fp16 (half precisions on GPU only)
    tiny: bool = False  # build every model at small sizes with seeded random weights
    random_init: bool = False  # real architecture sizes, seeded random weights (benchmarks: speed only)
    seed: int = 0
    cache: StageCache | None = None
    counters: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[str, str], Arrays] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.cache is not None:  # rejected cache entries are counted with the rest
            self.cache.counters = self.counters

    @property
    def weights_mode(self) -> str:
        """'tiny', 'random' (real sizes, random weights) or 'pretrained': part of every cache key."""
        return "tiny" if self.tiny else "random" if self.random_init else "pretrained"

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def mark(self) -> CounterMark:
        """A snapshot of the counters and timings, for :meth:`since`."""
        return CounterMark(dict(self.counters), dict(self.timings))

    def since(self, mark: CounterMark) -> tuple[dict[str, int], dict[str, float]]:
        """What the counters and timings grew by since ``mark``: only the non-zero changes (a
        runtime shared across calls, ablation cells or Ray tasks keeps running totals)."""
        counters = {k: v - mark.counters.get(k, 0) for k, v in self.counters.items()
                    if v - mark.counters.get(k, 0)}
        timings = {k: v - mark.timings.get(k, 0.0) for k, v in self.timings.items()
                   if v - mark.timings.get(k, 0.0) > 0}
        return counters, timings

    def share(self, key: str, factory: Callable[[], T]) -> T:
        """Build an object once per process under ``key`` (e.g. a model) and reuse it."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = factory()
            return self._shared[key]  # type: ignore[no-any-return]

    def memo(self, namespace: str, key: str, compute: Callable[[], Arrays], max_items: int = 64) -> Arrays:
        """Per-item results computed once: in memory for this process, and on disk when a cache is set.

        ``namespace`` names the computation and everything that changes it (model, variant,
        weights); ``key`` names the input (a frame's content hash). On disk the key also holds
        the source fingerprint of the module that defines ``compute`` (its package and the core
        helpers it imports, see avseg.cache), so an edited encoder never gets the old entries.
        """
        k = (namespace, key)
        if k in self._memo:
            self.count(f"{namespace}.memory_hit")
            return self._memo[k]
        value: Arrays | None = None
        disk_key = key
        if self.cache is not None:
            from avseg.cache import make_key, source_fingerprint

            disk_key = make_key(key, source_fingerprint(getattr(compute, "__module__", None) or "?"))
            value = self.cache.get_arrays("memo/" + namespace, disk_key)
            if value is not None:
                self.count(f"{namespace}.cache_hit")
        if value is None:
            value = compute()
            self.count(f"{namespace}.computed")
            if self.cache is not None:
                self.cache.put_arrays("memo/" + namespace, disk_key, value)
        if len(self._memo) >= max_items:
            self._memo.pop(next(iter(self._memo)))
        self._memo[k] = value
        return value

    # Torch helpers: imported lazily so that the core never needs torch.
    def torch_device(self) -> Any:
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def torch_dtype(self) -> Any:
        import torch

        dev = self.torch_device()
        if self.dtype in ("float32", "fp32"):
            return torch.float32
        if dev.type == "cpu":
            from avseg.errors import UsageError

            raise UsageError(f"--dtype {self.dtype} needs a GPU; use --dtype float32 on the CPU")
        return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    def resolved_device(self) -> str:
        """The device name for run.json. 'auto' is resolved only when a component imported torch:
        a pipeline without one ran on the CPU, and importing torch to say so costs seconds."""
        if self.device != "auto":
            return self.device
        if "torch" not in sys.modules:
            return "cpu"
        return str(self.torch_device())


DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bf16", "fp16")


def make_runtime(*, tiny: bool = False, device: str = "auto", dtype: str = "float32",
                 cache_dir: Path | None = None, no_cache: bool = False) -> Runtime:
    """A Runtime from the CLI's options, checked (a bad --device or --dtype is a one-line UsageError)."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise UsageError(f"--device {device!r}: expected one of {', '.join(DEVICES)}{did_you_mean(device, DEVICES)}")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}{did_you_mean(dtype, DTYPES)}")
    from avseg.cache import StageCache, default_cache_dir

    cache = None if no_cache else StageCache(cache_dir or default_cache_dir())
    return Runtime(device=device, dtype=dtype, tiny=tiny, cache=cache)
