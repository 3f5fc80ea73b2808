//! Manifests and `collapse audit`: a clean run passes; each kind of
//! tampering is caught and named, also when the tamperer re-seals the hash
//! chain (then the lineage and mixing checks catch it).

use polars::prelude::*;

use super::*;
use collapse::provenance::audit::{audit, Report};
use collapse::provenance::manifest::{hash_file, Manifest};

const G: u32 = 4;

/// keep-real with N - round(γN) = M, so every row of D_k is in T_k.
fn audited_run(tag: &str) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        r#"
name = "{tag}"
seed = 12
generations = {G}
replicates = 2
[data]
source = "gaussian"
n = 20
holdout = 5
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = 15
[mix]
policy = "keep-real"
real-fraction = 0.25
"#
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn write_parquet(path: &Path, df: &mut DataFrame) {
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(df).unwrap();
}

/// Re-seals the chain after tampering, as a forger would: every manifest's
/// outputs and inputs rehashed, each linked to the new previous hash.
fn reseal(run: &Path) {
    let mut hashes: std::collections::BTreeMap<String, String> = Default::default();
    let mut previous = None;
    for k in 0..=G {
        let (mut m, _) = Manifest::read(run, k).unwrap();
        for e in &mut m.outputs {
            let (h, bytes) = hash_file(&run.join(&e.path)).unwrap();
            e.blake3 = h.clone();
            e.bytes = bytes;
            e.rows = Some(read_parquet(&run.join(&e.path)).height() as u64);
            hashes.insert(e.path.clone(), h);
        }
        for e in &mut m.inputs {
            if let Some(h) = hashes.get(&e.path) {
                e.blake3 = h.clone();
            }
        }
        m.previous_manifest_blake3 = previous;
        let bytes = m.to_bytes();
        std::fs::write(run.join(Manifest::path(k)), &bytes).unwrap();
        previous = Some(blake3::hash(&bytes).to_hex().to_string());
    }
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    j["last_manifest_blake3"] = serde_json::json!(previous);
    std::fs::write(run.join("run.json"), serde_json::to_vec_pretty(&j).unwrap()).unwrap();
}

fn assert_caught(r: &Report, needles: &[&str]) {
    assert!(!r.ok(), "tampering went unnoticed");
    // Plain words for a person: no Rust notation.
    for v in &r.violations {
        for rust in ["Some(", "None", "Ok(", "Err("] {
            assert!(!v.contains(rust), "Rust notation in {v:?}");
        }
    }
    for n in needles {
        assert!(
            r.violations.iter().any(|v| v.contains(n)),
            "no violation mentions {n:?}:\n{}",
            r.violations.join("\n")
        );
    }
}

