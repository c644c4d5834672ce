#!/usr/bin/env bash
# Install MMDetection 3.3.0 (+ mmcv 2.1.0 with compiled ops, + mmengine) into an avseg venv.
#
# Usage: scripts/install_mmdet.sh [VENV]          (default VENV: .venv)
#
# Why a script: mmdet 3.3.0 requires mmcv>=2.0.0rc4,<2.2.0 WITH its compiled ops (nms,
# RoIAlign, ...); mmcv publishes no wheel for current torch, and mmcv-lite lacks the ops.
# So mmcv 2.1.0 is built from its PyPI sdist, with one patch:
#   * setup.py passes `-std=c++17`; torch >= 2.10 headers need C++20 -> replaced by `-std=c++20`.
# The build needs `setuptools<81` (setup.py imports pkg_resources) and runs without build
# isolation (it must see the venv's torch).
#
# mmengine's wheel hard-requires `opencv-python`, which would install a second cv2 over the
# venv's `opencv-python-headless` (the GUI build needs libGL). So mmengine, mmcv and mmdet are
# installed with --no-deps and their runtime dependencies are listed here explicitly.
#
# The wheel is built ONCE per machine (~14 min on 2 idle cores; 34 min seen on a loaded 2-core
# machine at nice 10) into a wheelhouse OUTSIDE the repo:
#   ${AVSEG_WHEELHOUSE:-$HOME/.cache/avseg/wheelhouse}/torch-<torch version>-<cpu|cuda>/
# and later runs (e.g. CI on the same machine) install from there in seconds. The folder is keyed
# by the torch version because the compiled ops link against torch's C++ ABI.
#
# Environment:
#   AVSEG_WHEELHOUSE   wheelhouse root (default $HOME/.cache/avseg/wheelhouse)
#   AVSEG_MMCV_CUDA=1  also compile the CUDA ops (needs nvcc and a visible GPU; much slower).
#                      Default: CPU ops only (CUDA_VISIBLE_DEVICES is emptied during the build).
#   MAX_JOBS           parallel compile jobs (default 2)
#   AVSEG_BUILD_NICE   nice level for the compile (default 10)
set -euo pipefail
VENV=${1:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "install_mmdet.sh: no python at $PY (run scripts/install.sh first)" >&2; exit 1; }
PIP="$PY -m pip"
MMCV_VERSION=2.1.0
MMDET_VERSION=3.3.0
MMENGINE_SPEC="mmengine>=0.7.1,<1.0.0"

TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
if [ "${AVSEG_MMCV_CUDA:-0}" = "1" ]; then FLAVOUR=cuda; else FLAVOUR=cpu; fi
WHEELHOUSE=${AVSEG_WHEELHOUSE:-$HOME/.cache/avseg/wheelhouse}/torch-${TORCH_VERSION//+/_}-$FLAVOUR
mkdir -p "$WHEELHOUSE"

# setuptools<81 still ships pkg_resources (needed by mmcv's setup.py and by mmengine at import).
$PIP install -q "setuptools<81" wheel ninja

find_wheel() { ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1; }
WHEEL=$(find_wheel || true)
if [ -z "$WHEEL" ]; then
    echo "install_mmdet.sh: building mmcv $MMCV_VERSION wheel into $WHEELHOUSE (one-off, ~15 min on 2 cores)"
    BUILD=$(mktemp -d "${TMPDIR:-/tmp}/avseg-mmcv-build.XXXXXX")
    trap 'rm -rf "$BUILD"' EXIT
    $PIP download -q --no-binary :all: --no-deps "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    grep -q -- '-std=c++17' "$SRC/setup.py" || { echo "install_mmdet.sh: expected -std=c++17 in mmcv setup.py" >&2; exit 1; }
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    if [ "$FLAVOUR" = cpu ]; then export CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0; fi
    START=$(date +%s)
    MAX_JOBS=${MAX_JOBS:-2} MMCV_WITH_OPS=1 nice -n "${AVSEG_BUILD_NICE:-10}" \
        $PIP wheel --no-build-isolation --no-deps -w "$BUILD/dist" "$SRC"
    # move into the wheelhouse only once complete, so an interrupted build never leaves a bad wheel
    mv "$BUILD"/dist/mmcv-"$MMCV_VERSION"-*.whl "$WHEELHOUSE"/
    echo "install_mmdet.sh: mmcv wheel built in $(( $(date +%s) - START )) s"
    WHEEL=$(find_wheel)
else
    echo "install_mmdet.sh: reusing $WHEEL"
fi

# opencv: keep the headless build (installed by scripts/install.sh); add it if absent.
"$PY" -c 'import cv2' 2>/dev/null || $PIP install -q opencv-python-headless
# Everything OpenMMLab is installed with --no-deps (pip would otherwise resolve mmengine's
# opencv-python requirement again whenever mmcv, which requires mmengine, is installed);
# the runtime dependencies of mmengine, mmcv and mmdet are listed here instead.
$PIP install -q addict matplotlib numpy packaging Pillow pyyaml rich termcolor yapf \
    pycocotools scipy shapely six terminaltables tqdm
$PIP install -q --no-deps "$MMENGINE_SPEC" "$WHEEL" "mmdet==$MMDET_VERSION"
"$PY" - <<'PYEOF'
import mmcv, mmdet, mmengine
from mmcv.ops import nms, RoIAlign  # noqa: F401  (fails if the compiled ops are missing)
print(f"install_mmdet.sh: mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__} OK")
PYEOF
