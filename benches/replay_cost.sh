#!/usr/bin/env bash
# What `collapse audit --replay` adds to the audit, beside what sampling
# cost the run: the 1,000-generation M = 100 Gaussian runs (200
# replicates) under replace, accumulate and best-of-2, the paper's GMM
# run at 100 generations and the Zipf run. Each run is written once
# (timed: the run itself); then every round audits it without and with
# --replay, the order flipped every other round. Prints the median wall
# times and whether each replay found the run clean.
#
#   benches/replay_cost.sh ROUNDS BIN
#   e.g. benches/replay_cost.sh 3 target/release/collapse
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: benches/replay_cost.sh ROUNDS BIN" >&2
  exit 2
fi
rounds=$1
bin=$2
source benches/common.sh
scratch replay-cost

names=(replace accumulate best-of-2 gmm zipf)
declare -A runs=(
  [replace]="pipelines/gaussian-1d-replace.toml"
  [accumulate]="pipelines/gaussian-1d-accumulate.toml"
  [best-of-2]="pipelines/gaussian-1d-replace.toml --set filter.kind=reward --set filter.reward=-x0*x0 --set filter.best-of=2"
  [gmm]="pipelines/paper-gmm-two.toml --set generations=100"
  [zipf]="pipelines/zipf-replace.toml"
)
declare -A made
for v in "${names[@]}"; do
  # shellcheck disable=SC2086
  made[$v]=$( { time "$bin" run ${runs[$v]} --out "$out/$v" --quiet --no-fsync >/dev/null; } 2>&1 )
done
modes=("" "--replay")
declare -A wall
clean=""
for r in $(seq "$rounds"); do
  order=($(round_order "$r" 2))
  for v in "${names[@]}"; do
    for m in "${order[@]}"; do
      # shellcheck disable=SC2086
      s=$( { time "$bin" audit "$out/$v" --quiet ${modes[$m]} >"$out/report" 2>&1 || echo "$v ${modes[$m]}: not clean" >>"$out/failed"; } 2>&1 )
      wall[$m/$v]+="$s "
    done
  done
done
echo "audit without / with --replay, $rounds rounds (median wall s); the run's own time beside"
for v in "${names[@]}"; do
  a=$(echo ${wall[0/$v]} | median)
  b=$(echo ${wall[1/$v]} | median)
  echo "  $v: run ${made[$v]} s; audit $a s, with --replay $b s (+$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}') s)"
done
[ -f "$out/failed" ] && cat "$out/failed" || echo "every audit clean"
