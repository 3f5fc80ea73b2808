//! Everything that touches tables: building frames, reading data files,
//! writing the run directory, and SQL. Polars stays inside `data` and
//! `metrics`.

pub mod checks;
pub mod csv_images;
pub mod frames;
pub mod idx;
pub mod load;
mod pool;
pub mod query;
pub mod report;
pub mod store;

use crate::error::Error;

/// Wraps a Polars error with what was being built or read.
pub(crate) fn table_error(context: &'static str) -> impl Fn(polars::error::PolarsError) -> Error {
    move |e| Error::Table { context: context.to_string(), message: e.to_string() }
}
