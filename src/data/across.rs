//! A study's tables: every cell's run read as one table with a `cell`
//! column, and `runs`, one row per cell with its swept keys. Nothing is
//! read until a query runs: each cell's files are a lazy scan, so a
//! query's filters reach the Parquet reader of every cell.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// The column naming the cell, first in every table of a study.
pub const CELL: &str = "cell";

/// `pattern` scanned in every cell that has written that table, a `cell`
/// column in front, the cells one after another in plan order.
pub fn scan_cells(dir: &Path, pattern: &str, scan: impl Fn(&Path, &str) -> Result<LazyFrame>) -> Result<LazyFrame> {
    let table = pattern.split('/').next().unwrap_or(pattern);
    let mut frames = Vec::new();
    for cell in super::plan::read(dir)? {
        let (run, id) = (cell.run_dir(dir), cell.id);
        let has_files = std::fs::read_dir(run.join(table)).is_ok_and(|mut d| d.next().is_some());
        if !has_files {
            continue;
        }
        let lf = scan(&run, pattern)?;
        frames.push(lf.select([lit(id.as_str()).alias(CELL), all().as_expr()]));
    }
    if frames.is_empty() {
        return Err(Error::Input(format!(
            "{}: no cell of this study has written {table} yet (collapse status {} shows where it stands)",
            dir.display(),
            dir.display()
        )));
    }
    let args = UnionArgs { to_supertypes: true, ..Default::default() };
    concat(frames, args).map_err(|e| Error::table(format!("{table} across the study's cells"), e))
}

/// A swept key's values as one column: whole numbers as i64, numbers as
/// f64, booleans, and anything else as its text (strings as themselves).
fn key_column(name: &str, values: &[Option<&serde_json::Value>]) -> Column {
    let all = |f: fn(&serde_json::Value) -> bool| values.iter().all(|v| v.is_none_or(f));
    if all(|v| v.is_i64() || v.is_u64()) {
        let xs: Vec<Option<i64>> = values.iter().map(|v| v.and_then(serde_json::Value::as_i64)).collect();
        Column::new(name.into(), xs)
    } else if all(serde_json::Value::is_number) {
        let xs: Vec<Option<f64>> = values.iter().map(|v| v.and_then(serde_json::Value::as_f64)).collect();
        Column::new(name.into(), xs)
    } else if all(serde_json::Value::is_boolean) {
        let xs: Vec<Option<bool>> = values.iter().map(|v| v.and_then(serde_json::Value::as_bool)).collect();
        Column::new(name.into(), xs)
    } else {
        let xs: Vec<Option<String>> =
            values.iter().map(|v| v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
        Column::new(name.into(), xs)
    }
}

/// `runs`: one row per cell in plan order: `cell`, one column per swept key
/// (named as the key: `"generate.n"`), `seed`, `status` (complete,
/// running, failed, or pending when not started) and `pipeline_blake3` (of
/// the cell's resolved pipeline.toml; null until it starts).
pub fn runs_table(dir: &Path) -> Result<DataFrame> {
    let cells = super::plan::read(dir)?;
    let mut keys: Vec<&String> = Vec::new();
    for k in cells.iter().flat_map(|c| c.values.keys()) {
        if k != "seed" && !keys.contains(&k) {
            keys.push(k);
        }
    }
    let ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
    let mut columns = vec![Column::new(CELL.into(), ids)];
    for k in &keys {
        let values: Vec<Option<&serde_json::Value>> = cells.iter().map(|c| c.values.get(k.as_str())).collect();
        columns.push(key_column(k, &values));
    }
    let (mut seeds, mut status, mut blake3s) = (Vec::new(), Vec::new(), Vec::new());
    for c in &cells {
        let run = c.run_dir(dir);
        let toml = std::fs::read(run.join("pipeline.toml")).ok();
        let json = super::store::run_json(&run);
        let seed =
            c.values.get("seed").and_then(|s| s.as_u64()).or_else(|| json.as_ref().and_then(|j| j["seed"].as_u64()));
        seeds.push(seed);
        status.push(json.as_ref().and_then(|j| j["status"].as_str().map(str::to_string)).unwrap_or("pending".into()));
        blake3s.push(toml.map(|t| blake3::hash(&t).to_hex().to_string()));
    }
    columns.push(Column::new("seed".into(), seeds));
    columns.push(Column::new("status".into(), status));
    columns.push(Column::new("pipeline_blake3".into(), blake3s));
    DataFrame::new_infer_height(columns).map_err(|e| Error::table("runs", e))
}
