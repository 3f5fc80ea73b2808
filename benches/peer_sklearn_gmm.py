#!/usr/bin/env python3
"""Side-by-side timing of collapse's Gaussian mixtures against scikit-learn
(BENCHMARKS.md).

1. EM alone: 1,000,000 2-D points from 8 Gaussians, k = 8, full covariance,
   100 iterations with no early stop, the same start for both (k-means++
   centres, equal weights, identity covariances); both report the final
   mean log-likelihood.
2. The paper's GMM run: 2000 generations of fit (2 components, full,
   tol 1e-5, max-iter 2000) + sample 1000 rows. The notebook's loop (sklearn
   fit + sample, nothing written) against `collapse run
   pipelines/paper-gmm-blob.toml --set replicates=1` with every table
   written and fsynced.

    cargo build --release --examples --bins && python3 benches/peer_sklearn_gmm.py

Needs numpy and scikit-learn. CASES=em or CASES=paper runs one case;
GENERATIONS=N shortens case 2; REPEATS=N (default 3) runs it with N seeds
and reports the medians. OUT=DIR puts case 2's run directory under
DIR (default: the system's temporary folder).
"""
import json, os, shutil, subprocess, sys, tempfile, time, warnings

import numpy as np
import sklearn
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

warnings.filterwarnings("ignore", category=ConvergenceWarning)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "collapse")
EM = os.path.join(TARGET, "release", "examples", "gmm_em")


def em_case(n=1_000_000, k=8, iters=100):
    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, size=(k, 2))
    labels = rng.integers(0, k, size=n)
    x = centres[labels] + rng.standard_normal((n, 2)) * rng.uniform(0.5, 2.0, size=(k, 1))[labels]
    means, _ = kmeans_plusplus(x, k, random_state=0)
    init = {"weights": [1.0 / k] * k, "means": means.tolist(), "covs": [np.eye(2).tolist()] * k}
    tmp = tempfile.mkdtemp(prefix="gmm-bench-")
    try:
        x.astype("<f8").tofile(os.path.join(tmp, "x.f64"))
        json.dump(init, open(os.path.join(tmp, "init.json"), "w"))
        gm = GaussianMixture(k, covariance_type="full", tol=0.0, max_iter=iters, reg_covar=1e-6,
                             weights_init=init["weights"], means_init=means, precisions_init=np.array([np.eye(2)] * k))
        t = time.perf_counter()
        gm.fit(x)
        sk_s = time.perf_counter() - t
        sk_score = gm.score(x)
        ours = json.loads(subprocess.run([EM, os.path.join(tmp, "x.f64"), "2", os.path.join(tmp, "init.json"), str(iters)],
                                         check=True, capture_output=True, text=True).stdout)
    finally:
        shutil.rmtree(tmp)
    print(json.dumps({
        "case": f"EM n={n} d=2 k={k} full, {iters} iterations",
        "sklearn_s": round(sk_s, 2), "sklearn_iterations": int(gm.n_iter_), "sklearn_score": sk_score,
        "collapse_s": round(ours["seconds"], 2), "collapse_iterations": ours["iterations"], "collapse_score": ours["score"],
        "speedup": round(sk_s / ours["seconds"], 2),
        "score_rel_diff": abs(sk_score - ours["score"]) / abs(sk_score),
    }), flush=True)


def notebook_loop(generations, seed):
    """The official notebook's loop, nothing written. Each chain draws its own
    data, so its EM iteration counts (and time) differ from chain to chain."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1000, 2))
    t = time.perf_counter()
    for g in range(generations):
        gm = GaussianMixture(n_components=2, covariance_type="full", tol=1e-5, max_iter=2000,
                             random_state=seed * 100003 + g).fit(x)
        x = gm.sample(1000)[0]
    return time.perf_counter() - t, sorted(float(np.sqrt(np.trace(c) / 2)) for c in gm.covariances_)


def collapse_run(generations, seed):
    out = tempfile.mkdtemp(prefix="gmm-run-", dir=os.environ.get("OUT"))
    shutil.rmtree(out)
    t = time.perf_counter()
    subprocess.run([BIN, "run", os.path.join(ROOT, "pipelines", "paper-gmm-blob.toml"), "--out", out, "--quiet",
                    "--set", "replicates=1", "--set", f"generations={generations}", "--set", f"seed={seed}"],
                   check=True)
    run_s = time.perf_counter() - t
    shutil.rmtree(out)
    return run_s


def paper_case(generations, repeats):
    # Alternating, so a slow spell of the machine or its disk hits both sides.
    loops, runs, stds = [], [], []
    for seed in range(1, repeats + 1):
        loop_s, std = notebook_loop(generations, seed)
        loops.append(loop_s)
        stds.append([round(s, 4) for s in std])
        runs.append(collapse_run(generations, seed))
    med = lambda v: float(np.median(v))
    print(json.dumps({
        "case": f"paper GMM, {generations} generations, 1 replicate, {repeats} seeds",
        "sklearn_notebook_loop_s": [round(v, 2) for v in loops], "sklearn_final_component_std": stds,
        "collapse_run_s": [round(v, 2) for v in runs],
        "median_ratio": round(med(loops) / med(runs), 2),
        "ratio_range": [round(min(l / r for l, r in zip(loops, runs)), 2), round(max(l / r for l, r in zip(loops, runs)), 2)],
    }), flush=True)


if __name__ == "__main__":
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, python {sys.version.split()[0]}, cores {os.cpu_count()}")
    cases = os.environ.get("CASES", "em,paper").split(",")
    if "em" in cases:
        em_case()
    if "paper" in cases:
        paper_case(int(os.environ.get("GENERATIONS", "2000")), int(os.environ.get("REPEATS", "3")))
