//! The fit-and-sample kernel alone (no tables, no IO): R replicates of a 1-D
//! Gaussian refitted on its own M samples for G generations, in parallel
//! over replicates. The counterpart of benches/peer_numpy.py's loop.
//!
//!     cargo run --release --example gaussian_kernel -- M R G

use collapse::model::Gaussian;
use collapse::pipeline::Variance;
use collapse::rng::{Purpose, Rng};
use rayon::prelude::*;

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("M R G as integers")).collect();
    let (m, r, g) = (a[0], a[1], a[2]);
    let t = std::time::Instant::now();
    let vars: Vec<f64> = (0..r as u32)
        .into_par_iter()
        .map(|rep| {
            let mut rng = Rng::stream(7, rep, 0, Purpose::RealData);
            let mut x = Gaussian::new(vec![0.0], vec![1.0]).sample(&mut rng, m);
            for k in 0..g as u32 {
                let model = Gaussian::fit(&x, 1, Variance::Unbiased);
                let mut rng = Rng::stream(7, rep, k, Purpose::Sample);
                x = model.sample(&mut rng, m);
            }
            Gaussian::fit(&x, 1, Variance::Unbiased).cov[0]
        })
        .collect();
    let secs = t.elapsed().as_secs_f64();
    let mean_var = vars.iter().sum::<f64>() / vars.len() as f64;
    println!("{{\"seconds\": {secs}, \"mean_final_var\": {mean_var}}}");
}
