//! Builds the run's tables (DESIGN.md) from plain rows. Column order and
//! types here are the on-disk contract.

use std::borrow::Cow;

use polars::prelude::*;

use super::parquet_out::{dictionary_keys, write_columns, Col, Squeeze};
use crate::error::Result;
use crate::filter::{FilterRows, Weights};
use crate::model::ParamsCell;
use crate::values::{Block, Origin, Split, Values};

/// A generation's `samples` rows, every replicate, as one table: what the
/// metrics read and what is written to `samples/generation=K/`.
pub struct SamplesTable {
    /// Every column but `sample_id`.
    pub(crate) df: DataFrame,
    /// `sample_id` as (first id, rows) per block, in row order: ids count
    /// up within a block, so the writer encodes them from these runs (no
    /// metric reads them), and no 8-byte column is built a row at a time.
    pub(crate) ids: Vec<(u64, u64)>,
}

impl SamplesTable {
    pub fn new(blocks: &[&Block]) -> Result<SamplesTable> {
        let df = samples(blocks).map_err(super::table_error("samples"))?;
        Ok(SamplesTable { df, ids: blocks.iter().map(|b| (b.first_id, b.values.len() as u64)).collect() })
    }

    pub fn rows(&self) -> usize {
        self.df.height()
    }
}

/// One row of the long metrics table.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub replicate: u32,
    pub generation: u32,
    pub metric: crate::metric_name::MetricName,
    pub value: f64,
}

/// A fitted model's row in the models table.
pub struct ModelRow {
    pub replicate: u32,
    pub model_generation: u32,
    pub kind: &'static str,
    pub params: ParamsCell,
    /// (path in the run directory, blake3) of a weights file, if any.
    pub file: Option<(String, String)>,
}

/// `samples` rows of one generation, every replicate, in block order, but
/// `sample_id` (see `SamplesTable::ids`). The
/// generation is not a column of the file: the hive partition
/// `generation=K` carries it, so DuckDB, pyarrow and polars read the folder
/// as-is without two conflicting `generation` columns.
fn samples(blocks: &[&Block]) -> PolarsResult<DataFrame> {
    let n: usize = blocks.iter().map(|b| b.values.len()).sum();
    let mut replicate = Vec::with_capacity(n);
    for b in blocks {
        replicate.extend(std::iter::repeat_n(b.replicate, b.values.len()));
    }
    let origin = |b: &Block| if b.origin == Origin::Real { "real" } else { "synthetic" };
    let split = |b: &Block| if b.split == Split::Train { "train" } else { "test" };
    // Blocks come in replicate order: saying so lets the metric queries
    // group by contiguous slices instead of hashing every row.
    let sorted = replicate.is_sorted();
    // Columns take the vectors over (from_vec), not a copy of them.
    let mut replicate = UInt32Chunked::from_vec("replicate".into(), replicate).into_series();
    if sorted {
        replicate.set_sorted_flag(polars::series::IsSorted::Ascending);
    }
    let mut columns = vec![
        Column::from(replicate),
        per_block("origin", blocks, n, |b| AnyValue::String(origin(b))),
        per_block("model_generation", blocks, n, |b| b.model_generation.map_or(AnyValue::Null, AnyValue::UInt32)),
        per_block("split", blocks, n, |b| AnyValue::String(split(b))),
    ];
    match blocks.first().map(|b| &b.values) {
        Some(Values::Vectors { d, .. }) => {
            for j in 0..*d {
                let mut x: Vec<f64> = Vec::with_capacity(n);
                for b in blocks {
                    match &b.values {
                        Values::Vectors { d: 1, data } => x.extend_from_slice(data),
                        Values::Vectors { d, data } => x.extend(data.iter().skip(j).step_by(*d)),
                        _ => {}
                    }
                }
                columns.push(Float64Chunked::from_vec(format!("x{j}").into(), x).into_column());
            }
        }
        Some(Values::Tokens(_)) => {
            let mut t = Vec::with_capacity(n);
            for b in blocks {
                if let Values::Tokens(v) = &b.values {
                    t.extend_from_slice(v);
                }
            }
            columns.push(Column::new("token".into(), t));
        }
        Some(Values::Images { h, w, .. }) => {
            let p = h * w;
            let mut pixels: Vec<&[u8]> = Vec::with_capacity(n);
            let mut label: Vec<Option<u32>> = Vec::with_capacity(n);
            for b in blocks {
                if let Values::Images { pixels: px, labels, .. } = &b.values {
                    pixels.extend(px.chunks(p));
                    label.extend(labels.iter().map(|l| l.map(u32::from)));
                }
            }
            columns.push(Column::new("pixels".into(), pixels));
            columns.push(Column::new_scalar(
                "height".into(),
                Scalar::new(DataType::UInt32, AnyValue::UInt32(*h as u32)),
                n,
            ));
            columns.push(Column::new_scalar(
                "width".into(),
                Scalar::new(DataType::UInt32, AnyValue::UInt32(*w as u32)),
                n,
            ));
            columns.push(Column::new("label".into(), label));
        }
        Some(Values::Texts { .. }) => {
            let mut text: Vec<&str> = Vec::with_capacity(n);
            let mut n_tokens: Vec<u32> = Vec::with_capacity(n);
            let mut ppl: Vec<Option<f64>> = Vec::with_capacity(n);
            for b in blocks {
                if let Values::Texts { text: t, ids, gen0_ppl } = &b.values {
                    text.extend(t.iter().map(String::as_str));
                    n_tokens.extend(ids.iter().map(|r| r.len() as u32));
                    ppl.extend_from_slice(gen0_ppl);
                }
            }
            columns.push(Column::new("text".into(), text));
            columns.push(Column::new("n_tokens".into(), n_tokens));
            columns.push(Column::new("gen0_ppl".into(), ppl));
        }
        None => {}
    }
    DataFrame::new(n, columns)
}

