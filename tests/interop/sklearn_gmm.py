#!/usr/bin/env python3
"""Fits scikit-learn's GaussianMixture from given initial parameters and
prints the result as JSON, for tests/it/gmm.rs.

    sklearn_gmm.py SPEC.json

SPEC names a raw little-endian f64 file of n x d rows and the settings and
initial weights, means and full covariances. Exit 3 when numpy or
scikit-learn is missing (the test then skips).
"""
import json, sys

try:
    import numpy as np
    from sklearn.mixture import GaussianMixture
except ImportError as e:
    print(f"scikit-learn is not available: {e}")
    sys.exit(3)

spec = json.load(open(sys.argv[1]))
x = np.fromfile(spec["data"], dtype="<f8").reshape(-1, spec["d"])
cov_type = spec["covariance"]
covs = np.array(spec["covs"])
if cov_type == "full":
    precisions = np.linalg.inv(covs)
elif cov_type == "diag":
    precisions = 1.0 / np.diagonal(covs, axis1=1, axis2=2)
else:
    precisions = 1.0 / covs[:, 0, 0]
gm = GaussianMixture(
    n_components=len(spec["weights"]),
    covariance_type=cov_type,
    tol=spec["tol"],
    max_iter=spec["max_iter"],
    reg_covar=spec["reg_covar"],
    weights_init=np.array(spec["weights"]),
    means_init=np.array(spec["means"]),
    precisions_init=precisions,
)
gm.fit(x)
c = gm.covariances_
if cov_type == "diag":
    c = np.array([np.diag(v) for v in c])
elif cov_type == "spherical":
    c = np.array([v * np.eye(x.shape[1]) for v in c])
print(json.dumps({
    "score": float(gm.score(x)),
    "lower_bound": float(gm.lower_bound_),
    "n_iter": int(gm.n_iter_),
    "weights": gm.weights_.tolist(),
    "means": gm.means_.tolist(),
    "covs": c.tolist(),
    "sklearn": __import__("sklearn").__version__,
}))
