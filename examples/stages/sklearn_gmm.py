#!/usr/bin/env python3
"""A Gaussian mixture fitted by scikit-learn as a collapse command stage:
the official notebook's GMM loop (fit GaussianMixture on the data, sample
from it, repeat) with collapse doing the loop, the mixing and the records.

    [model]
    kind = "command"
    command = ["python3", "../examples/stages/sklearn_gmm.py", "{train}", "{out}", "{seed}", "{n}", "{model_dir}", "2"]

Arguments: T_k, the output file, the seed, the rows to write, the model
folder, the number of components. Needs scikit-learn, numpy and pyarrow.
"""
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.mixture import GaussianMixture


def main():
    train, out, seed, n, model_dir, k = sys.argv[1:7]
    seed, n, k = int(seed), int(n), int(k)
    t = pq.read_table(train)
    cols = sorted((c for c in t.column_names if c[:1] == "x" and c[1:].isdigit()), key=lambda c: int(c[1:]))
    x = np.column_stack([t.column(c).to_numpy() for c in cols])
    # scikit-learn's seeds are 32-bit.
    gmm = GaussianMixture(n_components=k, covariance_type="full", tol=1e-5, max_iter=2000, random_state=seed % 2**32)
    gmm.fit(x)
    y, _ = gmm.sample(n)
    # sample() returns the rows grouped by component; collapse's rows are
    # exchangeable, but a shuffle keeps any head of D_{k+1} a fair draw.
    y = y[np.random.default_rng(seed).permutation(n)]
    pq.write_table(pa.table({c: y[:, j] for j, c in enumerate(cols)}), out)
    stds = np.sqrt(np.array([np.diag(c) for c in gmm.covariances_])).mean(axis=1)
    with open(os.path.join(model_dir, "model.json"), "w") as f:
        json.dump(
            {
                "weights": gmm.weights_.tolist(),
                "means": gmm.means_.tolist(),
                "covs": gmm.covariances_.tolist(),
                "component_std": sorted(stds.tolist()),
                "iterations": int(gmm.n_iter_),
                "converged": bool(gmm.converged_),
            },
            f,
        )


if __name__ == "__main__":
    main()
