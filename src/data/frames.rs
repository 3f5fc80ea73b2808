//! Builds the run's tables (DESIGN.md) from plain rows. Column order and
//! types here are the on-disk contract.

use polars::prelude::*;

use crate::error::Result;
use crate::values::{Block, Origin, Split, Values};

/// A generation's `samples` rows, every replicate, as one table: what the
/// metrics read and what is written to `samples/generation=K/`.
pub struct SamplesTable(pub(crate) DataFrame);

impl SamplesTable {
    pub fn new(blocks: &[&Block]) -> Result<SamplesTable> {
        samples(blocks).map(SamplesTable).map_err(super::table_error("samples"))
    }
}

/// One row of the long metrics table.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub replicate: u32,
    pub generation: u32,
    pub metric: crate::metrics::MetricName,
    pub value: f64,
}

/// A fitted model's row in the models table.
pub struct ModelRow {
    pub replicate: u32,
    pub model_generation: u32,
    pub kind: &'static str,
    pub params: String,
    /// (path in the run directory, blake3) of a weights file, if any.
    pub file: Option<(String, String)>,
}

/// `samples` rows of one generation, every replicate, in block order. The
/// generation is not a column of the file: the hive partition
/// `generation=K` carries it, so DuckDB, pyarrow and polars read the folder
/// as-is without two conflicting `generation` columns.
fn samples(blocks: &[&Block]) -> PolarsResult<DataFrame> {
    let n: usize = blocks.iter().map(|b| b.values.len()).sum();
    let mut sample_id = Vec::with_capacity(n);
    let mut replicate = Vec::with_capacity(n);
    for b in blocks {
        sample_id.extend(b.ids());
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
        UInt64Chunked::from_vec("sample_id".into(), sample_id).into_column(),
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

/// Membership of every model's training set as runs of consecutive ids:
/// (replicate, model_generation, sample_id_start, sample_count). Expanded
/// to one row per (model, row) by the `training` view of `collapse query`.
pub fn training_runs(k: u32, rows: &[(u32, Vec<(u64, u64)>)]) -> PolarsResult<DataFrame> {
    let n: usize = rows.iter().map(|r| r.1.len()).sum();
    let (mut rep, mut gen, mut start, mut count) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (r, runs) in rows {
        for (s, c) in runs.iter() {
            rep.push(*r);
            gen.push(k);
            start.push(*s);
            count.push(*c);
        }
    }
    DataFrame::new(
        n,
        vec![
            Column::new("replicate".into(), rep),
            Column::new("model_generation".into(), gen),
            Column::new("sample_id_start".into(), start),
            Column::new("sample_count".into(), count),
        ],
    )
}

pub fn models(rows: &[ModelRow]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let hashes: Vec<String> = rows
        .iter()
        .map(|r| match &r.file {
            Some((_, h)) => h.clone(),
            None => blake3::hash(r.params.as_bytes()).to_hex().to_string(),
        })
        .collect();
    DataFrame::new(
        n,
        vec![
            Column::new("replicate".into(), rows.iter().map(|r| r.replicate).collect::<Vec<_>>()),
            Column::new("model_generation".into(), rows.iter().map(|r| r.model_generation).collect::<Vec<_>>()),
            Column::new("kind".into(), rows.iter().map(|r| r.kind).collect::<Vec<_>>()),
            Column::new("params".into(), rows.iter().map(|r| r.params.as_str()).collect::<Vec<_>>()),
            // Closed-form models keep their parameters inline; `file` names a
            // weights file for models that have one.
            Column::new("file".into(), rows.iter().map(|r| r.file.as_ref().map(|f| f.0.as_str())).collect::<Vec<_>>()),
            Column::new("blake3".into(), hashes),
        ],
    )
}

pub fn metrics(rows: &[MetricRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            Column::new("replicate".into(), rows.iter().map(|r| r.replicate).collect::<Vec<_>>()),
            Column::new("generation".into(), rows.iter().map(|r| r.generation).collect::<Vec<_>>()),
            Column::new("metric".into(), rows.iter().map(|r| &*r.metric).collect::<Vec<_>>()),
            Column::new("value".into(), rows.iter().map(|r| r.value).collect::<Vec<_>>()),
        ],
    )
}
