#!/usr/bin/env bash
# Measures rollout and training throughput on each named device and prints
# one table. Rollout: 8 prompts x 8 samples x up to 32 new tokens from
# SmolLM2-135M (batch of 8 decode steps with a KV cache). Training: CD-Q
# steps of the quickstart's vocabulary-head scorer on those rollouts.
#
# Usage: scripts/bench.sh [DEVICE...]     (default: flex)
#   e.g. scripts/bench.sh flex tch-cpu wgpu
# The build gets the cargo features the devices need; tch devices install
# libtorch first (scripts/setup_torch.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
devices=("$@")
((${#devices[@]})) || devices=(flex)

features=()
for device in "${devices[@]}"; do
    case "$device" in
        flex) ;;
        wgpu) features+=(wgpu) ;;
        vulkan) features+=(vulkan) ;;
        tch-cpu | tch-cuda | tch-cuda:*) features+=(tch) ;;
        *) echo "bench: unknown device $device (flex, wgpu, vulkan, tch-cpu, tch-cuda[:N])" >&2; exit 2 ;;
    esac
done
feature_list="$(printf '%s\n' "${features[@]}" | sort -u | paste -sd, -)"
if [[ ",$feature_list," == *,tch,* ]]; then
    eval "$(scripts/setup_torch.sh)"
fi

scripts/setup.sh >/dev/null
cargo build --release --locked -p tiller-cli ${feature_list:+--features "$feature_list"}

out=/tmp/tiller-bench
rm -rf "$out"
mkdir -p "$out"
for device in "${devices[@]}"; do
    name="bench-${device//:/-}"
    log="$out/$name.log"
    echo "bench: $device" >&2
    target/release/tiller rollout recipes/bench.toml --device "$device" \
        --set "run.name=\"$name\"" --log-format json 2>"$log"
    target/release/tiller train recipes/bench.toml --device "$device" \
        --set "run.name=\"$name\"" --log-format json 2>>"$log"
done

python3 - "$out" "${devices[@]}" <<'PY'
import json, sys
out, devices = sys.argv[1], sys.argv[2:]
print("| device | rollout tokens | rollout s | rollout tokens/s | train steps | train s | train tokens/s |")
print("|---|---|---|---|---|---|---|")
for device in devices:
    name = "bench-" + device.replace(":", "-")
    summary = json.load(open(f"{out}/runs/{name}/rollouts/summary.json"))
    train = None
    for line in open(f"{out}/{name}.log"):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("message") == "train stage finished":
            train = event
    row = [device, str(summary["tokens"]), f"{summary['sampling_seconds']:.1f}",
           f"{summary['tokens_per_second']:.1f}"]
    if train:
        row += [str(train["steps"]), f"{float(train['seconds']):.1f}",
                f"{float(train['tokens_per_second']):.0f}"]
    else:
        row += ["-", "-", "-"]
    print("| " + " | ".join(row) + " |")
PY
