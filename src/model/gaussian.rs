//! A d-dimensional Gaussian with full covariance, fitted in closed form and
//! sampled through a square root of its covariance.

use crate::linalg;
use crate::pipeline::Variance;
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    /// Row-major d x d.
    pub cov: Vec<f64>,
    /// Lower-triangular Cholesky factor, or `None` once the covariance is
    /// singular (a collapsed chain).
    chol: Option<Vec<f64>>,
    /// A (not necessarily triangular) square root A with A A^T = cov, used
    /// for sampling whether or not the covariance is singular.
    root: Vec<f64>,
}

impl Gaussian {
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Self {
        let d = mean.len();
        let chol = linalg::cholesky(&cov, d);
        let root = match &chol {
            Some(l) => l.clone(),
            None if d == 1 => vec![cov[0].max(0.0).sqrt()],
            None => linalg::sqrtm_psd(&cov, d),
        };
        Gaussian { mean, cov, chol, root }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Two-pass mean and covariance of row-major `data`; divides by n (mle)
    /// or n - 1 (unbiased). Needs n >= 2 for unbiased, checked upstream.
    pub fn fit(data: &[f64], d: usize, variance: Variance) -> Self {
        let n = data.len() / d;
        let mut mean = vec![0.0; d];
        for row in data.chunks_exact(d) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let mut cov = vec![0.0; d * d];
        if d == 1 {
            let m = mean[0];
            cov[0] = data.iter().map(|x| (x - m) * (x - m)).sum();
        } else {
            let mut centred = vec![0.0; d];
            for row in data.chunks_exact(d) {
                for i in 0..d {
                    centred[i] = row[i] - mean[i];
                }
                for i in 0..d {
                    for j in 0..=i {
                        cov[i * d + j] += centred[i] * centred[j];
                    }
                }
            }
            for i in 0..d {
                for j in 0..i {
                    cov[j * d + i] = cov[i * d + j];
                }
            }
        }
        let denom = match variance {
            Variance::Mle => n as f64,
            Variance::Unbiased => (n as f64 - 1.0).max(1.0),
        };
        for c in &mut cov {
            *c /= denom;
        }
        Gaussian::new(mean, cov)
    }

    /// `n` rows, row-major.
    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<f64> {
        let d = self.dim();
        if d == 1 {
            let (m, s) = (self.mean[0], self.root[0]);
            return (0..n).map(|_| m + s * rng.normal()).collect();
        }
        let mut out = Vec::with_capacity(n * d);
        let mut z = vec![0.0; d];
        for _ in 0..n {
            for zi in &mut z {
                *zi = rng.normal();
            }
            linalg::push_affine(&self.mean, &self.root, &z, &mut out);
        }
        out
    }

    /// Mean negative log-likelihood (nats) of row-major `data`; infinite
    /// once the covariance is singular.
    pub fn mean_nll(&self, data: &[f64]) -> f64 {
        let d = self.dim();
        let Some(l) = &self.chol else { return f64::INFINITY };
        let n = data.len() / d;
        if n == 0 {
            return f64::NAN;
        }
        let half_log_norm = 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + linalg::logdet_from_cholesky(l, d));
        let mut y = vec![0.0; d];
        let mut total = 0.0;
        for row in data.chunks_exact(d) {
            for i in 0..d {
                y[i] = row[i] - self.mean[i];
            }
            linalg::forward_solve(l, d, &mut y);
            total += 0.5 * y.iter().map(|v| v * v).sum::<f64>();
        }
        half_log_norm + total / n as f64
    }

    pub fn params_json(&self) -> serde_json::Value {
        let d = self.dim();
        let rows: Vec<Vec<f64>> = self.cov.chunks(d).map(<[f64]>::to_vec).collect();
        serde_json::json!({ "mean": self.mean, "cov": rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_matches_hand_computed_moments() {
        let g = Gaussian::fit(&[1.0, 2.0, 3.0, 6.0], 1, Variance::Unbiased);
        assert_eq!(g.mean, vec![3.0]);
        assert!((g.cov[0] - 14.0 / 3.0).abs() < 1e-12);
        let g = Gaussian::fit(&[1.0, 2.0, 3.0, 6.0], 1, Variance::Mle);
        assert!((g.cov[0] - 3.5).abs() < 1e-12);
        // 2-D: rows (0,0), (2,0), (0,2), (2,2): cov diag 1, off-diagonal 0 (MLE).
        let g = Gaussian::fit(&[0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0], 2, Variance::Mle);
        assert_eq!(g.cov, vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn nll_of_the_standard_normal_at_zero() {
        let g = Gaussian::new(vec![0.0], vec![1.0]);
        assert!((g.mean_nll(&[0.0]) - 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
        assert!(Gaussian::new(vec![0.0], vec![0.0]).mean_nll(&[0.0]).is_infinite());
    }

    #[test]
    fn singular_covariance_still_samples_on_its_support() {
        // Rank-1 covariance: samples lie on the line x1 = x0.
        let g = Gaussian::new(vec![0.0, 0.0], vec![1.0, 1.0, 1.0, 1.0]);
        let mut rng = Rng::from_seed(1);
        for row in g.sample(&mut rng, 50).chunks(2) {
            assert!((row[0] - row[1]).abs() < 1e-9, "{row:?}");
        }
    }
}
