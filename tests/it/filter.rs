//! Curation in the loop (`[filter]`): the detector's closed form, the
//! filter table and its audit, bad keys, and a filter that keeps nothing.

use super::*;

fn detector_run(tag: &str, m: usize, generations: u32, replicates: u32, mix: &str, filter: &str) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        r#"
name = "{tag}"
seed = 20240724
generations = {generations}
replicates = {replicates}
[data]
source = "gaussian"
n = {m}
holdout = 50
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
variance = "mle"
[generate]
n = {m}
[mix]
{mix}
[filter]
kind = "detector"
{filter}
"#
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

/// E[(n - 1) / n] for n ~ Binomial(m, p) given n >= 2 (the run needs two
/// rows to fit; at m = 40, p = 0.5, P(n < 2) = 41 / 2^40).
fn shrink(m: u64, p: f64) -> f64 {
    let ln_choose = |n: u64| ln_gamma(m as f64 + 1.0) - ln_gamma(n as f64 + 1.0) - ln_gamma((m - n) as f64 + 1.0);
    let pmf = |n: u64| (ln_choose(n) + n as f64 * p.ln() + (m - n) as f64 * (1.0 - p).ln()).exp();
    let (mut num, mut den) = (0.0, 0.0);
    for n in 2..=m {
        num += pmf(n) * (n as f64 - 1.0) / n as f64;
        den += pmf(n);
    }
    num / den
}

/// A value-blind detector under replace (pure synthetic, MLE variance).
/// Model 0 fits the N real rows: E[s2_0] = (N - 1) / N. Model j >= 1
/// fits the n ~ Binomial(M, 1 - tpr) rows of D_j the detector kept, drawn
/// from model j - 1, independent of their values: E[s2_j | s2_{j-1}] =
/// s2_{j-1} E[(n - 1) / n]. D_k's ddof-1 variance is unbiased for model
/// k - 1's, so E[var(D_k)] = (N - 1) / N * c^(k - 1), c = E[(n - 1) / n].
/// Unfiltered, c would be (M - 1) / M: the detector only shrinks the
/// sample, so collapse goes faster. Tolerance: 5 standard errors of the
/// mean over independent replicates (sd / sqrt(R), sd from the replicates);
/// at R = 2000, M = 40 the unfiltered curve is 9 standard errors off by
/// generation 6, so the test tells the two apart.
#[test]
fn a_value_blind_detector_only_shrinks_the_sample() {
    let (m, tpr, generations) = (40usize, 0.5, 6u32);
    let dir = detector_run("detector-replace", m, generations, 2000, "policy = \"replace\"", "tpr = 0.5");
    let run = dir.path("run");
    let var = metric_by_generation(&run, "var");
    let c = shrink(m as u64, 1.0 - tpr);
    let first = (m as f64 - 1.0) / m as f64;
    for k in 1..=generations as usize {
        assert_within(&format!("var of D_{k}"), &var[k], first * c.powi(k as i32 - 1), 5.0);
    }
    let last = &var[generations as usize];
    let (mean, se) = mean_se(last);
    let unfiltered = first * first.powi(generations as i32 - 1);
    assert!(
        (mean - unfiltered).abs() > 5.0 * se,
        "the detector should speed collapse: {mean} vs unfiltered {unfiltered} (se {se})"
    );
    // The realized rates: the detector flags synthetic rows at tpr; under
    // replace there are no real candidates (no filter_fpr rows).
    let tprs: Vec<f64> = metric_by_generation(&run, "filter_tpr").into_iter().skip(1).flatten().collect();
    assert_within("filter_tpr", &tprs, tpr, 5.0);
    assert!(metric_by_generation(&run, "filter_fpr").iter().all(Vec::is_empty));
    let rows = query(&run, "SELECT count(*) AS n, sum(copies) AS kept FROM filter");
    assert_eq!(f(&rows[0], "n") as u64, 2000 * m as u64 * (generations as u64 - 1));
}

/// Rewrites one column of a Parquet file with polars, as a tamperer would.
fn tamper(file: &Path, column: &str, row: usize) {
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap();
    let s = df.column(column).unwrap().as_materialized_series().clone();
    let changed = match s.dtype() {
        DataType::Boolean => {
            let mut v: Vec<Option<bool>> = s.bool().unwrap().iter().collect();
            v[row] = v[row].map(|b| !b);
            Series::new(column.into(), v)
        }
        DataType::Float64 => {
            let mut v: Vec<Option<f64>> = s.f64().unwrap().iter().collect();
            v[row] = v[row].map(|x| x + 0.5);
            Series::new(column.into(), v)
        }
        DataType::UInt32 => {
            let mut v: Vec<Option<u32>> = s.u32().unwrap().iter().collect();
            v[row] = v[row].map(|x| x + 1);
            Series::new(column.into(), v)
        }
        other => panic!("{column} is {other}"),
    };
    df.replace(column, changed.into()).unwrap();
    ParquetWriter::new(std::fs::File::create(file).unwrap()).finish(&mut df).unwrap();
}

fn audit_lines(run: &Path) -> String {
    let (code, text, err) = cli(&["audit", run.to_str().unwrap()], None);
    assert_eq!(code, 1, "a tampered run must fail its audit: {text}{err}");
    format!("{text}{err}")
}

