//! The audit's checks that relate training sets to samples, computed over
//! runs of consecutive sample ids instead of rows. A model's training set
//! is stored as such runs, and a generation's samples are a few blocks of
//! consecutive ids, so every question the row-level SQL asks (see
//! `checks::BY_HAND`) is answered by walking two short sorted lists. Rows
//! joined to rows grew as the training sets do: under `accumulate`, model k
//! trains on k + 1 generations, and 1000 generations of 200 chains of 100
//! rows are 10^10 (model, row) pairs, which no join holds in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;

use super::checks::{finding, read_columns, u64_column, Composition, BY_HAND};
use super::store::partitions;
use super::{file_error, query};
use crate::error::Result;

/// Consecutive sample ids of one block of one samples file.
#[derive(Clone, Debug)]
pub(super) struct SampleRun {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) replicate: u32,
    pub(super) generation: u32,
    model: Option<u32>,
    pub(super) real: bool,
    train: bool,
    /// The row of `start` in its samples file: the run's ids are that
    /// file's consecutive rows from here.
    pub(super) row: u64,
}

/// A model's composition so far and its training runs.
type ModelRanges = (Composition, Vec<(u64, u64)>);

/// What the range checks found.
#[derive(Debug, Default)]
pub struct Ranges {
    /// Per model, in (replicate, model_generation) order.
    pub compositions: Vec<Composition>,
    /// (replicate, generation) -> (real training rows, synthetic rows).
    pub sizes: BTreeMap<(u32, u32), (u64, u64)>,
    /// Lineage problems, worded as `checks::lineage` words its own.
    pub violations: Vec<String>,
}

/// A count of offending rows and the smallest sample_id among them.
#[derive(Default)]
struct Tally {
    n: u64,
    example: Option<u64>,
}

impl Tally {
    fn add(&mut self, n: u64, first: u64) {
        if n > 0 {
            self.n += n;
            self.example = Some(self.example.map_or(first, |e| e.min(first)));
        }
    }
}

fn sample_runs_of(path: &Path, generation: u32, runs: &mut Vec<SampleRun>) -> PolarsResult<()> {
    let df = read_columns(path, &["sample_id", "replicate", "model_generation", "origin", "split"])?;
    let [ids, reps, models] = ["sample_id", "replicate", "model_generation"].map(|n| u64_column(&df, n));
    let is = |name: &str, value: &str| -> PolarsResult<Vec<Option<bool>>> {
        Ok(df.column(name)?.str()?.iter().map(|v| v.map(|v| v == value)).collect())
    };
    let (real, train) = (is("origin", "real")?, is("split", "train")?);
    let ids = ids.iter().copied();
    let reps = reps.iter().map(|r| r.and_then(|r| u32::try_from(r).ok()));
    let models = models.iter().map(|m| m.and_then(|m| u32::try_from(m).ok()));
    let (real, train) = (real.into_iter(), train.into_iter());
    let first = runs.len();
    for (row, ((((id, rep), model), real), train)) in ids.zip(reps).zip(models).zip(real).zip(train).enumerate() {
        // Rows with nulls are reported by the row-level SQL; they join nothing.
        let (Some(id), Some(replicate), Some(real), Some(train)) = (id, rep, real, train) else { continue };
        let row = row as u64;
        match runs[first..].last_mut() {
            Some(r)
                if r.end == id
                    && r.row + (r.end - r.start) == row
                    && r.replicate == replicate
                    && r.model == model
                    && r.real == real
                    && r.train == train =>
            {
                r.end += 1
            }
            _ => runs.push(SampleRun { start: id, end: id + 1, replicate, generation, model, real, train, row }),
        }
    }
    Ok(())
}

/// Every run of a training file.
pub fn training_runs(path: &Path) -> Result<Vec<TrainingRun>> {
    training_runs_of(path).map_err(file_error(path))
}

fn training_runs_of(path: &Path) -> PolarsResult<Vec<TrainingRun>> {
    let df = read_columns(path, &["replicate", "model_generation", "sample_id_start", "sample_count"])?;
    let [rep, gen, start, count] =
        ["replicate", "model_generation", "sample_id_start", "sample_count"].map(|n| u64_column(&df, n));
    Ok((0..df.height())
        .filter_map(|i| Some((rep[i]? as u32, gen[i]? as u32, start[i]?, start[i]? + count[i]?)))
        .collect())
}

