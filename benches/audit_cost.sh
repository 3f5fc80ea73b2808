#!/usr/bin/env bash
# What `collapse audit` costs on the 1,000-generation M = 100 Gaussian runs
# (200 replicates): unfiltered under replace and accumulate, and under
# replace with a detector, a likelihood filter and best-of-2 (the
# filter_cost.sh variants). Each run is written once, by the first binary
# given; then every round audits each run with every binary (their order
# flipped every other round). Prints each binary's median wall time and
# peak RSS per run, and whether the binaries' reports agree byte for byte
# (a binary that finds a violation another does not shows up there).
#
#   benches/audit_cost.sh ROUNDS BIN [BIN ...]
#   e.g. benches/audit_cost.sh 5 OLD_BIN target/release/collapse
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: benches/audit_cost.sh ROUNDS BIN [BIN ...]" >&2
  exit 2
fi
rounds=$1
shift
bins=("$@")
source benches/common.sh
scratch audit-cost

names=(replace accumulate detector likelihood best-of-2)
declare -A runs=(
  [replace]="pipelines/gaussian-1d-replace.toml"
  [accumulate]="pipelines/gaussian-1d-accumulate.toml"
  [detector]="pipelines/gaussian-1d-replace.toml --set filter.kind=detector --set filter.tpr=0.1"
  [likelihood]="pipelines/gaussian-1d-replace.toml --set filter.kind=likelihood --set filter.keep=0.95"
  [best-of-2]="pipelines/gaussian-1d-replace.toml --set filter.kind=reward --set filter.reward=-x0*x0 --set filter.best-of=2"
)
for v in "${names[@]}"; do
  # shellcheck disable=SC2086
  "${bins[0]}" run ${runs[$v]} --out "$out/$v" --quiet --no-fsync >/dev/null
done
declare -A wall rss
for r in $(seq "$rounds"); do
  order=($(round_order "$r" "${#bins[@]}"))
  for v in "${names[@]}"; do
    for b in "${order[@]}"; do
      /usr/bin/time -o "$out/time" -f "%e %M" "${bins[$b]}" audit "$out/$v" --quiet --format json >"$out/report-$b-$v" 2>&1 || true
      # A failing audit (a violation found) puts a line before the figures.
      read -r s kb < <(tail -n 1 "$out/time")
      wall[$b/$v]+="$s "
      rss[$b/$v]+="$kb "
    done
  done
done
echo "audit of 1000-generation M=100 runs, 200 replicates, $rounds rounds (median wall s, peak RSS MB)"
for b in "${!bins[@]}"; do
  echo "${bins[$b]}:"
  for v in "${names[@]}"; do
    w=$(echo ${wall[$b/$v]} | median)
    m=$(echo ${rss[$b/$v]} | median)
    agree=""
    if [ "$b" -gt 0 ] && ! cmp -s "$out/report-0-$v" "$out/report-$b-$v"; then
      agree=" (report differs from ${bins[0]}'s)"
    fi
    echo "  $v: ${wall[$b/$v]}median $w s, $(awk -v k="$m" 'BEGIN {printf "%.0f", k / 1024}') MB$agree"
  done
done
