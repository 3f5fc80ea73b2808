#!/usr/bin/env bash
# Round-robin wall times of saved collapse binaries, on the M=100 study
# beside numpy's loop (BENCHMARKS.md) or on another shipped pipeline: one
# round runs numpy's loop (M=100 only), then each binary once, the run
# directory removed before each run, so a change in the machine's speed
# during the script reaches every side alike. Prints each side's times and
# median, and the bytes of each binary's samples/ folder.
#
#   benches/ab_runs.sh ROUNDS BIN_A [BIN_B ...] [-- extra `collapse run` args]
#   e.g. benches/ab_runs.sh 12 /tmp/old /tmp/new -- --no-fsync
#        PIPELINE=gaussian-1d-replace-m10000.toml benches/ab_runs.sh 9 /tmp/old /tmp/new -- --no-fsync
#
# PIPELINE=FILE picks a file of pipelines/ (default gaussian-1d-replace.toml,
# M=100 with 200 replicates). OUT=DIR puts the run directory under DIR
# (default /dev/shm: tmpfs). Needs numpy for the default pipeline; numpy's
# loop is peer_numpy.py's.
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
numpy_loop='import sys; sys.path.insert(0, "benches"); from peer_numpy import numpy_loop; print(f"{numpy_loop(100, 200, 1000):.3f}")'
source benches/common.sh
scratch ab
run="$out/run"

pipeline="${PIPELINE:-gaussian-1d-replace.toml}"
sides=("${bins[@]}")
[ "$pipeline" = gaussian-1d-replace.toml ] && sides=(numpy "${bins[@]}")

declare -A seen bytes
for _ in $(seq "$rounds"); do
  [ "$pipeline" = gaussian-1d-replace.toml ] && seen[numpy]+="$(python3 -c "$numpy_loop") "
  for b in "${bins[@]}"; do
    rm -rf "$run"
    seconds=$( { time "$b" run "pipelines/$pipeline" --out "$run" --quiet "$@" >/dev/null; } 2>&1 )
    seen[$b]+="$seconds "
    bytes[$b]=$(du -sb "$run/samples" | cut -f1)
  done
done
echo "$pipeline, $rounds rounds"
for k in "${sides[@]}"; do
  median=$(echo ${seen[$k]} | median)
  echo "$k: ${seen[$k]}median $median${bytes[$k]:+, samples/ ${bytes[$k]} bytes}"
done
