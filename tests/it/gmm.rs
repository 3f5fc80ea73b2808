//! Gaussian mixtures and kernel density estimates through the runner, and
//! collapse's EM against scikit-learn's.

use super::*;
use collapse::model::{gmm, CovarianceType, Gmm, GmmSettings};
use collapse::rng::Rng;

fn gmm_chain(tag: &str, data: &str, model: &str, m: usize, generations: u32, replicates: u32) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        "name = \"{tag}\"\nseed = 41\ngenerations = {generations}\nreplicates = {replicates}\n\
         [data]\nn = {m}\nholdout = 200\n{data}\n[model]\n{model}\n[generate]\nn = {m}\n"
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

const BLOB: &str = "source = \"gaussian\"\nmean = [0.0, 0.0]\nstd = [1.0, 1.0]";

/// The collapse law for any mixture EM fits: after an M-step the mixture's
/// mean and covariance are exactly the training data's mean and MLE
/// covariance plus reg-covar on the diagonal (the weighted sums telescope).
/// So with replace and N = M, D_k's ddof-1 covariance U_k satisfies
/// E[U_k | D_{k-1}] = (M-1)/M U_{k-1} + reg I, and
/// E[tr U_k / tr U_0] = ((M-1)/M)^k up to a reg-covar term of order
/// k d reg / tr U_0 = 3e-5 here, far below the tolerance.
///
/// Tolerance: the ratio's sd over replicates is estimated from them; the
/// mean of R = 300 independent chains gets 5 standard errors (false
/// failure below 1e-6 per check). At k = 30 the expectation is 0.74 and
/// the standard error about 0.035, so a chain that did not shrink (1.0)
/// would sit 7 standard errors away.
#[test]
fn mixture_variance_shrinks_by_the_closed_form() {
    let (m, g, r) = (100usize, 30u32, 300u32);
    let dir = gmm_chain("gmm-law", BLOB, "kind = \"gmm\"\ncomponents = 2", m, g, r);
    let trace = metric_by_generation(&dir.path("run"), "cov_trace");
    let shrink = (m as f64 - 1.0) / m as f64;
    for k in [10usize, 20, 30] {
        let ratios: Vec<f64> = trace[k].iter().zip(&trace[0]).map(|(a, b)| a / b).collect();
        assert_within(&format!("tr Cov(D_{k}) / tr Cov(D_0)"), &ratios, shrink.powi(k as i32), 5.0);
    }
    let (last, se) = mean_se(&trace[g as usize].iter().zip(&trace[0]).map(|(a, b)| a / b).collect::<Vec<_>>());
    assert!(1.0 - last > 5.0 * se, "the mixture's variance must shrink: {last} +- {se}");
}

