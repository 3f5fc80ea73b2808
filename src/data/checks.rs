//! The table checks behind `collapse audit`: schema, lineage and the
//! make-up of every training set, written as SQL over the same tables
//! `collapse query` registers, so a user can rerun any of them by hand.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::query;
use super::{file_error, table_error};
use crate::error::Result;
use crate::values::RowKind;

/// Rows of a Parquet file and the range of one of its u32 columns.
pub struct FileFacts {
    pub rows: u64,
    pub range: Option<(u32, u32)>,
}

/// One file as written, without columns from its folder names.
pub(super) fn scan_file(path: &Path) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::try_from_path(path)?, args)
}

/// A file's named columns, read eagerly. A lazy scan starts Polars'
/// query engine for each file, which cost ~2 ms a file (thread wake-ups,
/// mostly) where the audit reads thousands of small partitions.
pub(super) fn read_columns(path: &Path, columns: &[&str]) -> PolarsResult<DataFrame> {
    let file = std::fs::File::open(path)?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .read_parallel(ParallelStrategy::None)
        .finish()
}

pub fn file_facts(path: &Path, column: Option<&str>) -> std::result::Result<FileFacts, String> {
    let text = |e: PolarsError| e.to_string();
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = ParquetReader::new(file);
    let Some(c) = column else {
        return Ok(FileFacts { rows: reader.num_rows().map_err(text)? as u64, range: None });
    };
    let df =
        reader.with_columns(Some(vec![c.to_string()])).read_parallel(ParallelStrategy::None).finish().map_err(text)?;
    let values = df.column(c).and_then(|v| v.cast(&DataType::UInt64)).map_err(text)?;
    let values = values.u64().map_err(text)?;
    let range = match (values.min(), values.max()) {
        (Some(lo), Some(hi)) => Some((lo as u32, hi as u32)),
        _ => None,
    };
    Ok(FileFacts { rows: df.height() as u64, range })
}

/// Problems with one samples file's columns and types.
pub fn samples_schema(path: &Path, kind: RowKind) -> Vec<String> {
    let schema = scan_file(path).and_then(|mut lf| lf.collect_schema());
    let schema = match schema {
        Ok(s) => s,
        Err(e) => return vec![format!("cannot read its schema: {e}")],
    };
    let mut want: Vec<(String, DataType)> = vec![
        ("sample_id".into(), DataType::UInt64),
        ("replicate".into(), DataType::UInt32),
        ("origin".into(), DataType::String),
        ("model_generation".into(), DataType::UInt32),
        ("split".into(), DataType::String),
    ];
    match kind {
        RowKind::Images => want.extend([
            ("pixels".into(), DataType::Binary),
            ("height".into(), DataType::UInt32),
            ("width".into(), DataType::UInt32),
            ("label".into(), DataType::UInt32),
        ]),
        RowKind::Vectors(d) => want.extend((0..d).map(|j| (format!("x{j}"), DataType::Float64))),
        RowKind::Tokens => want.push(("token".into(), DataType::UInt32)),
        RowKind::Text => want.extend([
            ("text".into(), DataType::String),
            ("n_tokens".into(), DataType::UInt32),
            ("gen0_ppl".into(), DataType::Float64),
        ]),
    }
    let mut out = Vec::new();
    for (name, dt) in &want {
        match schema.get(name.as_str()) {
            None => out.push(format!("column {name} is missing")),
            Some(t) if t != dt => out.push(format!("column {name} has type {t}, expected {dt}")),
            _ => {}
        }
    }
    for name in schema.iter_names() {
        if !want.iter().any(|(n, _)| n == name.as_str()) {
            out.push(format!("unexpected column {name}"));
        }
    }
    out
}

/// Each check: what is wrong, and SQL returning `n` (how many rows are
/// wrong) and `example` (one sample_id, or null). These read samples row by
/// row; the checks that join training rows to samples run over id ranges
/// (`ranges::check`), and `BY_HAND` gives their SQL.
const LINEAGE: [(&str, &str); 4] = [
    (
        "rows with a null in sample_id, replicate, generation, origin or split",
        "SELECT count(*) AS n, min(sample_id) AS example FROM samples WHERE sample_id IS NULL OR replicate IS NULL \
         OR generation IS NULL OR origin IS NULL OR split IS NULL",
    ),
    (
        "rows whose origin is neither 'real' nor 'synthetic', or whose split is neither 'train' nor 'test'",
        "SELECT count(*) AS n, min(sample_id) AS example FROM samples WHERE origin NOT IN ('real', 'synthetic') \
         OR split NOT IN ('train', 'test')",
    ),
    (
        "real rows that claim a model (model_generation is set)",
        "SELECT count(*) AS n, min(sample_id) AS example FROM samples WHERE origin = 'real' AND model_generation IS NOT NULL",
    ),
    (
        "synthetic rows whose model_generation is not their generation - 1, or held out as 'test'",
        "SELECT count(*) AS n, min(sample_id) AS example FROM samples WHERE origin = 'synthetic' \
         AND (model_generation IS NULL OR model_generation + 1 <> generation OR split <> 'train')",
    ),
];

