//! Gaussian mixtures: the validated settings (named as scikit-learn names
//! them, so settings carry over), the fitted mixture, sampling, scoring,
//! and the closed-form L2 distance between two mixtures.

pub use crate::model::settings::GmmSettings;

mod em;
mod kmeanspp;

pub use em::{em_from, fit, initial, Fit};

use crate::linalg;
use crate::rng::Rng;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CovarianceType {
    Full,
    Diag,
    Spherical,
}

impl CovarianceType {
    pub fn name(self) -> &'static str {
        match self {
            CovarianceType::Full => "full",
            CovarianceType::Diag => "diag",
            CovarianceType::Spherical => "spherical",
        }
    }
}

/// One component, ready to score: its weight, mean, covariance, the
/// covariance's Cholesky factor and log(weight) + the normalising constant.
#[derive(Clone, Debug)]
struct Component {
    mean: Vec<f64>,
    cov: Vec<f64>,
    /// Lower-triangular factor, or `None` when the covariance is not
    /// positive definite (only possible for a mixture given by hand with a
    /// zero covariance; fitted ones carry reg-covar).
    chol: Option<Vec<f64>>,
    inv_diag: Vec<f64>,
    /// log w - d/2 ln 2pi - 1/2 ln det cov.
    log_const: f64,
    /// A square root of cov for sampling, singular or not.
    root: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct Gmm {
    d: usize,
    pub weights: Vec<f64>,
    components: Vec<Component>,
    pub covariance: CovarianceType,
}

impl Gmm {
    /// `means` is k x d, `covs` k x d x d, both row-major.
    pub fn new(weights: Vec<f64>, means: &[f64], covs: &[f64], covariance: CovarianceType) -> Self {
        let k = weights.len();
        let d = means.len() / k.max(1);
        let components = (0..k)
            .map(|j| {
                let mean = means[j * d..(j + 1) * d].to_vec();
                let cov = covs[j * d * d..(j + 1) * d * d].to_vec();
                let chol = linalg::cholesky(&cov, d);
                let (inv_diag, log_const, root) = match &chol {
                    Some(l) => (
                        (0..d).map(|i| 1.0 / l[i * d + i]).collect(),
                        weights[j].ln() - 0.5 * (d as f64 * LN_2PI + linalg::logdet_from_cholesky(l, d)),
                        l.clone(),
                    ),
                    None => (vec![0.0; d], f64::NEG_INFINITY, linalg::sqrtm_psd(&cov, d)),
                };
                Component { mean, cov, chol, inv_diag, log_const, root }
            })
            .collect();
        Gmm { d, weights, components, covariance }
    }

    pub fn dim(&self) -> usize {
        self.d
    }

    pub fn components(&self) -> usize {
        self.weights.len()
    }

    pub fn mean(&self, j: usize) -> &[f64] {
        &self.components[j].mean
    }

    pub fn cov(&self, j: usize) -> &[f64] {
        &self.components[j].cov
    }

    /// Writes exp(log(w_j N(x; mu_j, Sigma_j)) - max) for every component
    /// into `out` and returns (max, sum of out): the row's log-likelihood is
    /// max + ln(sum), its responsibilities out / sum. The sum lies in
    /// [1, k] (the largest term is 1), or is 0 when no component has a
    /// density (max = -inf).
    #[inline]
    fn joint_scaled(&self, x: &[f64], out: &mut [f64], y: &mut [f64]) -> (f64, f64) {
        let d = self.d;
        let mut max = f64::NEG_INFINITY;
        for (c, o) in self.components.iter().zip(out.iter_mut()) {
            *o = match &c.chol {
                Some(l) => {
                    let mut maha = 0.0;
                    for i in 0..d {
                        let row = &l[i * d..i * d + i];
                        let mut s = x[i] - c.mean[i];
                        for (lt, yt) in row.iter().zip(y.iter()) {
                            s -= lt * yt;
                        }
                        let yi = s * c.inv_diag[i];
                        y[i] = yi;
                        maha += yi * yi;
                    }
                    c.log_const - 0.5 * maha
                }
                None => f64::NEG_INFINITY,
            };
            max = max.max(*o);
        }
        if max == f64::NEG_INFINITY {
            out.iter_mut().for_each(|o| *o = 0.0);
            return (max, 0.0);
        }
        let mut sum = 0.0;
        for o in out.iter_mut() {
            *o = (*o - max).exp();
            sum += *o;
        }
        (max, sum)
    }

    /// The row's log-likelihood; `out` and `y` are scratch (k and d long).
    #[inline]
    fn log_likelihood(&self, x: &[f64], out: &mut [f64], y: &mut [f64]) -> f64 {
        let (max, sum) = self.joint_scaled(x, out, y);
        if sum == 0.0 {
            f64::NEG_INFINITY
        } else {
            max + sum.ln()
        }
    }

