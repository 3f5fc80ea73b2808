#!/usr/bin/env bash
# The command stage's boundary (issue 26): what writing T_k, starting the
# program, reading D_{k+1} back and checking it cost a generation, beyond
# the program's own work. The program is `cp {train} {out}` (T_k is D_k
# under replace with N = M, so a copy is a valid D_{k+1}); its own cost is
# measured by running the same cp on a T_k file as often, outside collapse.
# Beside it the built-in Gaussian run of the same pipeline.
#
#   benches/stage.sh [ROUNDS] [BIN]     (defaults: 5, target/release/collapse)
#
# OUT=DIR holds the runs (default /dev/shm); runs use --no-fsync.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
bin="$(realpath "${2:-target/release/collapse}")"
source benches/common.sh
scratch stage-bench

for spec in "1000 200" "100000 20"; do
  set -- $spec
  m=$1; g=$2
  for kind in builtin command; do
    model='kind = "gaussian"'
    [ $kind = command ] && model='kind = "command"
command = ["cp", "{train}", "{out}"]'
    cat > "$out/$kind.toml" <<TOML
name = "stage-$kind"
seed = 1
generations = $g
replicates = 1
[data]
source = "gaussian"
n = $m
mean = [0.0]
std = [1.0]
[model]
$model
[generate]
n = $m
TOML
  done
  b=""; c=""; cp_t=""
  for _ in $(seq "$rounds"); do
    rm -rf "$out/b" "$out/c"
    b+="$( { time "$bin" run "$out/builtin.toml" --out "$out/b" --no-fsync -q; } 2>&1 ) "
    c+="$( { time "$bin" run "$out/command.toml" --out "$out/c" --no-fsync -q; } 2>&1 ) "
  done
  # The program's own cost: cp of one T_k, g times.
  "$bin" run "$out/command.toml" --out "$out/keep" --no-fsync -q --set generations=1 >/dev/null 2>&1 || true
  python3 - "$out/t.parquet" "$m" <<'PY'
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
n = int(sys.argv[2])
pq.write_table(pa.table({"sample_id": np.arange(n, dtype=np.uint64), "x0": np.random.default_rng(0).normal(size=n)}), sys.argv[1])
PY
  for _ in $(seq "$rounds"); do
    cp_t+="$( { time (for _ in $(seq "$g"); do cp "$out/t.parquet" "$out/t2.parquet"; done); } 2>&1 ) "
  done
  rm -rf "$out/keep"
  mb=$(echo "$b" | median); mc=$(echo "$c" | median); mp=$(echo "$cp_t" | median)
  echo "M=$m, $g generations: built-in $b-> median ${mb}s; command (cp) $c-> median ${mc}s; cp alone $cp_t-> median ${mp}s"
  echo "M=$m: boundary $(awk "BEGIN {printf \"%.2f\", 1000 * ($mc - $mb - $mp) / $g}") ms a generation beyond the program (command run / built-in run = $(awk "BEGIN {printf \"%.2f\", $mc / $mb}"))"
done
