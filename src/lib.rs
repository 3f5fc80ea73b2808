//! collapse: recursive-training (model collapse) experiments with
//! provenance. See DESIGN.md (in the project's shared folder) and the
//! README for the vocabulary, the pipeline keys and the run directory.

pub mod chain;
pub mod data;
pub mod error;
pub mod fasthash;
pub mod fault;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod rng;
pub mod runner;
pub mod source;
pub mod special;
pub mod text;
pub mod values;

pub use error::{Error, Result};

/// Validates a pipeline fully, data file included, without running it.
pub fn validate(path: &std::path::Path, overrides: &[String]) -> Result<pipeline::Pipeline> {
    let p = pipeline::load(path, overrides)?;
    if let pipeline::Source::File { path, format, columns } = &p.data.source {
        data::load::check_columns(path, *format, columns)?;
    }
    Ok(p)
}
