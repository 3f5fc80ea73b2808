//! `collapse audit --replay`: every synthetic row of a run whose models
//! their `params` make again (Gaussian, GMM, categorical) drawn again from
//! its model and the run's seed. Hashes expose a file changed after the
//! run; a tamperer who rewrites the manifests too is caught here, since a
//! forged row is not the draw its model makes from its stream, and "model k
//! made this row" is then checked, not taken from the provenance columns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use polars::prelude::*;
use rayon::prelude::*;

use super::checks::{read_columns, u64_column};
use super::file_error;
use super::store::partitions;
use super::stored_models::{data_rows, models_of, Rescorable};
use crate::error::Result;
use crate::rng::{Purpose, Rng};

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Models whose rows were drawn again.
    pub models: u64,
    /// Synthetic rows compared.
    pub rows: u64,
    /// Each (replicate, model) whose rows are not its draws, named.
    pub found: Vec<String>,
}

/// What the replay needs of the run.
pub struct Run {
    pub seed: u64,
    pub kind: Rescorable,
    /// Rows each model draws: generate.n, times best-of's K.
    pub rows_per_model: usize,
}

/// Draws D_{k+1} again from model k for every sealed model k, replicate
/// by replicate, and compares it bit for bit with the synthetic rows of
/// `samples/generation=k+1` that name model k; `progress(done, of)` counts
/// models' generations, never going back. Generations are replayed side
/// by side (rayon); what is found is in generation order, and the first
/// unreadable file in that order is the error.
pub fn replay(
    root: &Path,
    sealed: Option<u32>,
    run: &Run,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Replayed> {
    let models: Vec<(u32, PathBuf)> = partitions(root, "models", sealed)?;
    let samples: BTreeMap<u32, PathBuf> = partitions(root, "samples", sealed)?.into_iter().collect();
    let of = models.len();
    progress(0, of);
    // Held while telling, so the counts reach `progress` in order.
    let done = Mutex::new(0usize);
    let each: Vec<Result<Replayed>> = models
        .par_iter()
        .map(|(k, models_path)| {
            let out = match samples.get(&(k + 1)) {
                Some(samples_path) => generation(*k, models_path, samples_path, run),
                None => Ok(Replayed::default()),
            };
            let mut n = done.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            progress(*n, of);
            out
        })
        .collect();
    let mut out = Replayed::default();
    for r in each {
        let r = r?;
        out.models += r.models;
        out.rows += r.rows;
        out.found.extend(r.found);
    }
    Ok(out)
}

/// Model k's rows drawn again, replicate by replicate.
fn generation(k: u32, models_path: &Path, samples_path: &Path, run: &Run) -> Result<Replayed> {
    let mut out = Replayed::default();
    let fitted = models_of(models_path, k, run.kind).map_err(file_error(models_path))?;
    let made = rows_by_replicate(samples_path, k, run.kind).map_err(file_error(samples_path))?;
    let width = run.kind.width();
    for (r, (ids, rows)) in made {
        let Some(model) = fitted.get(&r) else {
            out.found.push(format!(
                "replay: replicate {r} model {k}: {} rows name model {k}, whose params do not read back as a model",
                ids.len()
            ));
            continue;
        };
        let mut rng = Rng::stream(run.seed, r, k, Purpose::Sample);
        let again = model.sample(&mut rng, run.rows_per_model);
        out.models += 1;
        out.rows += ids.len() as u64;
        if again.len() != rows.len() {
            out.found.push(format!(
                "replay: replicate {r} model {k}: samples hold {} rows of model {k}, which draws {}",
                ids.len(),
                run.rows_per_model
            ));
            continue;
        }
        let differ = |i: usize| {
            let (a, b) = (&rows[i * width..(i + 1) * width], &again[i * width..(i + 1) * width]);
            a.iter().zip(b).any(|(a, b)| a.to_bits() != b.to_bits())
        };
        let bad: Vec<usize> = (0..ids.len()).filter(|&i| differ(i)).collect();
        if let Some(&first) = bad.first() {
            out.found.push(format!(
                    "replay: replicate {r} model {k}: {} of {} rows are not what model {k} draws from the run's seed (first: sample_id {})",
                    bad.len(),
                    ids.len(),
                    ids[first]
                ));
        }
    }
    Ok(out)
}

/// Per replicate, the sample ids and the data columns (row-major, tokens
/// as floats) of the rows one model made.
type MadeRows = BTreeMap<u32, (Vec<u64>, Vec<f64>)>;

/// A samples file's synthetic rows that name model `k`, in file order
/// (the order the model drew them).
fn rows_by_replicate(path: &Path, k: u32, kind: Rescorable) -> PolarsResult<MadeRows> {
    let data = kind.columns();
    let mut names = vec!["sample_id", "replicate", "model_generation"];
    names.extend(data.iter().map(String::as_str));
    let df = read_columns(path, &names)?;
    let [id, rep, model] = ["sample_id", "replicate", "model_generation"].map(|n| u64_column(&df, n));
    let values = data_rows(&df, kind)?;
    let width = kind.width();
    let mut out = MadeRows::new();
    for i in 0..df.height() {
        // Real rows name no model; a row naming another model is the
        // lineage check's to name.
        let (Some(r), Some(m), Some(sample_id)) = (rep[i], model[i], id[i]) else { continue };
        if m != u64::from(k) {
            continue;
        }
        let e = out.entry(r as u32).or_default();
        e.0.push(sample_id);
        e.1.extend_from_slice(&values[i * width..(i + 1) * width]);
    }
    Ok(out)
}
