//! The run directory opens as-is in pyarrow and DuckDB with the same rows
//! and types (tests/interop/read_run.py; `.ci/run` installs both from PyPI).

use super::*;

#[test]
fn pyarrow_and_duckdb_read_the_run_as_is() {
    let dir = Scratch::new("interop");
    let run = dir.path("run");
    run_pipeline(
        "name = \"i\"\nseed = 2\ngenerations = 4\nreplicates = 3\n[data]\nsource = \"gaussian\"\nn = 30\nholdout = 10\n\
         mean = [0.5]\nstd = [2.0]\n[model]\nkind = \"gaussian\"\n[generate]\nn = 25\n[mix]\npolicy = \"accumulate\"\n",
        &run,
    );
    let one = |sql: &str| f(&query(&run, sql)[0], "n");
    let expected = serde_json::json!({
        "samples": one("SELECT count(*) AS n FROM samples") as u64,
        "x0_sum": one("SELECT sum(x0) AS n FROM samples"),
        "generations": 4,
        "training": one("SELECT count(*) AS n FROM training_runs") as u64,
        "training_rows": one("SELECT count(*) AS n FROM training") as u64,
        "models": one("SELECT count(*) AS n FROM models") as u64,
        "metrics": one("SELECT count(*) AS n FROM metrics") as u64,
    });
    let script = repo().join("tests/interop/read_run.py");
    let out = match std::process::Command::new("python3").arg(&script).arg(&run).arg(expected.to_string()).output() {
        Ok(o) => o,
        Err(e) => {
            return super::skip("interop: pyarrow and DuckDB read the run", &format!("python3 is not available ({e})"))
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        return super::skip(
            "interop: pyarrow and DuckDB read the run",
            &format!("{}; pip install pyarrow duckdb", text.trim()),
        );
    }
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
}
