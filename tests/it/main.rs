//! The integration tests: one binary (ripgrep's layout), helpers here.

mod closed_form;
mod command;
mod discrete;
mod faults;
mod filter;
mod fuzz;
mod gmm;
mod golden;
mod interop;
mod layering;
mod pipelines;
mod policies;
mod provenance;
mod query;
mod report;
mod reproducible;
mod sql;
mod study;
mod text;
mod vae;
mod validate;

use std::path::{Path, PathBuf};
use std::process::Command;

use collapse::data::query::{run as query_run, Format};
use collapse::pipeline;
use collapse::runner::{self, Options};

/// The checkout under test. Read at run time first: a test binary reused from a shared
/// target directory may have been compiled in another checkout of the same crate.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
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
    let mut p = pipeline::parse(text, &repo().join("pipelines"), &[]).unwrap_or_else(|e| panic!("pipeline: {e:?}"));
    let problems = collapse::resolve::environment(&mut p);
    assert!(problems.is_empty(), "pipeline: {problems:?}");
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

pub use collapse::special::{digamma, ln_gamma};

/// Runs the binary: (exit code, stdout, stderr); `threads` sets RAYON_NUM_THREADS.
pub fn cli(args: &[&str], threads: Option<&str>) -> (i32, String, String) {
    let mut cmd = bin();
    cmd.args(args);
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t);
    }
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Writes `body` as pipeline `name` and expects `validate` to reject it
/// with exit 2, saying `needle`.
pub fn invalid(dir: &Scratch, name: &str, body: String, needle: &str) {
    let f = dir.path(name);
    std::fs::write(&f, body).unwrap();
    let (code, _, err) = cli(&["validate", f.to_str().unwrap()], None);
    assert_eq!(code, 2, "{name}: {err}");
    assert!(err.contains(needle), "{name}: missing {needle:?} in\n{err}");
}

/// `collapse run P --out OUT -q` through the binary; it must succeed,
/// and `-q` silences the progress lines.
pub fn run_quietly(p: &Path, out: &Path, threads: Option<&str>) {
    let (code, text, err) = cli(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"], threads);
    assert_eq!(code, 0, "{err}");
    assert!(text.is_empty() && !err.contains("%)"), "-q printed:\n{text}{err}");
}

/// The plain progress lines a run writes to stderr when stderr is not a
/// terminal: `<where> (<percent>%)  ...`, percentages never going back
/// within a phase (the base model, then the generations), and the last
/// line the run's end, written once. Returns the lines.
pub fn progress_lines(stderr: &str, generations: u32, replicates: u32) -> Vec<String> {
    let lines: Vec<String> = stderr.lines().filter(|l| l.contains("%)")).map(str::to_owned).collect();
    let percent = |l: &str| -> u32 {
        let open = l.find(" (").unwrap();
        l[open + 2..l.find("%)").unwrap()].parse().unwrap_or_else(|_| panic!("no percent in {l:?}"))
    };
    let mut last: Option<(bool, u32)> = None;
    for l in &lines {
        let base = l.starts_with("base model: epoch ");
        assert!(base || l.starts_with("generation "), "{l:?}");
        let p = percent(l);
        assert!(p <= 100, "{l:?}");
        if let Some((was_base, before)) = last {
            assert!(was_base || !base, "the base model after the generations:\n{stderr}");
            assert!(was_base != base || p >= before, "progress went back:\n{stderr}");
        }
        last = Some((base, p));
    }
    let end = format!("generation {generations}/{generations}, replicates {replicates}/{replicates} (100%)");
    assert_eq!(lines.iter().filter(|l| l.starts_with(&end)).count(), 1, "{end:?} once in\n{stderr}");
    assert!(lines.last().unwrap().starts_with(&end), "{stderr}");
    lines
}

/// `collapse audit OUT` through the binary; it must find nothing wrong.
pub fn audit_clean(out: &Path, what: &str) {
    let (code, text, err) = cli(&["audit", out.to_str().unwrap()], None);
    assert_eq!(code, 0, "{what} audit: {text}{err}");
}

/// A check that cannot run here for want of a peer (DuckDB, pyarrow,
/// scikit-learn, Chromium). With `COLLAPSE_REQUIRE_PEERS=1` (set by
/// `.ci/run`) that is a failure; otherwise a line naming the check goes
/// straight to stderr, past the test harness's capture (which takes only
/// the print macros), so `cargo test` shows what did not run.
pub fn skip(check: &str, why: &str) {
    skip_unless_required("COLLAPSE_REQUIRE_PEERS", check, why);
}

/// [`skip`], required by the variable `var` (`COLLAPSE_REQUIRE_SLURM` for
/// the Slurm cluster `.ci/run` starts).
pub fn skip_unless_required(var: &str, check: &str, why: &str) {
    if std::env::var_os(var).is_some_and(|v| v == "1") {
        panic!("{check}: {why}, and {var}=1 requires it");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped {check}: {why}");
}

/// `collapse run pipelines/FILE --out OUT -q --no-fsync --set S...` through
/// the binary; it must succeed.
/// Every file under `dir` (recursively) that `keep` accepts, sorted.
pub fn files_under(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `p` ends in `.ext`.
pub fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|x| x == ext)
}

pub fn run_shipped(file: &str, out: &Path, sets: &[&str]) {
    let p = repo().join("pipelines").join(file);
    let mut args = vec!["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q", "--no-fsync"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (code, _, err) = cli(&args, None);
    assert_eq!(code, 0, "{file}: {err}");
}