/// The paper's GMM setting, short: 2-D blob, 1000 rows, 2 full components,
/// tol 1e-5, replace, 200 generations, 2 replicates.
///
/// Size of collapse: by the law above, each generation's ratio
/// rho_k = tr U_k / ((M-1)/M tr U_{k-1} + d reg) has conditional mean 1,
/// and the rho_k are martingale differences, so their mean over 2 x 200
/// generations is 1 with standard error sd(rho) / sqrt(400), sd estimated
/// from the run; 5 standard errors. Direction: gmm_l2 is exactly 0 at
/// generation 0 and positive after, the held-out real NLL grows.
#[test]
fn paper_gmm_short_run_collapses_at_the_rate_theory_gives() {
    let dir = Scratch::new("gmm-paper");
    let run = dir.path("run");
    let p = collapse::pipeline::load(
        &repo().join("pipelines/paper-gmm-blob.toml"),
        &["generations=200".into(), "replicates=2".into()],
    )
    .unwrap();
    collapse::runner::run(&p, &run, &Default::default()).unwrap();
    let (m, reg, d) = (1000.0f64, 1e-6, 2.0);
    let trace = metric_by_generation(&run, "cov_trace");
    assert_eq!(trace.len(), 201);
    let rho: Vec<f64> = (1..=200)
        .flat_map(|k| (0..2).map(move |r| (k, r)))
        .map(|(k, r)| trace[k][r] / ((m - 1.0) / m * trace[k - 1][r] + d * reg))
        .collect();
    assert_within("per-generation shrink ratio of tr Cov", &rho, 1.0, 5.0);

    let l2 = metric_by_generation(&run, "gmm_l2");
    let nll = metric_by_generation(&run, "real_nll");
    assert_eq!(l2.len(), 200, "gmm_l2 for models 0..199");
    for r in 0..2 {
        assert_eq!(l2[0][r], 0.0);
        assert!(l2[199][r] > l2[1][r] && l2[199][r] > 0.0, "replicate {r}: {} -> {}", l2[1][r], l2[199][r]);
        assert!(nll[199][r] > nll[0][r], "replicate {r}: real NLL {} -> {}", nll[0][r], nll[199][r]);
    }
    for i in 0..2 {
        let s = metric_by_generation(&run, &format!("component_std_{i}"));
        assert!(s.iter().flatten().all(|v| v.is_finite() && *v > 0.0));
    }
    let c0 = metric_by_generation(&run, "component_std_0");
    let c1 = metric_by_generation(&run, "component_std_1");
    assert!((0..2).all(|r| c0[0][r] <= c1[0][r]), "component stds are reported in ascending order");
    // Every model's params are a valid mixture with its EM bookkeeping.
    for row in query(&run, "SELECT params FROM models") {
        let v: serde_json::Value = serde_json::from_str(row["params"].as_str().unwrap()).unwrap();
        let w: Vec<f64> = serde_json::from_value(v["weights"].clone()).unwrap();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(v["iterations"].as_u64().unwrap() >= 1);
    }
}

/// KDE on data from a `gmm` source. A KDE's samples have variance
/// (n-1)/n s^2 + h^2 s^2 for training rows of ddof-1 variance s^2 (a
/// uniform row plus kernel noise), so with replace each generation's
/// ratio var(D_k) / var(D_{k-1}) has conditional mean (n-1)/n + h^2, with
/// Silverman's h^2 = (3n/4)^(-2/5) in 1-D. Over 8 replicates x 5
/// generations the mean ratio gets 5 standard errors (sd from the run);
/// without the kernel term it would be 0.9975, about 8 standard errors off.
#[test]
fn gmm_source_and_kde_model_run_and_score() {
    let two = "source = \"gmm\"\nweights = [0.3, 0.7]\nmeans = [[-3.0], [3.0]]\nstds = [[1.0], [0.5]]";
    let n = 400usize;
    let dir = gmm_chain("kde", two, "kind = \"kde\"\nbandwidth = \"silverman\"", n, 5, 8);
    let run = dir.path("run");
    // D_0 from the mixture: the share of rows below 0 is binomial around
    // 0.3 (the components overlap by < 1e-3), sd sqrt(0.21 / 3200) = 0.0081.
    let below = f(
        &query(&run, "SELECT avg(CAST(x0 < 0 AS DOUBLE)) AS p FROM samples WHERE generation = 0 AND split = 'train'")
            [0],
        "p",
    );
    assert!((below - 0.3).abs() < 5.0 * 0.0081, "{below}");
    let var = metric_by_generation(&run, "var");
    let ratios: Vec<f64> =
        (1..=5).flat_map(|k| (0..8).map(move |r| (k, r))).map(|(k, r)| var[k][r] / var[k - 1][r]).collect();
    let h2 = (3.0 * n as f64 / 4.0).powf(-0.4);
    assert_within("var(D_k) / var(D_k-1) under a KDE", &ratios, (n as f64 - 1.0) / n as f64 + h2, 5.0);
    let nll = metric_by_generation(&run, "real_nll");
    assert!(nll.iter().take(5).flatten().all(|v| v.is_finite()));
    let kinds = query(&run, "SELECT DISTINCT kind FROM models");
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0]["kind"], "kde");
}

