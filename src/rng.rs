//! The project's own seeded random numbers.
//!
//! Every draw in a run comes from a [`Rng`] derived from (master seed,
//! replicate, generation, purpose), so a chain's numbers never depend on the
//! thread that drew them, on how many replicates the run has, or on the
//! version of an external crate. xoshiro256++ for the stream; Doornik's
//! ZIGNOR ziggurat for normals.

use std::sync::OnceLock;

/// What a stream is used for; part of its seed so streams never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    RealData = 1,
    Holdout = 2,
    Sample = 3,
    Mix = 4,
    Fresh = 5,
    Fit = 6,
    /// Run-level choices shared by every replicate (a text run's test lines).
    Corpus = 7,
    /// A text run's base model, pretrained once for every replicate.
    Base = 8,
    /// A curation filter's draws: each row's detector flag, the resampling draw.
    Filter = 9,
}

/// splitmix64's finaliser: a bijective avalanche mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one replicate's chain, as written to run.json.
pub fn replicate_seed(master: u64, replicate: u32) -> u64 {
    mix64(mix64(master ^ 0x636f_6c6c_6170_7365).wrapping_add(mix64(u64::from(replicate) + 1)))
}

/// Seed for the stream of (replicate, generation, purpose).
pub fn stream_seed(master: u64, replicate: u32, generation: u32, purpose: Purpose) -> u64 {
    let mut h = replicate_seed(master, replicate);
    h = mix64(h ^ mix64(u64::from(generation).wrapping_add(0x9e37_79b9_7f4a_7c15)));
    mix64(h ^ mix64((purpose as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)))
}

/// A uniform on [0, 1) that belongs to one row: a function of a stream's
/// seed and the row's sample id alone, so a row's draw is the same
/// whatever else is drawn, and an audit re-derives it from the id.
pub fn row_uniform(stream: u64, sample_id: u64) -> f64 {
    row_draw(stream, sample_id) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The integer m behind a row's uniform m / 2^53.
#[inline(always)]
fn row_draw(stream: u64, sample_id: u64) -> u64 {
    mix64(stream ^ mix64(sample_id.wrapping_add(0x9e37_79b9_7f4a_7c15))) >> 11
}

/// The threshold t for which `row_uniform(s, id) < p` is `m < t`: m / 2^53
/// (exact) is below p exactly when the integer m is below ceil(p 2^53)
/// (p 2^53 is exact too: a power of two scales it). `p` in [0, 1].
pub fn row_threshold(p: f64) -> u64 {
    (p * (1u64 << 53) as f64).ceil() as u64
}

crate::simd::wide! {
    /// Whether each row of a run of sample ids (`first`, then `len` more
    /// counting up) draws below `threshold` ([`row_threshold`]), appended
    /// to `out`: `row_uniform(stream, id) < p` a row, in integers, so
    /// that a block's flags are one loop of lanes.
    pub fn rows_below / rows_below_plain(stream: u64, first: u64, len: u64, threshold: u64, out: &mut Vec<bool>) {
        // Offsets, not `first..first + len`: a run may end at u64::MAX.
        out.extend((0..len).map(|i| row_draw(stream, first.wrapping_add(i)) < threshold));
    }
}

crate::simd::wide! {
    /// [`rows_below`] of the rows at `idx` of a block whose first id is `first`.
    pub fn picked_below / picked_below_plain(stream: u64, first: u64, idx: &[usize], threshold: u64, out: &mut Vec<bool>) {
        out.extend(idx.iter().map(|&i| row_draw(stream, first + i as u64) < threshold));
    }
}

pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn from_seed(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(x)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    pub fn stream(master: u64, replicate: u32, generation: u32, purpose: Purpose) -> Self {
        Self::from_seed(stream_seed(master, replicate, generation, purpose))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on (0, 1): safe to take the logarithm of.
    #[inline]
    fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Standard normal draw (ZIGNOR, Doornik 2005, 128 layers).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let z = zig();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0x7f) as usize;
            // The top 53 bits give u in [-1, 1); the low 7 pick the layer.
            let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            if u.abs() < z.r[i] {
                return u * z.x[i];
            }
            if i == 0 {
                return self.normal_tail(u < 0.0);
            }
            let x = u * z.x[i];
            let f0 = (-0.5 * (z.x[i] * z.x[i] - x * x)).exp();
            let f1 = (-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x)).exp();
            if f1 + self.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }

    fn normal_tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = self.uniform_open().ln() / ZIG_R;
            let y = self.uniform_open().ln();
            if -2.0 * y >= x * x {
                return if negative { x - ZIG_R } else { ZIG_R - x };
            }
        }
    }

    /// `k` distinct indices from `0..n`, sorted ascending.
    pub fn choose_sorted(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(k <= n, "cannot choose {k} of {n} without replacement");
        let mut out = if k.saturating_mul(4) < n {
            // Floyd's algorithm: O(k) memory when k is small against n.
            let mut set = std::collections::HashSet::with_capacity(k);
            let mut picked = Vec::with_capacity(k);
            for j in (n - k)..n {
                let t = self.below(j as u64 + 1) as usize;
                let v = if set.contains(&t) { j } else { t };
                set.insert(v);
                picked.push(v);
            }
            picked
        } else {
            let mut idx: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = i + self.below((n - i) as u64) as usize;
                idx.swap(i, j);
            }
            idx.truncate(k);
            idx
        };
        out.sort_unstable();
        out
    }

    /// 0..n in a uniformly random order (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            idx.swap(i, j);
        }
        idx
    }
}