/// The questions `ranges::check` answers over id ranges, as SQL over rows:
/// the same counts on any run small enough to join (a test holds them
/// equal), for a user to rerun or adapt by hand.
pub const BY_HAND: [(&str, &str); 6] = [
    (
        "sample_ids used more than once",
        "SELECT count(*) AS n, min(sample_id) AS example FROM \
         (SELECT sample_id, count(*) AS c FROM samples GROUP BY sample_id) AS d WHERE c > 1",
    ),
    (
        "synthetic rows whose model (replicate, model_generation) is not in the models table",
        "SELECT count(*) AS n, min(s.sample_id) AS example FROM samples s LEFT JOIN models m \
         ON s.replicate = m.replicate AND s.model_generation = m.model_generation \
         WHERE s.origin = 'synthetic' AND m.kind IS NULL",
    ),
    (
        "training rows whose sample_id is not in samples",
        "SELECT count(*) AS n, min(t.sample_id) AS example FROM training t LEFT JOIN samples s \
         ON t.sample_id = s.sample_id WHERE s.generation IS NULL",
    ),
    (
        "training rows from another replicate, a later generation than the model, or the held-out split",
        "SELECT count(*) AS n, min(t.sample_id) AS example FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         WHERE s.replicate <> t.replicate OR s.generation > t.model_generation OR s.split <> 'train'",
    ),
    (
        "training rows of a model that is not in the models table",
        "SELECT count(*) AS n, min(t.sample_id) AS example FROM training t LEFT JOIN models m \
         ON t.replicate = m.replicate AND t.model_generation = m.model_generation WHERE m.kind IS NULL",
    ),
    (
        "training rows listed twice for the same model",
        "SELECT count(*) AS n, min(sample_id) AS example FROM \
         (SELECT replicate, model_generation, sample_id, count(*) AS c FROM training \
          GROUP BY replicate, model_generation, sample_id) AS d WHERE c > 1",
    ),
];

/// What each model trained on, by source, as SQL over rows (see `BY_HAND`).
pub const COMPOSITIONS_BY_HAND: &str = "SELECT t.replicate, t.model_generation, count(*) AS rows, \
     count(DISTINCT t.sample_id) AS distinct_rows, \
     sum(CASE WHEN s.origin = 'real' AND s.generation = 0 THEN 1 ELSE 0 END) AS real_gen0, \
     sum(CASE WHEN s.origin = 'real' AND s.generation > 0 AND s.generation = t.model_generation THEN 1 ELSE 0 END) AS real_own, \
     sum(CASE WHEN s.origin = 'synthetic' AND s.generation = t.model_generation THEN 1 ELSE 0 END) AS synthetic_own, \
     sum(CASE WHEN s.origin = 'synthetic' AND s.generation < t.model_generation THEN 1 ELSE 0 END) AS synthetic_earlier \
     FROM training t JOIN samples s ON t.sample_id = s.sample_id \
     GROUP BY t.replicate, t.model_generation ORDER BY t.replicate, t.model_generation";

fn u64_at(df: &DataFrame, name: &str, row: usize) -> Option<u64> {
    df.column(name).ok()?.cast(&DataType::UInt64).ok()?.u64().ok()?.get(row)
}

/// Row `i` of a `u64_column`, 0 for null.
fn at(column: &[Option<u64>], i: usize) -> u64 {
    column[i].unwrap_or(0)
}

/// A whole column as u64s (null -> `None`), cast once: casting it per row
/// made the audit quadratic in the number of models.
pub(super) fn u64_column(df: &DataFrame, name: &str) -> Vec<Option<u64>> {
    let cast = df.column(name).and_then(|c| c.cast(&DataType::UInt64));
    match cast.as_ref().map(|c| c.u64()) {
        Ok(Ok(ca)) => ca.iter().collect(),
        _ => vec![None; df.height()],
    }
}

/// The row-level lineage checks (`LINEAGE`), one line per kind of problem.
/// `sealed`: only generations (and models) below it, for an unfinished run.
pub fn lineage(run: &Path, sealed: Option<u32>) -> Result<Vec<String>> {
    run_checks(run, &LINEAGE, sealed)
}

/// `BY_HAND`'s SQL run as it stands: what `ranges::check` must agree with.
pub fn lineage_by_hand(run: &Path) -> Result<Vec<String>> {
    run_checks(run, &BY_HAND, None)
}

