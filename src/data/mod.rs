//! Everything that touches tables: building frames, reading data files,
//! writing the run directory, and SQL. Polars stays inside `data` and
//! `metrics`.

pub mod checks;
pub mod csv_images;
pub mod frames;
pub mod idx;
pub mod load;
mod pages;
mod parquet_out;
mod pool;
pub mod query;
pub mod ranges;
pub mod report;
pub mod store;

use crate::error::Error;

/// Wraps a Polars error with what was being built or read.
pub(crate) fn table_error(context: &'static str) -> impl Fn(polars::error::PolarsError) -> Error {
    move |e| Error::Table { context: context.to_string(), message: e.to_string() }
}

/// A file for reading, through gzip when it starts with gzip's magic
/// bytes (the image formats come either way).
pub(crate) fn open_maybe_gz(path: &std::path::Path) -> crate::error::Result<Box<dyn std::io::BufRead>> {
    use std::io::{BufReader, Read};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(if gz { Box::new(BufReader::new(flate2::read::GzDecoder::new(f))) } else { Box::new(BufReader::new(f)) })
}

/// A generation's samples table encoded as the Parquet file the run
/// writes, in memory (for benchmarks and tests of the encoding).
pub fn encode_samples(table: frames::SamplesTable) -> crate::error::Result<Vec<u8>> {
    let mut df = table.0;
    let mut out = Vec::new();
    parquet_out::write(&mut out, &mut df).map_err(table_error("samples"))?;
    Ok(out)
}
