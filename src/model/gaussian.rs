//! A d-dimensional Gaussian with full covariance, fitted in closed form and
//! sampled through a square root of its covariance.

use super::Variance;
use crate::linalg;
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

/// A data set's size, mean and scatter sum_rows (x - xbar)(x - xbar)^T
/// (row-major d x d, not divided), each summed row by row in order.
#[derive(Clone, Debug)]
pub struct Moments {
    pub n: usize,
    pub mean: Vec<f64>,
    pub scatter: Vec<f64>,
}

impl Moments {
    pub fn of(data: &[f64], d: usize) -> Moments {
        let n = data.len() / d;
        if d == 1 {
            // The paper's 1-D study fits millions of these: eight running
            // sums instead of one chain of dependent adds.
            let m = sum_8(data) / n as f64;
            return Moments { n, mean: vec![m], scatter: vec![squared_deviations_8(data, m)] };
        }
        let mut mean = vec![0.0; d];
        for row in data.chunks_exact(d) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let mut scatter = vec![0.0; d * d];
        {
            let mut centred = vec![0.0; d];
            for row in data.chunks_exact(d) {
                for i in 0..d {
                    centred[i] = row[i] - mean[i];
                }
                for i in 0..d {
                    for j in 0..=i {
                        scatter[i * d + j] += centred[i] * centred[j];
                    }
                }
            }
            for i in 0..d {
                for j in 0..i {
                    scatter[j * d + i] = scatter[i * d + j];
                }
            }
        }
        Moments { n, mean, scatter }
    }

    /// The moments of both sets of rows together (Chan, Golub and LeVeque's
    /// pairwise update): what `of` gives on the concatenated rows, to
    /// rounding, without reading them again.
    pub fn merge(&self, other: &Moments) -> Moments {
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = self.n + other.n;
        if self.n == 0 || other.n == 0 {
            return if self.n == 0 { other.clone() } else { self.clone() };
        }
        let delta: Vec<f64> = other.mean.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        let mean = self.mean.iter().zip(&delta).map(|(a, dl)| a + dl * nb / n as f64).collect();
        let d = delta.len();
        let w = na * nb / n as f64;
        let scatter =
            (0..d * d).map(|ij| self.scatter[ij] + other.scatter[ij] + delta[ij / d] * delta[ij % d] * w).collect();
        Moments { n, mean, scatter }
    }
}

