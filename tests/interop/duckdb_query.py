"""DuckDB's answers to SQL over a collapse run directory, for the
differential test (tests/it/sql.rs).

Reads {"run": DIR, "queries": [SQL, ...]} on stdin and writes one JSON list:
for each query {"columns": [...], "rows": [[...], ...]} or {"error": "..."}.
The run's tables are views as the README documents them: samples with the
generation from its folder name, training expanded from its id runs.
Binary values become base64; NaN and infinities become strings.
"""
import base64
import decimal
import json
import math
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
