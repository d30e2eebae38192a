#!/usr/bin/env bash
# Benchmarks the desktop window against an empty Tauri + Leptos window built the same way
# (bench/empty-window): launch to interactive and idle memory (PSS), alternating runs in the
# same session under Xvfb, plus the gzipped size of both UIs' wasm. Not part of scripts/test.sh.
#
#   scripts/bench-window.sh            (KEYSMITH_BENCH_RUNS=N for other than 5 runs of each)
#
# Other work on the machine skews launch times: before each launch the benchmark waits (up
# to 5 min) for idle CPUs, and it launches again (up to 3 times) when other processes took
# more than 10 % of the CPUs during a launch. Warm-up launches are not counted.
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
# The packages scripts/test.sh builds plus the baseline, so that features unify the same way
# (the same keysmith-app binary, no rebuild of tauri between the two scripts).
cargo build --release --bins --tests --workspace \
  --exclude keysmith-ui --exclude keysmith-empty-window-ui
cargo bench --no-run -p keysmith-tests --bench window

step "benchmark (private D-Bus session with gnome-keyring, on Xvfb)"
scripts/with-session.sh --display -- cargo bench -p keysmith-tests --bench window