/// Eight lanes, element i into lane i % 8, the lanes combined pairwise:
/// a fixed order, so the same bits on every machine and thread count.
fn lanes_8(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    for (a, v) in acc.iter_mut().zip(rest) {
        *a += f(*v);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

crate::simd::wide! {
    fn sum_8 / sum_8_plain(x: &[f64]) -> f64 {
        lanes_8(x, |v| v)
    }
}

crate::simd::wide! {
    fn squared_deviations_8 / squared_deviations_8_plain(x: &[f64], m: f64) -> f64 {
        lanes_8(x, |v| (v - m) * (v - m))
    }
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
        Self::from_moments(Moments::of(data, d), variance)
    }

    /// The fit from the training rows' moments.
    pub fn from_moments(m: Moments, variance: Variance) -> Self {
        let Moments { n, mean, mut scatter } = m;
        let denom = match variance {
            Variance::Mle => n as f64,
            Variance::Unbiased => (n as f64 - 1.0).max(1.0),
        };
        for c in &mut scatter {
            *c /= denom;
        }
        Gaussian::new(mean, scatter)
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

    /// Each row's log-likelihood (nats). A model collapsed to a point (a
    /// zero covariance) is a point mass: +inf at its mean, -inf elsewhere,
    /// the limit of a shrinking covariance, so a likelihood filter ranks
    /// the rows at the point first. Under any other singular covariance
    /// every row scores -inf.
    pub fn row_log_likelihoods(&self, data: &[f64]) -> Vec<f64> {
        let d = self.dim();
        let Some(l) = &self.chol else { return point_mass_log_likelihoods(data, d, &self.cov, [&self.mean[..]]) };
        let half_log_norm = 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + linalg::logdet_from_cholesky(l, d));
        if d == 1 {
            // The loop below for one dimension, without its per-row
            // slices and scratch vector.
            return log_densities_1d(data, self.mean[0], l[0], half_log_norm);
        }
        let mut y = vec![0.0; d];
        data.chunks_exact(d)
            .map(|x| {
                y.iter_mut().zip(x.iter().zip(&self.mean)).for_each(|(y, (x, m))| *y = x - m);
                linalg::forward_solve(l, d, &mut y);
                -half_log_norm - 0.5 * y.iter().map(|v| v * v).sum::<f64>()
            })
            .collect()
    }

    /// Mean negative log-likelihood (nats) of row-major `data`; infinite
    /// once the covariance is singular.
    pub fn mean_nll(&self, data: &[f64]) -> f64 {
        self.mean_nll_of(&Moments::of(data, self.dim()))
    }

    /// [`Gaussian::mean_nll`] of the data `m` summarises, in O(d^3)
    /// whatever its size: the mean of (x - mu)^T Sigma^-1 (x - mu) over the
    /// rows is tr(Sigma^-1 S) + (xbar - mu)^T Sigma^-1 (xbar - mu), S the
    /// rows' scatter / n. The runner scores the same held-out rows under
    /// every model, so it summarises them once.
    pub fn mean_nll_of(&self, m: &Moments) -> f64 {
        let d = self.dim();
        let Some(l) = &self.chol else { return f64::INFINITY };
        if m.n == 0 {
            return f64::NAN;
        }
        let half_log_norm = 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + linalg::logdet_from_cholesky(l, d));
        // tr(Sigma^-1 S) = tr(L^-1 S L^-T) = sum_ik (L^-1 S)_ik (L^-1)_ik.
        let n = m.n as f64;
        let mut trace = 0.0;
        let mut unit = vec![0.0; d];
        let mut column = vec![0.0; d];
        for k in 0..d {
            unit.iter_mut().enumerate().for_each(|(i, u)| *u = f64::from(u8::from(i == k)));
            linalg::forward_solve(l, d, &mut unit);
            column.iter_mut().enumerate().for_each(|(i, c)| *c = m.scatter[i * d + k] / n);
            linalg::forward_solve(l, d, &mut column);
            trace += column.iter().zip(&unit).map(|(a, b)| a * b).sum::<f64>();
        }
        let mut y: Vec<f64> = m.mean.iter().zip(&self.mean).map(|(a, b)| a - b).collect();
        linalg::forward_solve(l, d, &mut y);
        half_log_norm + 0.5 * (trace + y.iter().map(|v| v * v).sum::<f64>())
    }

    /// `{"mean":[..],"cov":[[..],..]}`; a non-finite number is `null`, as
    /// serde_json writes it.
    /// The model [`Gaussian::params_json`] wrote (a `models` row's
    /// `params`): what the audit scores rows with. `None` when the text is
    /// not one (a covariance not d x d, a non-finite value written null).
    pub fn from_params_json(json: &str) -> Option<Gaussian> {
        #[derive(serde::Deserialize)]
        struct Json {
            mean: Vec<f64>,
            cov: Vec<Vec<f64>>,
        }
        let j: Json = serde_json::from_str(json).ok()?;
        let d = j.mean.len();
        (j.cov.len() == d && j.cov.iter().all(|r| r.len() == d)).then(|| Gaussian::new(j.mean, j.cov.concat()))
    }

    pub fn params_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            mean: &'a [f64],
            cov: Vec<&'a [f64]>,
        }
        let cov = self.cov.chunks(self.dim().max(1)).collect();
        // Serializing slices of f64 into a String cannot fail (serde_json
        // errs only on non-string map keys and failing Serialize impls).
        serde_json::to_string(&Json { mean: &self.mean, cov }).unwrap_or_default()
    }
}

/// Each row's log-likelihood under a model with no density: where every
/// entry of its (kernel) covariance `cov` is zero it is a point mass at each
/// of `points` (a row there: +inf), else no row has a density (-inf).
pub fn point_mass_log_likelihoods<'a>(
    data: &[f64],
    d: usize,
    cov: &[f64],
    points: impl IntoIterator<Item = &'a [f64]> + Clone,
) -> Vec<f64> {
    let point = cov.iter().all(|&c| c == 0.0);
    data.chunks_exact(d.max(1))
        .map(|x| if point && points.clone().into_iter().any(|p| p == x) { f64::INFINITY } else { f64::NEG_INFINITY })
        .collect()
}

