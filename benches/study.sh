#!/usr/bin/env bash
# Studies (issue 25), three figures, each the median of ROUNDS runs:
#   1. overhead: a 200-cell study of a 1-generation pipeline through
#      `collapse sweep` against the same 200 runs as separate `collapse run`
#      processes (what a shell loop does); per-cell cost of each;
#   2. parallel efficiency: pipelines/study-quick.toml with --jobs 2 against
#      --jobs 1;
#   3. a cross-run query on a 100-cell study (metrics joined to runs, grouped
#      by a swept key) through `collapse query` against DuckDB on the same
#      files (one glob, the cell from the file name), wall time and peak
#      memory of each process (/usr/bin/time), and DuckDB's in-process time;
#      then what registering costs (a query of `runs` alone, every table
#      registered) and the query cut to one generation.
#
#   benches/study.sh [ROUNDS] [BIN]   (defaults: 5, target/release/collapse)
#
# OUT=DIR holds the studies (default /dev/shm); runs use --no-fsync, so the
# figures are the study layer's and the engine's, not the disk's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
bin="$(realpath "${2:-target/release/collapse}")"
source benches/common.sh
scratch study-bench

# 1. Overhead.
cat > "$out/one.toml" <<TOML
name = "one"
seed = 1
generations = 1
replicates = 2
[data]
source = "gaussian"
n = 100
holdout = 10
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = 100
TOML
{ cat "$out/one.toml"; printf '[sweep]\nseeds = 200\n'; } > "$out/two-hundred.toml"
sweep_t=""; loop_t=""
for _ in $(seq "$rounds"); do
  rm -rf "$out/s" "$out/l"
  sweep_t+="$( { time "$bin" sweep "$out/two-hundred.toml" --out "$out/s" --jobs 1 --no-fsync -q >/dev/null; } 2>&1 ) "
  mkdir -p "$out/l"
  loop_t+="$( { time (for s in $(seq 1 200); do "$bin" run "$out/one.toml" --out "$out/l/$s" --set seed=$s --no-fsync -q; done); } 2>&1 ) "
done
ms=$(echo "$sweep_t" | median); ml=$(echo "$loop_t" | median)
echo "overhead: sweep of 200 cells: $sweep_t-> median ${ms}s ($(awk "BEGIN {printf \"%.1f\", 1000 * $ms / 200}") ms a cell)"
echo "overhead: 200 collapse run processes: $loop_t-> median ${ml}s ($(awk "BEGIN {printf \"%.1f\", 1000 * $ml / 200}") ms a run)"
echo "overhead: sweep / loop = $(awk "BEGIN {printf \"%.3f\", $ms / $ml}")"

# 2. --jobs 2 against --jobs 1.
j1=""; j2=""
for _ in $(seq "$rounds"); do
  rm -rf "$out/q1" "$out/q2"
  j1+="$( { time "$bin" sweep pipelines/study-quick.toml --out "$out/q1" --jobs 1 --no-fsync -q >/dev/null; } 2>&1 ) "
  j2+="$( { time "$bin" sweep pipelines/study-quick.toml --out "$out/q2" --jobs 2 --no-fsync -q >/dev/null; } 2>&1 ) "
done
m1=$(echo "$j1" | median); m2=$(echo "$j2" | median)
echo "jobs: study-quick --jobs 1: $j1-> median ${m1}s; --jobs 2: $j2-> median ${m2}s; speed-up $(awk "BEGIN {printf \"%.2f\", $m1 / $m2}")x"

# 3. A cross-run query on 100 cells, against DuckDB.
{ sed 's/^generations = 1$/generations = 200/; s/^replicates = 2$/replicates = 20/' "$out/one.toml"
  printf '[sweep]\ngrid = { "generate.n" = [50, 100] }\nseeds = 50\n'; } > "$out/hundred.toml"
"$bin" sweep "$out/hundred.toml" --out "$out/h" --jobs 2 --no-fsync -q >/dev/null
files=$(find "$out/h/runs" -name '*.parquet' | wc -l)
sql='SELECT r."generate.n" AS n, m.generation, avg(m.value) AS var FROM metrics m JOIN runs r USING (cell) WHERE m.metric = '"'"'var'"'"' GROUP BY ALL ORDER BY 1, 2'
cat > "$out/duck.py" <<'PY'
import json, os, sys, time
import duckdb
study = sys.argv[1]
t0 = time.perf_counter()
con = duckdb.connect()
plan = json.load(open(os.path.join(study, "study.json")))
con.execute('CREATE TABLE runs (cell VARCHAR, "generate.n" BIGINT)')
con.executemany("INSERT INTO runs VALUES (?, ?)", [[c["id"], c["values"]["generate.n"]] for c in plan["cells"]])
rows = con.execute(f"""
  SELECT r."generate.n" AS n, m.generation, avg(m.value) AS var
  FROM (SELECT regexp_extract(filename, '/runs/([^/]+)/', 1) AS cell, * EXCLUDE (filename)
        FROM read_parquet('{study}/runs/*/metrics/*.parquet', filename = true)) m
  JOIN runs r USING (cell) WHERE m.metric = 'var' GROUP BY ALL ORDER BY 1, 2""").fetchall()
print(f"{time.perf_counter() - t0:.3f} {len(rows)}")
PY
cq=""; cm=""; dq=""; dm=""; din=""
for _ in $(seq "$rounds"); do
  r=$( { /usr/bin/time -f '%e %M' "$bin" query "$out/h" "$sql" --format csv >"$out/c.csv"; } 2>&1 | tail -1 )
  cq+="${r% *} "; cm+="${r#* } "
  r=$( { /usr/bin/time -f '%e %M' python3 "$out/duck.py" "$out/h" >"$out/d.txt"; } 2>&1 | tail -1 )
  dq+="${r% *} "; dm+="${r#* } "; din+="$(cut -d' ' -f1 "$out/d.txt") "
done
echo "query: 100 cells, $files Parquet files; collapse rows $(($(wc -l <"$out/c.csv") - 1)), duckdb rows $(cut -d' ' -f2 "$out/d.txt")"
echo "query: collapse query: $cq-> median $(echo "$cq" | median)s, peak RSS median $(echo "$cm" | median) KB"
echo "query: python3 + duckdb: $dq-> median $(echo "$dq" | median)s (in-process $(echo "$din" | median)s), peak RSS median $(echo "$dm" | median) KB"
lazy=""; last=""
for _ in $(seq "$rounds"); do
  lazy+="$( { time "$bin" query "$out/h" "SELECT count(*) AS cells FROM runs" --format csv >/dev/null; } 2>&1 ) "
  last+="$( { time "$bin" query "$out/h" "${sql/GROUP BY/AND m.generation = 200 GROUP BY}" --format csv >/dev/null; } 2>&1 ) "
done
echo "query: registering every table and reading only runs: $lazy-> median $(echo "$lazy" | median)s"
echo "query: the same query at generation 200 only: $last-> median $(echo "$last" | median)s"
echo "query: collapse / duckdb (process) = $(awk "BEGIN {printf \"%.2f\", $(echo "$cq" | median) / $(echo "$dq" | median)}"), memory $(awk "BEGIN {printf \"%.2f\", $(echo "$cm" | median) / $(echo "$dm" | median)}")"
