//! A query's result for other tools: an Arrow IPC stream or a Parquet file,
//! written with the Apache Arrow crates (`arrow`, `parquet`), so pandas,
//! pyarrow and DuckDB take it without CSV. Polars' frame is copied column
//! by column into Arrow arrays of the same types.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType as ArrowType, Field, Schema};
use arrow::record_batch::RecordBatch;
use polars::prelude::*;

use crate::error::{Error, Result};

fn column(c: &Column) -> Result<(ArrowType, ArrayRef)> {
    let s = c.as_materialized_series();
    let bad = |e: PolarsError| Error::table(format!("query output column {}", c.name()), e);
    Ok(match s.dtype() {
        DataType::Boolean => (ArrowType::Boolean, Arc::new(s.bool().map_err(bad)?.iter().collect::<BooleanArray>())),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => {
            let s = s.cast(&DataType::UInt32).map_err(bad)?;
            (ArrowType::UInt32, Arc::new(s.u32().map_err(bad)?.iter().collect::<UInt32Array>()))
        }
        DataType::UInt64 => (ArrowType::UInt64, Arc::new(s.u64().map_err(bad)?.iter().collect::<UInt64Array>())),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            let s = s.cast(&DataType::Int32).map_err(bad)?;
            (ArrowType::Int32, Arc::new(s.i32().map_err(bad)?.iter().collect::<Int32Array>()))
        }
        DataType::Int64 => (ArrowType::Int64, Arc::new(s.i64().map_err(bad)?.iter().collect::<Int64Array>())),
        DataType::Float32 => (ArrowType::Float32, Arc::new(s.f32().map_err(bad)?.iter().collect::<Float32Array>())),
        DataType::Float64 => (ArrowType::Float64, Arc::new(s.f64().map_err(bad)?.iter().collect::<Float64Array>())),
        DataType::String => (ArrowType::Utf8, Arc::new(s.str().map_err(bad)?.iter().collect::<StringArray>())),
        DataType::Binary => (ArrowType::Binary, Arc::new(s.binary().map_err(bad)?.iter().collect::<BinaryArray>())),
        other => {
            return Err(Error::Input(format!(
                "query: column {} is {other}, which --format arrow and parquet do not write yet; cast it in the query (e.g. CAST(x AS VARCHAR)) or use --format json",
                c.name()
            )))
        }
    })
}

/// The frame as one Arrow record batch.
pub fn record_batch(df: &DataFrame) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(df.width());
    let mut arrays = Vec::with_capacity(df.width());
    for c in df.columns() {
        let (t, a) = column(c)?;
        fields.push(Field::new(c.name().as_str(), t, a.null_count() > 0 || c.null_count() > 0));
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| Error::table("query output", e))
}

/// An Arrow IPC stream of the frame.
pub fn arrow_stream(df: &DataFrame) -> Result<Vec<u8>> {
    let batch = record_batch(df)?;
    let mut out = Vec::new();
    let bad = |e: arrow::error::ArrowError| Error::table("query output (Arrow IPC)", e);
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).map_err(bad)?;
    w.write(&batch).map_err(bad)?;
    w.finish().map_err(bad)?;
    drop(w);
    Ok(out)
}

/// A Parquet file of the frame (Snappy, statistics), `created_by` naming
/// collapse and its version.
pub fn parquet_file(df: &DataFrame) -> Result<Vec<u8>> {
    let batch = record_batch(df)?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_created_by(super::parquet_out::CREATED_BY.to_string())
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let bad = |e: parquet::errors::ParquetError| Error::table("query output (Parquet)", e);
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).map_err(bad)?;
    w.write(&batch).map_err(bad)?;
    w.close().map_err(bad)?;
    Ok(out)
}
