#!/usr/bin/env bash
# Benchmarks the desktop window against an empty Tauri + Leptos window built the same way
# (bench/empty-window): launch to interactive and idle memory (PSS), alternating runs in the
# same session under Xvfb, plus the gzipped size of both UIs' wasm. Not part of scripts/test.sh.
#
#   scripts/bench-window.sh            (KEYSMITH_BENCH_RUNS=N for other than 5 runs of each)
#
# Close other heavy work first: the machine's load skews launch times.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step setup
scripts/setup.sh
cargo fetch --locked

step "UIs (trunk, release)"
(cd src-ui && trunk build --release)
(cd bench/empty-window/ui && trunk build --release)

step "apps (release; the UIs are embedded at compile time)"
cargo build --release -p keysmith-app -p keysmith-empty-window
cargo bench --no-run -p keysmith-tests --bench window

step "benchmark (private D-Bus session with gnome-keyring, on Xvfb)"
scripts/with-session.sh --display -- cargo bench -p keysmith-tests --bench window
