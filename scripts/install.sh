#!/usr/bin/env bash
# Create the virtual environment and install avseg with every bundled plugin's dependencies.
# torch/torchvision are pinned to the builds this project is tested with (see README).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q torch==2.14.1 torchvision==0.29.1
$PIP install -q -e ".[dev]" -e examples/avseg-example-plugin
