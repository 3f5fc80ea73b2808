//! Closed-form expectations of recursive Gaussian fitting, checked through
//! the pipeline runner (the path `collapse run` takes).
//!
//! Indexing. With replace and N = M, model k is fitted on D_k, and D_k
//! (k >= 1) is drawn from model k-1; so model k is the (k+1)-th fit from
//! the truth, and D_k's ddof-1 sample variance is an unbiased estimate of
//! model k-1's variance, the k-th fit. The issue's formulas count fits j:
//! below, metrics of D_k use j = k and model parameters use j = k + 1.
//!
//! Tolerance. Replicates are independent chains, so a mean over R of them
//! has standard error sd / sqrt(R), sd estimated from the replicates
//! themselves. Every check allows 5 standard errors: for a normal mean the
//! chance of a false failure is 5.7e-7 per check, under 1e-4 for all the
//! checks in this file together, while a wrong exponent (one fit off) moves
//! the mean by 1/M per fit, 20+ standard errors at R = 4000, M = 20.

use super::*;

const Z: f64 = 5.0;

fn gaussian_run(
    tag: &str,
    extra_data: &str,
    variance: &str,
    m: usize,
    generations: u32,
    replicates: u32,
    policy: &str,
) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        r#"
name = "{tag}"
seed = 20230527
generations = {generations}
replicates = {replicates}
[data]
source = "gaussian"
n = {m}
{extra_data}
[model]
kind = "gaussian"
variance = "{variance}"
[generate]
n = {m}
[mix]
policy = "{policy}"
"#
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

/// (mean vector, covariance rows) of every model, indexed [generation][replicate].
pub fn model_params(run: &Path) -> Vec<Vec<(Vec<f64>, Vec<Vec<f64>>)>> {
    let rows =
        query(run, "SELECT model_generation, replicate, params FROM models ORDER BY model_generation, replicate");
    let mut out: Vec<Vec<(Vec<f64>, Vec<Vec<f64>>)>> = Vec::new();
    for r in rows {
        let k = f(&r, "model_generation") as usize;
        let p: serde_json::Value = serde_json::from_str(r["params"].as_str().unwrap()).unwrap();
        let mean: Vec<f64> = serde_json::from_value(p["mean"].clone()).unwrap();
        let cov: Vec<Vec<f64>> = serde_json::from_value(p["cov"].clone()).unwrap();
        if out.len() <= k {
            out.resize(k + 1, Vec::new());
        }
        out[k].push((mean, cov));
    }
    out
}

#[test]
fn mle_variance_decays_geometrically_and_the_martingale_holds() {
    let (m, g, r) = (20usize, 10u32, 4000u32);
    let dir = gaussian_run("mle1d", "mean = [0.0]\nstd = [1.0]", "mle", m, g, r, "replace");
    let run = dir.path("run");
    let shrink = (m as f64 - 1.0) / m as f64;
    // E[var(D_k)] = sigma^2 ((M-1)/M)^k.
    for (k, v) in metric_by_generation(&run, "var").iter().enumerate() {
        assert_eq!(v.len(), r as usize);
        assert_within(&format!("var at generation {k}"), v, shrink.powi(k as i32), Z);
    }
    // E[var_j] + E[(mean_j - mu)^2] = sigma^2 for the fitted (MLE) parameters.
    for (k, models) in model_params(&run).iter().enumerate() {
        let total: Vec<f64> = models.iter().map(|(mu, cov)| cov[0][0] + mu[0] * mu[0]).collect();
        assert_within(&format!("var + mean^2 of model {k}"), &total, 1.0, Z);
        let var: Vec<f64> = models.iter().map(|(_, cov)| cov[0][0]).collect();
        assert_within(&format!("var of model {k}"), &var, shrink.powi(k as i32 + 1), Z);
    }
}

