#!/usr/bin/env bash
# Builds the Debian package and the RPM with Tauri's bundler: the desktop app, its icon and
# menu entry, the `keysmith` CLI in /usr/bin, and the verifier's systemd unit (disabled) with
# its policy in /etc/keysmith. Writes dist/keysmith_VERSION_amd64.deb,
# dist/keysmith-VERSION-1.x86_64.rpm and dist/SHA256SUMS.
#
#   scripts/package.sh [--profile PROFILE]    (default release; scripts/test.sh uses ci)
#
# The version is the workspace's, from Cargo.toml (tauri.conf.json names none).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"

profile=release
while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    *) echo "usage: $0 [--profile PROFILE]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
(cd src-ui && trunk build --release)
version=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="keysmith-app"))')

# `tauri build` runs `cargo build --bins` on the workspace, which builds the CLI too; its path
# depends on the build folder, so it is added here rather than in tauri.conf.json. The UI was
# built just above.
config=$(python3 -c 'import json,sys; conf = json.load(open("tauri.conf.json"))
linux = conf["bundle"]["linux"]
for package in ("deb", "rpm"):
    linux[package]["files"]["/usr/bin/keysmith"] = sys.argv[1]
print(json.dumps({"build": {"beforeBuildCommand": ""}, "bundle": {"linux": linux}}))' \
  "$CARGO_TARGET_DIR/$profile/keysmith")
tauri build --bundles deb,rpm --config "$config" -- --profile "$profile"

mkdir -p dist
rm -f dist/*.deb dist/*.rpm dist/SHA256SUMS
deb="dist/keysmith_${version}_amd64.deb"
rpm="dist/keysmith-${version}-1.x86_64.rpm"
cp "$CARGO_TARGET_DIR/$profile/bundle/deb/Keysmith_${version}_amd64.deb" "$deb"
cp "$CARGO_TARGET_DIR/$profile/bundle/rpm/Keysmith-${version}-1.x86_64.rpm" "$rpm"
(cd dist && sha256sum -- *.deb *.rpm > SHA256SUMS)
echo "packages: $KEYSMITH_ROOT/$deb $KEYSMITH_ROOT/$rpm"
cat dist/SHA256SUMS
