//! The files of a command stage (`model.kind = "command"`): T_k written as
//! Parquet with its provenance columns for the user's program, and the
//! program's output read back and checked, every problem named by column.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::values::Values;

/// T_k's rows with their provenance, in T_k's order.
pub struct TrainingRows<'a> {
    pub sample_id: Vec<u64>,
    pub replicate: u32,
    pub generation: Vec<u32>,
    pub real: Vec<bool>,
    pub model_generation: Vec<Option<u32>>,
    pub values: &'a Values,
}

/// What the program must write: the data columns of the run's kind.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// `x0 .. x{d-1}`, finite numbers.
    Vectors(usize),
    /// `token`, whole numbers in 0 .. symbols.
    Tokens(u32),
    /// `text`, strings.
    Texts,
    /// `pixels`, h*w bytes each, and optionally `label` (0..255).
    Images(usize, usize),
}

impl Shape {
    pub fn of(values: &Values, symbols: u32) -> Shape {
        match values {
            Values::Vectors { d, .. } => Shape::Vectors(*d),
            Values::Tokens(_) => Shape::Tokens(symbols),
            Values::Texts { .. } => Shape::Texts,
            Values::Images { h, w, .. } => Shape::Images(*h, *w),
        }
    }

    /// The columns and their types, for stage.json and messages.
    pub fn columns(&self) -> Vec<(String, &'static str)> {
        match self {
            Shape::Vectors(d) => (0..*d).map(|j| (format!("x{j}"), "f64")).collect(),
            Shape::Tokens(_) => vec![("token".into(), "u32")],
            Shape::Texts => vec![("text".into(), "string")],
            Shape::Images(..) => vec![("pixels".into(), "binary"), ("label".into(), "u8 (optional)")],
        }
    }
}