#[test]
fn unbiased_fits_drift_in_log_variance_mean_and_w2() {
    let (m, g, r) = (20usize, 10u32, 4000u32);
    let sigma2: f64 = 4.0;
    let dir = gaussian_run("unb1d", "mean = [1.5]\nstd = [2.0]", "unbiased", m, g, r, "replace");
    let run = dir.path("run");
    let mf = m as f64;
    // E[log var_j] = log sigma^2 + j [psi((M-1)/2) + ln(2/(M-1))]: the log
    // of a scaled chi-square, summed over j independent fits.
    let c = digamma((mf - 1.0) / 2.0) + (2.0 / (mf - 1.0)).ln();
    for (k, v) in metric_by_generation(&run, "var").iter().enumerate() {
        let logs: Vec<f64> = v.iter().map(|x| x.ln()).collect();
        assert_within(&format!("log var at generation {k}"), &logs, sigma2.ln() + (k + 1) as f64 * c, Z);
    }
    // E[(mean_j - mu)^2] = j sigma^2 / M: each fit adds var_{j-1}/M, and the
    // unbiased variance is a martingale.
    for (k, v) in metric_by_generation(&run, "mean").iter().enumerate() {
        let sq: Vec<f64> = v.iter().map(|x| (x - 1.5).powi(2)).collect();
        assert_within(&format!("(mean - mu)^2 at generation {k}"), &sq, (k + 1) as f64 * sigma2 / mf, Z);
    }
    // E[W2^2 to the truth] = sigma^2 [j/M + 2 (1 - a_M^j)], where
    // a_M = E[s]/sigma = sqrt(2/(M-1)) Gamma(M/2) / Gamma((M-1)/2).
    let a = (2.0 / (mf - 1.0)).sqrt() * (ln_gamma(mf / 2.0) - ln_gamma((mf - 1.0) / 2.0)).exp();
    let w2 = metric_by_generation(&run, "w2");
    assert_eq!(w2.len(), g as usize, "w2 is a model metric: one per model");
    for (k, v) in w2.iter().enumerate() {
        let j = (k + 1) as f64;
        let sq: Vec<f64> = v.iter().map(|x| x * x).collect();
        assert_within(&format!("W2^2 of model {k}"), &sq, sigma2 * (j / mf + 2.0 * (1.0 - a.powf(j))), Z);
    }
}