    /// `n` rows, row-major: a component by its weight, then its Gaussian.
    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<f64> {
        let d = self.d;
        let total: f64 = self.weights.iter().sum();
        let mut out = Vec::with_capacity(n * d);
        let mut z = vec![0.0; d];
        for _ in 0..n {
            let mut u = rng.uniform() * total;
            let mut j = self.weights.len() - 1;
            for (i, w) in self.weights.iter().enumerate() {
                if u < *w {
                    j = i;
                    break;
                }
                u -= w;
            }
            let c = &self.components[j];
            for zi in &mut z {
                *zi = rng.normal();
            }
            linalg::push_affine(&c.mean, &c.root, &z, &mut out);
        }
        out
    }

    /// Sum of the rows' log-likelihoods, over fixed chunks combined in order
    /// so the result does not depend on the thread count.
    pub fn total_log_likelihood(&self, data: &[f64]) -> f64 {
        use rayon::prelude::*;
        let (d, k) = (self.d, self.components());
        let parts: Vec<f64> = data
            .par_chunks(em::CHUNK_ROWS * d)
            .map(|chunk| {
                let (mut lp, mut y) = (vec![0.0; k], vec![0.0; d]);
                chunk.chunks_exact(d).map(|x| self.log_likelihood(x, &mut lp, &mut y)).sum()
            })
            .collect();
        parts.iter().sum()
    }

    /// Each row's log-likelihood (nats).
    pub fn row_log_likelihoods(&self, data: &[f64]) -> Vec<f64> {
        let (mut lp, mut y) = (vec![0.0; self.components()], vec![0.0; self.d]);
        data.chunks_exact(self.d).map(|x| self.log_likelihood(x, &mut lp, &mut y)).collect()
    }

    /// Mean negative log-likelihood (nats) of row-major `data`.
    pub fn mean_nll(&self, data: &[f64]) -> f64 {
        let n = data.len() / self.d;
        if n == 0 {
            return f64::NAN;
        }
        -self.total_log_likelihood(data) / n as f64
    }

    /// Per-component spread sqrt(tr(Sigma_j) / d), ascending, so the
    /// labels EM happens to give do not swap between generations.
    pub fn component_stds(&self) -> Vec<f64> {
        let d = self.d;
        let mut s: Vec<f64> = self
            .components
            .iter()
            .map(|c| ((0..d).map(|i| c.cov[i * d + i]).sum::<f64>() / d as f64).max(0.0).sqrt())
            .collect();
        s.sort_by(f64::total_cmp);
        s
    }

    /// The mixture [`Gmm::params_json`] wrote (a `models` row's `params`;
    /// other keys ignored), the same bits: what the audit rescores rows
    /// with. `None` when the text is not one (lengths that disagree, a
    /// value written null, an unknown covariance type).
    pub fn from_params_json(json: &str) -> Option<Gmm> {
        #[derive(serde::Deserialize)]
        struct Json {
            #[serde(rename = "covariance-type")]
            covariance: String,
            weights: Vec<f64>,
            means: Vec<Vec<f64>>,
            covs: Vec<Vec<Vec<f64>>>,
        }
        let j: Json = serde_json::from_str(json).ok()?;
        let covariance = [CovarianceType::Full, CovarianceType::Diag, CovarianceType::Spherical]
            .into_iter()
            .find(|c| c.name() == j.covariance)?;
        let k = j.weights.len();
        let d = j.means.first().map_or(0, Vec::len);
        let square = |c: &Vec<Vec<f64>>| c.len() == d && c.iter().all(|r| r.len() == d);
        if k == 0 || j.means.len() != k || j.covs.len() != k || j.means.iter().any(|m| m.len() != d) {
            return None;
        }
        if !j.covs.iter().all(square) {
            return None;
        }
        let covs: Vec<f64> = j.covs.concat().concat();
        Some(Gmm::new(j.weights, &j.means.concat(), &covs, covariance))
    }

