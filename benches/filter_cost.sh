#!/usr/bin/env bash
# What a curation filter adds to the 1,000-generation M = 100 Gaussian run
# (200 replicates, pipelines/gaussian-1d-replace.toml): round-robin over the
# unfiltered run and one run per filter kind (set with --set, so the
# pipeline is otherwise the same), each round running every variant with
# every binary given (their order flipped every other round), the run
# directory removed before each run. Prints
# each binary's times per variant, the median and its ratio to the same
# binary's unfiltered median. Give an old and a new binary to compare them
# in one round-robin: this VM's speed drifts between runs, so only ratios
# measured side by side compare.
#
#   benches/filter_cost.sh ROUNDS BIN [BIN ...] [-- extra `collapse run` args]
#   e.g. benches/filter_cost.sh 7 OLD_BIN target/release/collapse -- --no-fsync
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: benches/filter_cost.sh ROUNDS BIN [BIN ...] [-- extra collapse run args]" >&2
  exit 2
fi
rounds=$1
shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  bins+=("$1")
  shift
done
[ $# -gt 0 ] && shift
source benches/common.sh
scratch filter-cost

names=(none detector likelihood best-of-2 best-of-4)
declare -A sets=(
  [none]=""
  [detector]="--set filter.kind=detector --set filter.tpr=0.1"
  [likelihood]="--set filter.kind=likelihood --set filter.keep=0.95"
  [best-of-2]="--set filter.kind=reward --set filter.reward=-x0*x0 --set filter.best-of=2"
  [best-of-4]="--set filter.kind=reward --set filter.reward=-x0*x0 --set filter.best-of=4"
)
declare -A seen
for r in $(seq "$rounds"); do
  order=($(round_order "$r" "${#bins[@]}"))
  for v in "${names[@]}"; do
    for b in "${order[@]}"; do
      rm -rf "$out/run"
      # shellcheck disable=SC2086
      seconds=$( { time "${bins[$b]}" run pipelines/gaussian-1d-replace.toml --out "$out/run" --quiet ${sets[$v]} "$@" >/dev/null; } 2>&1 )
      seen[$b/$v]+="$seconds "
    done
  done
done
echo "gaussian-1d-replace.toml (M=100, 200 replicates, 1000 generations), $rounds rounds"
for b in "${!bins[@]}"; do
  echo "${bins[$b]}:"
  base=$(echo ${seen[$b/none]} | median)
  for v in "${names[@]}"; do
    m=$(echo ${seen[$b/$v]} | median)
    echo "  $v: ${seen[$b/$v]}median $m, $(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2f", a / b}')x unfiltered"
  done
done
