//! The six mixing policies: train_rows and train_real_fraction must match
//! each policy's definition exactly, and agree with the `training` table
//! joined to `samples`.

use super::*;

const N: usize = 10;
const M: usize = 15;
const G: u32 = 4;

fn policy_run(tag: &str, mix: &str) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        r#"
name = "{tag}"
seed = 1
generations = {G}
replicates = 2
[data]
source = "gaussian"
n = {N}
holdout = 5
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = {M}
[mix]
{mix}
"#
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

/// Per (replicate, model): (rows, real rows, min generation, max generation)
/// of T_k from training joined with samples.
fn composition(run: &Path) -> Vec<(u32, u32, f64, f64, f64, f64)> {
    query(
        run,
        "SELECT t.replicate, t.model_generation, count(*) AS n, \
         sum(CASE WHEN s.origin = 'real' THEN 1 ELSE 0 END) AS real, \
         min(s.generation) AS gmin, max(s.generation) AS gmax, \
         sum(CASE WHEN s.split = 'test' THEN 1 ELSE 0 END) AS test \
         FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         GROUP BY t.replicate, t.model_generation ORDER BY t.replicate, t.model_generation",
    )
    .iter()
    .map(|r| {
        assert_eq!(f(r, "test"), 0.0, "a held-out row was trained on: {r:?}");
        (f(r, "replicate") as u32, f(r, "model_generation") as u32, f(r, "n"), f(r, "real"), f(r, "gmin"), f(r, "gmax"))
    })
    .collect()
}

/// Checks the metrics against `expect(k) -> (rows, real rows)` and the
/// training table against the metrics; returns the composition.
fn check(run: &Path, expect: impl Fn(u32) -> Option<(f64, f64)>) -> Vec<(u32, u32, f64, f64, f64, f64)> {
    let rows = metric_by_generation(run, "train_rows");
    let frac = metric_by_generation(run, "train_real_fraction");
    assert_eq!(rows.len(), G as usize, "one train_rows per model");
    let comp = composition(run);
    assert_eq!(comp.len(), 2 * G as usize);
    for (rep, k, n, real, _, _) in &comp {
        let (mr, mf) = (rows[*k as usize][*rep as usize], frac[*k as usize][*rep as usize]);
        assert_eq!(*n, mr, "train_rows of model {k} vs the training table");
        assert!((real / n - mf).abs() < 1e-12, "train_real_fraction of model {k}: {mf} vs {}", real / n);
        if let Some((en, ereal)) = expect(*k) {
            assert_eq!((*n, *real), (en, ereal), "model {k} replicate {rep}");
        }
    }
    comp
}

#[test]
fn replace_trains_on_the_last_generation_only() {
    let dir = policy_run("replace", "policy = \"replace\"");
    let comp = check(&dir.path("run"), |k| Some(if k == 0 { (N as f64, N as f64) } else { (M as f64, 0.0) }));
    for (_, k, _, _, gmin, gmax) in comp {
        assert_eq!((gmin, gmax), (f64::from(k), f64::from(k)));
    }
}

#[test]
fn keep_real_holds_a_fixed_share_of_real_rows() {
    let dir = policy_run("keep", "policy = \"keep-real\"\nreal-fraction = 0.3");
    let comp = check(&dir.path("run"), |k| Some(if k == 0 { (N as f64, N as f64) } else { (N as f64, 3.0) }));
    for (_, k, _, _, gmin, gmax) in comp {
        if k > 0 {
            assert_eq!((gmin, gmax), (0.0, f64::from(k)), "real rows from D_0, synthetic from D_{k}");
        }
    }
}

#[test]
fn accumulate_trains_on_the_union() {
    let dir = policy_run("acc", "policy = \"accumulate\"");
    let comp = check(&dir.path("run"), |k| Some(((N + k as usize * M) as f64, N as f64)));
    for (_, k, _, _, gmin, gmax) in comp {
        assert_eq!((gmin, gmax), (0.0, f64::from(k)));
    }
}