crate::simd::wide! {
    /// Each row's log-density under N(m, s^2), given half the log of the
    /// normalising constant: a filter scores every candidate with it.
    fn log_densities_1d / log_densities_1d_plain(data: &[f64], m: f64, s: f64, half_log_norm: f64) -> Vec<f64> {
        data.iter()
            .map(|x| {
                let y = (x - m) / s;
                -half_log_norm - 0.5 * (y * y)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero covariance is a point mass: the rows at its mean score +inf
    /// and every other row -inf, in one dimension and in two, fitted or
    /// read back from the models table; a singular covariance that is not
    /// zero (a line) gives no row a density.
    #[test]
    fn a_point_mass_scores_its_point_first() {
        let inf = f64::INFINITY;
        let one = Gaussian::fit(&[2.0; 100], 1, Variance::Mle);
        assert_eq!(one.cov, [0.0]);
        assert_eq!(one.row_log_likelihoods(&[2.0, 2.0 + 1e-12, -1.0]), [inf, -inf, -inf]);
        let back = Gaussian::from_params_json(&one.params_json()).unwrap();
        assert_eq!(back.row_log_likelihoods(&[2.0, 3.0]), [inf, -inf]);
        let two = Gaussian::new(vec![1.0, -1.0], vec![0.0; 4]);
        assert_eq!(two.row_log_likelihoods(&[1.0, -1.0, 1.0, 0.0, 0.0, -1.0]), [inf, -inf, -inf]);
        let line = Gaussian::new(vec![0.0, 0.0], vec![1.0, 1.0, 1.0, 1.0]);
        assert_eq!(line.row_log_likelihoods(&[0.0, 0.0, 1.0, 1.0]), [-inf, -inf]);
    }

    /// Both builds of the 1-D log-density give the same bits.
    #[test]
    fn log_densities_are_the_same_from_both_builds() {
        let mut rng = Rng::from_seed(5);
        let x: Vec<f64> = (0..1001).map(|_| 3.0 * rng.normal() - 1.0).collect();
        let a = log_densities_1d(&x, -0.7, 2.9, 1.3);
        let b = log_densities_1d_plain(&x, -0.7, 2.9, 1.3);
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// The 1-D moments' lane sums: the same bits from the wide and the plain
    /// build, and within rounding of a sequential sum, for every remainder
    /// length.
    #[test]
    fn one_dimensional_moments_use_fixed_lanes() {
        for n in [1usize, 7, 8, 9, 100, 1001] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin() * 3.0 + 1.0).collect();
            assert_eq!(sum_8(&x).to_bits(), sum_8_plain(&x).to_bits(), "n = {n}");
            assert_eq!(squared_deviations_8(&x, 0.5).to_bits(), squared_deviations_8_plain(&x, 0.5).to_bits());
            let m = Moments::of(&x, 1);
            let mean: f64 = x.iter().sum::<f64>() / n as f64;
            let scatter: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
            assert!((m.mean[0] - mean).abs() <= 1e-13 * mean.abs().max(1.0), "n = {n}");
            assert!((m.scatter[0] - scatter).abs() <= 1e-12 * scatter.max(1.0), "n = {n}");
        }
    }

    /// A model read back from the models table is the model written, bit
    /// for bit: the audit recomputes likelihood scores from it, and a mean
    /// one ulp off moves a collapsed model's log-density (sigma ~ 1e-8) by
    /// ~1e-8. serde_json's default float parser is not exact (it read
    /// 0.48404482356754996 as 0.4840448235675499); `float_roundtrip` is.
    #[test]
    fn params_json_reads_back_the_same_bits() {
        let mut rng = Rng::from_seed(11);
        let mut values = vec![0.48404482356754996, 7.388531496942032e-17, f64::MIN_POSITIVE, 5e-324, f64::MAX, -0.1];
        values.extend((0..20_000).map(|_| f64::from_bits(rng.next_u64())).filter(|v| v.is_finite()));
        for v in values {
            let g = Gaussian::new(vec![v], vec![v.abs()]);
            let back = Gaussian::from_params_json(&g.params_json()).expect("its own params parse");
            assert_eq!(back.mean[0].to_bits(), v.to_bits(), "{v:e} read back as {:e}", back.mean[0]);
            assert_eq!(back.cov[0].to_bits(), v.abs().to_bits(), "{:e} read back as {:e}", v.abs(), back.cov[0]);
        }
    }

    /// The models table's params: mean first, covariance as rows, the same
    /// text serde_json's tree gives, non-finite numbers as null.
    /// The one-dimensional path gives the general one's bits: a 1-D
    /// model's rows against the same model read as the first margin of a
    /// 2-D one with an independent, unit second coordinate at its mean
    /// (which adds nothing but 0.5 ln 2 pi to the normaliser).
    #[test]
    fn one_dimensional_row_likelihoods_are_the_general_path() {
        let one = Gaussian::new(vec![0.3], vec![2.5]);
        let two = Gaussian::new(vec![0.3, 0.0], vec![2.5, 0.0, 0.0, 1.0]);
        let xs: Vec<f64> = (0..200).map(|i| ((i * 37 % 101) as f64 - 50.0) * 0.07).collect();
        let pairs: Vec<f64> = xs.iter().flat_map(|&x| [x, 0.0]).collect();
        let shift = 0.5 * (2.0 * std::f64::consts::PI).ln();
        for (a, b) in one.row_log_likelihoods(&xs).iter().zip(two.row_log_likelihoods(&pairs)) {
            assert!((a - (b + shift)).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
        }
        let by_hand: Vec<f64> =
            xs.iter().map(|x| -0.5 * ((2.0 * std::f64::consts::PI * 2.5).ln() + (x - 0.3).powi(2) / 2.5)).collect();
        for (a, b) in one.row_log_likelihoods(&xs).iter().zip(by_hand) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn params_read_back_as_the_model() {
        let g = Gaussian::new(vec![0.5, -1.0 / 3.0], vec![2.0, 0.25, 0.25, 1.0 / 7.0]);
        let back = Gaussian::from_params_json(&g.params_json()).unwrap();
        let rows = [0.1, 0.2, -3.0, 1.0 / 3.0];
        assert_eq!(back.row_log_likelihoods(&rows), g.row_log_likelihoods(&rows));
        assert!(Gaussian::from_params_json("{\"mean\": [0.0], \"cov\": [[1.0, 0.0]]}").is_none());
        assert!(Gaussian::from_params_json("not json").is_none());
    }

    #[test]
    fn params_are_mean_then_covariance_rows() {
        let g = Gaussian::new(vec![0.5, -1.0], vec![2.0, 0.25, 0.25, 1.0]);
        assert_eq!(g.params_json(), r#"{"mean":[0.5,-1.0],"cov":[[2.0,0.25],[0.25,1.0]]}"#);
        let tree = serde_json::json!({ "mean": [0.5, -1.0], "cov": [[2.0, 0.25], [0.25, 1.0]] });
        assert_eq!(serde_json::from_str::<serde_json::Value>(&g.params_json()).unwrap(), tree);
        let nan = Gaussian::new(vec![f64::NAN], vec![f64::INFINITY]);
        assert_eq!(nan.params_json(), r#"{"mean":[null],"cov":[[null]]}"#);
    }

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

    /// The summary path is algebra, not an approximation: it agrees with
    /// scoring row by row to rounding, in 1-D and 3-D, off-centre data.
    #[test]
    fn nll_from_moments_equals_nll_row_by_row() {
        let mut rng = Rng::from_seed(3);
        for d in [1usize, 3] {
            let data: Vec<f64> = (0..500 * d).map(|i| 2.0 + rng.normal() * (1.0 + (i % d) as f64)).collect();
            let mut cov = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    cov[i * d + j] = if i == j { 1.5 + i as f64 } else { 0.3 };
                }
            }
            let g = Gaussian::new((0..d).map(|i| 0.5 * i as f64).collect(), cov);
            // Row by row: 0.5 |L^-1 (x - mu)|^2 + half the log-normaliser.
            let l = linalg::cholesky(&g.cov, d).unwrap();
            let half_log_norm =
                0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + linalg::logdet_from_cholesky(&l, d));
            let mut total = 0.0;
            for row in data.chunks_exact(d) {
                let mut y: Vec<f64> = row.iter().zip(&g.mean).map(|(x, m)| x - m).collect();
                linalg::forward_solve(&l, d, &mut y);
                total += 0.5 * y.iter().map(|v| v * v).sum::<f64>();
            }
            let rows = half_log_norm + total / 500.0;
            let summary = g.mean_nll(&data);
            assert!((rows - summary).abs() < 1e-12 * rows.abs(), "d={d}: {rows} vs {summary}");
        }
        let collapsed = Gaussian::new(vec![0.0], vec![0.0]);
        assert!(collapsed.mean_nll_of(&Moments::of(&[1.0, 2.0], 1)).is_infinite());
    }

    /// Merged moments equal the moments of the concatenated rows, to
    /// rounding, however the rows are split (the accumulate pool merges
    /// D_0, D_1, ... one block at a time).
    #[test]
    fn merged_moments_equal_the_moments_of_all_rows() {
        let mut rng = Rng::from_seed(5);
        for d in [1usize, 3] {
            let data: Vec<f64> = (0..d * 700).map(|i| 10.0 + rng.normal() * (1.0 + (i % d) as f64)).collect();
            let whole = Moments::of(&data, d);
            let mut pool = Moments::of(&[], d);
            for block in [&data[..d * 100], &data[d * 100..d * 101], &data[d * 101..d * 450], &data[d * 450..]] {
                pool = pool.merge(&Moments::of(block, d));
            }
            assert_eq!(pool.n, whole.n);
            for (a, b) in pool.mean.iter().chain(&pool.scatter).zip(whole.mean.iter().chain(&whole.scatter)) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "d={d}: {a} vs {b}");
            }
        }
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
