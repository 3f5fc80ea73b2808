//! `collapse query`: the tables, the formats, and bad queries.

use super::*;

fn small_run(dir: &Scratch) -> PathBuf {
    let text = r#"
name = "q"
seed = 4
generations = 5
replicates = 3
[data]
source = "gaussian"
n = 50
holdout = 20
mean = [2.0]
std = [3.0]
[model]
kind = "gaussian"
[generate]
n = 40
[mix]
policy = "keep-real"
real-fraction = 0.2
"#;
    let out = dir.path("run");
    run_pipeline(text, &out);
    out
}

#[test]
fn data_metrics_are_reachable_by_sql_over_samples() {
    let dir = Scratch::new("q-sql");
    let run = small_run(&dir);
    let sql = query(
        &run,
        "SELECT generation, replicate, avg(x0) AS mean, var(x0) AS var FROM samples \
         WHERE (generation = 0 AND split = 'train') OR origin = 'synthetic' \
         GROUP BY generation, replicate ORDER BY generation, replicate",
    );
    let mean = metric_by_generation(&run, "mean");
    let var = metric_by_generation(&run, "var");
    assert_eq!(sql.len(), 6 * 3);
    for r in &sql {
        let (k, rep) = (f(r, "generation") as usize, f(r, "replicate") as usize);
        assert!((f(r, "mean") - mean[k][rep]).abs() < 1e-12 * (1.0 + mean[k][rep].abs()));
        assert!((f(r, "var") - var[k][rep]).abs() < 1e-12 * var[k][rep]);
    }
}

#[test]
fn tables_have_the_design_columns_and_consistent_counts() {
    let dir = Scratch::new("q-tables");
    let run = small_run(&dir);
    let one = |sql: &str| f(&query(&run, sql)[0], "n");
    // D_0 50 + holdout 20, then 40 per generation for 5 generations, x 3 replicates.
    let samples = one("SELECT count(*) AS n FROM samples");
    assert_eq!(samples, 3.0 * (70.0 + 5.0 * 40.0));
    assert_eq!(one("SELECT count(DISTINCT sample_id) AS n FROM samples"), samples, "sample_id is unique in the run");
    // Each of 5 models trains on N = 50 rows.
    assert_eq!(one("SELECT count(*) AS n FROM training"), 3.0 * 5.0 * 50.0);
    assert_eq!(one("SELECT sum(sample_count) AS n FROM training_runs"), 3.0 * 5.0 * 50.0);
    assert_eq!(one("SELECT count(*) AS n FROM models"), 15.0);
    let cols = query(&run, "SELECT * FROM samples LIMIT 1");
    let keys: Vec<&String> = cols[0].keys().collect();
    for k in ["sample_id", "replicate", "generation", "origin", "model_generation", "split", "x0"] {
        assert!(keys.iter().any(|x| *x == k), "samples lacks {k}: {keys:?}");
    }
    let bad = query(
        &run,
        "SELECT count(*) AS n FROM samples WHERE (origin = 'real' AND model_generation IS NOT NULL) \
         OR (origin = 'synthetic' AND model_generation <> generation - 1) OR (split = 'test' AND origin <> 'real')",
    );
    assert_eq!(f(&bad[0], "n"), 0.0, "provenance columns are consistent");
}

