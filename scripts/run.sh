#!/usr/bin/env bash
# Builds Keysmith and launches the desktop app on its SQLite database in the OS data
# directory (Linux: ~/.local/share/keysmith; KEYSMITH_DATA_DIR overrides it).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"
scripts/setup.sh
(cd src-ui && trunk build --release)
cargo build --release --bins
echo "run: launching $CARGO_TARGET_DIR/release/keysmith-app (the CLI is $CARGO_TARGET_DIR/release/keysmith)"
exec "$CARGO_TARGET_DIR/release/keysmith-app"
