//! EM for Gaussian mixtures as scikit-learn's GaussianMixture runs it: the
//! initial parameters come from a hard assignment to k-means++ centres, the
//! M-step adds 10 machine epsilons to each component's mass and reg-covar
//! to each covariance's diagonal, and EM stops when the mean log-likelihood
//! changes by less than tol. The sums over rows run in parallel over fixed
//! chunks combined in chunk order, so a fit is byte-identical whatever the
//! thread count.
//!
//! A component that loses all its mass (under 1e-12 of the rows' weight,
//! where its mean would be 0/0) is re-seeded: its mean moves to the row the
//! mixture explains worst, its covariance is the mass-weighted average of
//! the others, its weight one row's share. EM then goes on; an iteration
//! that re-seeded never counts as converged.

use rayon::prelude::*;

use super::{kmeanspp, CovarianceType, Gmm, GmmSettings};
use crate::rng::Rng;

pub const CHUNK_ROWS: usize = 2048;
const DEAD_MASS: f64 = 1e-12;

#[derive(Clone, Debug)]
pub struct Fit {
    pub gmm: Gmm,
    /// EM iterations run (each an E-step then an M-step).
    pub iterations: usize,
    pub converged: bool,
    /// Mean log-likelihood at the last E-step (scikit-learn's lower_bound_).
    pub lower_bound: f64,
    /// Components re-seeded over the fit.
    pub reseeded: usize,
}

/// `n_init` restarts from k-means++ seeds; keeps the best lower bound
/// (the first on ties). Needs at least `components` rows.
pub fn fit(data: &[f64], d: usize, s: &GmmSettings, rng: &mut Rng) -> Fit {
    let start = |rng: &mut Rng| em_from(data, d, initial(data, d, s, rng), s);
    let mut best = start(rng);
    for _ in 1..s.n_init {
        let f = start(rng);
        if f.lower_bound > best.lower_bound {
            best = f;
        }
    }
    best
}

/// Initial parameters from k-means++ centres (scikit-learn's
/// init_params = "k-means++").
pub fn initial(data: &[f64], d: usize, s: &GmmSettings, rng: &mut Rng) -> Gmm {
    let centres = kmeanspp::centers(data, d, s.components, rng);
    from_centres(data, d, &centres, s)
}

/// Initial parameters: each row belongs wholly to its nearest centre
/// (the lowest index on ties), then one M-step.
fn from_centres(data: &[f64], d: usize, centres: &[f64], s: &GmmSettings) -> Gmm {
    let k = s.components;
    let n = data.len() / d;
    let mut resp = vec![0.0; n * k];
    for (x, r) in data.chunks_exact(d).zip(resp.chunks_exact_mut(k)) {
        let mut best = (f64::INFINITY, 0);
        for (j, c) in centres.chunks_exact(d).enumerate() {
            let dist: f64 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            if dist < best.0 {
                best = (dist, j);
            }
        }
        r[best.1] = 1.0;
    }
    let (nk, sx) = mass_and_sums(data, d, k, &resp);
    // A duplicate centre wins no rows; the rows farthest from every centre
    // are the worst explained.
    let worst = || {
        data.chunks_exact(d)
            .map(|x| {
                let near = centres
                    .chunks_exact(d)
                    .map(|c| x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min);
                -near
            })
            .collect()
    };
    m_step(data, d, &resp, nk, sx, worst, s).0
}

/// EM from given parameters (scikit-learn's weights_init, means_init and
/// precisions_init) for at most max_iter iterations.
pub fn em_from(data: &[f64], d: usize, init: Gmm, s: &GmmSettings) -> Fit {
    let k = init.components();
    let n = data.len() / d;
    let mut gmm = init;
    let mut resp = vec![0.0; n * k];
    let mut lower_bound = f64::NEG_INFINITY;
    let (mut iterations, mut converged, mut reseeded) = (0, false, 0);
    for it in 1..=s.max_iter {
        let previous = lower_bound;
        let (ll, nk, sx) = e_step(&gmm, data, &mut resp);
        lower_bound = ll / n as f64;
        let worst = || row_log_likelihoods(&gmm, data);
        let (next, again) = m_step(data, d, &resp, nk, sx, worst, s);
        gmm = next;
        iterations = it;
        reseeded += again;
        if again == 0 && (lower_bound - previous).abs() < s.tol {
            converged = true;
            break;
        }
    }
    Fit { gmm, iterations, converged, lower_bound, reseeded }
}