#[test]
fn formats_and_bad_queries() {
    let dir = Scratch::new("q-cli");
    let run = small_run(&dir);
    let r = run.to_str().unwrap();
    let out = bin()
        .args([
            "query",
            r,
            "SELECT metric, count(*) AS n FROM metrics GROUP BY metric ORDER BY metric",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("metric,n\n"), "{text}");
    assert!(text.contains("real_nll,15\n") && text.contains("train_rows,15\n") && text.contains("var,18\n"), "{text}");
    let out = bin().args(["query", r, "SELECT generation, replicate FROM samples LIMIT 2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("generation"));
    for (sql, needle) in
        [("SELEC nonsense", "query:"), ("SELECT * FROM nowhere", "nowhere"), ("SELECT nope FROM samples", "nope")]
    {
        let out = bin().args(["query", r, sql]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {err}");
        assert!(err.contains(needle), "{sql}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = bin().args(["query", dir.0.to_str().unwrap(), "SELECT 1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a run directory"));
}

#[test]
fn tail_masses_are_reachable_by_sql_too() {
    let dir = Scratch::new("q-tails");
    let run = small_run(&dir);
    for (p, name, cmp) in [(0.01, "tail_mass_below_q0.01", "<"), (0.99, "tail_mass_above_q0.99", ">")] {
        let sql = format!(
            "WITH q AS (SELECT replicate, QUANTILE_CONT(x0, {p}) AS q FROM samples WHERE generation = 0 AND split = 'train' GROUP BY replicate) \
             SELECT s.generation, s.replicate, avg(CASE WHEN s.x0 {cmp} q.q THEN 1.0 ELSE 0.0 END) AS mass \
             FROM samples s JOIN q ON s.replicate = q.replicate \
             WHERE (s.generation = 0 AND s.split = 'train') OR s.origin = 'synthetic' \
             GROUP BY s.generation, s.replicate ORDER BY s.generation, s.replicate"
        );
        let by_sql = query(&run, &sql);
        let metric = metric_by_generation(&run, name);
        assert_eq!(by_sql.len(), 18);
        for r in by_sql {
            assert_eq!(f(&r, "mass"), metric[f(&r, "generation") as usize][f(&r, "replicate") as usize], "{name}");
        }
    }
}

/// Every format for every column type: an image run's `pixels` is base64 in
/// JSON (decoding to height x width bytes), left out of CSV and the table
/// with a note; nothing panics.
#[test]
fn every_format_takes_every_column_type() {
    let dir = Scratch::new("q-formats");
    let run = dir.path("img");
    run_shipped("vae-digits.toml", &run, &["generations=1", "model.epochs=1", "data.n=50", "generate.n=50"]);
    let r = run.to_str().unwrap();
    let sql = "SELECT * FROM samples ORDER BY sample_id LIMIT 3";
    let (code, out, err) = cli(&["query", r, sql, "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let first = &rows[0];
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(keys.contains(&"pixels") && keys.contains(&"label"), "{keys:?}");
    let pixels = first["pixels"].as_str().unwrap();
    let bytes = pixels.trim_end_matches('=').len() * 3 / 4;
    assert_eq!(bytes as u64, first["height"].as_u64().unwrap() * first["width"].as_u64().unwrap(), "{pixels}");
    assert!(out.starts_with("[\n  {\"sample_id\":"), "columns keep their order: {out}");
    for format in ["csv", "table"] {
        let (code, out, err) = cli(&["query", r, sql, "--format", format], None);
        assert_eq!(code, 0, "{format}: {err}");
        assert!(!out.contains("pixels") && out.contains("label"), "{format}: {out}");
        assert!(err.contains("left out pixels") && err.contains("--format json"), "{format}: {err}");
    }
    let (code, out, err) = cli(&["query", r, "SELECT * FROM samples", "--limit", "5"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(5 rows)"), "{out}");
    let (_, count, _) = cli(&["query", r, "SELECT count(*) AS n FROM samples", "--format", "csv"], None);
    let total: usize = count.lines().nth(1).unwrap().parse().unwrap();
    assert!(err.contains(&format!("showing 5 of {total} rows; --limit N or --format csv for all")), "{err}");
    let (code, _, err) = cli(&["query", r, "SELECT params FROM models"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("strings longer than 40 characters are cut"), "{err}");
}

/// Errors a person can act on: one line, SQL's words, what exists.
#[test]
fn errors_are_one_line_and_name_what_exists() {
    let dir = Scratch::new("q-errors");
    let run = small_run(&dir);
    let r = run.to_str().unwrap();
    for (sql, needle) in [
        ("SELEC 1", "syntax error: expected an SQL statement, found SELEC at line 1, column 1"),
        (
            "SELECT * FROM nowhere",
            "unknown table nowhere; the tables are metrics, models, samples, training, training_runs",
        ),
        ("SELECT nope FROM samples", "unknown column nope; the columns here are sample_id, replicate, generation"),
        ("SELECT 1 FROM metrics a WHERE EXISTS (SELECT 1 FROM metrics b)", "EXISTS (subquery) is not supported"),
        ("DROP TABLE samples", "only queries"),
    ] {
        let (code, _, err) = cli(&["query", r, sql], None);
        assert_eq!(code, 2, "{sql}: {err}");
        assert!(err.contains(needle), "{sql}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{sql}: one line: {err}");
        for noise in [".alias(", "Resolved plan", "Span(", "Ident {"] {
            assert!(!err.contains(noise), "{sql}: {err}");
        }
    }
    // min and max of one column, unnamed: both columns come back.
    let (code, out, err) = cli(&["query", r, "SELECT min(x0), max(x0) FROM samples", "--format", "csv"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("min(x0),max(x0)\n"), "{out}");
}

/// An accumulate run's `training` expands to (generations^2 / 2) M rows per
/// replicate: counts come from its id runs, and a query that does expand it
/// is told how many rows first.
#[test]
fn training_counts_need_no_expansion_and_expansions_are_announced() {
    let dir = Scratch::new("q-training");
    let run = dir.path("acc");
    run_shipped("gaussian-1d-accumulate.toml", &run, &["generations=150", "replicates=10"]);
    let r = run.to_str().unwrap();
    // Model k trains on D_0 and D_1..D_k: 100 (k + 1) rows.
    let want: u64 = 10 * (0..150u64).map(|k| 100 * (k + 1)).sum::<u64>();
    let (code, out, err) = cli(&["query", r, "SELECT count(*) AS n FROM training", "--format", "csv"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("n\n{want}\n"));
    assert!(!err.contains("expand"), "a count is answered from the runs: {err}");
    let (code, _, err) = cli(&["query", r, "SELECT sample_id FROM training LIMIT 1"], None);
    assert_eq!(code, 0, "{err}");
    let rows = want.to_string();
    let with_commas: String = rows
        .chars()
        .rev()
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(",")
        .chars()
        .rev()
        .collect();
    assert!(err.contains(&format!("expand to {with_commas} rows")), "{err}");
}

/// `--format arrow` (an IPC stream, to stdout or --out) and `--format
/// parquet --out FILE` give what `--format json` gives, read back with
/// pyarrow, over queries of every column type a run has (u32, u64, f64,
/// strings, nulls); the Parquet file says collapse wrote it. Parquet
/// without --out is refused, exit 2.
#[test]
fn query_results_leave_as_arrow_and_parquet() {
    let probe = std::process::Command::new("python3").args(["-c", "import pyarrow"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        super::skip("query: --format arrow and parquet read by pyarrow", "the Python package pyarrow is not installed");
        return;
    }
    let dir = Scratch::new("query-arrow");
    let run = dir.path("run");
    super::run_shipped("quickstart.toml", &run, &["generations=3", "replicates=2"]);
    let r = run.to_str().unwrap();
    let queries = [
        "SELECT * FROM samples ORDER BY sample_id",
        "SELECT replicate, generation, metric, value FROM metrics ORDER BY replicate, generation, metric",
        "SELECT model_generation, replicate, kind, params FROM models ORDER BY model_generation, replicate",
        "SELECT origin, count(*) AS n, avg(x0) AS mean FROM samples GROUP BY origin ORDER BY origin",
        "SELECT * FROM training_runs ORDER BY replicate, model_generation, sample_id_start",
    ];
    let read = "import json, sys, pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq\n\
        a = ipc.open_stream(open(sys.argv[1], 'rb')).read_all()\n\
        b = ipc.open_stream(open(sys.argv[2], 'rb')).read_all()\n\
        f = pq.ParquetFile(sys.argv[3])\n\
        p = f.read()\n\
        assert a.schema.equals(b.schema) and a.schema.equals(p.schema), (a.schema, p.schema)\n\
        print(json.dumps({'rows': [t.to_pylist() for t in (a, b, p)], 'types': [str(t) for t in a.schema.types], 'created_by': f.metadata.created_by}))";
    for (i, sql) in queries.iter().enumerate() {
        let (stream, file, pq) =
            (dir.path(&format!("{i}.arrows")), dir.path(&format!("{i}-out.arrows")), dir.path(&format!("{i}.parquet")));
        let o = bin().args(["query", r, sql, "--format", "arrow"]).output().unwrap();
        assert!(o.status.success(), "{sql}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::write(&stream, &o.stdout).unwrap();
        let (code, _, err) = cli(&["query", r, sql, "--format", "arrow", "--out", file.to_str().unwrap()], None);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = cli(&["query", r, sql, "--format", "parquet", "--out", pq.to_str().unwrap()], None);
        assert_eq!(code, 0, "{err}");
        let o = std::process::Command::new("python3")
            .args(["-c", read, stream.to_str().unwrap(), file.to_str().unwrap(), pq.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{sql}: {}", String::from_utf8_lossy(&o.stderr));
        let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(got["created_by"].as_str().unwrap().starts_with("collapse version "), "{got}");
        let (code, json, _) = cli(&["query", r, sql, "--format", "json"], None);
        assert_eq!(code, 0);
        let want: serde_json::Value = serde_json::from_str(&json).unwrap();
        // Values equal; floats to 1e-12 relative, since Polars may sum an
        // aggregate's parts in another order from one query to the next.
        fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
            use serde_json::Value as V;
            match (a, b) {
                (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => p == q || (p - q).abs() <= 1e-12 * p.abs().max(q.abs()),
                    _ => x == y,
                },
                (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
                (V::Object(x), V::Object(y)) => {
                    x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
                }
                _ => a == b,
            }
        }
        for (rows, what) in got["rows"].as_array().unwrap().iter().zip(["arrow to stdout", "arrow --out", "parquet"]) {
            assert!(
                same(rows, &want),
                "{sql}: pyarrow's rows of the {what} output differ from --format json:\n{rows}\n{want}"
            );
        }
        if i == 0 {
            let types = got["types"].as_array().unwrap();
            assert_eq!(types[0], "uint64", "sample_id: {types:?}");
            assert_eq!(types[1], "uint32", "replicate: {types:?}");
            assert!(types.iter().any(|t| t == "string") && types.iter().any(|t| t == "double"), "{types:?}");
        }
    }
    let (code, _, err) = cli(&["query", r, queries[0], "--format", "parquet"], None);
    assert_eq!(code, 2);
    assert!(err.contains("--format parquet writes a file: name it with --out FILE"), "{err}");
}
