//! collapse: recursive-training (model collapse) experiments with
//! provenance. See DESIGN.md (in the project's shared folder) and the
//! README for the vocabulary, the pipeline keys and the run directory.
//!
//! # Layers
//!
//! A module imports only modules of a lower layer than its own (a module's
//! own submodules aside). `tests/it/layering.rs` reads this list and every
//! `crate::` path in src/, and fails on an import that goes up or sideways,
//! or on a module the list does not place.
//!
//! ```text
//! layer 0: error simd
//! layer 1: fault fasthash rng special linalg progress gzip hashing
//! layer 2: values metric_name keys
//! layer 3: text mixing
//! layer 4: model
//! layer 5: filter
//! layer 6: data
//! layer 7: metrics
//! layer 8: pipeline
//! layer 9: provenance resolve study
//! layer 10: source report stage
//! layer 11: chain
//! layer 12: runner
//! layer 13: sweep
//! layer 14: status
//! ```
//!
//! Bottom up: the error type and the SIMD loop macro (which imports
//! nothing); utilities with no domain (random streams, hashing, progress); plain records (a block of rows and its
//! values, metric names); the text tokenizer and corpus, and the mixing
//! policies (what T_k is made of); fitted models and
//! their settings; the curation filter (what of T_k is kept); the Parquet store and table frames; the metrics;
//! pipeline parsing (pure: text to a validated spec, no filesystem); the
//! audit and lineage over a run directory, and resolving a pipeline against
//! the files it names (`run` and `validate` only), and a study's cells; the
//! real data source and
//! the report; a chain of generations; the runner; a study's cells run
//! one after another or side by side; where a study stands. `main.rs` sits above
//! all of it.

pub mod chain;
pub mod data;
pub mod error;
pub mod fasthash;
pub mod fault;
pub mod filter;
pub mod gzip;
pub mod hashing;
pub mod keys;
pub mod linalg;
pub mod metric_name;
pub mod metrics;
pub mod mixing;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod resolve;
pub mod rng;
pub mod runner;
pub mod simd;
pub mod source;
pub mod special;
pub mod stage;
pub mod status;
pub mod study;
pub mod sweep;
pub mod text;
pub mod values;

pub use error::{Error, Result};

/// Validates a pipeline fully, data file included, without running it.
pub fn validate(path: &std::path::Path, overrides: &[String]) -> Result<pipeline::Pipeline> {
    resolve::validate(path, overrides)
}