/// A column whose value is fixed within each block: one scalar when every
/// block agrees (the common case: a synthetic generation), which spares
/// building and hashing n strings.
fn per_block<'a>(name: &str, blocks: &[&'a Block], n: usize, value: impl Fn(&'a Block) -> AnyValue<'a>) -> Column {
    let dtype = if name == "model_generation" { DataType::UInt32 } else { DataType::String };
    let first = blocks.first().map(|b| value(b));
    if let Some(v) = first.as_ref().filter(|v| blocks.iter().all(|b| value(b) == **v)) {
        return Column::new_scalar(name.into(), Scalar::new(dtype, v.clone().into_static()), n);
    }
    let mut values: Vec<AnyValue> = Vec::with_capacity(n);
    for b in blocks {
        values.extend(std::iter::repeat_n(value(b), b.values.len()));
    }
    Series::from_any_values_and_dtype(name.into(), &values, &dtype, true)
        .map(Column::from)
        .unwrap_or_else(|_| Column::full_null(name.into(), n, &dtype))
}

/// A run table other than `samples`, as the chain made its rows; the
/// writer encodes it straight from them (`write`).
pub enum RowsTable {
    /// Membership of every model's training set as runs of consecutive
    /// ids, for model generation k: (replicate, model_generation,
    /// sample_id_start, sample_count). Expanded to one row per (model,
    /// row) by the `training` view of `collapse query`.
    Training(u32, Vec<(u32, Vec<(u64, u64)>)>),
    Models(Vec<ModelRow>),
    Metrics(Vec<MetricRow>),
    /// The curation filter's decision on every candidate of each model
    /// k's training set (model generation k; per replicate, in candidate
    /// order).
    Filter(u32, Vec<FilterRows>),
}

impl RowsTable {
    pub fn rows(&self) -> usize {
        match self {
            RowsTable::Training(_, rows) => rows.iter().map(|r| r.1.len()).sum(),
            RowsTable::Models(rows) => rows.len(),
            RowsTable::Metrics(rows) => rows.len(),
            RowsTable::Filter(_, rows) => rows.iter().map(|r| r.decisions.len()).sum(),
        }
    }

