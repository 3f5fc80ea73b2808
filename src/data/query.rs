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

/// Where a directory's tables lie: one run's, or every cell's of a study
/// (`runs/<cell id>/...`, with a `cell` column first).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Run,
    Study,
}

impl Layout {
    fn of(dir: &Path) -> Layout {
        if super::plan::is_study(dir) {
            Layout::Study
        } else {
            Layout::Run
        }
    }
}

/// Scans `pattern` under `run` (under every cell of a study); `hive` names
/// the u32 column its folder names carry (`samples/generation=K/`).
fn scan_glob(run: &Path, pattern: &str, hive: Option<&str>) -> Result<LazyFrame> {
    match Layout::of(run) {
        Layout::Run => scan_one(run, pattern, hive),
        Layout::Study => super::across::scan_cells(run, pattern, |dir, p| scan_one(dir, p, hive)),
    }
}

fn scan_one(run: &Path, pattern: &str, hive: Option<&str>) -> Result<LazyFrame> {
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
/// `metrics` for `run`, and `filter` for a run with a curation filter.
pub fn context(run: &Path) -> Result<SQLContext> {
    context_sealed(run, None)
}

/// [`context`], each table cut to generations (and models) below `sealed`
/// when given: an unfinished run's sealed part, for its audit.
pub fn context_sealed(run: &Path, sealed: Option<u32>) -> Result<SQLContext> {
    let below = |lf: LazyFrame, column: &str| match sealed {
        Some(s) => lf.filter(col(column).lt(lit(s))),
        None => lf,
    };
    let layout = Layout::of(run);
    if layout == Layout::Run && !run.join("samples").is_dir() {
        return Err(Error::Input(format!(
            "{}: not a run directory (no samples/ inside) nor a study directory (no study.json); pass the folder `collapse run` or `collapse sweep` wrote",
            run.display()
        )));
    }
    let ctx = SQLContext::new();
    if layout == Layout::Study {
        ctx.register("runs", super::across::runs_table(run)?.lazy());
    }
    let lead = |names: &[&'static str]| -> Vec<Expr> {
        let mut first: Vec<&str> = if layout == Layout::Study { vec![super::across::CELL] } else { Vec::new() };
        first.extend(names);
        let mut exprs: Vec<Expr> = first.iter().map(|c| col(*c)).collect();
        exprs.push(all().exclude_cols(first).as_expr());
        exprs
    };
    // Samples in the DESIGN column order, the generation from the folder.
    let samples = scan_glob(run, "samples/*/*.parquet", Some("generation"))?;
    let samples = samples.select(lead(&["sample_id", "replicate", "generation"]));
    ctx.register("samples", below(samples, "generation"));
    let runs = below(scan_glob(run, "training/*/*.parquet", None)?, "model_generation");
    let cell: Vec<Expr> = if layout == Layout::Study { vec![col(super::across::CELL)] } else { Vec::new() };
    let expanded = runs
        .clone()
        .select(
            cell.into_iter()
                .chain([
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
                .collect::<Vec<_>>(),
        )
        .explode(by_name(["sample_id"], true, false), ExplodeOptions { empty_as_null: false, keep_nulls: false });
    ctx.register("training", expanded);
    ctx.register("training_runs", runs);
    ctx.register("models", below(scan_glob(run, "models/*/*.parquet", None)?, "model_generation"));
    ctx.register("metrics", below(scan_glob(run, "metrics/*.parquet", None)?, "generation"));
    // A filtered run's decisions: one row per candidate of each T_k; in a
    // study, those of the cells that filter.
    let filter = match layout {
        Layout::Run if run.join(super::store::FILTER_DIR).is_dir() => Some(scan_glob(run, "filter/*/*.parquet", None)?),
        Layout::Run => None,
        Layout::Study => match scan_glob(run, "filter/*/*.parquet", None) {
            Ok(lf) => Some(lf),
            // No cell has written a filter table.
            Err(Error::Input(_)) => None,
            Err(e) => return Err(e),
        },
    };
    if let Some(lf) = filter {
        ctx.register("filter", below(lf, "model_generation"));
    }
    Ok(ctx)
}

pub fn frame(run: &Path, sql: &str) -> Result<DataFrame> {
    frame_sealed(run, sql, None)
}

/// [`frame`] over [`context_sealed`].
pub fn frame_sealed(run: &Path, sql: &str, sealed: Option<u32>) -> Result<DataFrame> {
    let mut ctx = context_sealed(run, sealed)?;
    let prepared = super::sql::prepare(sql).map_err(|r| Error::Input(format!("query: {}", r.0)))?;
    let lf = ctx.execute(&prepared.sql).map_err(|e| Error::Input(format!("query: {}", polars_message(&e, &ctx))))?;
    lf.collect().map_err(|e| Error::Input(format!("query: {}", polars_message(&e, &ctx))))
}

/// The result of `sql` as an Arrow IPC stream (`parquet` false) or a
/// Parquet file ([`super::export`]).
pub fn export(run: &Path, sql: &str, parquet: bool) -> Result<Vec<u8>> {
    let df = frame(run, sql)?;
    if parquet {
        super::export::parquet_file(&df)
    } else {
        super::export::arrow_stream(&df)
    }
}

/// Rows of `training` past which a query that expands it is announced.
const LARGE_EXPANSION: u64 = 1_000_000;

/// When `sql` still reads `training` row by row after the rewrites (a
/// count per model or replicate does not) and that table expands to more
/// than a million rows: a note saying how many, to show before it runs.
pub fn expansion_note(run: &Path, sql: &str) -> Result<Option<String>> {
    let Ok(prepared) = super::sql::prepare(sql) else { return Ok(None) };
    if !prepared.tables.contains("training") {
        return Ok(None);
    }
    let runs = scan_glob(run, "training/*/*.parquet", None)?;
    let totals = runs
        .select([len().alias("runs"), col("sample_count").cast(DataType::UInt64).sum().alias("rows")])
        .collect()
        .map_err(|e| Error::table("training", e))?;
    let get = |name: &str| totals.column(name).ok().and_then(|c| c.get(0).ok()).and_then(|v| v.extract::<u64>());
    let (Some(runs), Some(rows)) = (get("runs"), get("rows")) else { return Ok(None) };
    Ok((rows > LARGE_EXPANSION).then(|| {
        format!(
            "this query reads training row by row: {} id runs expand to {} rows; counts per replicate or model (and of one sample_id) are answered from training_runs without expanding",
            thousands(runs as usize),
            thousands(rows as usize)
        )
    }))
}

/// A Polars error as one line a person can act on, in SQL's words: no
/// query plans, no syntax trees, no DataFrame API advice; an unknown table
/// or column with the ones there are.
fn polars_message(e: &PolarsError, ctx: &SQLContext) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let quoted = |after: &str, close: char| -> Option<String> {
        let i = first.find(after)? + after.len();
        let rest = &first[i..];
        Some(rest[..rest.find(close)?].to_string())
    };
    if let Some(table) = quoted("relation '", '\'') {
        let mut tables = ctx.get_tables();
        tables.sort();
        return format!("unknown table {table}; the tables are {}", tables.join(", "));
    }
    if let Some(column) = quoted("unable to find column \"", '"') {
        let valid = first.split("valid columns: ").nth(1).unwrap_or("").trim_matches(|c| c == '[' || c == ']');
        return format!("unknown column {column}; the columns here are {}", valid.replace('"', ""));
    }
    if let Some(name) = quoted("duplicate output name '", '\'') {
        return format!(
            "two result columns are both named {name}; name each with AS, e.g. SELECT min({name}) AS lo, max({name}) AS hi"
        );
    }
    if first.contains("expected `String`, got `binary`") {
        return "a string function was given a binary column (pixels); select pixels as it is, or use height, width and label".into();
    }
    // Polars words some messages for its DataFrame API; cut any advice and
    // plan or tree dump that follows.
    let first = first.split(" If this is the case").next().unwrap_or(first);
    let first = first.split("Resolved plan").next().unwrap_or(first).trim();
    first.trim_start_matches("sql parser error: ").to_string()
}

/// Rows the table format shows unless told otherwise.
pub const TABLE_ROWS: usize = 20;

/// Characters of a string cell the table format shows before cutting it.
const TABLE_CELL: usize = 40;

/// A rendered result and what the rendering left out, for stderr.
pub struct Rendered {
    pub text: String,
    pub notes: Vec<String>,
}

/// Runs `sql` and renders the result (the table format at its default
/// length, its notes below it).
pub fn run(run: &Path, sql: &str, format: Format) -> Result<String> {
    let r = render(run, sql, format, TABLE_ROWS)?;
    let mut text = r.text;
    if format == Format::Table {
        for n in r.notes {
            text.push_str(&n);
            text.push('\n');
        }
    }
    Ok(text)
}

/// Runs `sql` and renders the result; the table format shows at most
/// `limit` rows. Binary columns (`pixels`) are base64 in JSON and left out
/// of CSV and the table, with a note saying so.
pub fn render(run: &Path, sql: &str, format: Format, limit: usize) -> Result<Rendered> {
    let mut df = frame(run, sql)?;
    let render = |e: PolarsError| Error::table("query output", e);
    let binary: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Binary | DataType::BinaryOffset))
        .map(|c| c.name().to_string())
        .collect();
    let mut notes = Vec::new();
    if format != Format::Json && !binary.is_empty() {
        notes.push(format!(
            "left out {} (binary image pixels); --format json gives {} as base64",
            binary.join(", "),
            if binary.len() == 1 { "it" } else { "them" }
        ));
        df = df.drop_many(binary.iter().map(String::as_str));
    }
    match format {
        Format::Table => {
            let total = df.height();
            let (columns, rows) = json_rows(&df.head(Some(limit)))?;
            let (text, cut) = table(&columns, &rows);
            if total > rows.len() {
                notes.push(format!(
                    "showing {} of {} rows; --limit N or --format csv for all",
                    rows.len(),
                    thousands(total)
                ));
            }
            if cut {
                notes.push(format!(
                    "strings longer than {TABLE_CELL} characters are cut (…); --format csv or json shows them whole"
                ));
            }
            Ok(Rendered { text, notes })
        }
        Format::Csv => {
            let mut buf = Vec::new();
            CsvWriter::new(&mut buf).finish(&mut df).map_err(render)?;
            Ok(Rendered { text: String::from_utf8_lossy(&buf).into_owned(), notes })
        }
        Format::Json => {
            let (columns, rows) = json_rows(&df)?;
            let mut out = String::from("[");
            for (i, row) in rows.iter().enumerate() {
                out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
                for (j, (name, v)) in columns.iter().zip(row).enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(name.clone()).to_string());
                    out.push(':');
                    out.push_str(&v.to_string());
                }
                out.push('}');
            }
            out.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
            Ok(Rendered { text: out, notes })
        }
    }
}

