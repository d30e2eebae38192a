# Sourced by the scripts: one fixed build folder under the home directory (so repeated runs
# and fresh clones reuse compiled crates), and the tools setup.sh installed on PATH.
KEYSMITH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KEYSMITH_ROOT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keysmith/target}"
export PATH="$KEYSMITH_ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
