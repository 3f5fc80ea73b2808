//! EM alone, for the scikit-learn comparison in benches/peer_sklearn_gmm.py:
//! reads n x d raw little-endian f64 rows and a JSON start (weights, means,
//! full covariances), runs exactly ITERS iterations (tol 0: no early stop),
//! prints seconds and the final mean log-likelihood as JSON.
//!
//!     cargo run --release --example gmm_em -- DATA.f64 D INIT.json ITERS

use collapse::model::{gmm, CovarianceType, Gmm, GmmSettings};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(a.len() == 4, "usage: gmm_em DATA.f64 D INIT.json ITERS");
    let raw = std::fs::read(&a[0])?;
    let data: Vec<f64> = raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
    let d: usize = a[1].parse()?;
    let init: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&a[2])?)?;
    let iters: usize = a[3].parse()?;
    let weights: Vec<f64> = serde_json::from_value(init["weights"].clone())?;
    let means: Vec<Vec<f64>> = serde_json::from_value(init["means"].clone())?;
    let covs: Vec<Vec<Vec<f64>>> = serde_json::from_value(init["covs"].clone())?;
    let k = weights.len();
    let start = Gmm::new(
        weights,
        &means.concat(),
        &covs.iter().flatten().flatten().copied().collect::<Vec<_>>(),
        CovarianceType::Full,
    );
    let s = GmmSettings {
        components: k,
        covariance: CovarianceType::Full,
        n_init: 1,
        tol: 0.0,
        max_iter: iters,
        reg_covar: 1e-6,
    };
    let t = std::time::Instant::now();
    let fit = gmm::em_from(&data, d, start, &s);
    let secs = t.elapsed().as_secs_f64();
    let score = -fit.gmm.mean_nll(&data);
    println!(
        "{}",
        serde_json::json!({ "seconds": secs, "iterations": fit.iterations, "score": score, "threads": rayon::current_num_threads() })
    );
    Ok(())
}
