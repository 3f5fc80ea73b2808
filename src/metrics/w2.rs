/// Exact Wasserstein-2 distance between two 1-D empirical distributions,
/// given sorted samples of any sizes: the integral over u in (0, 1) of
/// (F^-1(u) - G^-1(u))^2, summed over the merged steps of the two quantile
/// functions. Step edges are compared in integer units of 1/(n m), so no
/// rounding creeps into where a step ends.
pub fn empirical_w2(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as u128, b.len() as u128);
    if n == 0 || m == 0 {
        return f64::NAN;
    }
    let total = n * m;
    let (mut i, mut j) = (0usize, 0usize);
    let mut at: u128 = 0;
    let mut sum = 0.0;
    while at < total {
        let end_a = (i as u128 + 1) * m;
        let end_b = (j as u128 + 1) * n;
        let end = end_a.min(end_b);
        let diff = a[i] - b[j];
        sum += diff * diff * ((end - at) as f64);
        at = end;
        if end == end_a {
            i += 1;
        }
        if end == end_b {
            j += 1;
        }
    }
    (sum / total as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sizes_pair_order_statistics() {
        // W2^2 = mean of squared differences of sorted pairs: (1 + 4) / 2.
        assert!((empirical_w2(&[0.0, 1.0], &[1.0, 3.0]) - 2.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn unequal_sizes_integrate_the_quantile_functions() {
        // a = {0, 1} (steps at 1/2), b = {0, 0, 3} (steps at 1/3, 2/3):
        // (0,0) on [0,1/3], (0,0) on [1/3,1/2], (1,0) on [1/2,2/3], (1,3) on [2/3,1].
        let expect = (1.0 / 6.0 + 4.0 / 3.0f64).sqrt();
        assert!((empirical_w2(&[0.0, 1.0], &[0.0, 0.0, 3.0]) - expect).abs() < 1e-12);
        assert_eq!(empirical_w2(&[2.0, 5.0], &[2.0, 2.0, 5.0, 5.0]), 0.0);
    }
}