/// Every decision is re-derived by the audit: drop and resample, real
/// rows judged (`applies-to = "all"`), under two policies; then a flipped
/// flag, a changed weight and an extra copy are each named.
#[test]
fn the_audit_rederives_every_decision_and_names_tampering() {
    let cases = [
        ("policy = \"keep-real\"\nreal-fraction = 0.2", "tpr = 0.8\nfpr = 0.1\napplies-to = \"all\""),
        (
            "policy = \"fresh\"\nreal-fraction = 0.3",
            "tpr = 0.6\nfpr = 0.2\napplies-to = \"all\"\naction = \"resample\"\nflagged-weight = 0.25",
        ),
        ("policy = \"accumulate\"", "tpr = 0.3\naction = \"resample\"\nflagged-weight = 0.0"),
    ];
    for (i, (mix, filter)) in cases.iter().enumerate() {
        let dir = detector_run(&format!("filter-audit-{i}"), 60, 5, 3, mix, filter);
        let run = dir.path("run");
        audit_clean(&run, mix);
        // The training set is what the filter kept, copies included.
        let kept = query(&run, "SELECT sum(copies) AS n FROM filter");
        let trained = query(&run, "SELECT count(*) AS n FROM training WHERE model_generation > 0");
        assert_eq!(f(&kept[0], "n"), f(&trained[0], "n"), "{mix}");
    }
    // Tampering, on a resampling run with real rows judged.
    let dir = detector_run("filter-tamper", 60, 4, 2, cases[1].0, cases[1].1);
    let run = dir.path("run");
    let file = |k: u32| run.join(format!("filter/generation={k}/part-0.parquet"));
    tamper(&file(1), "flagged", 3);
    tamper(&file(2), "weight", 7);
    tamper(&file(3), "copies", 0);
    let said = audit_lines(&run);
    for needle in [
        "filter/generation=1/part-0.parquet: generation 1: blake3",
        "flags that disagree with the detector's draw from the seed (e.g. replicate 0 model 1",
        "weights that disagree with the flag and the rule (e.g. replicate 0 model 2",
        "copies that disagree with the filter's draw from the seed (e.g. replicate 0 model 3",
        "the training table's",
        "metrics: filter_",
    ] {
        assert!(said.contains(needle), "missing {needle:?} in\n{said}");
    }
}

/// Every bad key of `[filter]` at once, each named with what to change;
/// exit 2, nothing written (validate writes nothing).
#[test]
fn bad_filter_keys_are_named_at_once() {
    let dir = Scratch::new("filter-bad");
    let base = std::fs::read_to_string(repo().join("pipelines/quickstart.toml")).unwrap();
    let cases: [(&str, &[&str]); 6] = [
        (
            "kind = \"detector\"\ntpr = 1.5\nfpr = -0.1\napplies-to = \"some\"\naction = \"keep\"",
            &[
                "filter.tpr: must be a probability in [0, 1], got 1.5",
                "filter.fpr: must be a probability in [0, 1], got -0.1",
                "filter.applies-to: unknown value \"some\"",
                "filter.action: unknown action \"keep\"",
            ],
        ),
        ("tpr = 0.5", &["filter.kind: missing"]),
        (
            "kind = \"detector\"\ntpr = 0.5\nbest-of = 4\nkeep = 0.5",
            &[
                "filter.best-of: is a key of kind reward, not of kind \"detector\"",
                "filter.keep: is a key of kind likelihood or reward or command, not of kind \"detector\"",
            ],
        ),
        ("kind = \"detector\"\ntpr = 0.5\naction = \"resample\"", &["filter.flagged-weight: missing"]),
        (
            "kind = \"detector\"\ntpr = 0.5\nflagged-weight = 0.2",
            &["filter.flagged-weight: weighs rows under action = \"resample\" only"],
        ),
        ("kind = \"perplexity\"", &["filter.kind: unknown kind \"perplexity\"; use detector"]),
    ];
    for (i, (filter, needles)) in cases.iter().enumerate() {
        let f = dir.path(&format!("bad-{i}.toml"));
        std::fs::write(&f, format!("{base}\n[filter]\n{filter}\n")).unwrap();
        let (code, _, err) = cli(&["validate", f.to_str().unwrap()], None);
        assert_eq!(code, 2, "{filter}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{filter}: missing {n:?} in\n{err}");
        }
        assert!(!dir.path("runs").exists());
    }
}

/// A detector that flags every synthetic row leaves model 1 nothing:
/// exit 1 naming the generation, replicate and filter; generation 0 is
/// sealed and audits clean as an unfinished run.
#[test]
fn a_filter_that_keeps_nothing_stops_the_run_naming_it() {
    let dir = Scratch::new("filter-empty");
    let base = std::fs::read_to_string(repo().join("pipelines/quickstart.toml")).unwrap();
    let p = dir.path("p.toml");
    std::fs::write(&p, format!("{base}\n[filter]\nkind = \"detector\"\ntpr = 1.0\n")).unwrap();
    let out = dir.path("run");
    let (code, _, err) = cli(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("generation 1, replicate "), "{err}");
    assert!(
        err.contains(
            "the filter (detector (tpr 1, fpr 0), drop, applies to synthetic) kept none of model 1's 100 candidate rows"
        ),
        "{err}"
    );
    assert!(out.join("manifests").read_dir().unwrap().count() >= 1, "generation 0 stays sealed");
    let (code, text, err) = cli(&["audit", out.to_str().unwrap()], None);
    assert_eq!(code, 0, "{text}{err}");
}
