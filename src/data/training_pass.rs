//! The audit's one pass over a run's training partitions, in generation
//! order: each partition is read once and told to the range checks and,
//! in a filtered run, to the filter checks beside that generation's filter
//! file. Read by each check apart, every training partition was read
//! twice (0.9 s of a 1,000-generation best-of-2 run's 10 s audit). The
//! reading runs one generation ahead, on the rayon pool: a thread of its
//! own per audit cost a study's audit 200 MB (each new thread's allocator
//! heap) for 5% of its time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::filter_checks::{FilterCheck, FilterFound, FilterRows};
use super::ranges::{training_runs, RangeCheck, Ranges, TrainingRun};
use super::store::{partitions, FILTER_DIR};

/// What each check found, or why it could not finish (the error's chain).
pub struct Found {
    pub ranges: Result<Ranges, String>,
    /// None for a run without a filter.
    pub filter: Option<Result<FilterFound, String>>,
}

/// A generation's reads: its training runs, and its filter rows where
/// the run has a filter file there.
type Reads = (crate::error::Result<Vec<TrainingRun>>, Option<crate::error::Result<FilterRows>>);

/// `watch(done, of)` after each generation. Each generation's files are
/// read while the one before is checked: two generations in memory at
/// most (under accumulate, a generation's filter rows reach tens of MB).
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
        Some(Ok(_)) => listed(FILTER_DIR),
        _ => Ok(BTreeMap::new()),
    };
    let (training, filters) = match (training, filters) {
        (Ok(t), Ok(f)) => (t, f),
        (Err(e), _) | (_, Err(e)) => return fail(ranges, filter, &e),
    };
    let generations: Vec<u32> =
        training.keys().chain(filters.keys()).copied().collect::<BTreeSet<u32>>().into_iter().collect();
    let read = |k: &u32| -> Reads {
        let runs = training.get(k).map(|p| training_runs(p)).transpose().map(Option::unwrap_or_default);
        (runs, filters.get(k).map(|p| FilterCheck::read(p)))
    };
    let mut next = generations.first().map(read);
    for (i, k) in generations.iter().enumerate() {
        let Some((runs, rows)) = next.take() else { break };
        let runs = match runs {
            Ok(runs) => runs,
            Err(e) => return fail(ranges, filter, &e.chain()),
        };
        let check = || {
            if let Ok(r) = &mut ranges {
                r.partition(*k, &runs);
            }
            if let (Some(Ok(f)), Some(rows)) = (&mut filter, rows) {
                match rows {
                    Ok(rows) => f.generation(&rows, &runs),
                    Err(e) => filter = Some(Err(e.chain())),
                }
            }
        };
        // The next generation read while this one is checked, where a
        // thread of the pool is free (in a study's audit, the cells keep
        // them busy, and the read comes after, on this thread).
        next = rayon::join(check, || generations.get(i + 1).map(read)).1;
        watch(i + 1, generations.len());
    }
    Found { ranges: ranges.map(RangeCheck::finish), filter: filter.map(|f| f.map(FilterCheck::finish)) }
}

/// A failure both checks share: each reports it.
fn fail(ranges: Result<RangeCheck<'_>, String>, filter: Option<Result<FilterCheck<'_>, String>>, e: &str) -> Found {
    Found { ranges: ranges.and(Err(e.to_string())), filter: filter.map(|f| f.and(Err(e.to_string()))) }
}
