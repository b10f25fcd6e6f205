#!/usr/bin/env bash
# Builds the GPU backends (`tch`, `wgpu`) and checks them on the CPU devices
# a machine without a GPU has: libtorch's CPU device (tch-cpu) and, when
# Mesa's lavapipe works as a wgpu adapter, wgpu. Runs the backend parity
# tests against flex, then a small `tiller run` on each device.
#
# Set TILLER_PARITY_DEVICES (comma-separated) to choose the devices instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
eval "$(scripts/setup_torch.sh)"

# lavapipe, the CPU Vulkan driver wgpu falls back to without a GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    echo "test_backends: installing mesa-vulkan-drivers (lavapipe)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi

results="$(mktemp)"
runs="$(mktemp -d)"
trap 'rm -rf "$runs" "$results"' EXIT

features=tch,wgpu
packages=(-p tiller-model -p tiller-train -p tiller-decode -p tiller-cli)
cargo build --release --locked "${packages[@]}" --features "$features"
cargo test --release --locked "${packages[@]}" --features "$features" --no-run

if [[ -z "${TILLER_PARITY_DEVICES:-}" ]]; then
    devices=(tch-cpu)
    # A driver crash kills the process instead of raising an error, so the
    # probe runs in its own process.
    if target/release/tiller devices wgpu; then
        devices+=(wgpu)
    else
        echo "test_backends: wgpu has no working adapter here; skipping it"
    fi
    TILLER_PARITY_DEVICES="$(IFS=,; echo "${devices[*]}")"
fi
export TILLER_PARITY_DEVICES
echo "test_backends: comparing flex with $TILLER_PARITY_DEVICES"

cargo test --release --locked "${packages[@]}" --features "$features" -- parity device 2>&1 |
    tee "$results"

# The whole CLI on each device: about a minute on tch-cpu, a few on lavapipe.
IFS=, read -ra devices <<<"$TILLER_PARITY_DEVICES"
for device in "${devices[@]}"; do
    echo "test_backends: tiller run on $device"
    target/release/tiller run recipes/smoke.toml --device "$device" --quiet \
        --set "run.name=\"smoke-${device//:/-}\"" \
        --set "run.runs_dir=\"$runs/runs\"" --set "run.checkpoints_dir=\"$runs/checkpoints\""
    test -s "$runs/runs/smoke-${device//:/-}/eval/results.csv"
done
# One closing line for the whole script: the parity tests' counts plus one
# per successful `tiller run`.
passed="$(grep -o '[0-9]* passed' "$results" | awk '{n += $1} END {print n + 0}')"
echo "backend checks: $((passed + ${#devices[@]})) passed, 0 failed"
