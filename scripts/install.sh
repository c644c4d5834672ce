#!/usr/bin/env bash
# Create the virtual environment and install avseg with every bundled plugin's dependencies.
# torch/torchvision are pinned to the builds this project is tested with (see README).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() {
  # pip's notes about this machine's local wheel folders are noise in CI logs.
  "$VENV/bin/python" -m pip install -q "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
pip_install torch==2.14.1 torchvision==0.29.1
pip_install -e ".[dev]" -e examples/avseg-example-plugin
# gdino's official backend: groundingdino-py's declared pins (supervision==0.6.0 -> opencv-python)
# would put a second OpenCV beside opencv-python-headless; its real runtime needs are in the
# gdino extra, so install the package itself (and supervision, used by its parity test) bare.
pip_install --no-deps groundingdino-py==0.4.0 supervision==0.6.0
# MMDetection (the mmdet plugin) is installed separately by scripts/install_mmdet.sh: it builds
# mmcv once per machine (14-35 min on 2 cores). `make test-all` runs it; `make test` and `make demo` do not.
