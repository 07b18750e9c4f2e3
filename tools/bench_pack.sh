#!/usr/bin/env bash
# bench_pack.sh - builds audiotok (release), fetches the Qwen2 BPE and runs tools/bench_pack.py
# (audiotok pack --compat cooking vs the Python notebook loop on the same generated rows).
#     tools/bench_pack.sh [--rows 2000] [--clips 200]
# Needs the venv of tools/requirements-pack.txt in tmp/venv-pack (or PYTHON=/path/to/python).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p audiotok-cli
tools/fetch_qwen_tokenizer.sh
echo "uptime: $(uptime)"
"${PYTHON:-tmp/venv-pack/bin/python}" tools/bench_pack.py --audiotok target/release/audiotok "$@"
echo "uptime: $(uptime)"
