#!/usr/bin/env bash
# Builds everything and runs every test: formatting and lints, the core's unit and database
# tests, the real OS keyring (a private gnome-keyring), the CLI, and the desktop app under
# Xvfb over WebDriver. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step setup
scripts/setup.sh

step "cargo fetch"
cargo fetch --locked

step "format"
cargo fmt --all -- --check

step "UI (trunk, wasm32)"
(cd src-ui && trunk build --release)
gz=$(gzip -9c src-ui/dist/*.wasm | wc -c)
echo "UI wasm: $(stat -c %s src-ui/dist/*.wasm) bytes, $gz bytes gzipped"

step "clippy"
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release -p keysmith-ui --target wasm32-unknown-unknown -- -D warnings

step "build (binaries and tests, one feature set)"
cargo build --release --bins --tests

step "tests (inside a private D-Bus session with gnome-keyring, on Xvfb)"
scripts/with-session.sh --display -- cargo test --release --no-fail-fast

step "fuzz (short run of each target on its corpus)"
scripts/fuzz.sh 20