/// Responsibilities into `resp`; returns the total log-likelihood, each
/// component's mass and weighted row sums.
fn e_step(gmm: &Gmm, data: &[f64], resp: &mut [f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let (d, k) = (gmm.dim(), gmm.components());
    let parts: Vec<(f64, Vec<f64>, Vec<f64>)> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(resp.par_chunks_mut(CHUNK_ROWS * k))
        .map(|(x, r)| {
            let (mut total, mut nk, mut sx) = (0.0, vec![0.0; k], vec![0.0; k * d]);
            let mut y = vec![0.0; d];
            // ln of a product of 64 row sums, each in [1, k <= 1000], cannot
            // overflow (1000^64 = 1e192): one logarithm per 64 rows.
            let (mut maxes, mut product, mut rows) = (0.0, 1.0, 0);
            for (x, r) in x.chunks_exact(d).zip(r.chunks_exact_mut(k)) {
                let (max, sum) = gmm.joint_scaled(x, r, &mut y);
                if sum == 0.0 {
                    // No component has a density here: the row counts as
                    // impossible and belongs to none.
                    total = f64::NEG_INFINITY;
                    continue;
                }
                maxes += max;
                product *= sum;
                rows += 1;
                if rows == 64 {
                    total += maxes + product.ln();
                    (maxes, product, rows) = (0.0, 1.0, 0);
                }
                let inv = 1.0 / sum;
                for (j, rj) in r.iter_mut().enumerate() {
                    *rj *= inv;
                    nk[j] += *rj;
                    for (s, xi) in sx[j * d..(j + 1) * d].iter_mut().zip(x) {
                        *s += *rj * xi;
                    }
                }
            }
            total += maxes + product.ln();
            (total, nk, sx)
        })
        .collect();
    let mut out = (0.0, vec![0.0; k], vec![0.0; k * d]);
    for (t, nk, sx) in parts {
        out.0 += t;
        add(&mut out.1, &nk);
        add(&mut out.2, &sx);
    }
    out
}

/// Each row's log-likelihood under `gmm`, only needed to re-seed.
fn row_log_likelihoods(gmm: &Gmm, data: &[f64]) -> Vec<f64> {
    let (d, k) = (gmm.dim(), gmm.components());
    let (mut out, mut y) = (vec![0.0; k], vec![0.0; d]);
    data.chunks_exact(d).map(|x| gmm.log_likelihood(x, &mut out, &mut y)).collect()
}

fn add(acc: &mut [f64], part: &[f64]) {
    for (a, p) in acc.iter_mut().zip(part) {
        *a += p;
    }
}

fn mass_and_sums(data: &[f64], d: usize, k: usize, resp: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let parts: Vec<(Vec<f64>, Vec<f64>)> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(resp.par_chunks(CHUNK_ROWS * k))
        .map(|(x, r)| {
            let (mut nk, mut sx) = (vec![0.0; k], vec![0.0; k * d]);
            for (x, r) in x.chunks_exact(d).zip(r.chunks_exact(k)) {
                for j in 0..k {
                    nk[j] += r[j];
                    for i in 0..d {
                        sx[j * d + i] += r[j] * x[i];
                    }
                }
            }
            (nk, sx)
        })
        .collect();
    let (mut nk, mut sx) = (vec![0.0; k], vec![0.0; k * d]);
    for (a, b) in parts {
        add(&mut nk, &a);
        add(&mut sx, &b);
    }
    (nk, sx)
}

/// New parameters from the responsibilities; returns how many components
/// were re-seeded.
fn m_step(
    data: &[f64],
    d: usize,
    resp: &[f64],
    raw_nk: Vec<f64>,
    sx: Vec<f64>,
    worst_rows: impl FnOnce() -> Vec<f64>,
    s: &GmmSettings,
) -> (Gmm, usize) {
    let k = raw_nk.len();
    let n = data.len() / d;
    let nk: Vec<f64> = raw_nk.iter().map(|m| m + 10.0 * f64::EPSILON).collect();
    let mut means = vec![0.0; k * d];
    for j in 0..k {
        for i in 0..d {
            means[j * d + i] = sx[j * d + i] / nk[j];
        }
    }
    // Two passes, as scikit-learn's full covariance: centre on the new means.
    let full = s.covariance == CovarianceType::Full;
    let parts: Vec<Vec<f64>> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(resp.par_chunks(CHUNK_ROWS * k))
        .map(|(x, r)| {
            let mut acc = vec![0.0; k * d * d];
            let mut diff = vec![0.0; d];
            for (x, r) in x.chunks_exact(d).zip(r.chunks_exact(k)) {
                for j in 0..k {
                    let rj = r[j];
                    if rj == 0.0 {
                        continue;
                    }
                    for i in 0..d {
                        diff[i] = x[i] - means[j * d + i];
                    }
                    let a = &mut acc[j * d * d..(j + 1) * d * d];
                    for i in 0..d {
                        let ri = rj * diff[i];
                        if full {
                            for t in 0..=i {
                                a[i * d + t] += ri * diff[t];
                            }
                        } else {
                            a[i * d + i] += ri * diff[i];
                        }
                    }
                }
            }
            acc
        })
        .collect();
    let mut covs = vec![0.0; k * d * d];
    for p in &parts {
        add(&mut covs, p);
    }
    for j in 0..k {
        let c = &mut covs[j * d * d..(j + 1) * d * d];
        for i in 0..d {
            for t in 0..i {
                c[t * d + i] = c[i * d + t];
            }
        }
        for v in c.iter_mut() {
            *v /= nk[j];
        }
        if s.covariance == CovarianceType::Spherical {
            let mean_var = (0..d).map(|i| c[i * d + i]).sum::<f64>() / d as f64;
            for i in 0..d {
                c[i * d + i] = mean_var;
            }
        }
        for i in 0..d {
            c[i * d + i] += s.reg_covar;
        }
    }
    let mut weights = nk.clone();
    let dead: Vec<usize> = (0..k).filter(|&j| raw_nk[j] < DEAD_MASS * n as f64).collect();
    if !dead.is_empty() && dead.len() < k {
        reseed(data, d, &dead, &mut weights, &mut means, &mut covs, &worst_rows());
    }
    let total: f64 = weights.iter().sum();
    for w in &mut weights {
        *w /= total;
    }
    let reseeded = if dead.len() < k { dead.len() } else { 0 };
    (Gmm::new(weights, &means, &covs, s.covariance), reseeded)
}

fn reseed(
    data: &[f64],
    d: usize,
    dead: &[usize],
    weights: &mut [f64],
    means: &mut [f64],
    covs: &mut [f64],
    row_ll: &[f64],
) {
    let k = weights.len();
    let live: Vec<usize> = (0..k).filter(|j| !dead.contains(j)).collect();
    let live_mass: f64 = live.iter().map(|&j| weights[j]).sum();
    let mut avg = vec![0.0; d * d];
    for &j in &live {
        for (a, c) in avg.iter_mut().zip(&covs[j * d * d..(j + 1) * d * d]) {
            *a += weights[j] / live_mass * c;
        }
    }
    // Worst-explained rows first; row order breaks ties.
    let mut order: Vec<usize> = (0..row_ll.len()).collect();
    order.sort_by(|&a, &b| row_ll[a].total_cmp(&row_ll[b]).then(a.cmp(&b)));
    for (&j, &row) in dead.iter().zip(order.iter().cycle()) {
        means[j * d..(j + 1) * d].copy_from_slice(&data[row * d..(row + 1) * d]);
        covs[j * d * d..(j + 1) * d * d].copy_from_slice(&avg);
        weights[j] = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(k: usize, covariance: CovarianceType) -> GmmSettings {
        GmmSettings { components: k, covariance, n_init: 1, tol: 1e-8, max_iter: 500, reg_covar: 1e-6 }
    }

    /// n rows from 0.4 N((-3, 0), I) + 0.6 N((3, 1), diag(1, 4)).
    fn two_blobs(n: usize, seed: u64) -> Vec<f64> {
        let truth = Gmm::new(
            vec![0.4, 0.6],
            &[-3.0, 0.0, 3.0, 1.0],
            &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 4.0],
            CovarianceType::Full,
        );
        truth.sample(&mut Rng::from_seed(seed), n)
    }

    #[test]
    fn recovers_two_separated_components() {
        // n = 20000: each weight has sd sqrt(0.24 / n) = 0.0035; a mean
        // coordinate sd sqrt(var / rows): sqrt(1 / 8000) = 0.0112 for x of
        // component 0, sqrt(4 / 12000) = 0.018 for y of component 1; 5 sd.
        let data = two_blobs(20_000, 1);
        let f = fit(&data, 2, &settings(2, CovarianceType::Full), &mut Rng::from_seed(2));
        assert!(f.converged);
        let j = if f.gmm.mean(0)[0] < 0.0 { 0 } else { 1 };
        assert!((f.gmm.weights[j] - 0.4).abs() < 5.0 * 0.0035, "{:?}", f.gmm.weights);
        assert!((f.gmm.mean(j)[0] + 3.0).abs() < 5.0 * 0.0112);
        assert!((f.gmm.mean(1 - j)[1] - 1.0).abs() < 5.0 * 0.022);
        // var of a sample variance 2 sigma^4 / n: sd sqrt(32 / 12000) = 0.052.
        assert!((f.gmm.cov(1 - j)[3] - 4.0).abs() < 5.0 * 0.052);
    }

    #[test]
    fn each_iteration_raises_the_likelihood() {
        let data = two_blobs(2_000, 3);
        for cov in [CovarianceType::Full, CovarianceType::Diag, CovarianceType::Spherical] {
            let s = GmmSettings { max_iter: 1, ..settings(3, cov) };
            let centres = kmeanspp::centers(&data, 2, 3, &mut Rng::from_seed(4));
            let mut g = from_centres(&data, 2, &centres, &s);
            let mut last = f64::NEG_INFINITY;
            for _ in 0..30 {
                let f = em_from(&data, 2, g, &s);
                assert!(f.lower_bound >= last - 1e-12, "{cov:?}: {} < {last}", f.lower_bound);
                last = f.lower_bound;
                g = f.gmm;
            }
        }
    }

    #[test]
    fn the_mixture_keeps_the_data_moments() {
        // After an M-step sum_j w_j mu_j is the data mean and the mixture's
        // covariance is the MLE data covariance plus reg-covar.
        let data = two_blobs(500, 5);
        let f = fit(&data, 2, &settings(2, CovarianceType::Full), &mut Rng::from_seed(6));
        let n = 500.0;
        let mean: Vec<f64> = (0..2).map(|i| data.iter().skip(i).step_by(2).sum::<f64>() / n).collect();
        let mut total = [0.0; 4];
        for j in 0..2 {
            let (w, m, c) = (f.gmm.weights[j], f.gmm.mean(j), f.gmm.cov(j));
            for a in 0..2 {
                for b in 0..2 {
                    total[a * 2 + b] += w * (c[a * 2 + b] + m[a] * m[b]);
                }
            }
        }
        for a in 0..2 {
            for b in 0..2 {
                let s: f64 = data.chunks(2).map(|r| (r[a] - mean[a]) * (r[b] - mean[b])).sum::<f64>() / n;
                let reg = if a == b { 1e-6 } else { 0.0 };
                assert!((total[a * 2 + b] - mean[a] * mean[b] - s - reg).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn a_component_on_no_rows_is_reseeded_not_nan() {
        // Component 1 sits 1e6 away: its responsibilities underflow to 0.
        let data = two_blobs(300, 7);
        let init = Gmm::new(
            vec![0.5, 0.5],
            &[0.0, 0.0, 1e6, 1e6],
            &[1.0, 0.0, 0.0, 1.0, 1e-6, 0.0, 0.0, 1e-6],
            CovarianceType::Full,
        );
        let f = em_from(&data, 2, init, &settings(2, CovarianceType::Full));
        assert!(f.reseeded >= 1);
        assert!(f.lower_bound.is_finite());
        assert!(f.gmm.weights.iter().all(|w| w.is_finite() && *w > 0.0));
        assert!((0..2).all(|j| f.gmm.mean(j).iter().all(|m| m.abs() < 100.0)));
    }

    #[test]
    fn thread_count_does_not_change_a_bit() {
        let data = two_blobs(10_000, 8);
        let s = settings(4, CovarianceType::Full);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| fit(&data, 2, &s, &mut Rng::from_seed(9)))
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.lower_bound.to_bits(), b.lower_bound.to_bits());
        assert_eq!(a.gmm.params_json(Default::default()), b.gmm.params_json(Default::default()));
    }
}