    pub fn params_json(&self, extra: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
        let d = self.d;
        let means: Vec<&Vec<f64>> = self.components.iter().map(|c| &c.mean).collect();
        let covs: Vec<Vec<Vec<f64>>> =
            self.components.iter().map(|c| c.cov.chunks(d).map(<[f64]>::to_vec).collect()).collect();
        let mut m = serde_json::Map::new();
        m.insert("covariance-type".into(), self.covariance.name().into());
        m.insert("weights".into(), serde_json::json!(self.weights));
        m.insert("means".into(), serde_json::json!(means));
        m.insert("covs".into(), serde_json::json!(covs));
        m.extend(extra);
        serde_json::Value::Object(m)
    }
}

/// Squared L2 distance between two mixture densities, in closed form:
/// int (f - g)^2 = <f,f> + <g,g> - 2 <f,g>, where for Gaussians
/// int N(x; a, A) N(x; b, B) dx = N(a; b, A + B).
pub fn l2_squared(f: &Gmm, g: &Gmm) -> f64 {
    (inner(f, f) + inner(g, g) - 2.0 * inner(f, g)).max(0.0)
}

fn inner(f: &Gmm, g: &Gmm) -> f64 {
    let d = f.d;
    let mut total = 0.0;
    for (wa, a) in f.weights.iter().zip(&f.components) {
        for (wb, b) in g.weights.iter().zip(&g.components) {
            let s: Vec<f64> = a.cov.iter().zip(&b.cov).map(|(x, y)| x + y).collect();
            let Some(l) = linalg::cholesky(&s, d) else { return f64::INFINITY };
            let mut y: Vec<f64> = a.mean.iter().zip(&b.mean).map(|(x, y)| x - y).collect();
            linalg::forward_solve(&l, d, &mut y);
            let maha: f64 = y.iter().map(|v| v * v).sum();
            let log_n = -0.5 * (d as f64 * LN_2PI + linalg::logdet_from_cholesky(&l, d) + maha);
            total += wa * wb * log_n.exp();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read back from its params (as the models table holds them, extra
    /// keys beside), a mixture scores every row with the same bits.
    #[test]
    fn params_json_reads_back_the_same_mixture() {
        let mut rng = Rng::from_seed(17);
        let mut u = || rng.uniform();
        let means: Vec<f64> = (0..6).map(|_| 4.0 * u() - 2.0).collect();
        let covs: Vec<f64> = (0..3)
            .flat_map(|_| {
                let (a, b, c) = (0.5 + u(), 0.3 * u(), 0.4 + u());
                [a, b, b, c]
            })
            .collect();
        let g = Gmm::new(vec![0.2 + u() / 10.0, 0.3, 0.5 - u() / 10.0], &means, &covs, CovarianceType::Full);
        let mut extra = serde_json::Map::new();
        extra.insert("n-iter".into(), 12.into());
        let back = Gmm::from_params_json(&g.params_json(extra).to_string()).unwrap();
        let rows: Vec<f64> = (0..400).map(|_| 6.0 * u() - 3.0).collect();
        let (a, b) = (g.row_log_likelihoods(&rows), back.row_log_likelihoods(&rows));
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
        for bad in [
            r#"{"covariance-type": "full", "weights": [1.0], "means": [[0.0, 1.0]], "covs": [[[1.0]]]}"#,
            r#"{"covariance-type": "tied", "weights": [1.0], "means": [[0.0]], "covs": [[[1.0]]]}"#,
            r#"{"covariance-type": "full", "weights": [0.5, 0.5], "means": [[0.0]], "covs": [[[1.0]]]}"#,
            r#"{"covariance-type": "full", "weights": [1.0], "means": [[null]], "covs": [[[1.0]]]}"#,
        ] {
            assert!(Gmm::from_params_json(bad).is_none(), "{bad}");
        }
    }

    fn standard(d: usize, mean: f64, var: f64) -> Gmm {
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            cov[i * d + i] = var;
        }
        Gmm::new(vec![1.0], &vec![mean; d], &cov, CovarianceType::Full)
    }

    #[test]
    fn l2_of_one_gaussian_with_itself_and_a_narrow_one() {
        let f = standard(2, 0.0, 1.0);
        assert!(l2_squared(&f, &f).abs() < 1e-15);
        // <N(0, s^2 I), N(0, s^2 I)> = 1 / (4 pi s^2) in 2-D.
        let g = standard(2, 0.0, 0.01 * 0.01);
        let expect = 1.0 / (4.0 * std::f64::consts::PI) + 1.0 / (4.0 * std::f64::consts::PI * 1e-4)
            - 2.0 / (2.0 * std::f64::consts::PI * (1.0 + 1e-4));
        assert!((l2_squared(&f, &g) - expect).abs() < 1e-9 * expect, "{}", l2_squared(&f, &g));
    }

    #[test]
    fn nll_of_a_two_component_mixture_by_hand() {
        // 1-D, weights 0.25/0.75, N(-1, 1) and N(2, 4), at x = 0.5.
        let g = Gmm::new(vec![0.25, 0.75], &[-1.0, 2.0], &[1.0, 4.0], CovarianceType::Full);
        let pdf =
            |x: f64, m: f64, v: f64| (-(x - m).powi(2) / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt();
        let expect = -(0.25 * pdf(0.5, -1.0, 1.0) + 0.75 * pdf(0.5, 2.0, 4.0)).ln();
        assert!((g.mean_nll(&[0.5]) - expect).abs() < 1e-12);
        assert_eq!(g.component_stds(), vec![1.0, 2.0]);
    }

    #[test]
    fn samples_follow_the_weights() {
        // Component 0 with weight 0.3 at -10, component 1 at +10: the share
        // of negative draws is binomial, sd sqrt(0.3 * 0.7 / 20000) = 0.0032.
        let g = Gmm::new(vec![0.3, 0.7], &[-10.0, 10.0], &[1.0, 1.0], CovarianceType::Full);
        let x = g.sample(&mut Rng::from_seed(5), 20_000);
        let share = x.iter().filter(|v| **v < 0.0).count() as f64 / 20_000.0;
        assert!((share - 0.3).abs() < 5.0 * 0.0032, "{share}");
    }
}
