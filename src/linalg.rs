//! Small dense symmetric matrices (d x d, row-major), enough for Gaussian
//! fits in a few dimensions: Cholesky, log-determinants, triangular solves
//! and the symmetric square root that the Gaussian W2 distance needs.

/// Lower-triangular Cholesky factor of a symmetric positive-definite matrix,
/// or `None` when a pivot is not positive.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// log det A from its Cholesky factor.
pub fn logdet_from_cholesky(l: &[f64], d: usize) -> f64 {
    (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum()
}

/// Solves L y = b in place for lower-triangular L.
pub fn forward_solve(l: &[f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations:
/// returns (eigenvalues, eigenvectors as columns).
pub fn sym_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j].powi(2))
            .sum();
        let scale: f64 = (0..d).map(|i| m[i * d + i].powi(2)).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..d {
            for q in (p + 1)..d {
                let apq = m[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let mkp = m[k * d + p];
                    let mkq = m[k * d + q];
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let mpk = m[p * d + k];
                    let mqk = m[q * d + k];
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let vkp = v[k * d + p];
                    let vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| m[i * d + i]).collect(), v)
}

/// Symmetric square root of a positive semi-definite matrix; tiny negative
/// eigenvalues from rounding are clamped to zero.
pub fn sqrtm_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (w, v) = sym_eigen(a, d);
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| v[i * d + k] * w[k].max(0.0).sqrt() * v[j * d + k]).sum();
        }
    }
    out
}

/// Appends mean + root z (root row-major d x d): a draw of N(mean, root
/// root^T) from standard normals z, the step every Gaussian sampler shares.
#[inline]
pub fn push_affine(mean: &[f64], root: &[f64], z: &[f64], out: &mut Vec<f64>) {
    let d = mean.len();
    for i in 0..d {
        let row = &root[i * d..(i + 1) * d];
        // Accumulated onto the mean, term by term: the order the samplers
        // have always used, so their draws keep their bits.
        out.push(row.iter().zip(z).fold(mean[i], |x, (r, z)| x + r * z));
    }
}

pub fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| a[i * d + k] * b[k * d + j]).sum();
        }
    }
    out
}

/// Squared Wasserstein-2 distance between N(m1, s1) and N(m2, s2):
/// |m1 - m2|^2 + tr(s1 + s2 - 2 (s2^1/2 s1 s2^1/2)^1/2).
pub fn gaussian_w2_squared(m1: &[f64], s1: &[f64], m2: &[f64], s2: &[f64]) -> f64 {
    let d = m1.len();
    let mean_part: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    if d == 1 {
        return mean_part + (s1[0].max(0.0).sqrt() - s2[0].max(0.0).sqrt()).powi(2);
    }
    let r2 = sqrtm_psd(s2, d);
    let cross = sqrtm_psd(&matmul(&matmul(&r2, s1, d), &r2, d), d);
    let tr: f64 = (0..d).map(|i| s1[i * d + i] + s2[i * d + i] - 2.0 * cross[i * d + i]).sum();
    (mean_part + tr).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_and_logdet_of_a_known_matrix() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let l = cholesky(&a, 2).unwrap();
        assert_eq!(l, vec![2.0, 0.0, 1.0, 2f64.sqrt()]);
        assert!((logdet_from_cholesky(&l, 2) - 8f64.ln()).abs() < 1e-12);
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn sqrtm_squares_back() {
        let a = [5.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let r = sqrtm_psd(&a, 3);
        let back = matmul(&r, &r, 3);
        for (x, y) in back.iter().zip(a) {
            assert!((x - y).abs() < 1e-10);
        }
    }

    #[test]
    fn w2_matches_the_commuting_closed_form() {
        // Diagonal covariances commute: W2^2 = |dm|^2 + sum (sqrt a - sqrt b)^2.
        let w = gaussian_w2_squared(&[0.0, 1.0], &[4.0, 0.0, 0.0, 1.0], &[1.0, 1.0], &[1.0, 0.0, 0.0, 9.0]);
        assert!((w - (1.0 + 1.0 + 4.0)).abs() < 1e-10, "{w}");
    }
}
