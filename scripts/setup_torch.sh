#!/usr/bin/env bash
# Installs libtorch for the `tch` backend and prints the environment a build
# and a run need. burn-tch 0.22 links libtorch 2.9.0 through the tch crate.
# The only libtorch 2.9.0 the package registries carry is inside PyPI's
# torch 2.9.0 wheel, so this script installs that wheel into a git-ignored
# virtual environment and points the build at it.
#
# Usage:  eval "$(scripts/setup_torch.sh)"
#
# The wheel is the CUDA build (about 6.7 GB with its nvidia packages). It
# runs on the CPU too, and libtorch_cpu.so itself needs libcudart, so the
# nvidia packages cannot be skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TILLER_TORCH_VENV:-$root/.venv-torch}"
version="2.9.0"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup_torch: creating $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -W ignore -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
    echo "setup_torch: installing torch==$version into $venv (several GB)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$version" >&2
fi

lib="$("$venv/bin/python" -W ignore -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
# torch-sys's build script imports torch from the first python on PATH.
echo "export PATH=\"$venv/bin:\$PATH\""
echo "export LIBTORCH_USE_PYTORCH=1"
echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
