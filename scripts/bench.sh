#!/usr/bin/env bash
# Measures rollout and training throughput on the CPU backend and prints a
# table. Rollout: 8 prompts x 8 samples x up to 32 new tokens from
# SmolLM2-135M (Q4_1 dequantised to f32). Training: CD-Q with the
# quickstart's vocabulary-head scorer on those rollouts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh >/dev/null
cargo build --release --locked -p tiller-cli
rm -rf /tmp/tiller-bench
log=/tmp/tiller-bench.log
target/release/tiller rollout recipes/bench.toml --log-format json 2>"$log"
target/release/tiller train recipes/bench.toml --log-format json 2>>"$log"

python3 - "$log" /tmp/tiller-bench/runs/bench/rollouts/summary.json <<'PY'
import json, sys
log_path, summary_path = sys.argv[1:]
summary = json.load(open(summary_path))
train = None
for line in open(log_path):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("message") == "train stage finished":
        train = event
print("| stage | work | seconds | tokens/s |")
print("|---|---|---|---|")
print(f"| rollout | {summary['responses']} responses, {summary['tokens']} tokens "
      f"| {summary['sampling_seconds']:.1f} | {summary['tokens_per_second']:.1f} |")
if train:
    print(f"| train | {train['steps']} steps | {float(train['seconds']):.1f} "
          f"| {float(train['tokens_per_second']):.0f} |")
PY