/// 4020 as "4,020".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A plain text table: a header, a rule, one line a row, then the row
/// count; string cells over `TABLE_CELL` characters cut (the flag says so).
fn table(columns: &[String], rows: &[Vec<serde_json::Value>]) -> (String, bool) {
    let mut cut = false;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    let s = match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.replace(['\n', '\t'], " "),
                        other => other.to_string(),
                    };
                    if s.chars().count() > TABLE_CELL {
                        cut = true;
                        s.chars().take(TABLE_CELL - 1).chain(std::iter::once('…')).collect()
                    } else {
                        s
                    }
                })
                .collect()
        })
        .collect();
    let width: Vec<usize> = (0..columns.len())
        .map(|j| cells.iter().map(|r| r[j].chars().count()).chain([columns[j].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |items: &[String]| -> String {
        let padded: Vec<String> =
            items.iter().zip(&width).map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count()))).collect();
        padded.join(" | ").trim_end().to_string() + "\n"
    };
    let mut out = line(columns);
    out.push_str(&(width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-") + "\n"));
    for r in &cells {
        out.push_str(&line(r));
    }
    out.push_str(&format!("({} row{})\n", rows.len(), if rows.len() == 1 { "" } else { "s" }));
    (out, cut)
}

/// The result of `sql` as column names and rows of JSON values, in the
/// result's column order: numbers as numbers (NaN and infinities as the
/// strings "nan", "inf", "-inf"), binary values (an image's `pixels`) as
/// base64, lists as arrays.
pub fn rows(run: &Path, sql: &str) -> Result<(Vec<String>, Vec<Vec<serde_json::Value>>)> {
    json_rows(&frame(run, sql)?)
}

fn json_rows(df: &DataFrame) -> Result<(Vec<String>, Vec<Vec<serde_json::Value>>)> {
    let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
    let mut rows = vec![Vec::with_capacity(columns.len()); df.height()];
    for c in df.columns() {
        let s = c.as_materialized_series();
        for (row, v) in rows.iter_mut().zip(s.iter()) {
            row.push(json_value(&v));
        }
    }
    Ok((columns, rows))
}

fn json_float(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::String(
            if x.is_nan() {
                "nan"
            } else if x > 0.0 {
                "inf"
            } else {
                "-inf"
            }
            .into(),
        )
    }
}

fn json_value(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AnyValue::Null => J::Null,
        AnyValue::Boolean(b) => J::Bool(*b),
        AnyValue::String(s) => J::String(s.to_string()),
        AnyValue::StringOwned(s) => J::String(s.to_string()),
        AnyValue::UInt8(x) => J::from(*x),
        AnyValue::UInt16(x) => J::from(*x),
        AnyValue::UInt32(x) => J::from(*x),
        AnyValue::UInt64(x) => J::from(*x),
        AnyValue::Int8(x) => J::from(*x),
        AnyValue::Int16(x) => J::from(*x),
        AnyValue::Int32(x) => J::from(*x),
        AnyValue::Int64(x) => J::from(*x),
        AnyValue::Float32(x) => json_float(f64::from(*x)),
        AnyValue::Float64(x) => json_float(*x),
        AnyValue::Binary(b) => J::String(base64(b)),
        AnyValue::BinaryOwned(b) => J::String(base64(b)),
        AnyValue::List(s) => J::Array(s.iter().map(|x| json_value(&x)).collect()),
        other => J::String(other.to_string()),
    }
}

/// Standard base64 with padding (RFC 4648), for binary cells in JSON.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
