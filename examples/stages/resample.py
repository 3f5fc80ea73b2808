#!/usr/bin/env python3
"""The empirical distribution as a model: D_{k+1} is {n} rows drawn with
replacement from T_k (a bootstrap), seeded by {seed}. It takes every kind
of data collapse has (x0.., token, text, pixels and label), so it shows
the stage contract for each; under replace it loses a row type for good
once no draw picks it, the simplest collapse there is.

    command = ["python3", "../examples/stages/resample.py", "{train}", "{out}", "{seed}", "{n}"]

Needs numpy and pyarrow.
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE = {"sample_id", "replicate", "generation", "origin", "model_generation", "split", "height", "width"}


def main():
    train, out, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t = pq.read_table(train)
    data = t.select([c for c in t.column_names if c not in PROVENANCE])
    # T_k's text and pixels arrive as Arrow string_view and binary_view
    # (polars writes them so); older pyarrow has no take() for those, so
    # make them plain strings and bytes.
    plain = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    data = data.cast(pa.schema([pa.field(f.name, plain.get(f.type, f.type)) for f in data.schema]))
    rows = np.random.default_rng(seed).integers(0, t.num_rows, size=n)
    pq.write_table(data.take(rows), out)
    print(f"drew {n} of {t.num_rows} rows; columns {data.column_names}")


if __name__ == "__main__":
    main()