#[test]
fn multivariate_mle_trace_and_determinant_shrink_at_their_rates() {
    let (m, g, r) = (20usize, 5u32, 4000u32);
    let cov0 = [[1.0, 0.5, 0.2], [0.5, 2.0, 0.3], [0.2, 0.3, 0.5]];
    let data = "mean = [0.0, 1.0, -1.0]\ncov = [[1.0, 0.5, 0.2], [0.5, 2.0, 0.3], [0.2, 0.3, 0.5]]";
    let dir = gaussian_run("mle3d", data, "mle", m, g, r, "replace");
    let run = dir.path("run");
    let mf = m as f64;
    let det3 = |c: &[Vec<f64>]| {
        c[0][0] * (c[1][1] * c[2][2] - c[1][2] * c[2][1]) - c[0][1] * (c[1][0] * c[2][2] - c[1][2] * c[2][0])
            + c[0][2] * (c[1][0] * c[2][1] - c[1][1] * c[2][0])
    };
    let tr0 = cov0[0][0] + cov0[1][1] + cov0[2][2];
    let det0 = det3(&cov0.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
    let shrink = (mf - 1.0) / mf;
    // Wishart: E[det W] = det(Sigma) prod_{i<d} (n - i) with n = M - 1 degrees of freedom.
    let det_shrink: f64 = (0..3).map(|i| (mf - 1.0 - i as f64) / mf).product();
    for (k, models) in model_params(&run).iter().enumerate() {
        let j = k as i32 + 1;
        let tr: Vec<f64> = models.iter().map(|(_, c)| (c[0][0] + c[1][1] + c[2][2]) / tr0).collect();
        assert_within(&format!("tr Cov of model {k} / tr Cov_0"), &tr, shrink.powi(j), Z);
        let det: Vec<f64> = models.iter().map(|(_, c)| det3(c) / det0).collect();
        assert_within(&format!("det Cov of model {k} / det Cov_0"), &det, det_shrink.powi(j), Z);
    }
    // The data metric cov_trace (ddof 1) of D_k is unbiased for model k-1's trace.
    for (k, v) in metric_by_generation(&run, "cov_trace").iter().enumerate() {
        let ratio: Vec<f64> = v.iter().map(|t| t / tr0).collect();
        assert_within(&format!("cov_trace at generation {k}"), &ratio, shrink.powi(k as i32), Z);
    }
}

#[test]
fn accumulate_keeps_the_variance_that_replace_loses() {
    // Same seed, same sizes: with M = 10 the unbiased log-variance drifts by
    // c = psi(4.5) + ln(2/9) = -0.115 per fit, so after 101 fits replace's
    // typical variance is e^-11.6 ~ 1e-5 (its mean stays 1: a martingale
    // carried by ever fewer chains), while accumulate trains on a pool that
    // always contains D_0 and stays near sigma^2 = 1.
    let data = "mean = [0.0]\nstd = [1.0]";
    let replace = gaussian_run("contrast-r", data, "unbiased", 10, 100, 100, "replace");
    let accumulate = gaussian_run("contrast-a", data, "unbiased", 10, 100, 100, "accumulate");
    let rv = metric_by_generation(&replace.path("run"), "var");
    let av = metric_by_generation(&accumulate.path("run"), "var");
    assert_eq!(rv[0], av[0], "generation 0 is the same real data under both policies");
    let c = digamma(4.5) + (2.0f64 / 9.0).ln();
    let logs: Vec<f64> = rv.last().unwrap().iter().map(|v| v.ln()).collect();
    assert_within("replace: log var at generation 100", &logs, 101.0 * c, Z);
    let (typical, _) = mean_se(&logs);
    assert!(typical < -8.0, "replace should collapse: mean log var {typical}");
    for (k, v) in av.iter().enumerate() {
        let (m, _) = mean_se(v);
        let (log_m, _) = mean_se(&v.iter().map(|x| x.ln()).collect::<Vec<_>>());
        assert!(
            (0.5..2.0).contains(&m) && log_m > -0.7,
            "accumulate var at generation {k}: mean {m}, mean log {log_m}"
        );
    }
    // train_rows under accumulate: N + k M.
    let rows = metric_by_generation(&accumulate.path("run"), "train_rows");
    for (k, v) in rows.iter().enumerate() {
        assert!(v.iter().all(|x| *x == (10 + 10 * k) as f64), "train_rows at {k}: {v:?}");
    }
}

/// Under accumulate the chain fits each Gaussian from the pool's merged
/// moments, never re-reading the rows: every model's mean and unbiased
/// variance still equal those of its training rows as the tables hold them
/// (SQL over `training` joined to `samples`), to rounding.
#[test]
fn accumulate_models_are_the_fit_of_their_training_rows() {
    let run = gaussian_run("pool", "mean = [3.0]\nstd = [2.0]", "unbiased", 15, 6, 3, "accumulate");
    let rows = query(
        &run.path("run"),
        "SELECT t.replicate, t.model_generation, avg(s.x0) AS mean, var(s.x0) AS var, m.params \
         FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         JOIN models m ON t.replicate = m.replicate AND t.model_generation = m.model_generation \
         GROUP BY t.replicate, t.model_generation, m.params ORDER BY t.replicate, t.model_generation",
    );
    assert_eq!(rows.len(), 3 * 6, "one row per model");
    for r in &rows {
        let params: serde_json::Value = serde_json::from_str(r["params"].as_str().unwrap()).unwrap();
        let (mean, var) = (params["mean"][0].as_f64().unwrap(), params["cov"][0][0].as_f64().unwrap());
        assert!((mean - f(r, "mean")).abs() < 1e-12 * f(r, "mean").abs().max(1.0), "{r:?}");
        assert!((var - f(r, "var")).abs() < 1e-12 * f(r, "var"), "{r:?}");
    }
}
