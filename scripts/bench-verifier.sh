#!/usr/bin/env bash
# HTTP figures for the forward-auth verifier, with wrk from Debian, on loopback:
#  1. throughput and p99 of `keysmith serve-verifier` against a bare axum handler that answers
#     204 (crates/keysmith-verifier/examples/bare_204.rs), alternating, same wrk settings; the
#     stored keys are limited to networks, rate-limited and scoped, and the client comes from
#     X-Forwarded-For behind a trusted proxy, so every allow also parses the header, matches
#     the address, takes from the key's bucket and checks the scopes; a second verifier whose
#     keys carry none of these is the same run's measure of what they cost;
#  2. the saturating load (connections beyond which throughput stops growing);
#  3. twice that load for 60 s: valid keys plus keys that must be refused (revoked, unknown,
#     a role the policy refuses); any 2xx among the latter is a wrong allow. The verifier's
#     resident memory is sampled every 5 s.
# Phase 1 also runs the bare handler with 2 and 4 µs of busy work per request: the share of
# the bare throughput a server keeps with that much work, i.e. the budget a ratio allows.
#
#   scripts/bench-verifier.sh            # KEYSMITH_BENCH_KEYS (default 100000), DURATION (20 s)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get install -y -qq wrk; }

KEYS=${KEYSMITH_BENCH_KEYS:-100000}
DUR=${DURATION:-20}
cargo build --release -q -p keysmith-cli --bin keysmith
cargo build --release -q -p keysmith-verifier --examples
BIN="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$BIN/examples/bench_fixture" "$work" "$KEYS"
# The same account shape without allowlists, rate limits or scopes: what those checks cost.
"$BIN/examples/bench_fixture" "$work/plain" "$KEYS" plain
cp examples/policy.toml "$work/policy.toml"
cat "$work/revoked.keys" "$work/unknown.keys" > "$work/refused.keys"
VP=19181; PP=19182; BP=19190
WORKERS=${WORKERS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
echo "server threads: $WORKERS (both servers; serve-verifier's default; WORKERS=N to change)"
KEYSMITH_LOG=warn "$BIN/keysmith" --data-dir "$work" serve-verifier --listen "127.0.0.1:$VP" \
  --policy "$work/policy.toml" --pepper-file "$work/pepper" --workers "$WORKERS" \
  --trusted-proxy 127.0.0.1 2>"$work/verifier.log" &
vpid=$!; pids+=("$vpid")
KEYSMITH_LOG=warn "$BIN/keysmith" --data-dir "$work/plain" serve-verifier --listen "127.0.0.1:$PP" \
  --policy "$work/policy.toml" --pepper-file "$work/plain/pepper" --workers "$WORKERS" \
  --trusted-proxy 127.0.0.1 2>"$work/plain-verifier.log" &
pids+=("$!")
"$BIN/examples/bare_204" "127.0.0.1:$BP" "$WORKERS" & pids+=("$!")
# The same bare handler spinning 2 and 4 µs per request: the work budget on this machine.
W2=19191; W4=19192
"$BIN/examples/bare_204" "127.0.0.1:$W2" "$WORKERS" 2000 & pids+=("$!")
"$BIN/examples/bare_204" "127.0.0.1:$W4" "$WORKERS" 4000 & pids+=("$!")
for port in $VP $PP $BP $W2 $W4; do
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

# wrk PORT CONNECTIONS SECONDS KEYS_FILE [METHOD] → prints "req/s p99_ms non2xx total"
load() {
  local out
  out=$(KEYS_FILE="$4" METHOD="${5:-GET}" wrk -t1 -c"$2" -d"$3"s --latency \
        -s scripts/bench-verifier.lua "http://127.0.0.1:$1/auth")
  local rps p99 bad total
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out"); bad=${bad:-0}
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $p99 $bad $total"
}

echo "== 1. verifier vs bare axum (wrk -t1 -c32 -d${DUR}s, $KEYS keys stored, alternating)"
declare -a vr br pr
for round in 1 2; do
  read -r r p _ _ < <(load $BP 32 "$DUR" "$work/good.keys"); br+=("$r"); echo "bare     round $round: $r req/s, p99 $p ms"
  read -r r p b _ < <(load $VP 32 "$DUR" "$work/good.keys"); vr+=("$r"); echo "verifier round $round: $r req/s, p99 $p ms (non-2xx: $b; keys with allowlist, rate limit and scopes)"
  read -r r p b _ < <(load $PP 32 "$DUR" "$work/plain/good.keys"); pr+=("$r"); echo "plain    round $round: $r req/s, p99 $p ms (non-2xx: $b; keys without them)"
done
awk -v a="${vr[*]}" -v b="${br[*]}" -v c="${pr[*]}" 'BEGIN { split(a, x, " "); split(b, y, " "); split(c, z, " ");
  printf "ratio verifier/bare: %.3f (keys without them: %.3f)\n", (x[1] + x[2]) / (y[1] + y[2]), (z[1] + z[2]) / (y[1] + y[2]) }'
# What any server keeps of the bare throughput when it does 2 or 4 µs of work per request:
# the budget a ratio asks for on this machine (each µs of work costs more than a µs here,
# as the loopback's per-request cost stays).
read -r w2 _ _ _ < <(load $W2 32 "$DUR" "$work/good.keys")
read -r w4 _ _ _ < <(load $W4 32 "$DUR" "$work/good.keys")
awk -v a="$w2" -v b="$w4" -v c="${br[*]}" 'BEGIN { split(c, y, " "); m = (y[1] + y[2]) / 2;
  printf "budget: bare + 2 µs of work per request: %.0f req/s (%.3f of bare); + 4 µs: %.0f req/s (%.3f)\n", a, a / m, b, b / m }'

PHASES=${PHASES:-123}
[[ "$PHASES" == *2* || "$PHASES" == *3* ]] || exit 0
echo "== 2. saturation (verifier, 10 s per step)"
best=0; sat=0
for c in 2 4 8 16 32 64 128; do
  read -r r p _ _ < <(load $VP "$c" 10 "$work/good.keys")
  echo "c=$c: $r req/s, p99 $p ms"
  if awk -v r="$r" -v b="$best" 'BEGIN { exit !(r > b * 1.05) }'; then best=$r; sat=$c; fi
done
echo "saturating load: $sat connections ($best req/s)"

twice=$((sat * 2))
echo "== 3. twice that ($twice connections) for 60 s: $sat valid, $((sat / 2)) revoked/unknown, $((sat - sat / 2)) refused by role"
rss() { awk '/VmRSS/ {print $2}' "/proc/$vpid/status"; }
echo "verifier RSS before: $(rss) kB"
load $VP "$sat" 60 "$work/good.keys" > "$work/good.out" &
g=$!
load $VP "$((sat / 2))" 60 "$work/refused.keys" > "$work/refused.out" &
r1=$!
load $VP "$((sat - sat / 2))" 60 "$work/manager.keys" DELETE > "$work/role.out" &
r2=$!
samples=()
for _ in $(seq 1 12); do sleep 5; samples+=("$(rss)"); done
wait $g $r1 $r2
echo "verifier RSS every 5 s (kB): ${samples[*]}"
read -r rps p99 bad total < "$work/good.out";   echo "valid:   $rps req/s, p99 $p99 ms, $bad of $total not allowed"
read -r rps p99 bad total < "$work/refused.out"; echo "refused: $rps req/s, p99 $p99 ms, $bad of $total refused; wrong allows: $((total - bad))"
read -r rps p99 bad total < "$work/role.out";    echo "role:    $rps req/s, p99 $p99 ms, $bad of $total refused; wrong allows: $((total - bad))"
