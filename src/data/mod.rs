//! Everything that touches tables: building frames, reading data files,
//! writing the run directory, and SQL. Polars stays inside `data` and
//! `metrics`.

pub mod frames;
pub mod load;
pub mod query;
pub mod store;
