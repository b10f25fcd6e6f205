#!/usr/bin/env bash
# Fetches the models, builds tiller and runs the quickstart recipe on the
# CPU backend. Extra arguments go to `tiller run` (e.g. --set run.name=x).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release --locked -p tiller-cli
exec target/release/tiller run recipes/quickstart.toml "$@"
