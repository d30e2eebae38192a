#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo fuzz, libFuzzer, stable Rust: `--sanitizer none`)
# against the corpus kept in fuzz/corpus/, for SECONDS each (default 20). New inputs go to a
# temporary folder, so the repository's corpus is read, not rewritten; a crash leaves its
# input in fuzz/artifacts/ and fails the run.
#
#   scripts/fuzz.sh [SECONDS]          # the short run scripts/test.sh makes
#   scripts/fuzz.sh --runs N           # a fixed number of executions per target (the benchmark)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KEYSMITH_ROOT"

limit="-max_total_time=${1:-20}"
if [ "${1:-}" = "--runs" ]; then limit="-runs=${2:?--runs needs a count}"; fi

for target in parse_key extract_headers; do
  fresh="$(mktemp -d)"
  log="$(mktemp)"
  status=0
  cargo fuzz run --sanitizer none "$target" "$fresh" "fuzz/corpus/$target" -- \
    "$limit" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: $target FAILED after $runs executions (see fuzz/artifacts/$target/)" >&2
    rm -rf "$fresh" "$log"
    exit 1
  fi
  echo "fuzz: $target: $runs executions, $speed/s, 0 crashes; $(ls "$fresh" | wc -l) new inputs"
  rm -rf "$fresh" "$log"
done