fn run_checks(run: &Path, checks: &[(&str, &str)], sealed: Option<u32>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (what, sql) in checks {
        let df = query::frame_sealed(run, sql, sealed)?;
        out.extend(finding(u64_at(&df, "n", 0).unwrap_or(0), what, u64_at(&df, "example", 0)));
    }
    Ok(out)
}

/// One line of the audit: how many rows are wrong, how, and one of them.
pub(super) fn finding(n: u64, what: &str, example: Option<u64>) -> Option<String> {
    let example = example.map(|e| format!(" (e.g. sample_id {e})")).unwrap_or_default();
    (n > 0).then(|| format!("{n} {what}{example}"))
}

/// `COMPOSITIONS_BY_HAND` run as it stands.
pub fn compositions_by_hand(run: &Path) -> Result<Vec<Composition>> {
    let df = query::frame(run, COMPOSITIONS_BY_HAND)?;
    let [replicate, model_generation, rows, distinct, real_gen0, real_own, synthetic_own, synthetic_earlier] = [
        "replicate",
        "model_generation",
        "rows",
        "distinct_rows",
        "real_gen0",
        "real_own",
        "synthetic_own",
        "synthetic_earlier",
    ]
    .map(|name| u64_column(&df, name));
    Ok((0..df.height())
        .map(|i| Composition {
            replicate: at(&replicate, i) as u32,
            model_generation: at(&model_generation, i) as u32,
            rows: at(&rows, i),
            distinct: at(&distinct, i),
            real_gen0: at(&real_gen0, i),
            real_own: at(&real_own, i),
            synthetic_own: at(&synthetic_own, i),
            synthetic_earlier: at(&synthetic_earlier, i),
        })
        .collect())
}

/// What model k of one replicate trained on, by source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Composition {
    pub replicate: u32,
    pub model_generation: u32,
    pub rows: u64,
    pub distinct: u64,
    /// Real rows of generation 0 (D_0).
    pub real_gen0: u64,
    /// Real rows introduced at the model's own generation (fresh data).
    pub real_own: u64,
    /// Synthetic rows of the model's own generation (D_k).
    pub synthetic_own: u64,
    /// Synthetic rows of earlier generations.
    pub synthetic_earlier: u64,
}

/// (file, blake3) of every model with a weights file.
pub fn model_files(run: &Path, sealed: Option<u32>) -> Result<Vec<(String, String)>> {
    let df = query::frame_sealed(run, "SELECT file, blake3 FROM models WHERE file IS NOT NULL ORDER BY file", sealed)?;
    let file = df.column("file").and_then(|c| c.str().cloned()).map_err(table_error("models"))?;
    let hash = df.column("blake3").and_then(|c| c.str().cloned()).map_err(table_error("models"))?;
    Ok((0..df.height()).filter_map(|i| Some((file.get(i)?.to_string(), hash.get(i)?.to_string()))).collect())
}

/// Metric name -> (replicate, generation) -> value.
pub type MetricValues = BTreeMap<String, BTreeMap<(u32, u32), f64>>;

/// Per metric named: (replicate, generation) -> value, each metrics file
/// read once (a scan per metric cost 0.9 s over 1,000 generations, and one
/// lazy scan of them all still 1.0 s). A metric the table lacks maps to
/// nothing. `sealed`: rows of generations below it, from the files of
/// those generations (a later one may be half-written).
pub fn metric_values(run: &Path, metrics: &[&str], sealed: Option<u32>) -> Result<MetricValues> {
    let mut out: MetricValues = metrics.iter().map(|m| (m.to_string(), BTreeMap::new())).collect();
    for (_, path) in super::store::partitions(run, "metrics", sealed)? {
        add_metric_rows(&path, sealed, &mut out).map_err(file_error(&path))?;
    }
    Ok(out)
}

/// A metrics file's values of the metrics `out` holds.
fn add_metric_rows(path: &Path, sealed: Option<u32>, out: &mut MetricValues) -> PolarsResult<()> {
    let df = read_columns(path, &["metric", "replicate", "generation", "value"])?;
    let values = df.column("value")?.cast(&DataType::Float64)?;
    let metric = df.column("metric")?.str()?;
    let (rep, gen) = (u64_column(&df, "replicate"), u64_column(&df, "generation"));
    for (((m, r), g), v) in metric.iter().zip(rep).zip(gen).zip(values.f64()?.iter()) {
        let (Some(m), Some(r), Some(g), Some(v)) = (m, r, g, v) else { continue };
        if sealed.is_some_and(|s| g >= u64::from(s)) {
            continue;
        }
        if let Some(by) = out.get_mut(m) {
            by.insert((r as u32, g as u32), v);
        }
    }
    Ok(())
}