fn sklearn_case(covariance: CovarianceType) {
    // Three overlapping 2-D components, 3000 rows, seeded.
    let truth = Gmm::new(
        vec![0.2, 0.5, 0.3],
        &[-2.0, 0.0, 0.5, 1.0, 2.5, -1.0],
        &[1.0, 0.3, 0.3, 0.8, 0.6, 0.0, 0.0, 1.5, 0.9, -0.4, -0.4, 0.7],
        CovarianceType::Full,
    );
    let data = truth.sample(&mut Rng::from_seed(77), 3000);
    let s = GmmSettings { components: 3, covariance, n_init: 1, tol: 1e-10, max_iter: 500, reg_covar: 1e-6 };
    let init = gmm::initial(&data, 2, &s, &mut Rng::from_seed(78));
    let ours = gmm::em_from(&data, 2, init.clone(), &s);

    let dir = Scratch::new(&format!("sklearn-{}", covariance.name()));
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.path("x.f64"), raw).unwrap();
    let means: Vec<&[f64]> = (0..3).map(|j| init.mean(j)).collect();
    let covs: Vec<Vec<&[f64]>> = (0..3).map(|j| init.cov(j).chunks(2).collect()).collect();
    let spec = serde_json::json!({
        "data": dir.path("x.f64"), "d": 2, "covariance": covariance.name(), "tol": s.tol,
        "max_iter": s.max_iter, "reg_covar": s.reg_covar, "weights": init.weights, "means": means, "covs": covs,
    });
    std::fs::write(dir.path("spec.json"), spec.to_string()).unwrap();
    let out = match std::process::Command::new("python3")
        .arg(repo().join("tests/interop/sklearn_gmm.py"))
        .arg(dir.path("spec.json"))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            return super::skip(
                "gmm: scikit-learn's GaussianMixture on the same start",
                &format!("python3 is not available ({e})"),
            )
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        return super::skip(
            "gmm: scikit-learn's GaussianMixture on the same start",
            &format!("{}; pip install scikit-learn", text.trim()),
        );
    }
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let sk: serde_json::Value = serde_json::from_str(&text).unwrap();
    let our_score = -ours.gmm.mean_nll(&data);
    let their_score = sk["score"].as_f64().unwrap();
    eprintln!(
        "{}: ours {our_score} in {} iterations, sklearn {their_score} in {}",
        covariance.name(),
        ours.iterations,
        sk["n_iter"]
    );
    assert!(
        ((our_score - their_score) / their_score).abs() < 1e-6,
        "log-likelihoods differ: {our_score} vs {their_score}"
    );
    // Parameters up to label order (match components by their means).
    let sk_means: Vec<Vec<f64>> = serde_json::from_value(sk["means"].clone()).unwrap();
    let sk_w: Vec<f64> = serde_json::from_value(sk["weights"].clone()).unwrap();
    let sk_covs: Vec<Vec<Vec<f64>>> = serde_json::from_value(sk["covs"].clone()).unwrap();
    for j in 0..3 {
        let mj = ours.gmm.mean(j);
        let t = (0..3)
            .min_by(|&a, &b| {
                let da: f64 = sk_means[a].iter().zip(mj).map(|(x, y)| (x - y).powi(2)).sum();
                let db: f64 = sk_means[b].iter().zip(mj).map(|(x, y)| (x - y).powi(2)).sum();
                da.total_cmp(&db)
            })
            .unwrap();
        // Both ran to |change| < 1e-10 from the same start, so the fixed
        // points agree far beyond 1e-5.
        assert!((ours.gmm.weights[j] - sk_w[t]).abs() < 1e-5, "weight {j}");
        for i in 0..2 {
            assert!((mj[i] - sk_means[t][i]).abs() < 1e-5, "mean {j}.{i}: {} vs {}", mj[i], sk_means[t][i]);
            for c in 0..2 {
                assert!((ours.gmm.cov(j)[i * 2 + c] - sk_covs[t][i][c]).abs() < 1e-5, "cov {j}.{i}{c}");
            }
        }
    }
}

#[test]
fn em_matches_scikit_learn_full() {
    sklearn_case(CovarianceType::Full);
}

#[test]
fn em_matches_scikit_learn_diag() {
    sklearn_case(CovarianceType::Diag);
}

#[test]
fn em_matches_scikit_learn_spherical() {
    sklearn_case(CovarianceType::Spherical);
}
