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
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1
shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ $# -gt 0 ] && shift
out="${OUT:-/dev/shm}/collapse-ab-$$"
times=$(mktemp)
trap 'rm -rf "$out" "$times"' EXIT

numpy_loop='
import time, numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((200, 100))
t = time.perf_counter()
for _ in range(1000):
    mu = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    x = mu[:, None] + sd[:, None] * rng.standard_normal((200, 100))
print(f"{time.perf_counter() - t:.3f}")'

declare -A seen
for _ in $(seq "$rounds"); do
  seen[numpy]+="$(python3 -c "$numpy_loop") "
  for b in "${bins[@]}"; do
    rm -rf "$out"
    /usr/bin/time -o "$times" -f "%e" "$b" run pipelines/gaussian-1d-replace.toml --out "$out" --quiet "$@" >/dev/null
    seen[$b]+="$(tail -1 "$times") "
  done
done
for k in numpy "${bins[@]}"; do
  median=$(echo ${seen[$k]} | tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  echo "$k: ${seen[$k]}median $median"
done
