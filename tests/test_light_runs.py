"""A run whose components need no torch never imports it (torch takes seconds to import): run.json
records torch's version only when a model plugin has already imported it."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = r"""
import sys, tempfile, pathlib
import numpy as np
import avseg
spec = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
spec.write_text("steps:\n  - proposer: saliency\n")
frames = np.full((2, 24, 32, 3), 90, np.uint8)
frames[:, 8:16, 10:20] = 250
audio = (np.zeros(32000, np.float32), 16000)
res = avseg.load(spec, device=sys.argv[1], cache=False)((frames, audio))
assert len(res.frames) == 2, res.frames
assert "torch" not in sys.modules, "torch was imported"
assert "torch_version" not in res.meta, res.meta.get("torch_version")
assert res.meta["device"] == "cpu", res.meta["device"]  # 'auto' with nothing on torch ran on the CPU
print("ok")
"""


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_a_run_without_torch_components_imports_no_torch(device: str) -> None:
    p = subprocess.run([sys.executable, "-c", CODE, device], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr[-2000:]
