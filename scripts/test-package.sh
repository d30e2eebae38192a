#!/usr/bin/env bash
# Installs the built .deb on a clean Debian 12 root made from Debian's packages (mmdebstrap)
# and tests it there: tests/package.rs launches the installed app over WebDriver, generates,
# revokes and verifies keys, runs the verifier as its systemd unit would, then removes the
# package and checks the user's data survive. Then the same for the .rpm beside the .deb,
# installed in its place with Debian's rpm. Needs root (or sudo) for mmdebstrap and chroot.
#
#   scripts/test-package.sh [dist/keysmith_VERSION_amd64.deb]   (default: the one in dist/)
#
# Downloaded packages are kept in ~/.cache/keysmith/debroot/archives for the next run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

deb="${1:-}"
if [ -z "$deb" ]; then
  debs=(dist/keysmith_*_amd64.deb)
  deb="${debs[0]}"
fi
[ -f "$deb" ] || { echo "test-package: no package at $deb (scripts/package.sh makes it)" >&2; exit 2; }
rpms=("$(dirname "$deb")"/keysmith-*.x86_64.rpm)
rpm="${rpms[0]}"
[ -f "$rpm" ] || { echo "test-package: no .rpm beside $deb (scripts/package.sh makes it)" >&2; exit 2; }
(cd "$(dirname "$deb")" && sha256sum --check --quiet SHA256SUMS)

cache="$HOME/.cache/keysmith/debroot"
mkdir -p "$cache/archives" "$HOME/.cache/keysmith/tmp"
work="$(mktemp -d "$HOME/.cache/keysmith/tmp/debroot.XXXXXX")"
root="$work/root"
session=""

cleanup() {
  if [ -n "$session" ]; then
    $SUDO kill -TERM -- "-$session" 2>/dev/null || true
    sleep 1
    $SUDO kill -KILL -- "-$session" 2>/dev/null || true
  fi
  # Anything still running inside the root holds its mounts.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    if [ "$($SUDO readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ]; then
      $SUDO kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for m in var/cache/apt/archives tmp/.X11-unix dev/pts dev sys proc; do
    mountpoint -q "$root/$m" 2>/dev/null && $SUDO umount -l "$root/$m"
  done
  $SUDO rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "test-package: a clean Debian 12 root in $root"
$SUDO mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
$SUDO mount -t proc proc "$root/proc"
$SUDO mount -t sysfs sys "$root/sys"
$SUDO mount --bind /dev "$root/dev"
$SUDO mount --bind /dev/pts "$root/dev/pts"
$SUDO mount --bind "$cache/archives" "$root/var/cache/apt/archives"
$SUDO cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { $SUDO chroot "$root" env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

echo "test-package: apt-get install $(basename "$deb") (its dependencies from Debian)"
$SUDO cp "$deb" "$root/tmp/keysmith.deb"
$SUDO cp "$rpm" "$root/tmp/keysmith.rpm"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends /tmp/keysmith.deb >/dev/null
# The package's Depends are enough for both programs to load.
missing=$(in_root ldd /usr/bin/keysmith-app /usr/bin/keysmith | grep 'not found' || true)
[ -z "$missing" ] || { echo "test-package: libraries the package does not depend on: $missing" >&2; exit 1; }

echo "test-package: the test's own tools (Xvfb, WebKitWebDriver, a Secret Service, rpm)"
in_root apt-get install -y -qq --no-install-recommends xvfb xauth dbus dbus-x11 gnome-keyring \
  webkit2gtk-driver rpm >/dev/null
$SUDO install -m 0755 "$(command -v tauri-driver)" "$root/usr/local/bin/tauri-driver"
$SUDO install -m 0755 scripts/with-session.sh "$root/usr/local/bin/with-session.sh"

# A session in the root: D-Bus with an unlocked gnome-keyring, Xvfb, and tauri-driver on a
# free port; the session's variables go to /tmp/session.env for the test's commands.
port=$(python3 -c 'import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError: pass')
# shellcheck disable=SC2016
setsid $SUDO chroot "$root" env -i HOME=/root LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /usr/local/bin/with-session.sh --display -- sh -c '
    env | grep -E "^(DBUS_SESSION_BUS_ADDRESS|XDG_[A-Z_]+|DISPLAY)=" >/tmp/session.env
    exec tauri-driver --port "$1" --native-port "$(($1 + 1))"' sh "$port" \
  >"$work/session.log" 2>&1 &
session=$!
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null && break
  sleep 0.1
done

KEYSMITH_PACKAGE_ROOT="$root" KEYSMITH_PACKAGE_DRIVER="http://127.0.0.1:$port" \
  KEYSMITH_PACKAGE_RPM=/tmp/keysmith.rpm \
  cargo test --profile "${KEYSMITH_PROFILE:-ci}" -p keysmith-tests --test package \
  -- --ignored --nocapture || { echo "--- the session's log:"; cat "$work/session.log"; exit 1; }
