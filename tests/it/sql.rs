//! Answers you can trust: every query of tests/sql/corpus.sql runs through
//! `collapse query` and through DuckDB on the same run directories (a
//! Gaussian run, an accumulate run, a text run, an image run, and a study
//! of eight Gaussian cells read across its runs). Each either
//! agrees with DuckDB or is refused with exit 2 and a reason; none may give
//! another answer. Floats agree within 1e-9 relative (plus 1e-12 absolute,
//! for sums of many terms that cancel near zero, where the two engines add
//! in different orders).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{repo, Scratch};

struct Query {
    name: String,
    runs: Vec<String>,
    ordered: bool,
    sql: String,
}

/// The corpus: `-- @name [runs=a,b] [ordered]`, then SQL up to a `;` line end.
fn corpus() -> Vec<Query> {
    let text = std::fs::read_to_string(repo().join("tests/sql/corpus.sql")).unwrap();
    let mut out: Vec<Query> = Vec::new();
    let mut current: Option<Query> = None;
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("-- @") {
            assert!(current.is_none(), "{head}: the previous query has no closing `;`");
            let mut parts = head.split_whitespace();
            let name = parts.next().expect("a query name").to_string();
            let mut q =
                Query { name, runs: vec!["gaussian".into(), "accumulate".into()], ordered: false, sql: String::new() };
            for p in parts {
                match p.split_once('=') {
                    Some(("runs", r)) => q.runs = r.split(',').map(str::to_string).collect(),
                    None if p == "ordered" => q.ordered = true,
                    _ => panic!("{}: unknown attribute {p}", q.name),
                }
            }
            current = Some(q);
        } else if let Some(q) = current.as_mut() {
            if line.starts_with("--") {
                continue;
            }
            q.sql.push_str(line);
            q.sql.push('\n');
            if line.trim_end().ends_with(';') {
                q.sql = q.sql.trim().trim_end_matches(';').to_string();
                out.push(current.take().unwrap());
            }
        }
    }
    assert!(current.is_none(), "the last query has no closing `;`");
    let mut names: Vec<&str> = out.iter().map(|q| q.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), out.len(), "query names must be unique");
    out
}

/// The four run directories, small enough to build in seconds.
fn runs(dir: &Scratch) -> BTreeMap<String, std::path::PathBuf> {
    let specs: [(&str, &str, &[&str]); 4] = [
        ("gaussian", "quickstart.toml", &["generations=6", "replicates=4"]),
        ("accumulate", "quickstart.toml", &["generations=5", "replicates=3", "mix.policy=accumulate"]),
        ("text", "ngram-quick.toml", &["generations=2", "data.n=300", "generate.n=300", "data.holdout=100"]),
        (
            "image",
            "vae-digits.toml",
            &["generations=2", "replicates=1", "model.epochs=1", "data.n=200", "generate.n=200"],
        ),
    ];
    let mut out = BTreeMap::new();
    // A study of 8 cells: policy x sample size x 2 seeds.
    let study = dir.path("study.toml");
    let text = std::fs::read_to_string(repo().join("pipelines/quickstart.toml")).unwrap();
    let grid =
        "\n[sweep]\ngrid = { \"mix.policy\" = [\"replace\", \"accumulate\"], \"generate.n\" = [50, 100] }\nseeds = 2\n";
    std::fs::write(&study, format!("{text}{grid}")).unwrap();
    let (code, _, err) = super::cli(
        &["sweep", study.to_str().unwrap(), "--out", dir.path("study").to_str().unwrap(), "-q", "--no-fsync"]
            .iter()
            .copied()
            .chain(["--set", "generations=4", "--set", "replicates=3"])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code, 0, "{err}");
    out.insert("study".to_string(), dir.path("study"));
    for (name, file, sets) in specs {
        let run = dir.path(name);
        super::run_shipped(file, &run, sets);
        out.insert(name.to_string(), run);
    }
    out
}

