#!/usr/bin/env bash
# What a curation filter adds to the 1,000-generation M = 100 Gaussian run
# (200 replicates, pipelines/gaussian-1d-replace.toml): the same binary,
# round-robin over the unfiltered run and one run per filter kind (set with
# --set, so the pipeline is otherwise the same), the run directory removed
# before each run. Prints each variant's times, median and ratio to the
# unfiltered median.
#
#   benches/filter_cost.sh ROUNDS BIN [-- extra `collapse run` args]
#   e.g. benches/filter_cost.sh 7 target/release/collapse -- --no-fsync
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: benches/filter_cost.sh ROUNDS BIN [-- extra collapse run args]" >&2
  exit 2
fi
rounds=$1
bin=$2
shift 2
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
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
for _ in $(seq "$rounds"); do
  for v in "${names[@]}"; do
    rm -rf "$out/run"
    # shellcheck disable=SC2086
    seconds=$( { time "$bin" run pipelines/gaussian-1d-replace.toml --out "$out/run" --quiet ${sets[$v]} "$@" >/dev/null; } 2>&1 )
    seen[$v]+="$seconds "
  done
done
base=$(echo ${seen[none]} | median)
echo "gaussian-1d-replace.toml (M=100, 200 replicates, 1000 generations), $rounds rounds"
for v in "${names[@]}"; do
  m=$(echo ${seen[$v]} | median)
  echo "$v: ${seen[$v]}median $m, $(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2f", a / b}')x unfiltered"
done
