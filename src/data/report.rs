//! What `collapse report` and `collapse compare` read from a run, as plain
//! Rust values (Polars stays inside `data`).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::query;
use super::table_error;
use crate::error::Result;

/// One metrics row.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    pub replicate: u32,
    pub generation: u32,
    pub value: f64,
}

/// Every metric of a run, by name, each sorted by (generation, replicate).
pub fn metrics(run: &Path) -> Result<BTreeMap<String, Vec<MetricPoint>>> {
    let df = query::frame(
        run,
        "SELECT metric, replicate, generation, value FROM metrics ORDER BY metric, generation, replicate",
    )?;
    let name = df.column("metric").and_then(|c| c.str().cloned()).map_err(table_error("metrics"))?;
    let rep = u32_column(&df, "replicate")?;
    let gen = u32_column(&df, "generation")?;
    let value = df.column("value").and_then(|c| c.f64().cloned()).map_err(table_error("metrics"))?;
    let mut out: BTreeMap<String, Vec<MetricPoint>> = BTreeMap::new();
    for i in 0..df.height() {
        if let (Some(m), Some(r), Some(g), Some(v)) = (name.get(i), rep[i], gen[i], value.get(i)) {
            out.entry(m.to_string()).or_default().push(MetricPoint { replicate: r, generation: g, value: v });
        }
    }
    Ok(out)
}

/// The value columns (`x0`, `x1`, ...) of one replicate's training rows at
/// generation `k`, column by column; empty for token runs.
pub fn sample_columns(run: &Path, k: u32, replicate: u32) -> Result<Vec<Vec<f64>>> {
    let df = query::frame(
        run,
        &format!(
            "SELECT * FROM samples WHERE generation = {k} AND replicate = {replicate} AND split = 'train' \
             ORDER BY sample_id"
        ),
    )?;
    let mut out = Vec::new();
    for j in 0.. {
        let Ok(c) = df.column(&format!("x{j}")) else { break };
        let c = c.f64().map_err(table_error("samples"))?;
        out.push(c.into_no_null_iter().collect());
    }
    Ok(out)
}

/// Symbol -> count of one replicate's training rows at generation `k`.
pub fn token_counts(run: &Path, k: u32, replicate: u32) -> Result<BTreeMap<u32, u64>> {
    let df = query::frame(
        run,
        &format!(
            "SELECT token, count(*) AS n FROM samples WHERE generation = {k} AND replicate = {replicate} \
             AND split = 'train' GROUP BY token"
        ),
    )?;
    let token = u32_column(&df, "token")?;
    let n = u32_column(&df, "n")?;
    Ok(token.into_iter().zip(n).filter_map(|(t, n)| Some((t?, n? as u64))).collect())
}

/// Whether the run's samples carry tokens (a discrete run).
pub fn has_tokens(run: &Path) -> Result<bool> {
    let df = query::frame(run, "SELECT * FROM samples LIMIT 0")?;
    Ok(df.column("token").is_ok())
}

/// Whether the run's samples are text.
pub fn has_text(run: &Path) -> Result<bool> {
    let df = query::frame(run, "SELECT * FROM samples LIMIT 0")?;
    Ok(df.column("text").is_ok())
}

/// Rows of text with their gen0_ppl (null for real rows).
pub type Texts = Vec<(String, Option<f64>)>;

/// One replicate's training rows of generation `k` (first `limit` by
/// sample id) as (text, gen0_ppl), and the gen0_ppl of all of them.
pub fn texts(run: &Path, k: u32, replicate: u32, limit: usize) -> Result<(Texts, Vec<f64>)> {
    let df = query::frame(
        run,
        &format!(
            "SELECT text, gen0_ppl FROM samples WHERE generation = {k} AND replicate = {replicate} \
             AND split = 'train' ORDER BY sample_id"
        ),
    )?;
    let text = df.column("text").and_then(|c| c.str().cloned()).map_err(table_error("samples"))?;
    let ppl = df.column("gen0_ppl").and_then(|c| c.f64().cloned()).map_err(table_error("samples"))?;
    let first = (0..df.height().min(limit)).map(|i| (text.get(i).unwrap_or("").to_string(), ppl.get(i))).collect();
    Ok((first, ppl.iter().flatten().collect()))
}

