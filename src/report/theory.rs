//! Closed-form expectations for Gaussian runs, drawn beside the measured
//! curves. They hold for a `gaussian` source fitted by a `gaussian` model
//! under `replace` with as many rows per generation as D_0 has (the
//! setting of tests/it/closed_form.rs, which asserts the same formulas).
//!
//! With M rows, s = (M-1)/M, sigma^2 the true variance (tr Sigma in d-D)
//! and data metrics computed with ddof = 1 on D_k (k fits behind it):
//! - MLE:      E[var_k] = sigma^2 s^k; E[(mean_k - mu)^2] = sigma^2 (1 - s^(k+1));
//!   E[W2^2 of model k] = 2 sigma^2 (1 - b^(k+1)), b = a_M sqrt(s).
//! - unbiased: E[var_k] = sigma^2; E[(mean_k - mu)^2] = (k+1) sigma^2 / M;
//!   E[W2^2 of model k] = sigma^2 [(k+1)/M + 2 (1 - a_M^(k+1))],
//!
//! where a_M = E[sample std]/sigma = sqrt(2/(M-1)) Gamma(M/2)/Gamma((M-1)/2).
//! Var and mean: Var(D_k) is unbiased for model k-1's variance, which MLE
//! shrinks by s per fit; model means drift by var/M per fit, and for MLE
//! E[var] + E[(mean - mu)^2] = sigma^2 at every step. W2 between
//! N(m, v) and N(mu, sigma^2) is (m - mu)^2 + (sqrt v - sigma)^2.

use crate::model::GaussianSettings;
use crate::pipeline::{MixPolicy, ModelSpec, Pipeline, Source, Variance};
use crate::special::ln_gamma;

/// What the theory predicts for one quantity, by generation.
pub struct Expectation {
    /// The metric whose per-replicate values are compared.
    pub metric: &'static str,
    /// How the measured values are turned into the predicted quantity.
    pub measured: Transform,
    pub label: String,
    pub curve: Box<dyn Fn(u32) -> f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// The value itself.
    Value,
    /// (value - mu)^2, mu the true mean (1-D).
    SquaredDeviation(f64),
    /// value^2.
    Square,
}

impl Transform {
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Transform::Value => v,
            Transform::SquaredDeviation(mu) => (v - mu).powi(2),
            Transform::Square => v * v,
        }
    }
}

/// The expectations that apply to `p`, or none.
pub fn expectations(p: &Pipeline) -> Vec<Expectation> {
    let (Source::Gaussian { mean, spread }, ModelSpec::Gaussian(GaussianSettings { variance })) =
        (&p.data.source, &p.model)
    else {
        return Vec::new();
    };
    if p.mix != MixPolicy::Replace || p.data.n != Some(p.generate_n) || p.generate_n < 3 {
        return Vec::new();
    }
    let d = mean.len();
    let cov = spread.cov_matrix();
    let trace: f64 = (0..d).map(|i| cov[i * d + i]).sum();
    let m = p.generate_n as f64;
    let s = (m - 1.0) / m;
    let a = (2.0 / (m - 1.0)).sqrt() * (ln_gamma(m / 2.0) - ln_gamma((m - 1.0) / 2.0)).exp();
    let mle = *variance == Variance::Mle;
    let mut out = Vec::new();
    let (var_metric, var_name) = if d == 1 { ("var", "var") } else { ("cov_trace", "tr Cov") };
    out.push(Expectation {
        metric: var_metric,
        measured: Transform::Value,
        label: if mle { format!("E[{var_name}] = {trace} ((M-1)/M)^k") } else { format!("E[{var_name}] = {trace}") },
        curve: Box::new(move |k| if mle { trace * s.powi(k as i32) } else { trace }),
    });
    if d == 1 {
        let (mu, sigma2) = (mean[0], trace);
        out.push(Expectation {
            metric: "mean",
            measured: Transform::SquaredDeviation(mu),
            label: "E[(mean - mu)^2]".into(),
            curve: Box::new(
                move |k| {
                    if mle {
                        sigma2 * (1.0 - s.powi(k as i32 + 1))
                    } else {
                        (k + 1) as f64 * sigma2 / m
                    }
                },
            ),
        });
        let b = a * s.sqrt();
        out.push(Expectation {
            metric: "w2",
            measured: Transform::Square,
            label: "E[W2^2]".into(),
            curve: Box::new(move |k| {
                let j = (k + 1) as f64;
                if mle {
                    2.0 * sigma2 * (1.0 - b.powf(j))
                } else {
                    sigma2 * (j / m + 2.0 * (1.0 - a.powf(j)))
                }
            }),
        });
    }
    out
}
