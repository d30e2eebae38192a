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
  # The bus starts the Secret Service on demand, unlocked, from our own service file, which
  # comes before the system's (that one would start a locked keyring and ask for a password
  # on a display there is none of). gnome-keyring-daemon aborts when a client vanishes in the
  # middle of opening a session (gnome-keyring issues 190 and 194), which tests that kill -9
  # Keysmith at random points provoke: the bus then starts it again on the next call, and
  # every start is logged and counted at the end.
  services="$session_home/dbus-services"
  mkdir -p "$services"
  printf 'keysmith-test-keyring' >"$session_home/keyring-password"
  cat >"$session_home/start-keyring" <<EOS
#!/bin/sh
echo "\$(date +%T.%N) gnome-keyring-daemon starts (pid \$\$)" >>"$session_home/keyring-starts.log"
exec gnome-keyring-daemon --foreground --replace --unlock --components=secrets \\
  <"$session_home/keyring-password" >>"$session_home/keyring.log" 2>&1
EOS
  chmod 700 "$session_home/start-keyring"
  for name in org.freedesktop.secrets org.gnome.keyring; do
    printf '[D-BUS Service]\nName=%s\nExec=%s\n' "$name" "$session_home/start-keyring" \
      >"$services/$name.service"
  done
  cat >"$session_home/bus.conf" <<EOS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <servicedir>$services</servicedir>
  <include>/usr/share/dbus-1/session.conf</include>
</busconfig>
EOS
  dbus-run-session --config-file="$session_home/bus.conf" -- "$0" "${args[@]}" -- "$@" \
    || status=$?
  starts=$(grep -c 'starts' "$session_home/keyring-starts.log" 2>/dev/null || true)
  if [ "${starts:-0}" -gt 1 ]; then
    echo "with-session: gnome-keyring-daemon was started $starts times (it stopped $((starts - 1)) time(s) on the way; see gnome-keyring issues 190/194)" >&2
  fi
  rm -rf "$session_home"
  exit "$status"
fi

pids=()
cleanup() {
  for p in "${pids[@]}" $(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' \
      "$KEYSMITH_SESSION_HOME/keyring-starts.log" 2>/dev/null); do
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The Secret Service: started by the bus (see above), unlocked with a throwaway password.
dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
  org.freedesktop.DBus.StartServiceByName string:org.freedesktop.secrets uint32:0 >/dev/null
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
