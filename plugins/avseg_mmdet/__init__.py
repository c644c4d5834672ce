"""MMDetection 3.x detector / instance-segmentation proposer (``mmdet``).

Importing this package is cheap: torch, mmcv, mmengine and mmdet load only when the proposer
is built. Install the dependencies with ``scripts/install_mmdet.sh VENV`` (mmcv must be
compiled from source for current torch; see docs/plugins/mmdet.md).
"""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_mmdet.proposer import MmdetProposer

    register(MmdetProposer)