    /// Encodes the table as one Parquet file into `w`; returns its size.
    pub(crate) fn write<W: std::io::Write>(&self, w: W) -> PolarsResult<u64> {
        match self {
            RowsTable::Training(k, rows) => write_columns(w, training(*k, rows)),
            RowsTable::Models(rows) => {
                let params: Vec<Cow<str>> = rows.iter().map(|r| r.params.json()).collect();
                // Closed-form models keep their parameters inline and are
                // hashed by them; others name a weights file and its hash.
                let hashes: Vec<String> = rows
                    .iter()
                    .zip(&params)
                    .map(|(r, p)| match &r.file {
                        Some((_, h)) => h.clone(),
                        None => blake3::hash(p.as_bytes()).to_hex().to_string(),
                    })
                    .collect();
                write_columns(w, models(rows, &params, &hashes))
            }
            RowsTable::Metrics(rows) => write_columns(w, metrics(rows)),
            RowsTable::Filter(k, rows) => {
                let flagged: Vec<bool> = rows.iter().flat_map(|r| r.decisions.flagged.iter().copied()).collect();
                write_columns(w, filter(*k, rows, &flagged))
            }
        }
    }
}

fn training(k: u32, rows: &[(u32, Vec<(u64, u64)>)]) -> Vec<(&'static str, Col<'static>)> {
    let n: usize = rows.iter().map(|r| r.1.len()).sum();
    let (mut rep, mut start, mut count) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (r, runs) in rows {
        for (s, c) in runs.iter() {
            rep.push(*r);
            start.push(*s);
            count.push(*c);
        }
    }
    vec![
        ("replicate", Col::U32(rep)),
        ("model_generation", Col::U32(vec![k; n])),
        ("sample_id_start", Col::U64(start)),
        ("sample_count", Col::U64(count)),
    ]
}

/// The filter table from the chains' decisions, a column at a time:
/// a run has as many candidates as samples, so what the rows share (the
/// replicate, the generation, ids that count up, weights and copies that
/// follow the flags) goes to the writer as runs, not a value a row.
fn filter<'a>(k: u32, rows: &[FilterRows], flagged: &'a [bool]) -> Vec<(&'static str, Col<'a>)> {
    let n = flagged.len();
    let mut ids = Vec::with_capacity(rows.iter().map(|r| r.ids.len()).sum());
    for r in rows {
        for &(first, count) in &r.ids {
            crate::values::push_run(&mut ids, first, count);
        }
    }
    let score = if rows.iter().all(|r| r.decisions.scores.is_empty()) {
        Col::NullF64(n)
    } else {
        let mut scores = crate::filter::Scores { values: Vec::with_capacity(n), judged: Vec::new() };
        for r in rows {
            match r.decisions.scores.is_empty() {
                true => scores.push(false, std::iter::repeat_n(0.0, r.decisions.len())),
                false => {
                    scores.values.extend_from_slice(&r.decisions.scores.values);
                    for &(count, judged) in &r.decisions.scores.judged {
                        scores.push_run(count, judged);
                    }
                }
            }
        }
        Col::OptF64(scores.values, scores.judged)
    };
    let by_flag = |r: &FilterRows| match r.decisions.weights {
        Weights::ByFlag { kept, flagged } => Some((kept.to_bits(), flagged.to_bits())),
        Weights::Rows(_) => None,
    };
    let first = rows.first().and_then(by_flag);
    let weight = match first {
        Some((kept, gone)) if rows.iter().all(|r| by_flag(r) == first) => {
            Col::F64ByFlag(flagged, [f64::from_bits(kept), f64::from_bits(gone)])
        }
        _ => few_floats(rows.iter().flat_map(|r| (0..r.decisions.len()).map(|i| r.decisions.weight(i)))),
    };
    let copies = if rows.iter().all(|r| r.decisions.copies.is_empty()) {
        Col::U32ByFlag(flagged, [1, 0])
    } else {
        Col::U32(rows.iter().flat_map(|r| (0..r.decisions.len()).map(|i| r.decisions.copies(i))).collect())
    };
    vec![
        ("replicate", Col::U32Runs(rows.iter().map(|r| (r.decisions.len(), r.replicate)).collect())),
        ("model_generation", Col::U32Runs(vec![(n, k)])),
        ("sample_id", Col::U64Runs(ids)),
        ("score", score),
        ("flagged", Col::Bool(flagged)),
        ("weight", weight),
        ("copies", copies),
    ]
}