/// Not a terminal: the audit writes a line as each step begins, at each
/// tenth of it and as it ends, steps in order, never going back; with
/// --quiet nothing.
#[test]
fn audits_report_progress_on_stderr_unless_quiet() {
    let dir = audited_run("audit-progress");
    let run = dir.path("run");
    let (code, out, err) = cli(&["audit", run.to_str().unwrap()], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: 5 manifests"), "the result goes to stdout: {out}");
    let steps = ["audit: files and hashes", "audit: lineage over the tables", "audit: training sets and mixing"];
    let mut last = (0, 0.0);
    for line in err.lines() {
        let step = steps.iter().position(|s| line.starts_with(s)).unwrap_or_else(|| panic!("{line:?} in\n{err}"));
        let percent: f64 = line.split(['(', '%']).nth(1).and_then(|p| p.parse().ok()).unwrap();
        assert!((step, percent) >= last, "progress went back at {line:?}:\n{err}");
        last = (step, percent);
    }
    for (step, ends) in [(0, "(100%)  5/5 generations"), (1, "(100%)  3/3 table reads"), (2, "(100%)  4/4 generations")]
    {
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(steps[step])).collect();
        assert!(lines.first().is_some_and(|l| l.contains("(0%)")), "{err}");
        assert!(lines.last().is_some_and(|l| l.ends_with(ends)), "{ends:?} last in\n{err}");
        assert!(lines.len() <= 11, "a line per tenth at most: {err}");
    }
    let (code, out, err) = cli(&["audit", run.to_str().unwrap(), "--quiet"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty() && err.is_empty(), "--quiet prints nothing: {out}{err}");
}

#[test]
fn a_clean_run_audits_ok_through_the_cli() {
    let dir = audited_run("clean");
    let out = bin().args(["audit", dir.path("run").to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ok: 5 manifests chain from generation 0 to 4"), "{text}");
    // Every manifest links to the hash of the one before; run.json to the last.
    let mut prev = None;
    for k in 0..=G {
        let (m, h) = Manifest::read(&dir.path("run"), k).unwrap();
        assert_eq!(m.previous_manifest_blake3, prev);
        assert_eq!(m.outputs.len(), if k < G { 4 } else { 2 });
        if k > 0 {
            assert!(m.inputs.iter().any(|e| e.path == format!("models/generation={}/part-0.parquet", k - 1)));
            assert!(m.inputs.iter().any(|e| e.path == "samples/generation=0/part-0.parquet"), "keep-real reads D_0");
        }
        prev = Some(h);
    }
}

#[test]
fn a_flipped_value_is_caught_and_named() {
    let dir = audited_run("flip");
    let run = dir.path("run");
    let file = run.join("samples/generation=2/part-0.parquet");
    let mut df = read_parquet(&file);
    let x = df.column("x0").unwrap().f64().unwrap().clone();
    let flipped: Vec<f64> = x.into_no_null_iter().enumerate().map(|(i, v)| if i == 3 { v + 1.0 } else { v }).collect();
    df.replace("x0", Column::new("x0".into(), flipped)).unwrap();
    write_parquet(&file, &mut df);
    assert_caught(&audit(&run).unwrap(), &["samples/generation=2/part-0.parquet: generation 2: blake3"]);
    // Through the CLI: exit 1 and the file named on stdout.
    let out = bin().args(["audit", run.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("samples/generation=2/part-0.parquet"));
}

#[test]
fn a_deleted_row_is_caught_with_its_row_count() {
    let dir = audited_run("delete");
    let run = dir.path("run");
    let file = run.join("samples/generation=3/part-0.parquet");
    let mut df = read_parquet(&file).slice(1, usize::MAX);
    write_parquet(&file, &mut df);
    assert_caught(
        &audit(&run).unwrap(),
        &["samples/generation=3/part-0.parquet: generation 3: blake3", "29 rows, the manifest says 30"],
    );
}

#[test]
fn swapped_files_are_both_named() {
    let dir = audited_run("swap");
    let run = dir.path("run");
    let (a, b) = (run.join("samples/generation=1/part-0.parquet"), run.join("samples/generation=2/part-0.parquet"));
    let tmp = run.join("swap.tmp");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    let r = audit(&run).unwrap();
    assert_caught(
        &r,
        &[
            "samples/generation=1/part-0.parquet: generation 1: blake3",
            "samples/generation=2/part-0.parquet: generation 2: blake3",
        ],
    );
    // Re-sealed, the swap still shows: rows of generation 2 claim model 1.
    reseal(&run);
    assert_caught(
        &audit(&run).unwrap(),
        &["lineage: 60 synthetic rows whose model_generation is not their generation - 1"],
    );
}

#[test]
fn an_edited_manifest_breaks_the_chain() {
    let dir = audited_run("manifest");
    let run = dir.path("run");
    let path = run.join(Manifest::path(1));
    let text = std::fs::read_to_string(&path).unwrap().replace("\"seed\": 12", "\"seed\": 13");
    std::fs::write(&path, text).unwrap();
    assert_caught(&audit(&run).unwrap(), &["manifests/generation=2.json: chain broken"]);
}

#[test]
fn a_synthetic_row_relabelled_real_is_caught_even_when_resealed() {
    let dir = audited_run("relabel");
    let run = dir.path("run");
    let file = run.join("samples/generation=2/part-0.parquet");
    let mut df = read_parquet(&file);
    let origin: Vec<&str> = (0..df.height()).map(|i| if i == 0 { "real" } else { "synthetic" }).collect();
    let model: Vec<Option<u32>> = (0..df.height()).map(|i| if i == 0 { None } else { Some(1) }).collect();
    df.replace("origin", Column::new("origin".into(), origin)).unwrap();
    df.replace("model_generation", Column::new("model_generation".into(), model)).unwrap();
    write_parquet(&file, &mut df);
    assert_caught(&audit(&run).unwrap(), &["samples/generation=2/part-0.parquet: generation 2: blake3"]);
    reseal(&run);
    let r = audit(&run).unwrap();
    assert!(!r.violations.iter().any(|v| v.contains("blake3")), "resealed: hashes agree again");
    assert_caught(
        &r,
        &[
            "replicate 0 generation 2 holds 1 real rows; policy keep-real adds 0",
            "expects 15 synthetic rows of D_k, the training table has 14",
        ],
    );
}

/// A changed synthetic value, resealed, holds every default check (the
/// hashes agree again; lineage and mixing are about ids): drawing each
/// model's rows again from its stored parameters and the run's seed
/// (`--replay`) catches it, naming the replicate, the model and the row.
#[test]
fn a_forged_value_is_caught_by_replay_even_when_resealed() {
    use collapse::provenance::audit::{audit_with, Options};
    let dir = audited_run("forge");
    let run = dir.path("run");
    let replay = Options { replay: true };
    let clean = audit_with(&run, replay, &|_| {}).unwrap();
    assert!(clean.ok(), "{:?}", clean.violations);
    // G models a replicate, 2 replicates, 15 rows each.
    assert_eq!(clean.replayed, Some((u64::from(G) * 2, u64::from(G) * 2 * 15)));
    let file = run.join("samples/generation=2/part-0.parquet");
    let mut df = read_parquet(&file);
    let row =
        (0..df.height()).find(|&i| df.column("origin").unwrap().str().unwrap().get(i) == Some("synthetic")).unwrap()
            + 3;
    let id = df.column("sample_id").unwrap().u64().unwrap().get(row).unwrap();
    let replicate = df.column("replicate").unwrap().u32().unwrap().get(row).unwrap();
    let x = df.column("x0").unwrap().f64().unwrap().clone();
    let forged: Vec<f64> = x.into_no_null_iter().enumerate().map(|(i, v)| if i == row { v * 0.5 } else { v }).collect();
    df.replace("x0", Column::new("x0".into(), forged)).unwrap();
    write_parquet(&file, &mut df);
    reseal(&run);
    let r = audit(&run).unwrap();
    assert!(r.ok(), "resealed, the default checks hold: {:?}", r.violations);
    assert_eq!(r.replayed, None);
    assert_caught(
        &audit_with(&run, replay, &|_| {}).unwrap(),
        &[&format!(
            "replay: replicate {replicate} model 1: 1 of 15 rows are not what model 1 draws from the run's seed (first: sample_id {id})"
        )],
    );
    // Through the CLI: exit 1, the line on stdout; clean runs say what
    // was replayed (a study's cells too: tests/it/study.rs).
    let out = bin().args(["audit", run.to_str().unwrap(), "--replay"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replay: replicate"));
    let other = audited_run("forge-clean");
    let (code, text, err) = cli(&["audit", other.path("run").to_str().unwrap(), "--replay"], None);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("replayed: 120 synthetic rows of 8 models are the draws"), "{text}");
}

#[test]
fn a_removed_training_row_is_caught_even_when_resealed() {
    let dir = audited_run("training");
    let run = dir.path("run");
    let file = run.join("training/generation=3/part-0.parquet");
    let mut df = read_parquet(&file);
    // Drop the last id of the last run of replicate 1.
    let counts: Vec<u64> = df.column("sample_count").unwrap().u64().unwrap().into_no_null_iter().collect();
    let last = counts.len() - 1;
    let shrunk: Vec<u64> = counts.iter().enumerate().map(|(i, c)| if i == last { c - 1 } else { *c }).collect();
    df.replace("sample_count", Column::new("sample_count".into(), shrunk)).unwrap();
    write_parquet(&file, &mut df);
    reseal(&run);
    assert_caught(
        &audit(&run).unwrap(),
        &["mixing: replicate 1 model 3: policy keep-real expects 20 rows, the training table has 19"],
    );
}

#[test]
fn files_no_manifest_names_are_reported() {
    let dir = audited_run("stray");
    let run = dir.path("run");
    std::fs::create_dir_all(run.join("samples/generation=9")).unwrap();
    std::fs::copy(run.join("samples/generation=1/part-0.parquet"), run.join("samples/generation=9/part-0.parquet"))
        .unwrap();
    std::fs::remove_file(run.join("metrics/generation-0000004.parquet")).unwrap();
    assert_caught(
        &audit(&run).unwrap(),
        &[
            "samples/generation=9/part-0.parquet: no manifest names this file",
            "metrics/generation-0000004.parquet: generation 4: missing",
        ],
    );
}

#[test]
fn lineage_exports_openlineage_events() {
    let dir = audited_run("lineage");
    let run = dir.path("run");
    let out = bin().args(["lineage", run.to_str().unwrap(), "--format", "openlineage"]).output().unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2 * (G as usize + 1), "START and COMPLETE per generation");
    for (i, e) in events.iter().enumerate() {
        let k = (i / 2) as u32;
        assert_eq!(e["eventType"], if i % 2 == 0 { "START" } else { "COMPLETE" });
        assert!(e["schemaURL"].as_str().unwrap().contains("openlineage.io/spec/2-0-2"));
        assert!(e["eventTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e["run"]["runId"].as_str().unwrap().len(), 36);
        assert_eq!(e["job"]["name"], format!("lineage.generation={k}"));
        assert_eq!(e["run"]["runId"], events[i - i % 2]["run"]["runId"], "START and COMPLETE share a run id");
        if i % 2 == 1 {
            let (m, hash) = Manifest::read(&run, k).unwrap();
            assert_eq!(e["run"]["facets"]["collapse_manifest"]["manifest_blake3"], hash.as_str());
            let outputs = e["outputs"].as_array().unwrap();
            assert_eq!(outputs.len(), m.outputs.len());
            for (o, me) in outputs.iter().zip(&m.outputs) {
                assert_eq!(o["name"], me.path.as_str());
                assert_eq!(o["facets"]["collapse_blake3"]["blake3"], me.blake3.as_str());
                assert_eq!(o["outputFacets"]["outputStatistics"]["rowCount"], me.rows.unwrap());
            }
        }
    }
    let out = bin().args(["lineage", dir.0.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "not a run directory");
}

/// The range checks the audit runs and the row-by-row SQL they replace
/// (`checks::BY_HAND`, `COMPOSITIONS_BY_HAND`) give the same counts,
/// examples and compositions: on a clean run, and after each kind of
/// tampering they look for, all at once.
#[test]
fn range_checks_agree_with_the_row_level_sql() {
    use collapse::data::{checks, ranges};
    let dir = audited_run("ranges");
    let run = dir.path("run");
    let agree = |run: &Path| -> Vec<String> {
        let found = ranges::check(run, None, false, &ranges::SampleRuns::read(run, None).unwrap()).unwrap();
        let mut ours = found.violations.clone();
        let mut sql = checks::lineage_by_hand(run).unwrap();
        ours.sort();
        sql.sort();
        assert_eq!(ours, sql, "range checks against the row-level SQL");
        assert_eq!(found.compositions, checks::compositions_by_hand(run).unwrap(), "compositions");
        ours
    };
    assert_eq!(agree(&run), Vec::<String>::new(), "a clean run");

    // Model 2's training set of replicate 0: one run listed twice, one that
    // reaches past every sample id, one over replicate 1's rows, and one for
    // a model that does not exist.
    let file = run.join("training/generation=2/part-0.parquet");
    let df = read_parquet(&file);
    let col_u64 = |n: &str| -> Vec<u64> { df.column(n).unwrap().u64().unwrap().into_no_null_iter().collect() };
    let col_u32 = |n: &str| -> Vec<u32> { df.column(n).unwrap().u32().unwrap().into_no_null_iter().collect() };
    let (mut rep, mut gen, mut start, mut count) =
        (col_u32("replicate"), col_u32("model_generation"), col_u64("sample_id_start"), col_u64("sample_count"));
    let r1 = rep.iter().position(|&r| r == 1).unwrap();
    let extra = [(0, 2, start[0], count[0]), (0, 2, 1_000_000, 3), (0, 2, start[r1], 2), (7, 2, start[0] + 1, 4)];
    for (r, g, s, c) in extra {
        rep.push(r);
        gen.push(g);
        start.push(s);
        count.push(c);
    }
    let mut tampered = DataFrame::new(
        rep.len(),
        vec![
            Column::new("replicate".into(), rep),
            Column::new("model_generation".into(), gen),
            Column::new("sample_id_start".into(), start),
            Column::new("sample_count".into(), count),
        ],
    )
    .unwrap();
    write_parquet(&file, &mut tampered);
    // And in the samples of generation 3: a row written twice, and a
    // synthetic row naming a model that does not exist.
    let file = run.join("samples/generation=3/part-0.parquet");
    let df = read_parquet(&file);
    let mut twice = df.vstack(&df.slice(0, 1)).unwrap();
    let model: Vec<Option<u32>> = (0..twice.height())
        .map(|i| if i == 5 { Some(40) } else { twice.column("model_generation").unwrap().u32().unwrap().get(i) })
        .collect();
    twice.replace("model_generation", Column::new("model_generation".into(), model)).unwrap();
    write_parquet(&file, &mut twice);

    let found = agree(&run);
    for what in [
        "sample_ids used more than once",
        "synthetic rows whose model (replicate, model_generation) is not in the models table",
        "3 training rows whose sample_id is not in samples (e.g. sample_id 1000000)",
        "training rows from another replicate",
        "4 training rows of a model that is not in the models table",
        "training rows listed twice for the same model",
    ] {
        assert!(found.iter().any(|v| v.contains(what)), "{what} not found in {found:#?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A run directory stands alone: moved to another folder with its source
/// data file gone (as on another machine), every read-only verb works on it.
#[test]
fn read_only_verbs_need_nothing_outside_the_run_directory() {
    let dir = Scratch::new("standalone");
    let data = dir.path("data/flights.parquet");
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    std::fs::copy(repo().join("datasets/flights-delay-100k.parquet"), &data).unwrap();
    let pipeline = dir.path("data/flights.toml");
    let text = std::fs::read_to_string(repo().join("pipelines/flights-delay.toml")).unwrap();
    let text = text
        .replace("../datasets/flights-delay-100k.parquet", "flights.parquet")
        .replace("generations = 100", "generations = 3")
        .replace("replicates = 10", "replicates = 2");
    std::fs::write(&pipeline, text).unwrap();
    let made = dir.path("made");
    run_quietly(&pipeline, &made, None);

    let moved = dir.path("elsewhere/run");
    copy_dir(&made, &moved);
    std::fs::remove_dir_all(dir.path("data")).unwrap();
    std::fs::remove_dir_all(&made).unwrap();
    let run = moved.to_str().unwrap();

    let (code, out, err) = cli(&["audit", run], None);
    assert_eq!(code, 0, "audit of a moved run without its source data: {out}{err}");
    assert!(err.contains("flights.parquet is not on this machine"), "the audit says what it did not check: {err}");
    // The source file back, changed: that is a violation, not a note.
    std::fs::create_dir_all(dir.path("data")).unwrap();
    std::fs::write(&data, b"not the data it read").unwrap();
    let (code, out, _) = cli(&["audit", run], None);
    assert_eq!(code, 1, "a changed source must fail the audit: {out}");
    assert!(out.contains("changed since the run read it"), "{out}");
    std::fs::remove_dir_all(dir.path("data")).unwrap();
    let (code, out, err) = cli(&["query", run, "SELECT count(*) AS n FROM samples WHERE origin = 'real'"], None);
    assert_eq!(code, 0, "query: {err}");
    assert!(out.contains("n"), "{out}");
    let (code, _, err) = cli(&["report", run], None);
    assert_eq!(code, 0, "report: {err}");
    assert!(moved.join("report/index.html").is_file(), "report wrote no page");
    let (code, out, err) = cli(&["lineage", run, "--format", "openlineage"], None);
    assert_eq!(code, 0, "lineage: {err}");
    assert!(out.contains("flights.parquet"), "the lineage still names the source file: {out}");
    let (code, _, err) = cli(&["compare", run, run, "--out", dir.path("cmp").to_str().unwrap()], None);
    assert_eq!(code, 0, "compare: {err}");
}

/// Every field of run.json that pipeline.toml, the manifests or the files
/// confirm is checked: a changed seed, replicate seed, generation count,
/// replicate count, row count or name is named with both values.
#[test]
fn run_json_fields_are_audited() {
    let dir = audited_run("runjson");
    let run = dir.path("run");
    assert!(audit(&run).unwrap().ok());
    let original = std::fs::read(run.join("run.json")).unwrap();
    let cases: [(&str, serde_json::Value, &str); 6] = [
        ("seed", 13.into(), "run.json: seed is 13, but pipeline.toml says 12"),
        ("generations", 9.into(), "run.json: generations is 9, but pipeline.toml says 4"),
        ("replicates", 3.into(), "run.json: replicates is 3, but pipeline.toml says 2"),
        ("sample_rows", 1.into(), "run.json: sample_rows is 1, but the samples files say"),
        ("name", "other".into(), "run.json: name is \"other\", but pipeline.toml says \"runjson\""),
        ("status", "done".into(), "run.json: status is \"done\", not one of complete, running, failed"),
    ];
    for (field, value, needle) in cases {
        let mut j: serde_json::Value = serde_json::from_slice(&original).unwrap();
        j[field] = value;
        std::fs::write(run.join("run.json"), serde_json::to_vec_pretty(&j).unwrap()).unwrap();
        assert_caught(&audit(&run).unwrap(), &[needle]);
    }
    let mut j: serde_json::Value = serde_json::from_slice(&original).unwrap();
    j["replicate_seeds"][1] = 5.into();
    std::fs::write(run.join("run.json"), serde_json::to_vec_pretty(&j).unwrap()).unwrap();
    assert_caught(&audit(&run).unwrap(), &["run.json: replicate_seeds[1] is 5, but the master seed 12 derives"]);
    std::fs::write(run.join("run.json"), &original).unwrap();
    assert!(audit(&run).unwrap().ok());
}

/// Many violations of one kind: the text shows 20 and counts the rest;
/// `--format json` lists every one, each with its kind.
#[test]
fn audit_shows_twenty_of_a_kind_and_json_has_all() {
    let dir = audited_run("many");
    let run = dir.path("run");
    let src = run.join("samples/generation=1/part-0.parquet");
    for g in 100..130 {
        let d = run.join(format!("samples/generation={g}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(&src, d.join("part-0.parquet")).unwrap();
    }
    let r = run.to_str().unwrap();
    let (code, out, _) = cli(&["audit", r], None);
    assert_eq!(code, 1, "{out}");
    let named = out.lines().filter(|l| l.contains(": no manifest names this file")).count();
    assert_eq!(named, 20, "{out}");
    assert!(out.contains("  and 10 more of this kind (samples); --format json lists every one"), "{out}");
    let (code, out, _) = cli(&["audit", r, "--format", "json"], None);
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["ok"], false);
    let unnamed: Vec<&serde_json::Value> = j["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["message"].as_str().unwrap().ends_with("no manifest names this file"))
        .collect();
    assert_eq!(unnamed.len(), 30);
    assert!(unnamed.iter().all(|v| v["kind"] == "samples"), "{unnamed:?}");
    let clean = audited_run("clean-json");
    let (code, out, err) = cli(&["audit", clean.path("run").to_str().unwrap(), "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((j["ok"].as_bool(), j["violations"].as_array().map(Vec::len)), (Some(true), Some(0)), "{out}");
}

/// Two runs of one pipeline (same name, same seed: byte-identical
/// manifests) in two folders export different jobs and run ids; lineage of
/// a run that fails its audit warns.
#[test]
fn lineage_tells_two_runs_of_one_pipeline_apart() {
    let dir = Scratch::new("lineage-two");
    let p = repo().join("pipelines/quickstart.toml");
    let mut jobs = Vec::new();
    for name in ["a", "b"] {
        let out = dir.path(name);
        run_quietly(&p, &out, None);
        let (code, text, err) = cli(&["lineage", out.to_str().unwrap(), "--format", "openlineage"], None);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("warning"), "{err}");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        jobs.push((first["job"]["namespace"].clone(), first["job"]["name"].clone(), first["run"]["runId"].clone()));
    }
    assert_eq!(jobs[0].1, jobs[1].1, "the job name is the pipeline's");
    assert_ne!(jobs[0].0, jobs[1].0, "the namespaces tell the runs apart");
    assert_ne!(jobs[0].2, jobs[1].2, "so do the run ids");
    std::fs::write(dir.path("a/samples/generation=1/part-0.parquet"), b"damaged").unwrap();
    let (code, _, err) = cli(&["lineage", dir.path("a").to_str().unwrap(), "--format", "openlineage"], None);
    assert_eq!(code, 0);
    assert!(err.contains("fails its audit"), "{err}");
}

/// An unfinished run audits as what it is: its sealed generations, checked
/// in full; what comes after (files without a manifest) is unsealed work a
/// resume redoes, counted in a note, not thousands of violations.
#[test]
fn an_unfinished_run_audits_its_sealed_generations_only() {
    let dir = audited_run("unfinished");
    let run = dir.path("run");
    // As a kill leaves it: run.json running, manifests from generation 2 on
    // never written, the later generations' files there.
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    j["status"] = "running".into();
    j["last_manifest_blake3"] = serde_json::Value::Null;
    std::fs::write(run.join("run.json"), serde_json::to_vec_pretty(&j).unwrap()).unwrap();
    for k in 2..=G {
        std::fs::remove_file(run.join(format!("manifests/generation={k}.json"))).unwrap();
    }
    // Unsealed work may be anything, even damaged.
    std::fs::write(run.join("samples/generation=3/part-0.parquet"), b"half written").unwrap();
    let r = run.to_str().unwrap();
    let (code, out, err) = cli(&["audit", r], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("incomplete: generations 0-1 sealed of {G}")), "{out}");
    assert!(err.contains("files of unsealed generations were not checked"), "{err}");
    let report = audit(&run).unwrap();
    assert_eq!(report.incomplete, Some(2));
    // A sealed generation is still held to its manifest.
    std::fs::write(run.join("samples/generation=1/part-0.parquet"), b"tampered").unwrap();
    let (code, out, _) = cli(&["audit", r], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("samples/generation=1/part-0.parquet"), "{out}");
    assert!(!out.contains("generation=3"), "unsealed files are not violations: {out}");
}