/// Writes T_k to `path`: sample_id, replicate, generation, origin,
/// model_generation, split ('train'), then x0 .. x{d-1}.
pub fn write_training(path: &Path, t: &TrainingRows) -> Result<()> {
    let n = t.sample_id.len();
    let mut columns = vec![
        Column::new("sample_id".into(), &t.sample_id),
        Column::new("replicate".into(), vec![t.replicate; n]),
        Column::new("generation".into(), &t.generation),
        Column::new("origin".into(), t.real.iter().map(|&r| if r { "real" } else { "synthetic" }).collect::<Vec<_>>()),
        Column::new("model_generation".into(), &t.model_generation),
        Column::new("split".into(), vec!["train"; n]),
    ];
    columns.extend(data_columns(t.values, n));
    let mut df = DataFrame::new(n, columns).map_err(|e| Error::table("stage input", e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file).finish(&mut df).map_err(|e| Error::table("stage input", e))?;
    Ok(())
}

/// The data columns of `n` rows: x0 .. x{d-1}, token, text, or pixels,
/// height, width and label.
fn data_columns(values: &Values, n: usize) -> Vec<Column> {
    let mut columns = Vec::new();
    match values {
        Values::Vectors { d, data } => {
            for j in 0..*d {
                let xs: Vec<f64> = (0..n).map(|i| data[i * d + j]).collect();
                columns.push(Column::new(format!("x{j}").into(), xs));
            }
        }
        Values::Tokens(tokens) => columns.push(Column::new("token".into(), tokens)),
        Values::Texts { text, .. } => columns.push(Column::new("text".into(), text)),
        Values::Images { h, w, pixels, labels } => {
            let size = h * w;
            let rows: Vec<&[u8]> = pixels.chunks(size.max(1)).collect();
            columns.push(Column::new("pixels".into(), rows));
            columns.push(Column::new("height".into(), vec![*h as u32; n]));
            columns.push(Column::new("width".into(), vec![*w as u32; n]));
            columns.push(Column::new("label".into(), labels.iter().map(|l| l.map(u32::from)).collect::<Vec<_>>()));
        }
    }
    columns
}

/// A command filter's candidates (`filter.kind = "command"`): sample_id,
/// replicate and the data columns; not their origin, which a filter must
/// judge from the rows themselves.
pub fn write_candidates(path: &Path, ids: &[u64], replicate: u32, values: &Values) -> Result<()> {
    let n = ids.len();
    let mut columns = vec![Column::new("sample_id".into(), ids), Column::new("replicate".into(), vec![replicate; n])];
    columns.extend(data_columns(values, n));
    let mut df = DataFrame::new(n, columns).map_err(|e| Error::table("filter candidates", e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file).finish(&mut df).map_err(|e| Error::table("filter candidates", e))?;
    Ok(())
}

/// What a program wrote at {out}, opened as a scan with its schema; a
/// missing, empty or unreadable file is the problem, worded to follow
/// "the command ...".
fn open_output(path: &Path) -> std::result::Result<(LazyFrame, SchemaRef), String> {
    let meta = std::fs::metadata(path).map_err(|_| "wrote nothing (no file at {out})".to_string())?;
    if meta.len() == 0 {
        return Err("wrote an empty file at {out}".into());
    }
    let p = PlRefPath::try_from_path(path).map_err(|e| e.to_string())?;
    // The scratch folder's names look like hive partitions; they are not.
    let args = ScanArgsParquet {
        hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
        ..Default::default()
    };
    let mut lf = LazyFrame::scan_parquet(p, args)
        .map_err(|e| format!("wrote a file that is not readable Parquet ({})", first_line(&e)))?;
    let schema =
        lf.collect_schema().map_err(|e| format!("wrote a file that is not readable Parquet ({})", first_line(&e)))?;
    Ok((lf, schema))
}

/// A command filter's scores: columns sample_id and score, every candidate
/// exactly once; returned in the candidates' order. A problem is worded
/// to follow "the command ...".
pub fn read_scores(path: &Path, ids: &[u64]) -> std::result::Result<Vec<f64>, String> {
    let (lf, schema) = open_output(path)?;
    for (c, ok, want) in [
        ("sample_id", schema.get("sample_id").is_some_and(|t| t.is_integer()), "whole numbers"),
        ("score", schema.get("score").is_some_and(|t| t.is_primitive_numeric()), "numbers"),
    ] {
        if !ok {
            let cols = schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
            return Err(format!("wrote no column {c} of {want} (its columns: {cols}); write sample_id and score"));
        }
    }
    let df = lf
        .select([col("sample_id").cast(DataType::UInt64), col("score").cast(DataType::Float64)])
        .collect()
        .map_err(|e| format!("wrote rows that cannot be read ({})", first_line(&e)))?;
    let sid = df.column("sample_id").and_then(|c| c.u64().cloned()).map_err(|e| first_line(&e))?;
    let score = df.column("score").and_then(|c| c.f64().cloned()).map_err(|e| first_line(&e))?;
    let at: std::collections::HashMap<u64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut out: Vec<Option<f64>> = vec![None; ids.len()];
    for (i, (id, s)) in sid.iter().zip(score.iter()).enumerate() {
        let (Some(id), Some(s)) = (id, s) else {
            return Err(format!("wrote a missing value (null) in row {i}"));
        };
        let Some(&j) = at.get(&id) else {
            return Err(format!("scored sample_id {id}, which is not a candidate"));
        };
        if out[j].replace(s).is_some() {
            return Err(format!("scored sample_id {id} twice"));
        }
    }
    match out.iter().position(Option::is_none) {
        Some(j) => Err(format!(
            "scored {} of the {} candidates; sample_id {} has no score",
            out.iter().flatten().count(),
            ids.len(),
            ids[j]
        )),
        None => Ok(out.into_iter().flatten().collect()),
    }
}

/// The program's rows: exactly `rows` rows of `shape`'s columns, each
/// value valid. Each problem says which column and why, worded to follow
/// "the command ...".
pub fn read_output(path: &Path, shape: Shape, rows: usize) -> std::result::Result<Values, String> {
    let (lf, schema) = open_output(path)?;
    let wanted: Vec<String> = match shape {
        Shape::Images(..) => vec!["pixels".into()],
        other => other.columns().into_iter().map(|(c, _)| c).collect(),
    };
    let mut problems = Vec::new();
    for c in &wanted {
        let ok = |t: &DataType| match shape {
            Shape::Vectors(_) => t.is_primitive_numeric(),
            Shape::Tokens(_) => t.is_integer(),
            Shape::Texts => matches!(t, DataType::String),
            Shape::Images(..) => matches!(t, DataType::Binary | DataType::BinaryOffset),
        };
        let want = match shape {
            Shape::Vectors(_) => "floats (f64)",
            Shape::Tokens(_) => "whole numbers (u32)",
            Shape::Texts => "strings (UTF-8)",
            Shape::Images(..) => "bytes (binary, height x width each)",
        };
        match schema.get(c.as_str()) {
            None => problems.push(format!(
                "wrote no column {c} (its columns: {}); write {}",
                schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                wanted.join(", ")
            )),
            Some(t) if !ok(t) => problems.push(format!("wrote column {c} as {t}; write {want}")),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let mut select: Vec<Expr> = wanted.iter().map(|c| col(c.as_str())).collect();
    if let (Shape::Images(..), Some(_)) = (shape, schema.get("label")) {
        select.push(col("label").cast(DataType::UInt32));
    }
    let df = lf.select(select).collect().map_err(|e| format!("wrote rows that cannot be read ({})", first_line(&e)))?;
    if df.height() != rows {
        return Err(format!("wrote {} rows; generate.n asks for exactly {rows}", df.height()));
    }
    let column = |c: &str| df.column(c).map_err(|e| first_line(&e));
    let null = |c: &str, i: usize| format!("wrote a missing value (null) in column {c}, row {i}");
    match shape {
        Shape::Vectors(d) => {
            let mut data = vec![0.0; rows * d];
            for (j, c) in wanted.iter().enumerate() {
                let ca = column(c)?.cast(&DataType::Float64).map_err(|e| first_line(&e))?;
                let ca = ca.f64().map_err(|e| first_line(&e))?;
                for (i, v) in ca.iter().enumerate() {
                    match v {
                        None => return Err(null(c, i)),
                        Some(x) if !x.is_finite() => {
                            return Err(format!(
                                "wrote {x} in column {c}, row {i}; every value must be a finite number"
                            ))
                        }
                        Some(x) => data[i * d + j] = x,
                    }
                }
            }
            Ok(Values::Vectors { d, data })
        }
        Shape::Tokens(symbols) => {
            let ca = column("token")?.cast(&DataType::Int64).map_err(|e| first_line(&e))?;
            let ca = ca.i64().map_err(|e| first_line(&e))?;
            let mut out = Vec::with_capacity(rows);
            for (i, v) in ca.iter().enumerate() {
                match v {
                    None => return Err(null("token", i)),
                    Some(t) if t < 0 || t >= i64::from(symbols) => {
                        return Err(format!(
                            "wrote token {t} in row {i}; tokens are 0 .. {}",
                            symbols.saturating_sub(1)
                        ))
                    }
                    Some(t) => out.push(t as u32),
                }
            }
            Ok(Values::Tokens(out))
        }
        Shape::Texts => {
            let c = column("text")?;
            let ca = c.str().map_err(|e| first_line(&e))?;
            let mut out = Vec::with_capacity(rows);
            for (i, v) in ca.iter().enumerate() {
                out.push(v.ok_or_else(|| null("text", i))?.to_string());
            }
            Ok(Values::texts(out, Vec::new()))
        }
        Shape::Images(h, w) => {
            let c = column("pixels")?;
            let ca = c.binary().map_err(|e| first_line(&e))?;
            let mut pixels = Vec::with_capacity(rows * h * w);
            for (i, v) in ca.iter().enumerate() {
                let v = v.ok_or_else(|| null("pixels", i))?;
                if v.len() != h * w {
                    return Err(format!(
                        "wrote {} bytes of pixels in row {i}; each image is {h} x {w} = {} bytes",
                        v.len(),
                        h * w
                    ));
                }
                pixels.extend_from_slice(v);
            }
            let labels: Vec<Option<u8>> = match df.column("label") {
                Ok(l) => {
                    let l = l.u32().map_err(|e| first_line(&e))?;
                    let mut out = Vec::with_capacity(rows);
                    for (i, v) in l.iter().enumerate() {
                        match v {
                            Some(x) if x > 255 => {
                                return Err(format!("wrote label {x} in row {i}; labels are 0 .. 255"))
                            }
                            v => out.push(v.map(|x| x as u8)),
                        }
                    }
                    out
                }
                Err(_) => vec![None; rows],
            };
            Ok(Values::Images { h, w, pixels, labels })
        }
    }
}

fn first_line(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}
