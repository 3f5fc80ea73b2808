#!/usr/bin/env bash
# Round-robin wall times of saved collapse binaries beside numpy's loop, on
# the M=100 study (BENCHMARKS.md): one round runs numpy's loop, then each
# binary once, the run directory removed before each run, so a change in
# the machine's speed during the script reaches every side alike. Prints
# each side's times and median.
#
#   benches/ab_runs.sh ROUNDS BIN_A [BIN_B ...] [-- extra `collapse run` args]
#   e.g. benches/ab_runs.sh 12 /tmp/old /tmp/new -- --no-fsync
#
# OUT=DIR puts the run directory under DIR (default /dev/shm: tmpfs).
# Needs numpy; numpy's loop is peer_numpy.py's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: benches/ab_runs.sh ROUNDS BIN_A [BIN_B ...] [-- extra collapse run args]" >&2
  exit 2
fi
rounds=$1
shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ $# -gt 0 ] && shift
out="${OUT:-/dev/shm}/collapse-ab-$$"
trap 'rm -rf "$out"' EXIT
numpy_loop='import sys; sys.path.insert(0, "benches"); from peer_numpy import numpy_loop; print(f"{numpy_loop(100, 200, 1000):.3f}")'
source benches/common.sh

declare -A seen
for _ in $(seq "$rounds"); do
  seen[numpy]+="$(python3 -c "$numpy_loop") "
  for b in "${bins[@]}"; do
    rm -rf "$out"
    seconds=$( { time "$b" run pipelines/gaussian-1d-replace.toml --out "$out" --quiet "$@" >/dev/null; } 2>&1 )
    seen[$b]+="$seconds "
  done
done
for k in numpy "${bins[@]}"; do
  median=$(echo ${seen[$k]} | median)
  echo "$k: ${seen[$k]}median $median"
done
