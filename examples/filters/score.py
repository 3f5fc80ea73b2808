#!/usr/bin/env python3
"""A command filter for collapse (`[filter] kind = "command"`): scores each
candidate row by minus its distance to a centre (by default the D_0 mean the
pipeline's Gaussian source was drawn around), so `keep = 0.8` keeps the 80%
of candidates nearest it.

    command = ["python3", "../examples/filters/score.py", "{candidates}", "{out}", "0.0"]

Reads the candidates (sample_id, replicate, x0 .. x{d-1}) with pyarrow,
writes `sample_id, score` with pyarrow. Needs numpy and pyarrow.
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: score.py CANDIDATES OUT [CENTRE ...]", file=sys.stderr)
        return 2
    candidates, out = sys.argv[1], sys.argv[2]
    table = pq.read_table(candidates)
    xs = [name for name in table.column_names if name.startswith("x") and name[1:].isdigit()]
    if not xs:
        print(f"{candidates}: no x0.. columns (columns: {table.column_names})", file=sys.stderr)
        return 1
    x = np.column_stack([table.column(c).to_numpy() for c in sorted(xs, key=lambda c: int(c[1:]))])
    centre = np.array([float(v) for v in sys.argv[3:]] or [0.0] * x.shape[1])
    if centre.shape[0] == 1 and x.shape[1] > 1:
        centre = np.repeat(centre, x.shape[1])
    score = -np.sqrt(((x - centre) ** 2).sum(axis=1))
    pq.write_table(pa.table({"sample_id": table.column("sample_id"), "score": pa.array(score)}), out)
    print(f"scored {len(score)} rows; mean distance {-score.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