/// (kind, params JSON) of one replicate's model `k`.
pub fn model_params(run: &Path, k: u32, replicate: u32) -> Result<Option<(String, String)>> {
    let df = query::frame(
        run,
        &format!("SELECT kind, params FROM models WHERE model_generation = {k} AND replicate = {replicate}"),
    )?;
    // `get` panics past the end: no row is no model (the last generation).
    if df.height() == 0 {
        return Ok(None);
    }
    let kind = df.column("kind").and_then(|c| c.str().cloned()).map_err(table_error("models"))?;
    let params = df.column("params").and_then(|c| c.str().cloned()).map_err(table_error("models"))?;
    Ok(match (kind.get(0), params.get(0)) {
        (Some(k), Some(p)) => Some((k.to_string(), p.to_string())),
        _ => None,
    })
}

fn u32_column(df: &DataFrame, name: &str) -> Result<Vec<Option<u32>>> {
    let c = df.column(name).and_then(|c| c.cast(&DataType::UInt32)).map_err(table_error("report"))?;
    Ok(c.u32().map_err(table_error("report"))?.iter().collect())
}

/// Training rows summed over replicates, by the model that trained on
/// them, the generation they were written at, and whether they are real:
/// (model_generation, source_generation, real, rows).
pub fn training_by_source(run: &Path) -> Result<Vec<(u32, u32, bool, u64)>> {
    let df = query::frame(
        run,
        "SELECT t.model_generation, s.generation AS source, s.origin = 'real' AS real, count(*) AS n \
         FROM training t JOIN samples s ON t.sample_id = s.sample_id \
         GROUP BY t.model_generation, s.generation, s.origin ORDER BY t.model_generation, s.generation",
    )?;
    let model = u32_column(&df, "model_generation")?;
    let source = u32_column(&df, "source")?;
    let real = df.column("real").and_then(|c| c.bool().cloned()).map_err(table_error("training"))?;
    let n = df.column("n").and_then(|c| c.cast(&DataType::UInt64)).map_err(table_error("training"))?;
    let n = n.u64().map_err(table_error("training"))?;
    Ok((0..df.height()).filter_map(|i| Some((model[i]?, source[i]?, real.get(i)?, n.get(i)?))).collect())
}

/// A filtered run's candidates and kept rows (with their copies) per model
/// generation, real and synthetic apart: (model, real, candidates, kept).
/// Empty for a run without a filter.
pub fn filter_kept(run: &Path) -> Result<Vec<(u32, bool, u64, u64)>> {
    if !run.join(super::store::FILTER_DIR).is_dir() {
        return Ok(Vec::new());
    }
    let df = query::frame(
        run,
        "SELECT f.model_generation, s.origin = 'real' AS real, count(*) AS candidates, sum(f.copies) AS kept \
         FROM filter f JOIN samples s ON f.sample_id = s.sample_id \
         GROUP BY f.model_generation, s.origin ORDER BY f.model_generation, s.origin",
    )?;
    let model = u32_column(&df, "model_generation")?;
    let real = df.column("real").and_then(|c| c.bool().cloned()).map_err(table_error("filter"))?;
    let count = |name: &str| -> Result<Vec<Option<u64>>> {
        let c = df.column(name).and_then(|c| c.cast(&DataType::UInt64)).map_err(table_error("filter"))?;
        Ok(c.u64().map_err(table_error("filter"))?.iter().collect())
    };
    let (candidates, kept) = (count("candidates")?, count("kept")?);
    Ok((0..df.height()).filter_map(|i| Some((model[i]?, real.get(i)?, candidates[i]?, kept[i]?))).collect())
}

/// Every metric of every cell of a study, by cell id then metric name, in
/// one query over the study's tables.
pub fn study_metrics(study: &Path) -> Result<BTreeMap<String, BTreeMap<String, Vec<MetricPoint>>>> {
    let df = query::frame(
        study,
        "SELECT cell, metric, replicate, generation, value FROM metrics ORDER BY cell, metric, generation, replicate",
    )?;
    let cell = df.column("cell").and_then(|c| c.str().cloned()).map_err(table_error("metrics"))?;
    let name = df.column("metric").and_then(|c| c.str().cloned()).map_err(table_error("metrics"))?;
    let rep = u32_column(&df, "replicate")?;
    let gen = u32_column(&df, "generation")?;
    let value = df.column("value").and_then(|c| c.f64().cloned()).map_err(table_error("metrics"))?;
    let mut out: BTreeMap<String, BTreeMap<String, Vec<MetricPoint>>> = BTreeMap::new();
    for i in 0..df.height() {
        if let (Some(c), Some(m), Some(r), Some(g), Some(v)) = (cell.get(i), name.get(i), rep[i], gen[i], value.get(i))
        {
            out.entry(c.to_string()).or_default().entry(m.to_string()).or_default().push(MetricPoint {
                replicate: r,
                generation: g,
                value: v,
            });
        }
    }
    Ok(out)
}