/// Lengths of the union of `intervals` and of the part covered at least
/// twice, with the first id of that part: a sweep over their ends.
fn depth(intervals: &[(u64, u64)]) -> (u64, u64, Option<u64>) {
    let mut events: Vec<(u64, i64)> = intervals.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // At one position, ends before starts: intervals are half-open.
    events.sort_unstable();
    let (mut union, mut twice, mut first) = (0, 0, None);
    let (mut depth, mut at) = (0i64, 0u64);
    for (pos, step) in events {
        let len = pos - at;
        if depth >= 1 {
            union += len;
        }
        if depth >= 2 && len > 0 {
            twice += len;
            first.get_or_insert(at);
        }
        depth += step;
        at = pos;
    }
    (union, twice, first)
}

/// Calls `f(run, lo, hi)` for each part [lo, hi) of [s, e) that a sample
/// run holds; returns the ids no run holds (count, first).
///
/// It starts from the run at `hint` where that is the first run that
/// ends past `s` (or the one after it), else from a binary search;
/// `hint` is left at the last run walked. A model's training runs come in
/// id order, so each mostly starts where the last one ended: a best-of-2
/// run's 20 M one-row training runs took a binary search each.
pub(super) fn walk_from<'a>(
    runs: &'a [SampleRun],
    s: u64,
    e: u64,
    hint: &mut usize,
    mut f: impl FnMut(&'a SampleRun, u64, u64),
) -> (u64, u64) {
    let first = |i: usize| runs.get(i).is_some_and(|r| r.end > s) && (i == 0 || runs[i - 1].end <= s);
    let from = match *hint {
        h if first(h) => h,
        h if first(h + 1) => h + 1,
        _ => runs.partition_point(|r| r.end <= s),
    };
    *hint = from;
    let mut cursor = s;
    let (mut missing, mut first) = (0, u64::MAX);
    for (i, r) in runs.iter().enumerate().skip(from) {
        if r.start >= e {
            break;
        }
        *hint = i;
        let (lo, hi) = (s.max(r.start), e.min(r.end));
        if hi <= lo {
            continue;
        }
        if lo > cursor {
            missing += lo - cursor;
            first = first.min(cursor);
        }
        cursor = cursor.max(hi);
        f(r, lo, hi);
    }
    if cursor < e {
        missing += e - cursor;
        first = first.min(cursor);
    }
    (missing, first)
}

/// Every samples file's runs of ids, sorted by first id: read once for the
/// range checks and a filtered run's checks (`filter_checks`).
pub struct SampleRuns(pub(super) Vec<SampleRun>);

impl SampleRuns {
    /// `sealed`: only generations below it, for an unfinished run. The
    /// files are read side by side (0.9 s for 1,000 generations on one
    /// thread); the first unreadable one in generation order is named.
    pub fn read(root: &Path, sealed: Option<u32>) -> Result<SampleRuns> {
        use rayon::prelude::*;
        let files = partitions(root, "samples", sealed)?;
        let read: Vec<Result<Vec<SampleRun>>> = files
            .par_iter()
            .map(|(k, path)| {
                let mut runs = Vec::new();
                sample_runs_of(path, *k, &mut runs).map_err(file_error(path))?;
                Ok(runs)
            })
            .collect();
        let mut runs = Vec::new();
        for part in read {
            runs.extend(part?);
        }
        runs.sort_by_key(|r| r.start);
        Ok(SampleRuns(runs))
    }
}

/// (replicate, model_generation, first id, end id) of one run of a
/// training file.
pub type TrainingRun = (u32, u32, u64, u64);

/// `sealed`: only generations (and models) below it, for an unfinished run.
/// `repeats`: a training set may hold a row more than once (a resampling
/// filter's copies, which `filter_checks` holds to the filter table).
pub fn check(root: &Path, sealed: Option<u32>, repeats: bool, runs: &SampleRuns) -> Result<Ranges> {
    let mut c = RangeCheck::new(root, sealed, repeats, runs)?;
    for (k, path) in partitions(root, "training", sealed)? {
        c.partition(k, &training_runs(&path)?);
    }
    Ok(c.finish())
}

