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

/// Every SQL and Python snippet of the README's sections on the run
/// directory and its tables runs as written (on a run in place of
/// `runs/quickstart`), with the DuckDB and pyarrow that CI installs.
#[test]
fn the_readmes_interop_snippets_run_as_written() {
    let probe = std::process::Command::new("python3").args(["-c", "import duckdb, pyarrow"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return super::skip(
            "interop: the README's snippets",
            "pyarrow and duckdb are not installed (pip install pyarrow duckdb)",
        );
    }
    let dir = Scratch::new("readme-snippets");
    let run = dir.path("runs/quickstart");
    run_quietly(&repo().join("pipelines/quickstart.toml"), &run, None);
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("\n## The run directory").expect("the README's run directory section");
    let end = readme[start..].find("\n## Metrics").map_or(readme.len(), |e| start + e);
    let section = &readme[start..end];
    let mut ran = 0;
    for (lang, body) in section.split("```").collect::<Vec<_>>().chunks(2).filter_map(|c| {
        let block = c.get(1)?;
        let (lang, body) = block.split_once('\n')?;
        Some((lang.trim().to_string(), body.to_string()))
    }) {
        let script = match lang.as_str() {
            "python" => body.clone(),
            "sql" => format!(
                "import duckdb\ncon = duckdb.connect()\ncode = '\\n'.join(l for l in {:?}.splitlines() if not l.lstrip().startswith('--'))\nfor stmt in code.split(';'):\n    if stmt.strip():\n        con.execute(stmt).fetchall()\n",
                body
            ),
            _ => continue,
        };
        let out = std::process::Command::new("python3").arg("-c").arg(&script).current_dir(&dir.0).output().unwrap();
        assert!(
            out.status.success(),
            "this {lang} snippet of the README fails:\n{body}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 3, "found {ran} snippets");
}
