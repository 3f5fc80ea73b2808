#!/usr/bin/env python3
"""The paper's 1-D (or d-dimensional) Gaussian as a collapse command stage.

Reads T_k ({train}), fits the maximum-likelihood mean and covariance of its
x0.. columns, and writes generate.n ({n}) rows drawn from the fit to {out},
seeded by {seed}; the fitted parameters go to {model_dir}/model.json.

    [model]
    kind = "command"
    command = ["python3", "../examples/stages/gaussian.py", "{train}", "{out}", "{seed}", "{n}", "{model_dir}"]

Needs numpy and pyarrow.
"""
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    train, out, seed, n, model_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    t = pq.read_table(train)
    cols = sorted((c for c in t.column_names if c[:1] == "x" and c[1:].isdigit()), key=lambda c: int(c[1:]))
    x = np.column_stack([t.column(c).to_numpy() for c in cols])
    mean = x.mean(axis=0)
    # Maximum likelihood: divide by the row count (ddof = 0).
    cov = np.atleast_2d(np.cov(x, rowvar=False, bias=True))
    rng = np.random.default_rng(seed)
    y = rng.multivariate_normal(mean, cov, size=n) if len(cols) > 1 else rng.normal(mean[0], np.sqrt(cov[0, 0]), size=(n, 1))
    pq.write_table(pa.table({c: y[:, j] for j, c in enumerate(cols)}), out)
    with open(os.path.join(model_dir, "model.json"), "w") as f:
        json.dump({"mean": mean.tolist(), "cov": cov.tolist(), "rows": int(x.shape[0])}, f)
    print(f"fitted {x.shape[0]} rows: mean {mean.tolist()}, var {np.diag(cov).tolist()}")


if __name__ == "__main__":
    main()