/// The range checks, told one training partition at a time, in
/// generation order (the audit reads each partition once for these and
/// for a filtered run's checks).
pub struct RangeCheck<'a> {
    runs: &'a [SampleRun],
    models: BTreeSet<(u32, u32)>,
    repeats: bool,
    out: Ranges,
    /// In `BY_HAND`'s order.
    twice_samples: Tally,
    orphans: Tally,
    missing: Tally,
    wrong: Tally,
    unknown_model: Tally,
    twice_training: Tally,
    /// Models whose partition is not finished yet.
    by_model: BTreeMap<(u32, u32), ModelRanges>,
    hint: usize,
}

impl<'a> RangeCheck<'a> {
    /// Reads the models table; checks the samples' runs on their own.
    pub fn new(root: &Path, sealed: Option<u32>, repeats: bool, runs: &'a SampleRuns) -> Result<RangeCheck<'a>> {
        let runs: &[SampleRun] = &runs.0;
        let models: BTreeSet<(u32, u32)> = {
            let df = query::frame_sealed(root, "SELECT replicate, model_generation FROM models", sealed)?;
            let [rep, gen] = ["replicate", "model_generation"].map(|n| u64_column(&df, n));
            rep.iter().zip(&gen).filter_map(|(r, g)| Some(((*r)? as u32, (*g)? as u32))).collect()
        };
        let mut out = Ranges::default();
        let (mut twice_samples, mut orphans) = (Tally::default(), Tally::default());
        let (_, twice, first) = depth(&runs.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>());
        twice_samples.add(twice, first.unwrap_or(0));
        for r in runs {
            let sizes = out.sizes.entry((r.replicate, r.generation)).or_default();
            let len = r.end - r.start;
            if r.real && r.train {
                sizes.0 += len;
            }
            if !r.real {
                sizes.1 += len;
                if !r.model.is_some_and(|m| models.contains(&(r.replicate, m))) {
                    orphans.add(len, r.start);
                }
            }
        }
        Ok(RangeCheck {
            runs,
            models,
            repeats,
            out,
            twice_samples,
            orphans,
            missing: Tally::default(),
            wrong: Tally::default(),
            unknown_model: Tally::default(),
            twice_training: Tally::default(),
            by_model: BTreeMap::new(),
            hint: 0,
        })
    }

    /// Training partition `k`'s runs.
    pub fn partition(&mut self, k: u32, training: &[TrainingRun]) {
        let runs = self.runs;
        for &(rep, mg, s, e) in training {
            if !self.models.contains(&(rep, mg)) {
                self.unknown_model.add(e - s, s);
            }
            let (c, ranges) = self.by_model.entry((rep, mg)).or_insert_with(|| {
                (Composition { replicate: rep, model_generation: mg, ..Composition::default() }, Vec::new())
            });
            ranges.push((s, e));
            let wrong = &mut self.wrong;
            let (gap, first) = walk_from(runs, s, e, &mut self.hint, |r, lo, hi| {
                let len = hi - lo;
                c.rows += len;
                if r.replicate != rep || r.generation > mg || !r.train {
                    wrong.add(len, lo);
                }
                match (r.real, r.generation) {
                    (true, 0) => c.real_gen0 += len,
                    (true, g) if g == mg => c.real_own += len,
                    (false, g) if g == mg => c.synthetic_own += len,
                    (false, g) if g < mg => c.synthetic_earlier += len,
                    _ => {}
                }
            });
            self.missing.add(gap, first);
        }
        // A generation's models are done with its partition (a row of
        // another model's in it is a violation of its own, found above
        // by its generation range): their runs need not wait in memory.
        let done: Vec<(u32, u32)> = self.by_model.keys().filter(|(_, mg)| *mg == k).copied().collect();
        for key in done {
            if let Some(model) = self.by_model.remove(&key) {
                self.out.compositions.push(finish(model, runs, self.repeats, &mut self.twice_training));
            }
        }
    }

    pub fn finish(mut self) -> Ranges {
        for model in std::mem::take(&mut self.by_model).into_values() {
            self.out.compositions.push(finish(model, self.runs, self.repeats, &mut self.twice_training));
        }
        let mut out = self.out;
        out.compositions.sort_by_key(|c| (c.replicate, c.model_generation));
        // In `BY_HAND`'s order, worded as its checks are.
        let tallies =
            [self.twice_samples, self.orphans, self.missing, self.wrong, self.unknown_model, self.twice_training];
        out.violations =
            BY_HAND.iter().zip(tallies).filter_map(|((what, _), t)| finding(t.n, what, t.example)).collect();
        out
    }
}

/// A model's composition with its distinct ids, once all its training
/// runs are in; ids it holds twice go to `twice` unless the run `repeats`.
fn finish((mut c, ranges): ModelRanges, runs: &[SampleRun], repeats: bool, twice: &mut Tally) -> Composition {
    if !repeats {
        let (_, n, first) = depth(&ranges);
        twice.add(n, first.unwrap_or(0));
    }
    // Distinct ids that match a sample: the union of the model's runs,
    // walked once.
    let mut merged: Vec<(u64, u64)> = Vec::new();
    let mut sorted = ranges;
    sorted.sort_unstable();
    for (s, e) in sorted {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut hint = 0;
    c.distinct = merged.iter().map(|&(s, e)| (e - s) - walk_from(runs, s, e, &mut hint, |_, _, _| {}).0).sum();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, end: u64, replicate: u32, generation: u32, real: bool) -> SampleRun {
        SampleRun { start, end, replicate, generation, model: None, real, train: true, row: 0 }
    }

    #[test]
    fn depth_counts_the_union_and_the_ids_held_twice() {
        // [0,10) and [5,15) share 5..10; [20,25) is alone; [21,22) is inside it.
        let (union, twice, first) = depth(&[(0, 10), (5, 15), (20, 25), (21, 22)]);
        assert_eq!((union, twice, first), (20, 6, Some(5)));
        // Touching intervals share nothing.
        assert_eq!(depth(&[(0, 5), (5, 9)]), (9, 0, None));
        // Three deep counts each id once.
        assert_eq!(depth(&[(0, 4), (0, 4), (1, 3)]).1, 4);
    }

    #[test]
    fn walk_splits_a_range_over_runs_and_reports_the_gaps() {
        let runs = vec![run(0, 10, 0, 0, true), run(12, 20, 0, 1, false), run(20, 30, 1, 1, false)];
        let mut seen = Vec::new();
        let (missing, first) = walk_from(&runs, 5, 25, &mut 0, |r, lo, hi| seen.push((r.start, lo, hi)));
        assert_eq!(seen, vec![(0, 5, 10), (12, 12, 20), (20, 20, 25)]);
        assert_eq!((missing, first), (2, 10));
        assert_eq!(walk_from(&runs, 40, 45, &mut 0, |_, _, _| {}), (5, 40), "nothing holds it");
    }

    /// Whatever the hint, a walk sees the same parts and gaps as one from
    /// the binary search, and leaves the hint where the next range in id
    /// order starts.
    #[test]
    fn a_walk_is_the_same_from_any_hint() {
        let runs: Vec<SampleRun> =
            [(0, 3), (3, 4), (6, 9), (9, 10), (12, 20), (25, 26)].iter().map(|&(s, e)| run(s, e, 0, 0, true)).collect();
        let parts = |s: u64, e: u64, hint: &mut usize| {
            let mut seen = Vec::new();
            let gaps = walk_from(&runs, s, e, hint, |r, lo, hi| seen.push((r.start, lo, hi)));
            (seen, gaps)
        };
        for s in 0..28 {
            for e in s + 1..30 {
                let want = parts(s, e, &mut runs.partition_point(|r| r.end <= s));
                for h in 0..runs.len() + 2 {
                    assert_eq!(parts(s, e, &mut h.clone()), want, "[{s}, {e}) from hint {h}");
                }
            }
        }
        // In id order, each walk after the first starts from its hint.
        let mut hint = 0;
        for (s, e) in [(1, 2), (2, 7), (9, 13), (19, 26)] {
            parts(s, e, &mut hint);
            assert!(runs[hint].start < e && (hint + 1 == runs.len() || runs[hint + 1].start >= e));
        }
    }
}
