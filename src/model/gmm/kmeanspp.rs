//! k-means++ seeding (Arthur & Vassilvitskii 2007) in scikit-learn's greedy
//! form: each new centre is the best of 2 + ln k candidates drawn with
//! probability proportional to the squared distance to the nearest centre.

use crate::rng::Rng;

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// First index whose prefix sum reaches `u` (numpy's searchsorted, left).
fn search(cumsum: &[f64], u: f64) -> usize {
    cumsum.partition_point(|c| *c < u).min(cumsum.len() - 1)
}

/// `k` centres (k x d, row-major) chosen among the rows of `data`; needs
/// at least one row.
pub fn centers(data: &[f64], d: usize, k: usize, rng: &mut Rng) -> Vec<f64> {
    let n = data.len() / d;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let first = rng.below(n as u64) as usize;
    let mut out = row(first).to_vec();
    let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
    let trials = 2 + (k as f64).ln() as usize;
    let mut cumsum = vec![0.0; n];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, v) in cumsum.iter_mut().zip(&closest) {
            acc += v;
            *c = acc;
        }
        let pot = acc;
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            // Every row coincides with a centre: any row will do.
            let cand = if pot > 0.0 { search(&cumsum, rng.uniform() * pot) } else { rng.below(n as u64) as usize };
            let next: Vec<f64> = closest.iter().enumerate().map(|(i, c)| c.min(sq_dist(row(i), row(cand)))).collect();
            let p: f64 = next.iter().sum();
            if best.as_ref().is_none_or(|(bp, _, _)| p < *bp) {
                best = Some((p, cand, next));
            }
        }
        if let Some((_, cand, next)) = best {
            out.extend_from_slice(row(cand));
            closest = next;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_one_centre_per_well_separated_cluster() {
        // Three tight clusters 100 apart: the D^2 weighting puts the second
        // and third centres in the other clusters with probability > 1 - 1e-6.
        let mut data = Vec::new();
        let mut rng = Rng::from_seed(9);
        for c in [0.0, 100.0, 200.0] {
            for _ in 0..50 {
                data.push(c + 0.01 * rng.normal());
                data.push(-c + 0.01 * rng.normal());
            }
        }
        let got = centers(&data, 2, 3, &mut Rng::from_seed(1));
        let mut xs: Vec<i64> = got.chunks(2).map(|c| (c[0] / 100.0).round() as i64).collect();
        xs.sort();
        assert_eq!(xs, vec![0, 1, 2]);
    }
}
