//! The audit's one pass over a run's training partitions, in generation
//! order: each partition is read once and told to the range checks and,
//! in a filtered run, to the filter checks beside that generation's filter
//! file. Read by each check apart, every training partition was read
//! twice (0.9 s of a 1,000-generation best-of-2 run's 10 s audit).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::filter_checks::{FilterCheck, FilterFound};
use super::ranges::{partitions, training_runs, RangeCheck, Ranges};
use super::store::FILTER_DIR;

/// What each check found, or why it could not finish (the error's chain).
pub struct Found {
    pub ranges: Result<Ranges, String>,
    /// None for a run without a filter.
    pub filter: Option<Result<FilterFound, String>>,
}

/// `watch(done, of)` after each generation.
pub fn check(
    root: &Path,
    sealed: Option<u32>,
    ranges: crate::error::Result<RangeCheck<'_>>,
    filter: Option<crate::error::Result<FilterCheck<'_>>>,
    watch: &mut dyn FnMut(usize, usize),
) -> Found {
    let mut ranges = ranges.map_err(|e| e.chain());
    let mut filter = filter.map(|f| f.map_err(|e| e.chain()));
    let listed = |table: &str| -> Result<BTreeMap<u32, PathBuf>, String> {
        Ok(partitions(root, table, sealed).map_err(|e| e.chain())?.into_iter().collect())
    };
    let training = listed("training");
    let filters = match &filter {
        Some(_) => listed(FILTER_DIR),
        None => Ok(BTreeMap::new()),
    };
    let (training, filters) = match (training, filters) {
        (Ok(t), Ok(f)) => (t, f),
        (Err(e), _) | (_, Err(e)) => return fail(ranges, filter, &e),
    };
    let generations: BTreeSet<u32> = training.keys().chain(filters.keys()).copied().collect();
    for (i, &k) in generations.iter().enumerate() {
        let runs = match training.get(&k).map(|p| training_runs(p)).transpose() {
            Ok(runs) => runs.unwrap_or_default(),
            Err(e) => return fail(ranges, filter, &e.chain()),
        };
        if let Ok(r) = &mut ranges {
            r.partition(k, &runs);
        }
        if let (Some(Ok(f)), Some(path)) = (&mut filter, filters.get(&k)) {
            if let Err(e) = f.generation(path, &runs) {
                filter = Some(Err(e.chain()));
            }
        }
        watch(i + 1, generations.len());
    }
    Found { ranges: ranges.map(RangeCheck::finish), filter: filter.map(|f| f.map(FilterCheck::finish)) }
}

/// A failure both checks share: each reports it.
fn fail(ranges: Result<RangeCheck<'_>, String>, filter: Option<Result<FilterCheck<'_>, String>>, e: &str) -> Found {
    Found { ranges: ranges.and(Err(e.to_string())), filter: filter.map(|f| f.and(Err(e.to_string()))) }
}
