#!/usr/bin/env bash
# Benchmarks the key list: an account with 10,000 keys against the same account with none,
# in the real window (first render after sign-in, search keystrokes, the member filter,
# scrolling, memory), launched alternately in the same run. Not part of scripts/test.sh.
#
#   scripts/bench-list.sh            (KEYSMITH_BENCH_RUNS=N for other than 3 launches of each)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step setup
scripts/setup.sh
cargo fetch --locked

step "UI (trunk, release)"
(cd src-ui && trunk build --release)

step "app (release; the UI is embedded at compile time)"
# What scripts/test.sh builds, so that features unify the same way (no rebuild of tauri).
cargo build --release --bins --tests
cargo bench --no-run -p keysmith-tests --bench list

step "benchmark (private D-Bus session with gnome-keyring, on Xvfb)"
scripts/with-session.sh --display -- cargo bench -p keysmith-tests --bench list
