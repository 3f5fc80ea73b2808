//! Gaussian kernel density estimate, as scipy's gaussian_kde: the kernel
//! covariance is the data's (ddof-1) covariance times factor^2, with
//! Scott's factor n^(-1/(d+4)), Silverman's (n (d+2) / 4)^(-1/(d+4)), or a
//! given number. Sampling picks a training row uniformly and adds kernel
//! noise (the KDE study of "Collapse or Thrive?").

pub use crate::model::settings::Bandwidth;

use rayon::prelude::*;

use super::Variance;
use crate::linalg;
use crate::model::Gaussian;
use crate::rng::Rng;

const LN_2PI: f64 = 1.837_877_066_409_345_5;
const CHUNK_ROWS: usize = 256;

#[derive(Clone, Debug)]
pub struct Kde {
    d: usize,
    rows: Vec<f64>,
    bandwidth: Bandwidth,
    factor: f64,
    kernel_cov: Vec<f64>,
    /// `None` once the data's covariance is singular (a collapsed chain):
    /// the density is then not defined and real_nll is infinite.
    chol: Option<Vec<f64>>,
    root: Vec<f64>,
}

impl Kde {
    /// Needs at least 2 rows (checked by the pipeline validator).
    pub fn fit(data: &[f64], d: usize, bandwidth: Bandwidth) -> Self {
        let n = (data.len() / d) as f64;
        let factor = match bandwidth {
            Bandwidth::Scott => n.powf(-1.0 / (d as f64 + 4.0)),
            Bandwidth::Silverman => (n * (d as f64 + 2.0) / 4.0).powf(-1.0 / (d as f64 + 4.0)),
            Bandwidth::Factor(f) => f,
        };
        let cov = Gaussian::fit(data, d, Variance::Unbiased).cov;
        let kernel_cov: Vec<f64> = cov.iter().map(|c| c * factor * factor).collect();
        let chol = linalg::cholesky(&kernel_cov, d);
        let root = match &chol {
            Some(l) => l.clone(),
            None => linalg::sqrtm_psd(&kernel_cov, d),
        };
        Kde { d, rows: data.to_vec(), bandwidth, factor, kernel_cov, chol, root }
    }

