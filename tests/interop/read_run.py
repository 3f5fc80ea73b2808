#!/usr/bin/env python3
"""Opens a collapse run directory with pyarrow and DuckDB, as-is, and
checks row counts, column types and a checksum against what `collapse
query` saw (passed as JSON in argv[2]). Exit 0: all agree; 1: a mismatch
(printed); 3: neither pyarrow nor duckdb is installed (the caller skips)."""
import json
import math
import sys

run, expected = sys.argv[1], json.loads(sys.argv[2])
problems, checked = [], []

SAMPLES_TYPES = {"sample_id": "uint64", "replicate": "uint32", "origin": "string", "model_generation": "uint32", "split": "string", "x0": "double"}
DUCK_TYPES = {"sample_id": "UBIGINT", "replicate": "UINTEGER", "origin": "VARCHAR", "model_generation": "UINTEGER", "split": "VARCHAR", "x0": "DOUBLE", "generation": "UINTEGER"}


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


try:
    import pyarrow.parquet as pq

    t = pq.read_table(f"{run}/samples")
    if t.num_rows != expected["samples"]:
        problems.append(f"pyarrow samples rows {t.num_rows} != {expected['samples']}")
    for name, want in SAMPLES_TYPES.items():
        got = str(t.schema.field(name).type).replace("string_view", "string")
        if got != want:
            problems.append(f"pyarrow samples.{name}: {got} != {want}")
    gens = sorted({int(g) for g in t.column("generation").to_pylist()})
    if gens != list(range(expected["generations"] + 1)):
        problems.append(f"pyarrow generations {gens[:5]}...")
    if not close(sum(t.column("x0").to_pylist()), expected["x0_sum"]):
        problems.append("pyarrow x0 sum differs")
    for table in ["training", "models", "metrics"]:
        n = pq.read_table(f"{run}/{table}").num_rows
        if n != expected[table]:
            problems.append(f"pyarrow {table} rows {n} != {expected[table]}")
    checked.append("pyarrow")
except ImportError:
    pass

try:
    import duckdb

    con = duckdb.connect()
    src = f"read_parquet('{run}/samples/**/*.parquet', hive_partitioning = true, hive_types = {{'generation': UINTEGER}})"
    n, s = con.execute(f"SELECT count(*), sum(x0) FROM {src}").fetchone()
    if n != expected["samples"] or not close(s, expected["x0_sum"]):
        problems.append(f"duckdb samples {n} rows, sum {s}")
    types = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall())
    for name, want in DUCK_TYPES.items():
        if types.get(name) != want:
            problems.append(f"duckdb samples.{name}: {types.get(name)} != {want}")
    # The plain call of the README: same rows; the partition column typed BIGINT.
    plain = f"read_parquet('{run}/samples/**/*.parquet', hive_partitioning = true)"
    n2, g = con.execute(f"SELECT count(*), max(generation) FROM {plain}").fetchone()
    if n2 != expected["samples"] or g != expected["generations"]:
        problems.append(f"duckdb plain read: {n2} rows, max generation {g}")
    runs = con.execute(f"SELECT sum(sample_count) FROM read_parquet('{run}/training/*/*.parquet')").fetchone()[0]
    if runs != expected["training_rows"]:
        problems.append(f"duckdb training rows {runs} != {expected['training_rows']}")
    checked.append("duckdb")
except ImportError:
    pass

if not checked:
    print("neither pyarrow nor duckdb is installed")
    sys.exit(3)
print("checked with " + ", ".join(checked))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
