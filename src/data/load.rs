//! Reads real data (D_0) from a Parquet or CSV file the user names. Every
//! problem names the file and the column, and what to change.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::values::Values;

/// The formats of a data file D_0 may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
}

/// A file named as one format that is plainly the other: Parquet starts
/// (and ends) with `PAR1`; read as CSV its bytes would become column names.
fn check_magic(path: &Path, format: FileFormat) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| Error::io(path, e))?;
    let parquet = n == 4 && &head == b"PAR1";
    let message = match format {
        FileFormat::Csv if parquet => "looks like Parquet (it starts with PAR1): set data.source = \"parquet\"",
        FileFormat::Parquet
            if n > 0 && !parquet && head[..n].iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            "is not Parquet (no PAR1 at its start) but text: if it is CSV, set data.source = \"csv\""
        }
        _ => return Ok(()),
    };
    Err(Error::Data { file: path.to_path_buf(), message: message.into() })
}

fn scan(path: &Path, format: FileFormat) -> Result<LazyFrame> {
    check_magic(path, format)?;
    let bad = |e: PolarsError| Error::Data {
        file: path.to_path_buf(),
        message: format!("cannot read as {}: {e}", if format == FileFormat::Csv { "CSV" } else { "Parquet" }),
    };
    let p = PlRefPath::try_from_path(path).map_err(bad)?;
    match format {
        FileFormat::Parquet => LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(bad),
        FileFormat::Csv => {
            LazyCsvReader::new(p).with_has_header(true).with_infer_schema_length(Some(10_000)).finish().map_err(bad)
        }
    }
}

/// Checks that the file opens and that every named column is present and
/// numeric, without reading the data: what `collapse validate` can afford.
pub fn check_columns(path: &Path, format: FileFormat, columns: &[String]) -> Result<()> {
    guarded(path, || check_columns_unguarded(path, format, columns))
}

fn check_columns_unguarded(path: &Path, format: FileFormat, columns: &[String]) -> Result<()> {
    let mut lf = scan(path, format)?;
    let schema = lf.collect_schema().map_err(|e| Error::Data {
        file: path.to_path_buf(),
        message: format!(
            "cannot read the schema: {e}; is it a valid {} file?",
            if format == FileFormat::Csv { "CSV" } else { "Parquet" }
        ),
    })?;
    let mut problems = Vec::new();
    for c in columns {
        match schema.get(c.as_str()) {
            None => {
                let have: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
                problems.push(format!("column {c:?} not found (the file has: {}); fix data.columns", have.join(", ")));
            }
            Some(dt) if !dt.is_primitive_numeric() => {
                problems.push(format!("column {c:?} has type {dt}, not a number; name numeric columns in data.columns"))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Data { file: path.to_path_buf(), message: problems.join("; ") })
    }
}

/// Runs a reader, turning a panic inside it (a damaged file can trip one
/// deep in a decoder) into an error that names the file.
fn guarded<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(Error::Data {
            file: path.to_path_buf(),
            message: "the reader failed on this file; is it damaged or of another format?".into(),
        })
    })
}

/// Reads the named columns as f64 rows (x0, x1, ... in the order named).
/// Nulls, NaN and infinities are errors: a model cannot be fitted on them,
/// and silently dropping rows would change D_0.
pub fn read_vectors(path: &Path, format: FileFormat, columns: &[String]) -> Result<Values> {
    guarded(path, || read_vectors_unguarded(path, format, columns))
}

fn read_vectors_unguarded(path: &Path, format: FileFormat, columns: &[String]) -> Result<Values> {
    check_columns(path, format, columns)?;
    let data_err = |message: String| Error::Data { file: path.to_path_buf(), message };
    let df = scan(path, format)?
        .select(columns.iter().map(|c| col(c.as_str()).cast(DataType::Float64)).collect::<Vec<_>>())
        .collect()
        .map_err(|e| data_err(format!("cannot read columns {columns:?}: {e}")))?;
    let n = df.height();
    if n == 0 {
        return Err(data_err("has no rows; D_0 needs at least one".to_string()));
    }
    let d = columns.len();
    let mut data = vec![0.0; n * d];
    for (j, name) in columns.iter().enumerate() {
        let ca =
            df.column(name).and_then(|c| c.f64().cloned()).map_err(|e| data_err(format!("column {name:?}: {e}")))?;
        for (i, v) in ca.iter().enumerate() {
            match v {
                None => {
                    return Err(data_err(format!("column {name:?} row {i}: missing value; drop or fill nulls first")))
                }
                Some(x) if !x.is_finite() => {
                    return Err(data_err(format!(
                        "column {name:?} row {i}: {x} is not a finite number; drop or fix such rows first"
                    )))
                }
                Some(x) => data[i * d + j] = x,
            }
        }
    }
    Ok(Values::Vectors { d, data })
}