#[test]
fn accumulate_subsample_draws_n_rows_from_the_union() {
    let dir = policy_run("accsub", "policy = \"accumulate-subsample\"");
    let comp = check(&dir.path("run"), |k| (k == 0).then_some((N as f64, N as f64)));
    for (_, k, n, _, _, gmax) in comp {
        assert_eq!(n, N as f64);
        assert!(gmax <= f64::from(k));
    }
}

#[test]
fn augment_adds_lambda_n_synthetic_rows_to_d0() {
    let dir = policy_run("aug", "policy = \"augment\"\nlambda = 0.5");
    check(&dir.path("run"), |k| Some(if k == 0 { (N as f64, N as f64) } else { (N as f64 + 5.0, N as f64) }));
}

#[test]
fn fresh_uses_never_seen_real_rows() {
    let dir = policy_run("fresh", "policy = \"fresh\"\nreal-fraction = 0.3");
    let run = dir.path("run");
    check(&run, |k| Some(if k == 0 { (N as f64, N as f64) } else { (N as f64, 3.0) }));
    // Each model k >= 1 trains on real rows of generation k, and no real row
    // serves two models.
    let reused = query(
        &run,
        "SELECT s.sample_id, count(*) AS uses FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         WHERE s.origin = 'real' GROUP BY s.sample_id HAVING count(*) > 1",
    );
    assert!(reused.is_empty(), "real rows reused: {reused:?}");
    let wrong = query(
        &run,
        "SELECT t.model_generation, s.generation FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         WHERE s.origin = 'real' AND t.model_generation <> s.generation",
    );
    assert!(wrong.is_empty(), "fresh rows from another generation: {wrong:?}");
    let fresh_rows = query(&run, "SELECT count(*) AS n FROM samples WHERE origin = 'real' AND generation > 0");
    assert_eq!(f(&fresh_rows[0], "n"), (2 * 3 * (G as usize - 1)) as f64);
}

#[test]
fn fresh_rows_from_a_file_are_never_reused() {
    // A 60-row CSV: holdout 5 + N 10 + 3 fresh rows for each of models 1..3
    // = 24 rows per replicate; every real row used once per chain.
    let dir = Scratch::new("fresh-file");
    let csv: String =
        std::iter::once("v".to_string()).chain((0..60).map(|i| format!("{i}.5"))).collect::<Vec<_>>().join("\n");
    std::fs::write(dir.path("d.csv"), csv + "\n").unwrap();
    let text = |n: &str| {
        format!(
            "name = \"ff\"\nseed = 3\ngenerations = {G}\nreplicates = 2\n[data]\nsource = \"csv\"\npath = \"{}\"\ncolumns = [\"v\"]\n{n}\nholdout = 5\n\
             [model]\nkind = \"gaussian\"\n[generate]\nn = {M}\n[mix]\npolicy = \"fresh\"\nreal-fraction = 0.3\n",
            dir.path("d.csv").display()
        )
    };
    let run = dir.path("run");
    run_pipeline(&text("n = 10"), &run);
    let per_rep = query(
        &run,
        "SELECT replicate, count(*) AS n, count(DISTINCT x0) AS distinct_values FROM samples WHERE origin = 'real' GROUP BY replicate ORDER BY replicate",
    );
    for r in &per_rep {
        assert_eq!(f(r, "n"), 24.0);
        assert_eq!(f(r, "distinct_values"), 24.0, "a real row was drawn twice in one chain");
    }
    // Without data.n the fresh reserve is unknown; too large an n does not fit.
    let p = collapse::pipeline::parse(&text(""), &dir.0, &[]).unwrap();
    let e = collapse::runner::run(&p, &dir.path("none"), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("data.n: policy fresh needs an explicit data.n"), "{e}");
    assert_eq!(e.exit_code(), 2);
    let p = collapse::pipeline::parse(&text("n = 40"), &dir.0, &["generate.n=40".into()]).unwrap();
    let e = collapse::runner::run(&p, &dir.path("big"), &Default::default()).unwrap_err();
    // 40 + holdout 5 + round(0.3 * 40) = 12 fresh rows for each of models 1..3.
    assert!(e.to_string().contains("d.csv: has 60 usable rows but the pipeline needs 81"), "{e}");
    assert!(!dir.path("none").exists() && !dir.path("big").exists());
}
