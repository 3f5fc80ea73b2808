"""DuckDB's answers to SQL over a collapse run directory, for the
differential test (tests/it/sql.rs).

Reads {"run": DIR, "queries": [SQL, ...]} on stdin and writes one JSON list:
for each query {"columns": [...], "rows": [[...], ...]} or {"error": "..."}.
The run's tables are views as the README documents them: samples with the
generation from its folder name, training expanded from its id runs.
Binary values become base64; NaN and infinities become strings.

A study directory (study.json inside) is read the way the README
documents: every cell's files by one glob over runs/*/, the cell id taken
from each file's name (`filename = true`), and `runs` from study.json.
"""
import base64
import decimal
import json
import math
import os
import sys

import duckdb


def views(con, run):
    con.execute(f"""
        CREATE VIEW samples AS
        SELECT sample_id, replicate, generation, * EXCLUDE (sample_id, replicate, generation)
        FROM read_parquet('{run}/samples/*/*.parquet', hive_partitioning = true,
                          hive_types = {{'generation': UINTEGER}})""")
    con.execute(f"CREATE VIEW training_runs AS SELECT * FROM read_parquet('{run}/training/*/*.parquet', hive_partitioning = false)")
    con.execute("""
        CREATE VIEW training AS
        SELECT replicate, model_generation,
               unnest(range(sample_id_start::BIGINT, (sample_id_start + sample_count)::BIGINT)) AS sample_id
        FROM training_runs""")
    con.execute(f"CREATE VIEW models AS SELECT * FROM read_parquet('{run}/models/*/*.parquet', hive_partitioning = false)")
    con.execute(f"CREATE VIEW metrics AS SELECT * FROM read_parquet('{run}/metrics/*.parquet')")


def study_views(con, study):
    # The cell is the folder under runs/ that holds the file.
    cell = "regexp_extract(filename, '/runs/([^/]+)/', 1) AS cell"
    con.execute(f"""
        CREATE VIEW samples AS
        SELECT {cell}, sample_id, replicate, generation,
               * EXCLUDE (sample_id, replicate, generation, filename)
        FROM read_parquet('{study}/runs/*/samples/*/*.parquet', hive_partitioning = true,
                          hive_types = {{'generation': UINTEGER}}, filename = true)""")
    con.execute(f"""CREATE VIEW training_runs AS SELECT {cell}, * EXCLUDE (filename)
        FROM read_parquet('{study}/runs/*/training/*/*.parquet', hive_partitioning = false, filename = true)""")
    con.execute("""
        CREATE VIEW training AS
        SELECT cell, replicate, model_generation,
               unnest(range(sample_id_start::BIGINT, (sample_id_start + sample_count)::BIGINT)) AS sample_id
        FROM training_runs""")
    con.execute(f"""CREATE VIEW models AS SELECT {cell}, * EXCLUDE (filename)
        FROM read_parquet('{study}/runs/*/models/*/*.parquet', hive_partitioning = false, filename = true)""")
    con.execute(f"""CREATE VIEW metrics AS SELECT {cell}, * EXCLUDE (filename)
        FROM read_parquet('{study}/runs/*/metrics/*.parquet', filename = true)""")
    plan = json.load(open(os.path.join(study, "study.json")))
    keys = []
    for c in plan["cells"]:
        keys += [k for k in c["values"] if k != "seed" and k not in keys]
    rows = []
    for c in plan["cells"]:
        run = json.load(open(os.path.join(study, c["run"], "run.json")))
        rows.append([c["id"]] + [c["values"].get(k) for k in keys] + [c["values"].get("seed", run["seed"])])
    columns = ", ".join(["cell VARCHAR"] + [f'"{k}" {sql_type([r[i + 1] for r in rows])}' for i, k in enumerate(keys)]
                        + ["seed UBIGINT"])
    con.execute(f"CREATE TABLE runs ({columns})")
    con.executemany(f"INSERT INTO runs VALUES ({', '.join('?' * (len(keys) + 2))})", rows)


def sql_type(values):
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "BIGINT"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "DOUBLE"
    return "VARCHAR"


def cell(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [cell(x) for x in v]
    return v


def main():
    job = json.load(sys.stdin)
    con = duckdb.connect()
    if os.path.exists(os.path.join(job["run"], "study.json")):
        study_views(con, job["run"])
    else:
        views(con, job["run"])
    out = []
    for sql in job["queries"]:
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description]
            rows = [[cell(v) for v in r] for r in cur.fetchall()]
            out.append({"columns": columns, "rows": rows})
        except Exception as e:  # reported per query; the test fails on it
            out.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