/// A float column as a dictionary when it holds at most 64 values (a
/// detector's or a drop filter's weights), else plain.
fn few_floats(values: impl Iterator<Item = f64>) -> Col<'static> {
    let mut distinct: Vec<f64> = Vec::new();
    let mut keys = Vec::new();
    let mut plain = Vec::new();
    for v in values {
        plain.push(v);
        if keys.len() + 1 != plain.len() {
            continue;
        }
        match distinct.iter().position(|d| d.to_bits() == v.to_bits()) {
            Some(i) => keys.push(i as u32),
            None if distinct.len() < 64 => {
                distinct.push(v);
                keys.push((distinct.len() - 1) as u32);
            }
            None => {}
        }
    }
    if keys.len() == plain.len() {
        Col::F64Dict(distinct, keys)
    } else {
        Col::F64(plain)
    }
}

fn models<'a>(rows: &'a [ModelRow], params: &'a [Cow<str>], hashes: &'a [String]) -> Vec<(&'static str, Col<'a>)> {
    vec![
        ("replicate", Col::U32(rows.iter().map(|r| r.replicate).collect())),
        ("model_generation", Col::U32(rows.iter().map(|r| r.model_generation).collect())),
        ("kind", few_values(rows.iter().map(|r| r.kind))),
        // Raw: Snappy made a closed-form run's params a third smaller (5 MB
        // of a 214 MB M=100 run) for 35-45 us a generation on the writer,
        // which at that size is as busy as the chains' thread: 5% of the
        // run's wall time (round-robin runs, 0.395 against 0.415 s median).
        ("params", Col::Text(params.iter().map(|p| Some(p.as_ref())).collect(), Squeeze::Raw)),
        ("file", Col::Text(rows.iter().map(|r| r.file.as_ref().map(|f| f.0.as_str())).collect(), Squeeze::Snappy)),
        ("blake3", Col::Text(hashes.iter().map(|h| Some(h.as_str())).collect(), Squeeze::Raw)),
    ]
}

fn metrics(rows: &[MetricRow]) -> Vec<(&'static str, Col<'_>)> {
    vec![
        ("replicate", Col::U32(rows.iter().map(|r| r.replicate).collect())),
        ("generation", Col::U32(rows.iter().map(|r| r.generation).collect())),
        ("metric", few_values(rows.iter().map(|r| &*r.metric))),
        ("value", Col::F64(rows.iter().map(|r| r.value).collect())),
    ]
}

/// A string column of a few values (model kinds, metric names) as a
/// dictionary.
fn few_values<'a>(strings: impl Iterator<Item = &'a str>) -> Col<'a> {
    // No limit: these columns hold a handful of names whatever the run.
    let (values, keys) = dictionary_keys(strings.map(Some), usize::MAX).unwrap_or_default();
    Col::Dict(values, keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that cycle in order, skip one, come back out of order, or
    /// appear once: each row keeps its own value.
    #[test]
    fn few_values_index_every_row() {
        let rows = ["mean", "var", "w2", "mean", "var", "w2", "mean", "w2", "var", "new", "mean"];
        let Col::Dict(values, keys) = few_values(rows.iter().copied()) else { panic!("a dictionary") };
        assert_eq!(values, ["mean", "var", "w2", "new"]);
        let back: Vec<&str> = keys.iter().map(|&k| values[k as usize]).collect();
        assert_eq!(back, rows);
    }
}
