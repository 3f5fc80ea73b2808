//! `collapse query`: SQL over a run directory's tables.

use std::path::Path;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Scans `pattern` under `run`; `hive` names the u32 column its folder
/// names carry (`samples/generation=K/`), read as such.
fn scan_glob(run: &Path, pattern: &str, hive: Option<&str>) -> Result<LazyFrame> {
    let path = run.join(pattern);
    let p = PlRefPath::try_from_path(&path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let hive_options = match hive {
        Some(column) => HiveOptions {
            enabled: Some(true),
            schema: Some(Arc::new(Schema::from_iter([Field::new(column.into(), DataType::UInt32)]))),
            try_parse_dates: false,
            ..Default::default()
        },
        None => HiveOptions { enabled: Some(false), ..Default::default() },
    };
    let args = ScanArgsParquet { hive_options, ..Default::default() };
    LazyFrame::scan_parquet(p, args).map_err(|e| Error::table(path.display().to_string(), e))
}

/// Registers `samples`, `training`, `training_runs`, `models` and
/// `metrics` for `run`.
pub fn context(run: &Path) -> Result<SQLContext> {
    if !run.join("samples").is_dir() {
        return Err(Error::Input(format!(
            "{}: not a run directory (no samples/ inside); pass the folder `collapse run` wrote",
            run.display()
        )));
    }
    let ctx = SQLContext::new();
    // Samples in the DESIGN column order, the generation from the folder.
    let samples = scan_glob(run, "samples/*/*.parquet", Some("generation"))?;
    let samples = samples.select([
        col("sample_id"),
        col("replicate"),
        col("generation"),
        all().exclude_cols(["sample_id", "replicate", "generation"]).as_expr(),
    ]);
    ctx.register("samples", samples);
    let runs = scan_glob(run, "training/*/*.parquet", None)?;
    let expanded = runs
        .clone()
        .select([
            col("replicate"),
            col("model_generation"),
            int_ranges(
                col("sample_id_start"),
                col("sample_id_start") + col("sample_count"),
                lit(1u64),
                DataType::UInt64,
            )
            .alias("sample_id"),
        ])
        .explode(by_name(["sample_id"], true, false), ExplodeOptions { empty_as_null: false, keep_nulls: false });
    ctx.register("training", expanded);
    ctx.register("training_runs", runs);
    ctx.register("models", scan_glob(run, "models/*/*.parquet", None)?);
    ctx.register("metrics", scan_glob(run, "metrics/*.parquet", None)?);
    Ok(ctx)
}

pub fn frame(run: &Path, sql: &str) -> Result<DataFrame> {
    let mut ctx = context(run)?;
    let lf = ctx.execute(sql).map_err(|e| Error::Input(format!("query: {e}")))?;
    lf.collect().map_err(|e| Error::Input(format!("query: {e}")))
}

/// Runs `sql` and renders the result.
pub fn run(run: &Path, sql: &str, format: Format) -> Result<String> {
    let mut df = frame(run, sql)?;
    let render = |e: PolarsError| Error::table("query output", e);
    match format {
        Format::Table => Ok(format!("{df}\n")),
        Format::Csv => {
            let mut buf = Vec::new();
            CsvWriter::new(&mut buf).finish(&mut df).map_err(render)?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        Format::Json => {
            let mut buf = Vec::new();
            JsonWriter::new(&mut buf).with_json_format(JsonFormat::Json).finish(&mut df).map_err(render)?;
            buf.push(b'\n');
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}
