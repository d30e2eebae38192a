#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with a real, unlocked Secret Service
# (gnome-keyring-daemon) and, with --display, a virtual X display (Xvfb).
# Everything it starts lives in a temporary folder and is stopped on exit.
#
#   scripts/with-session.sh [--display] -- CMD [ARGS…]
set -euo pipefail

want_display=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --display) want_display=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ "$#" -gt 0 ] || { echo "usage: $0 [--display] -- CMD [ARGS…]" >&2; exit 2; }

if [ -z "${KEYSMITH_SESSION_INNER:-}" ]; then
  export KEYSMITH_SESSION_INNER=1
  session_home="$(mktemp -d "${TMPDIR:-/tmp}/keysmith-session.XXXXXX")"
  chmod 700 "$session_home"
  export KEYSMITH_SESSION_HOME="$session_home"
  export XDG_RUNTIME_DIR="$session_home/run" XDG_DATA_HOME="$session_home/data" \
         XDG_CONFIG_HOME="$session_home/config" XDG_CACHE_HOME="$session_home/cache"
  mkdir -p "$XDG_RUNTIME_DIR" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
  chmod 700 "$XDG_RUNTIME_DIR"
  args=()
  [ "$want_display" = 1 ] && args+=(--display)
  status=0
  dbus-run-session -- "$0" "${args[@]}" -- "$@" || status=$?
  rm -rf "$session_home"
  exit "$status"
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The Secret Service: unlocked with a throwaway password read from stdin.
printf 'keysmith-test-keyring' | gnome-keyring-daemon --foreground --replace --unlock \
  --components=secrets >"$KEYSMITH_SESSION_HOME/keyring.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
       org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
       | grep -q 'boolean true'; then
    break
  fi
  sleep 0.1
done

if [ "$want_display" = 1 ]; then
  # The first free display number from :90 on.
  for n in $(seq 90 140); do
    if [ ! -e "/tmp/.X11-unix/X$n" ] && [ ! -e "/tmp/.X$n-lock" ]; then
      Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >"$KEYSMITH_SESSION_HOME/xvfb.log" 2>&1 &
      pids+=("$!")
      export DISPLAY=":$n"
      break
    fi
  done
  for _ in $(seq 1 100); do [ -e "/tmp/.X11-unix/X${DISPLAY#:}" ] && break; sleep 0.1; done
fi

"$@"
