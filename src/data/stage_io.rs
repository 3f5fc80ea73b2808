//! The files of a command stage (`model.kind = "command"`): T_k written as
//! Parquet with its provenance columns for the user's program, and the
//! program's output read back and checked, every problem named by column.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// T_k's rows with their provenance, in T_k's order.
pub struct TrainingRows<'a> {
    pub sample_id: Vec<u64>,
    pub replicate: u32,
    pub generation: Vec<u32>,
    pub real: Vec<bool>,
    pub model_generation: Vec<Option<u32>>,
    /// Row-major, `d` values a row.
    pub data: &'a [f64],
    pub d: usize,
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
    for j in 0..t.d {
        let xs: Vec<f64> = (0..n).map(|i| t.data[i * t.d + j]).collect();
        columns.push(Column::new(format!("x{j}").into(), xs));
    }
    let mut df = DataFrame::new(n, columns).map_err(|e| Error::table("stage input", e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file).finish(&mut df).map_err(|e| Error::table("stage input", e))?;
    Ok(())
}

/// The program's rows: exactly `rows` rows of the numeric columns
/// `columns`, every value finite. Each problem says which column and why.
pub fn read_output(path: &Path, columns: &[String], rows: usize) -> std::result::Result<Vec<f64>, String> {
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
    let lf = LazyFrame::scan_parquet(p, args)
        .map_err(|e| format!("wrote a file that is not readable Parquet ({})", first_line(&e)))?;
    let mut lf = lf;
    let schema =
        lf.collect_schema().map_err(|e| format!("wrote a file that is not readable Parquet ({})", first_line(&e)))?;
    let mut problems = Vec::new();
    for c in columns {
        match schema.get(c.as_str()) {
            None => problems.push(format!(
                "wrote no column {c} (its columns: {}); write {}",
                schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                columns.join(", ")
            )),
            Some(t) if !t.is_primitive_numeric() => {
                problems.push(format!("wrote column {c} as {t}, not numbers; write floats (f64)"))
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let df = lf
        .select(columns.iter().map(|c| col(c.as_str()).cast(DataType::Float64)).collect::<Vec<_>>())
        .collect()
        .map_err(|e| format!("wrote rows that cannot be read ({})", first_line(&e)))?;
    if df.height() != rows {
        return Err(format!("wrote {} rows; generate.n asks for exactly {rows}", df.height()));
    }
    let d = columns.len();
    let mut data = vec![0.0; rows * d];
    for (j, c) in columns.iter().enumerate() {
        let ca = df.column(c).and_then(|s| s.f64().cloned()).map_err(|e| first_line(&e))?;
        for (i, v) in ca.iter().enumerate() {
            match v {
                None => return Err(format!("wrote a missing value (null) in column {c}, row {i}")),
                Some(x) if !x.is_finite() => {
                    return Err(format!("wrote {x} in column {c}, row {i}; every value must be a finite number"))
                }
                Some(x) => data[i * d + j] = x,
            }
        }
    }
    Ok(data)
}

fn first_line(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}