    pub fn dim(&self) -> usize {
        self.d
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<f64> {
        let d = self.d;
        let rows = (self.rows.len() / d) as u64;
        let mut out = Vec::with_capacity(n * d);
        let mut z = vec![0.0; d];
        for _ in 0..n {
            let i = rng.below(rows) as usize;
            for zi in &mut z {
                *zi = rng.normal();
            }
            linalg::push_affine(&self.rows[i * d..(i + 1) * d], &self.root, &z, &mut out);
        }
        out
    }

    /// Each row's log-density (nats): log of the mean kernel over the
    /// training rows. Once the kernel is zero (every training row the
    /// same) the estimate is a point mass, as [`Gaussian`]'s: +inf at the
    /// point, -inf elsewhere; under any other singular kernel, -inf.
    pub fn row_log_likelihoods(&self, data: &[f64]) -> Vec<f64> {
        let d = self.d;
        let Some(l) = &self.chol else {
            return super::gaussian::point_mass_log_likelihoods(data, d, &self.kernel_cov, self.rows.chunks_exact(d));
        };
        let log_const = self.log_const(l);
        data.par_chunks(CHUNK_ROWS * d)
            .flat_map_iter(|chunk| {
                let mut y = vec![0.0; d];
                let mut lp = vec![0.0; self.rows.len() / d];
                chunk.chunks_exact(d).map(|x| self.log_density(l, log_const, x, &mut lp, &mut y)).collect::<Vec<_>>()
            })
            .collect()
    }

    fn log_const(&self, l: &[f64]) -> f64 {
        let d = self.d;
        -0.5 * (d as f64 * LN_2PI + linalg::logdet_from_cholesky(l, d)) - ((self.rows.len() / d) as f64).ln()
    }

    /// One row's log-density by log-sum-exp; `lp` and `y` are scratch.
    fn log_density(&self, l: &[f64], log_const: f64, x: &[f64], lp: &mut [f64], y: &mut [f64]) -> f64 {
        let d = self.d;
        for (p, r) in lp.iter_mut().zip(self.rows.chunks_exact(d)) {
            for i in 0..d {
                y[i] = x[i] - r[i];
            }
            linalg::forward_solve(l, d, y);
            *p = -0.5 * y.iter().map(|v| v * v).sum::<f64>();
        }
        let max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + lp.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + log_const
    }

    /// Mean negative log-density of `data`: for each row, -log of the mean
    /// kernel over the training rows (log-sum-exp), over fixed chunks.
    pub fn mean_nll(&self, data: &[f64]) -> f64 {
        let d = self.d;
        let Some(l) = &self.chol else { return f64::INFINITY };
        let n_eval = data.len() / d;
        if n_eval == 0 {
            return f64::NAN;
        }
        let log_const = self.log_const(l);
        let parts: Vec<f64> = data
            .par_chunks(CHUNK_ROWS * d)
            .map(|chunk| {
                let mut y = vec![0.0; d];
                let mut lp = vec![0.0; self.rows.len() / d];
                let mut total = 0.0;
                for x in chunk.chunks_exact(d) {
                    total += self.log_density(l, log_const, x, &mut lp, &mut y);
                }
                total
            })
            .collect();
        -parts.iter().sum::<f64>() / n_eval as f64
    }

    pub fn params_json(&self) -> serde_json::Value {
        let d = self.d;
        let bw = match self.bandwidth {
            Bandwidth::Scott => serde_json::json!("scott"),
            Bandwidth::Silverman => serde_json::json!("silverman"),
            Bandwidth::Factor(f) => serde_json::json!(f),
        };
        let cov: Vec<Vec<f64>> = self.kernel_cov.chunks(d).map(<[f64]>::to_vec).collect();
        serde_json::json!({
            "bandwidth": bw,
            "factor": self.factor,
            "kernel-cov": cov,
            "rows": self.rows.len() / d,
            "rows-note": "the kernel centres are the training rows: see the training table",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identical training rows make the kernel zero: the estimate is a
    /// point mass, scoring the rows at the point +inf and the rest -inf.
    #[test]
    fn a_zero_kernel_is_a_point_mass() {
        let inf = f64::INFINITY;
        let k = Kde::fit(&[3.0, -1.0, 3.0, -1.0, 3.0, -1.0], 2, Bandwidth::Scott);
        assert_eq!(k.row_log_likelihoods(&[3.0, -1.0, 3.0, 0.0]), [inf, -inf]);
        assert_eq!(k.mean_nll(&[3.0, 0.0]), inf);
    }

    #[test]
    fn factors_match_scipy() {
        // scipy.stats.gaussian_kde on 100 2-D rows: scott_factor = 100^(-1/6),
        // silverman_factor = (100 * 4 / 4)^(-1/6): the same for d = 2.
        let data: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64).collect();
        let k = Kde::fit(&data, 2, Bandwidth::Scott);
        assert!((k.factor - 100f64.powf(-1.0 / 6.0)).abs() < 1e-15);
        let k = Kde::fit(&data, 1, Bandwidth::Silverman);
        assert!((k.factor - (200.0 * 3.0 / 4.0f64).powf(-0.2)).abs() < 1e-15);
    }

    #[test]
    fn density_of_two_points_by_hand() {
        // 1-D rows 0 and 2: ddof-1 variance 2; factor 0.5 gives kernel var 0.5.
        let k = Kde::fit(&[0.0, 2.0], 1, Bandwidth::Factor(0.5));
        let pdf = |x: f64, m: f64| (-(x - m).powi(2) / 1.0).exp() / (std::f64::consts::PI).sqrt();
        let expect = -(0.5 * pdf(1.0, 0.0) + 0.5 * pdf(1.0, 2.0)).ln();
        assert!((k.mean_nll(&[1.0]) - expect).abs() < 1e-12);
    }

    #[test]
    fn samples_have_the_data_variance_plus_the_kernel() {
        // Var(sample) = (n-1)/n s^2 + h^2 s^2 for a uniform row plus noise;
        // rows 0 and 2 (s^2 = 2), h = 0.5: 1 + 0.5 = 1.5. Centred, a draw is
        // B + E with B = +-1, E ~ N(0, 0.5): mu4 = 1 + 6 * 0.5 + 3 * 0.25 = 4.75,
        // so the sample variance of 40000 draws has sd
        // sqrt((mu4 - 1.5^2) / 40000) = 0.0079.
        let k = Kde::fit(&[0.0, 2.0], 1, Bandwidth::Factor(0.5));
        let x = k.sample(&mut Rng::from_seed(3), 40_000);
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let v = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64;
        assert!((v - 1.5).abs() < 5.0 * 0.0079, "{v}");
    }
}
