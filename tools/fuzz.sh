#!/usr/bin/env bash
# The long fuzz budget: every reader, CASES mutated inputs per target of weight 1 (default 5000;
# slower targets get their share), release mode, each case in a child process limited to
# AUDIOTOK_FUZZ_MEMORY MiB of address space (default 4096) and AUDIOTOK_FUZZ_TIMEOUT seconds
# (default 20). Prints the table (target, cases, Ok, typed errors, panics, aborts, timeouts) and
# every failure with the path of its kept input and the command that replays it; exits 1 on any.
#
#   tools/fuzz.sh [CASES]
#   AUDIOTOK_FUZZ_SEED=7 AUDIOTOK_FUZZ_TARGETS=mds,store tools/fuzz.sh 20000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p audiotok-fuzz --bin audiotok-fuzz
exec target/release/audiotok-fuzz run "${1:-5000}"
