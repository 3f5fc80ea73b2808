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

/// A column type in one vocabulary for the three readers.
fn polars_type(t: &polars::prelude::DataType) -> String {
    use polars::prelude::DataType::*;
    match t {
        UInt32 => "u32",
        UInt64 => "u64",
        Int64 => "i64",
        Float64 => "f64",
        String => "str",
        Binary => "bytes",
        other => return format!("{other}"),
    }
    .to_string()
}

/// Rows and column types of each table of a run as polars reads its files.
fn polars_tables(run: &Path) -> serde_json::Value {
    let mut tables = serde_json::Map::new();
    for e in std::fs::read_dir(run).unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if !dir.is_dir() || name.starts_with('.') {
            continue;
        }
        let found = super::files_under(&dir, |p| super::has_ext(p, "parquet"));
        if found.is_empty() {
            continue;
        }
        let (mut rows, mut columns) = (0usize, None::<serde_json::Value>);
        for f in found {
            use polars::prelude::SerReader;
            let df = polars::prelude::ParquetReader::new(std::fs::File::open(&f).unwrap()).finish().unwrap();
            rows += df.height();
            let cols: serde_json::Map<String, serde_json::Value> =
                df.schema().iter().map(|(n, t)| (n.to_string(), polars_type(t).into())).collect();
            let cols = serde_json::Value::Object(cols);
            assert!(columns.as_ref().is_none_or(|c| *c == cols), "{}: {cols} != {columns:?}", f.display());
            columns = Some(cols);
        }
        tables.insert(name, serde_json::json!({"rows": rows, "columns": columns}));
    }
    serde_json::Value::Object(tables)
}

/// The DESIGN's columns and types of each table, for a run of `kind`.
fn design_columns(table: &str, kind: &str) -> Vec<(&'static str, &'static str)> {
    match table {
        "samples" => {
            let mut c = vec![
                ("sample_id", "u64"),
                ("replicate", "u32"),
                ("origin", "str"),
                ("model_generation", "u32"),
                ("split", "str"),
            ];
            c.extend(match kind {
                "vectors1" => vec![("x0", "f64")],
                "vectors2" => vec![("x0", "f64"), ("x1", "f64")],
                "tokens" => vec![("token", "u32")],
                "text" => vec![("text", "str"), ("n_tokens", "u32"), ("gen0_ppl", "f64")],
                "images" => vec![("pixels", "bytes"), ("height", "u32"), ("width", "u32"), ("label", "u32")],
                other => panic!("{other}"),
            });
            c
        }
        "training" => {
            vec![("replicate", "u32"), ("model_generation", "u32"), ("sample_id_start", "u64"), ("sample_count", "u64")]
        }
        "models" => vec![
            ("replicate", "u32"),
            ("model_generation", "u32"),
            ("kind", "str"),
            ("params", "str"),
            ("file", "str"),
            ("blake3", "str"),
        ],
        "metrics" => vec![("replicate", "u32"), ("generation", "u32"), ("metric", "str"), ("value", "f64")],
        other => panic!("a table the DESIGN does not name: {other}"),
    }
}

/// Every run directory the build writes, one per kind of data, opens in
/// DuckDB, pyarrow and polars with the same row counts and the DESIGN's
/// column types (tests/interop/schema_of_run.py reads with the first two).
#[test]
fn every_kind_of_run_reads_alike_in_duckdb_pyarrow_and_polars() {
    let what = "interop: DuckDB, pyarrow and polars read every kind of run alike";
    let dir = Scratch::new("interop-kinds");
    let runs: [(&str, &[&str], &str); 5] = [
        ("quickstart.toml", &["generations=3"], "vectors1"),
        ("paper-gmm-blob.toml", &["generations=2"], "vectors2"),
        ("zipf-replace.toml", &["generations=3"], "tokens"),
        ("ngram-quick.toml", &["generations=2"], "text"),
        ("vae-mnist-quick.toml", &["generations=1"], "images"),
    ];
    for (file, sets, kind) in runs {
        let run = dir.path(file);
        super::run_shipped(file, &run, sets);
        let script = repo().join("tests/interop/schema_of_run.py");
        let out = match std::process::Command::new("python3").arg(&script).arg(&run).output() {
            Ok(o) => o,
            Err(e) => return super::skip(what, &format!("python3 is not available ({e})")),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(3) {
            return super::skip(what, &format!("{}; pip install pyarrow duckdb", text.trim()));
        }
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        let peers: serde_json::Value = serde_json::from_str(&text).unwrap();
        let polars = polars_tables(&run);
        let mut names: Vec<&String> = polars.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["metrics", "models", "samples", "training"], "{file}");
        for reader in ["pyarrow", "duckdb"] {
            assert_eq!(peers[reader], polars, "{file}: {reader} and polars read different tables");
        }
        let writer = concat!("collapse version ", env!("CARGO_PKG_VERSION"));
        assert_eq!(peers["created_by"], serde_json::json!([writer]), "{file}: the footers name their writer");
        for (table, seen) in polars.as_object().unwrap() {
            let want: serde_json::Map<String, serde_json::Value> =
                design_columns(table, kind).into_iter().map(|(c, t)| (c.to_string(), t.into())).collect();
            assert_eq!(seen["columns"], serde_json::Value::Object(want), "{file}: {table}");
            assert!(seen["rows"].as_u64().unwrap() > 0, "{file}: {table} is empty");
        }
    }
}