const ZIG_C: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

struct Zig {
    x: [f64; ZIG_C + 1],
    r: [f64; ZIG_C],
}

fn zig() -> &'static Zig {
    static TABLE: OnceLock<Zig> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut x = [0.0; ZIG_C + 1];
        let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        x[ZIG_C] = 0.0;
        for i in 2..ZIG_C {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        let mut r = [0.0; ZIG_C];
        for i in 0..ZIG_C {
            r[i] = x[i + 1] / x[i];
        }
        Zig { x, r }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The integer comparison is the float one, at rates that are
        /// exact binary fractions, just above or below them, and 0 and 1;
        /// both builds of the loops agree.
        #[test]
        fn integer_thresholds_are_the_float_comparison(
            stream in proptest::prelude::any::<u64>(),
            first in 0u64..u64::MAX / 2,
            p in 0.0f64..1.0,
            which in 0usize..6,
        ) {
            let p = [p, 0.0, 1.0, 0.5, 0.5f64.next_up(), 0.1f64.next_down()][which];
            let t = row_threshold(p);
            let want: Vec<bool> = (first..first + 300).map(|id| row_uniform(stream, id) < p).collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            rows_below(stream, first, 300, t, &mut a);
            rows_below_plain(stream, first, 300, t, &mut b);
            proptest::prop_assert_eq!(&a, &want);
            proptest::prop_assert_eq!(&b, &want);
            let idx: Vec<usize> = (0..300).step_by(7).collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            picked_below(stream, first, &idx, t, &mut a);
            picked_below_plain(stream, first, &idx, t, &mut b);
            let want: Vec<bool> = idx.iter().map(|&i| want[i]).collect();
            proptest::prop_assert_eq!(&a, &want);
            proptest::prop_assert_eq!(&b, &want);
        }
    }

    /// Near a threshold the two comparisons still agree: m / 2^53 against
    /// p for the m on either side of p 2^53.
    #[test]
    fn thresholds_split_draws_where_the_floats_do() {
        for p in [0.1, 0.3, 0.5, 0.9, 1e-9, 1.0 - 1e-12] {
            let t = row_threshold(p);
            for m in t.saturating_sub(2)..=(t + 2).min(1 << 53) {
                let u = m as f64 * (1.0 / (1u64 << 53) as f64);
                assert_eq!(m < t, u < p, "p {p}, m {m}");
            }
        }
    }

    #[test]
    fn normal_moments_match_the_standard_normal() {
        // n = 400k draws: the sample mean has sd 1/sqrt(n) = 0.0016, the
        // sample variance sd sqrt(2/n) = 0.0022, the share beyond |z| > 3
        // (p = 0.0027) sd sqrt(p(1-p)/n) = 8.2e-5; 5 sd bounds below.
        let mut rng = Rng::from_seed(42);
        let n = 400_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let tail = xs.iter().filter(|x| x.abs() > 3.0).count() as f64 / n as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 5.0 * 0.0016, "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * 0.0022, "var {var}");
        assert!((tail - 0.0026998).abs() < 5.0 * 8.2e-5, "tail {tail}");
        // Kurtosis 3, sd sqrt(24/n) = 0.0077.
        assert!((kurt - 3.0).abs() < 5.0 * 0.0077, "kurtosis {kurt}");
    }

    #[test]
    fn streams_differ_by_every_part_of_their_key() {
        let a = stream_seed(1, 0, 0, Purpose::Sample);
        assert_ne!(a, stream_seed(2, 0, 0, Purpose::Sample));
        assert_ne!(a, stream_seed(1, 1, 0, Purpose::Sample));
        assert_ne!(a, stream_seed(1, 0, 1, Purpose::Sample));
        assert_ne!(a, stream_seed(1, 0, 0, Purpose::Mix));
    }

    #[test]
    fn choose_sorted_is_uniform_and_distinct() {
        // Each of n = 10 indices is chosen with probability k/n = 0.3; over
        // 20k trials the count has sd sqrt(20k * 0.3 * 0.7) = 64.8.
        let mut rng = Rng::from_seed(3);
        for (n, k) in [(10, 3), (1000, 900)] {
            let mut counts = vec![0u32; n];
            let trials = 20_000;
            for _ in 0..trials {
                let c = rng.choose_sorted(n, k);
                assert_eq!(c.len(), k);
                assert!(c.windows(2).all(|w| w[0] < w[1]));
                for i in c {
                    counts[i] += 1;
                }
            }
            let p = k as f64 / n as f64;
            let sd = (trials as f64 * p * (1.0 - p)).sqrt();
            for c in counts {
                assert!((f64::from(c) - trials as f64 * p).abs() < 5.0 * sd);
            }
        }
    }
}
