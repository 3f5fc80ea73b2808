#!/usr/bin/env python3
"""Reads every Parquet file of a collapse run directory with pyarrow and
DuckDB, as-is, and prints, per reader and table (the folder under the run:
samples, training, models, metrics, ...), the total row count and each
column's type in one vocabulary (u32, u64, i64, f64, str, bytes), as JSON:
{"pyarrow": {"samples": {"rows": N, "columns": {"x0": "f64", ...}}}, "duckdb": ...,
"created_by": [the distinct writers the files' footers name, as pyarrow reads them]}.
A table whose files disagree on their columns is reported as such.
Exit 3 when pyarrow or duckdb is missing (the caller skips)."""
import glob
import json
import os
import sys

try:
    import duckdb
    import pyarrow.parquet as pq
except ImportError as e:
    print(f"needs pyarrow and duckdb ({e})")
    sys.exit(3)

run = sys.argv[1]
ARROW = {"uint32": "u32", "uint64": "u64", "int64": "i64", "double": "f64", "string": "str", "large_string": "str",
         "string_view": "str", "binary": "bytes", "large_binary": "bytes", "binary_view": "bytes"}
DUCK = {"UINTEGER": "u32", "UBIGINT": "u64", "BIGINT": "i64", "DOUBLE": "f64", "VARCHAR": "str", "BLOB": "bytes"}

tables = {}
for path in sorted(glob.glob(os.path.join(run, "**", "*.parquet"), recursive=True)):
    rel = os.path.relpath(path, run)
    if rel.startswith("."):
        continue  # scratch of a stage program
    tables.setdefault(rel.split(os.sep)[0], []).append(path)

out = {"pyarrow": {}, "duckdb": {}}
writers = set()
con = duckdb.connect()
for table, files in tables.items():
    rows, columns = 0, None
    for f in files:
        pf = pq.ParquetFile(f)
        rows += pf.metadata.num_rows
        writers.add(pf.metadata.created_by)
        cols = {field.name: ARROW.get(str(field.type), str(field.type)) for field in pf.schema_arrow}
        if columns is None:
            columns = cols
        elif cols != columns:
            columns = {"files disagree": f"{f}: {cols} != {columns}"}
    out["pyarrow"][table] = {"rows": rows, "columns": columns}
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    # Files as files: the hive folder names are the writer's layout, not columns of the files.
    src = f"read_parquet({listed}, hive_partitioning = false)"
    n = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
    described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    out["duckdb"][table] = {"rows": n, "columns": {r[0]: DUCK.get(r[1], r[1]) for r in described}}
out["created_by"] = sorted(writers)
print(json.dumps(out, sort_keys=True))
