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
    if let Some(f) = &p.filter {
        return filtered(f, mean, spread.cov_matrix(), *variance, p.generate_n);
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

/// A filtered 1-D MLE run under replace (tests/it/filter.rs asserts the
/// same formulas): model 0 fits D_0 (factor s = (N-1)/N), then each model j
/// fits what the filter kept of D_j, which multiplies the variance by a
/// factor c a generation, so E[var_k] = sigma^2 s c^(k-1) for k >= 1:
/// - a detector dropping flagged rows keeps n ~ Binomial(M, 1 - tpr):
///   c = E[(n - 1) / n];
/// - a current-model likelihood filter keeping the share q of the rows
///   keeps n = ceil(q M), those within c' sigma (2 Phi(c') - 1 = n / M):
///   c = g(c') (n - 1) / n, g(c) = 1 - 2 c phi(c) / (2 Phi(c) - 1);
/// - reward x0 with best-of-K keeps the largest of each K: c = Var[max of
///   K standard normals] (M - 1) / M.
fn filtered(f: &crate::filter::Filter, mean: &[f64], cov: Vec<f64>, variance: Variance, m: usize) -> Vec<Expectation> {
    use crate::filter::{Action, Cut, FilterKind, Scorer};
    if mean.len() != 1 || variance != Variance::Mle || f.action != Action::Drop {
        return Vec::new();
    }
    let sigma2 = cov[0];
    let mf = m as f64;
    let s = (mf - 1.0) / mf;
    let (factor, label) = match &f.kind {
        FilterKind::Detector { tpr, .. } => {
            let keep = 1.0 - tpr;
            let ln_choose = |n: usize| ln_gamma(mf + 1.0) - ln_gamma(n as f64 + 1.0) - ln_gamma((m - n) as f64 + 1.0);
            let pmf = |n: usize| (ln_choose(n) + n as f64 * keep.ln() + (m - n) as f64 * (1.0 - keep).ln()).exp();
            let (num, den) =
                (2..=m).fold((0.0, 0.0), |(a, b), n| (a + pmf(n) * (n as f64 - 1.0) / n as f64, b + pmf(n)));
            if !(den > 0.0) {
                return Vec::new();
            }
            (num / den, format!("E[var] = {sigma2} s c^(k-1), c = E[(n-1)/n], n ~ Bin(M, {keep})"))
        }
        FilterKind::Likelihood { model: Scorer::Current, cut: Some(Cut::Keep(q)), .. } => {
            let n = (q * mf).ceil().min(mf);
            if n < 2.0 {
                return Vec::new();
            }
            let c = inverse_two_sided(n / mf);
            let g = 1.0 - 2.0 * c * normal_pdf(c) / (2.0 * normal_cdf(c) - 1.0);
            (g * (n - 1.0) / n, format!("E[var] = {sigma2} s (g(c) (n-1)/n)^(k-1), c = {c:.3}"))
        }
        FilterKind::Reward { reward, best_of, cut: None, .. } if reward.trim() == "x0" && *best_of > 1 => {
            let v = max_of_normals_variance(*best_of);
            (v * s, format!("E[var] = {sigma2} s (Var[max of {best_of}] s)^(k-1)"))
        }
        _ => return Vec::new(),
    };
    vec![Expectation {
        metric: "var",
        measured: Transform::Value,
        label,
        curve: Box::new(move |k| if k == 0 { sigma2 } else { sigma2 * s * factor.powi(k as i32 - 1) }),
    }]
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Phi(x) by Simpson's rule on the density (2000 panels: error < 1e-12
/// for |x| < 8, plenty for a chart).
fn normal_cdf(x: f64) -> f64 {
    let n = 2000;
    let h = x.abs() / n as f64;
    let mut sum = normal_pdf(0.0) + normal_pdf(x.abs());
    for i in 1..n {
        sum += normal_pdf(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    let half = sum * h / 3.0;
    if x >= 0.0 {
        0.5 + half
    } else {
        0.5 - half
    }
}

/// c with 2 Phi(c) - 1 = share, by bisection.
fn inverse_two_sided(share: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 10.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if 2.0 * normal_cdf(mid) - 1.0 < share {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Var of the largest of K standard normals: the integrals of x and x^2
/// against K phi Phi^(K-1) (trapezoid rule on [-8, 8]).
fn max_of_normals_variance(k: u32) -> f64 {
    let (n, lo, hi) = (4000, -8.0, 8.0);
    let h = (hi - lo) / n as f64;
    let mut cdf = normal_cdf(lo);
    let (mut m1, mut m2) = (0.0, 0.0);
    for i in 0..=n {
        let x = lo + i as f64 * h;
        if i > 0 {
            // Phi by the trapezoid rule along the same grid.
            cdf += 0.5 * h * (normal_pdf(x - h) + normal_pdf(x));
        }
        let w = if i == 0 || i == n { 0.5 } else { 1.0 };
        let d = f64::from(k) * normal_pdf(x) * cdf.powi(k as i32 - 1) * w * h;
        m1 += x * d;
        m2 += x * x * d;
    }
    m2 - m1 * m1
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn the_filter_factors_match_their_published_values() {
        let g = |c: f64| 1.0 - 2.0 * c * normal_pdf(c) / (2.0 * normal_cdf(c) - 1.0);
        assert!((g(1.0) - 0.2911).abs() < 1e-4 && (g(2.0) - 0.7737).abs() < 1e-4);
        assert!((inverse_two_sided(2.0 * normal_cdf(1.5) - 1.0) - 1.5).abs() < 1e-9);
        assert!((max_of_normals_variance(2) - (1.0 - 1.0 / std::f64::consts::PI)).abs() < 1e-5);
        assert!((max_of_normals_variance(4) - 0.4917).abs() < 1e-4);
    }
}
