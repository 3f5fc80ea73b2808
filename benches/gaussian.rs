//! Kernel benchmarks (divan): one generation of fit + sample for every
//! replicate, and the normal sampler. The full-run figures and the numpy
//! comparison come from benches/peer_numpy.py (BENCHMARKS.md).
//!
//!     cargo bench --bench gaussian

use collapse::model::Gaussian;
use collapse::pipeline::Variance;
use collapse::rng::{Purpose, Rng};
use rayon::prelude::*;

fn main() {
    divan::main();
}

/// One generation, 200 replicates: fit N(mu, s^2) to M rows, draw M new.
#[divan::bench(args = [100, 10_000])]
fn fit_and_sample_one_generation(bencher: divan::Bencher, m: usize) {
    let data: Vec<Vec<f64>> = (0..200u32)
        .map(|r| Gaussian::new(vec![0.0], vec![1.0]).sample(&mut Rng::stream(1, r, 0, Purpose::RealData), m))
        .collect();
    bencher.bench(|| {
        data.par_iter()
            .enumerate()
            .map(|(r, x)| {
                let g = Gaussian::fit(x, 1, Variance::Unbiased);
                g.sample(&mut Rng::stream(1, r as u32, 1, Purpose::Sample), m).len()
            })
            .sum::<usize>()
    });
}

#[divan::bench]
fn normal_draws_1m(bencher: divan::Bencher) {
    bencher.bench(|| {
        let mut rng = Rng::from_seed(3);
        (0..1_000_000).map(|_| rng.normal()).sum::<f64>()
    });
}
