//! The integration tests: one binary (ripgrep's layout), helpers here.

mod closed_form;
mod discrete;
mod faults;
mod fuzz;
mod gmm;
mod interop;
mod pipelines;
mod policies;
mod provenance;
mod query;
mod reproducible;
mod validate;

use std::path::{Path, PathBuf};
use std::process::Command;

use collapse::data::query::{run as query_run, Format};
use collapse::pipeline;
use collapse::runner::{self, Options};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary directory under target/, removed at drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("collapse-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs pipeline text through the same parse + runner path as `collapse run`.
pub fn run_pipeline(text: &str, out: &Path) -> runner::RunSummary {
    let p = pipeline::parse(text, &repo().join("pipelines"), &[]).unwrap_or_else(|e| panic!("pipeline: {e:?}"));
    runner::run(&p, out, &Options::default()).unwrap()
}

/// Query rows as JSON objects.
pub fn query(run: &Path, sql: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let text = query_run(run, sql, Format::Json).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
}

pub fn f(row: &serde_json::Map<String, serde_json::Value>, key: &str) -> f64 {
    row[key].as_f64().unwrap_or_else(|| panic!("{key} in {row:?}"))
}

/// Metric values by generation: `out[k]` holds one value per replicate.
pub fn metric_by_generation(run: &Path, metric: &str) -> Vec<Vec<f64>> {
    let rows = query(
        run,
        &format!(
            "SELECT generation, replicate, value FROM metrics WHERE metric = '{metric}' ORDER BY generation, replicate"
        ),
    );
    let mut out: Vec<Vec<f64>> = Vec::new();
    for r in rows {
        let k = f(&r, "generation") as usize;
        if out.len() <= k {
            out.resize(k + 1, Vec::new());
        }
        out[k].push(f(&r, "value"));
    }
    out
}

/// Mean and its Monte Carlo standard error (sample sd / sqrt(n)) over
/// independent replicates.
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Asserts |mean - expected| <= z standard errors, with context.
pub fn assert_within(what: &str, xs: &[f64], expected: f64, z: f64) {
    let (m, se) = mean_se(xs);
    assert!(
        (m - expected).abs() <= z * se,
        "{what}: mean {m:.6} vs expected {expected:.6}: off by {:.2} standard errors (se {se:.2e}, n {})",
        (m - expected).abs() / se,
        xs.len()
    );
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collapse"))
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The digamma function: recurrence up to x >= 10, then the asymptotic
/// series (first omitted term < 3e-14 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let x2 = 1.0 / (x * x);
    acc + x.ln()
        - 0.5 / x
        - x2 * (1.0 / 12.0 - x2 * (1.0 / 120.0 - x2 * (1.0 / 252.0 - x2 * (1.0 / 240.0 - x2 / 132.0))))
}

#[test]
fn special_functions_match_known_values() {
    // Gamma(5) = 24; psi(1) = -Euler-Mascheroni; psi(1/2) = -gamma - 2 ln 2.
    assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    let euler = 0.577_215_664_901_532_9;
    assert!((digamma(1.0) + euler).abs() < 1e-12);
    assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-12);
}
