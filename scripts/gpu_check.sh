#!/usr/bin/env bash
# Checks the GPU backends on a machine with an NVIDIA GPU, its driver, cargo
# and access to the package registries:
#   1. builds with the `tch` and `vulkan` features (libtorch 2.9.0 from the
#      torch wheel, scripts/setup_torch.sh);
#   2. runs the backend parity tests on tch-cuda:0, wgpu and vulkan against
#      flex, in f32, bf16 and f16;
#   3. runs the backend benchmark (scripts/bench.sh) on every device;
#   4. runs the quickstart recipe on tch-cuda:0.
# Everything it prints also goes to $TILLER_GPU_LOG (default
# /tmp/tiller-gpu-check.log); the benchmark table is at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log="${TILLER_GPU_LOG:-/tmp/tiller-gpu-check.log}"
exec > >(tee "$log") 2>&1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
scripts/setup.sh
eval "$(scripts/setup_torch.sh)"

devices=(tch-cuda:0 wgpu vulkan)
export TILLER_PARITY_DEVICES
TILLER_PARITY_DEVICES="$(IFS=,; echo "${devices[*]}")"

time cargo test --release --locked -p tiller-model -p tiller-train -p tiller-decode \
    --features tch,vulkan \
    parity -- --nocapture

time scripts/bench.sh flex "${devices[@]}"

time target/release/tiller run recipes/quickstart.toml --device tch-cuda:0 \
    --set 'run.name="quickstart-tch-cuda"'
