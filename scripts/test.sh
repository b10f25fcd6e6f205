#!/usr/bin/env bash
# Fetches the models the tests read, then runs the whole test suite in
# release mode (burn's CPU kernels are too slow unoptimised).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo test --release --workspace --locked "$@"