/// DuckDB's answers for `queries` on `run`, or why DuckDB cannot be asked.
fn duckdb(run: &Path, queries: &[&str]) -> Result<Vec<Value>, String> {
    let script = repo().join("tests/interop/duckdb_query.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let job = serde_json::json!({ "run": run, "queries": queries });
    child.stdin.take().unwrap().write_all(job.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap())
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12
}

/// Cells agree: numbers by value (an integer and a float of the same value
/// agree, since the engines type counts and casts differently), the rest
/// exactly.
fn same_cell(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => close(x.as_f64().unwrap(), y.as_f64().unwrap()),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_cell(a, b)),
        _ => a == b,
    }
}

/// A sort key for comparing unordered results: numbers rounded to 9
/// significant digits, so rows that agree within the tolerance sort alike.
fn sort_key(row: &[Value]) -> String {
    row.iter()
        .map(|v| match v {
            Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => format!("{:.9e}", n.as_f64().unwrap()),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Why two results differ, or `None`.
fn differ(ours: &[Vec<Value>], theirs: &[Vec<Value>], ordered: bool) -> Option<String> {
    if ours.len() != theirs.len() {
        return Some(format!("{} rows against DuckDB's {}", ours.len(), theirs.len()));
    }
    let (mut a, mut b) = (ours.to_vec(), theirs.to_vec());
    if !ordered {
        a.sort_by_key(|r| sort_key(r));
        b.sort_by_key(|r| sort_key(r));
    }
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x.len() != y.len() || !x.iter().zip(y).all(|(p, q)| same_cell(p, q)) {
            return Some(format!("row {i}: {x:?} against DuckDB's {y:?}"));
        }
    }
    None
}

#[test]
fn every_query_agrees_with_duckdb_or_is_refused() {
    let probe = Command::new("python3").args(["-c", "import duckdb"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        super::skip("sql::every_query_agrees_with_duckdb_or_is_refused", "the Python package duckdb is not installed");
        return;
    }
    let queries = corpus();
    assert!(queries.len() >= 80, "the corpus has {} queries", queries.len());
    let dir = Scratch::new("sql");
    let runs = runs(&dir);
    let mut wrong = Vec::new();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut refusals = Vec::new();
    for (name, run) in &runs {
        let mine: Vec<&Query> = queries.iter().filter(|q| q.runs.iter().any(|r| r == name)).collect();
        let sql: Vec<&str> = mine.iter().map(|q| q.sql.as_str()).collect();
        let theirs = duckdb(run, &sql).unwrap_or_else(|e| panic!("DuckDB: {e}"));
        for (q, t) in mine.iter().zip(theirs) {
            if let Some(e) = t.get("error") {
                wrong.push(format!("{} on {name}: DuckDB cannot run it ({e}); fix the corpus", q.name));
                continue;
            }
            let their_rows: Vec<Vec<Value>> = serde_json::from_value(t["rows"].clone()).unwrap();
            let entry = counts.entry(name.as_str()).or_default();
            match collapse::data::query::rows(run, &q.sql) {
                Ok((_, rows)) => match differ(&rows, &their_rows, q.ordered) {
                    None => entry.0 += 1,
                    Some(why) => wrong.push(format!("{} on {name}: {why}\n    {}", q.name, q.sql)),
                },
                Err(e) if e.exit_code() == 2 => {
                    entry.1 += 1;
                    refusals.push(format!("{} on {name}: {}", q.name, e.chain().lines().next().unwrap_or("")));
                }
                Err(e) => {
                    wrong.push(format!("{} on {name}: failed with exit {}: {}", q.name, e.exit_code(), e.chain()))
                }
            }
        }
    }
    let mut table = String::from("run         agree  refused\n");
    for (run, (agree, refused)) in &counts {
        table.push_str(&format!("{run:<11} {agree:>5}  {refused:>7}\n"));
    }
    // Straight to stderr, past the harness's capture: the counts are the
    // test's report whether it passes or not.
    let _ = writeln!(std::io::stderr(), "sql corpus against DuckDB:\n{table}refused:\n  {}", refusals.join("\n  "));
    assert!(
        wrong.is_empty(),
        "{} queries give another answer than DuckDB:\n{}\n\n{table}",
        wrong.len(),
        wrong.join("\n")
    );
}
