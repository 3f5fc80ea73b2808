//! The audit of a filtered run: every decision in the `filter` table
//! re-derived ([`crate::filter`]): the detector's flags from their seeds
//! and each row's true origin in `samples`, the weights from the flags and
//! the rule, the copies from the resampling draw; each model's training
//! runs against the rows the filter kept; and what the candidates were
//! made of, which the mixing policy must explain (instead of T_k, which
//! the filter has thinned).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::checks::{read_columns, scan_file, Composition};
use super::file_error;
use super::ranges::{walk_from, SampleRun, SampleRuns, TrainingRun};
use super::store::partitions;
use super::stored_models::{columns_of, models_of, Rescorable, Stored};
use crate::error::Result;
use crate::filter::{Candidate, Decision, Filter};

/// What the filter checks found.
#[derive(Debug, Default)]
pub struct FilterFound {
    /// What each model's candidates were made of, by (replicate, model).
    pub candidates: BTreeMap<(u32, u32), Composition>,
    /// The filter's metrics re-computed from the table: (replicate,
    /// model) -> (metric name, value).
    pub metrics: BTreeMap<(u32, u32), Vec<(&'static str, f64)>>,
    pub violations: Vec<String>,
}

/// A filter file's rows, as [`FilterCheck::read`] gives them.
pub struct FilterRows(Vec<Row>);

/// One row of a filter file.
struct Row {
    replicate: u32,
    model: u32,
    sample_id: u64,
    decision: Decision,
}

/// A filter file's rows, in (replicate, model) order and, within a
/// model, in file order (the order its decisions were made in).
fn rows_of(path: &Path) -> PolarsResult<Vec<Row>> {
    let df =
        read_columns(path, &["replicate", "model_generation", "sample_id", "score", "flagged", "weight", "copies"])?;
    let cast = |name: &str, to: &DataType| df.column(name).and_then(|c| c.cast(to));
    let [rep, model, id, copies] =
        ["replicate", "model_generation", "sample_id", "copies"].map(|n| cast(n, &DataType::UInt64));
    let (rep, model, id, copies) = (rep?, model?, id?, copies?);
    let (score, flagged, weight) =
        (cast("score", &DataType::Float64)?, cast("flagged", &DataType::Boolean)?, cast("weight", &DataType::Float64)?);
    let columns = rep.u64()?.iter().zip(model.u64()?.iter()).zip(id.u64()?.iter()).zip(copies.u64()?.iter());
    let decisions = score.f64()?.iter().zip(flagged.bool()?.iter()).zip(weight.f64()?.iter());
    let mut rows: Vec<Row> = columns
        .zip(decisions)
        .filter_map(|((((rep, model), id), copies), ((score, flagged), weight))| {
            Some(Row {
                replicate: rep? as u32,
                model: model? as u32,
                sample_id: id?,
                decision: Decision { score, flagged: flagged?, weight: weight?, copies: u32::try_from(copies?).ok()? },
            })
        })
        .collect();
    // Stable, and linear on the file's own order.
    rows.sort_by_key(|r| (r.replicate, r.model));
    Ok(rows)
}

/// Per kind of disagreement: how many rows, and the first (replicate,
/// model, sample_id).
#[derive(Default)]
struct Tally(BTreeMap<&'static str, (u64, (u32, u32, u64))>);

impl Tally {
    fn add(&mut self, what: &'static str, at: (u32, u32, u64)) {
        let e = self.0.entry(what).or_insert((0, at));
        e.0 += 1;
    }
}

/// The filter checks, told one generation at a time, in generation
/// order: its filter file and its training partition's runs (read once
/// by the audit for these and the range checks). Whole, a
/// 1,000-generation best-of-2 run's 40 M filter rows and their join to
/// samples took 8.5 GB.
pub struct FilterCheck<'a> {
    runs: &'a [SampleRun],
    filter: &'a Filter,
    seed: u64,
    replicates: u32,
    models_to: u32,
    /// None once a samples or models file could not be read (named once
    /// in `found`; the scores after it are left unchecked).
    rescore: Option<Rescore>,
    newest: BTreeMap<(u32, u32), (u64, u64)>,
    out: FilterFound,
    tally: Tally,
    seen: BTreeSet<(u32, u32)>,
    found: Vec<String>,
}

impl<'a> FilterCheck<'a> {
    /// `models_to`: models 0 .. models_to are sealed; every one from 1 on
    /// must have filter rows. `rescorable`: the run's models are of a kind
    /// whose `models` rows hold all a likelihood needs (a likelihood
    /// filter's scores are then recomputed).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        root: &Path,
        sealed: Option<u32>,
        runs: &'a SampleRuns,
        filter: &'a Filter,
        seed: u64,
        replicates: u32,
        models_to: u32,
        rescorable: Option<Rescorable>,
    ) -> Result<FilterCheck<'a>> {
        let runs: &[SampleRun] = &runs.0;
        Ok(FilterCheck {
            runs,
            filter,
            seed,
            replicates,
            models_to,
            rescore: Rescore::of(root, sealed, filter, rescorable)?,
            newest: newest_blocks(runs),
            out: FilterFound::default(),
            tally: Tally::default(),
            seen: BTreeSet::new(),
            found: Vec::new(),
        })
    }

    /// A generation's filter file, read for [`FilterCheck::generation`]
    /// (on another thread, while the one before is checked).
    pub fn read(path: &Path) -> Result<FilterRows> {
        Ok(FilterRows(rows_of(path).map_err(file_error(path))?))
    }

    /// A generation's filter rows and training runs.
    pub fn generation(&mut self, rows: &FilterRows, training: &[TrainingRun]) {
        let rows = &rows.0;
        let mut trained: BTreeMap<(u32, u32), Vec<(u64, u64)>> = BTreeMap::new();
        for &(rep, mg, s, e) in training {
            trained.entry((rep, mg)).or_default().push((s, e - s));
        }
        let mut scored = Vec::new();
        for rows in rows.chunk_by(|a, b| (a.replicate, a.model) == (b.replicate, b.model)) {
            // chunk_by never yields an empty slice.
            let (r, m) = (rows[0].replicate, rows[0].model);
            self.seen.insert((r, m));
            let model = Model { replicate: r, model: m, rows, newest: self.newest.get(&(r, m)).copied() };
            let training = trained.get(&(r, m)).map(Vec::as_slice).unwrap_or_default();
            let (out, tally, found) = (&mut self.out, &mut self.tally, &mut self.found);
            model.check(self.runs, self.filter, self.seed, training, out, tally, &mut scored, found);
        }
        let failed = self.rescore.as_mut().and_then(|rs| {
            let e = rs.check(&scored, &mut self.tally).err()?;
            Some(format!("filter: the {} cannot be recomputed: {}", rs.what(), e.chain()))
        });
        if let Some(failed) = failed {
            self.found.push(failed);
            self.rescore = None;
        }
    }

    pub fn finish(self) -> FilterFound {
        let mut out = self.out;
        for r in 0..self.replicates {
            for k in 1..self.models_to {
                if !self.seen.contains(&(r, k)) {
                    out.violations.push(format!("filter: replicate {r} model {k} has no filter rows"));
                }
            }
        }
        out.violations.extend(self.found);
        for (what, (n, (r, k, id))) in self.tally.0 {
            out.violations.push(format!("filter: {n} {what} (e.g. replicate {r} model {k} sample_id {id})"));
        }
        out
    }
}

/// One model's filter rows, to be checked.
struct Model<'a> {
    replicate: u32,
    model: u32,
    rows: &'a [Row],
    /// The newest block of the model's generation (best-of groups).
    newest: Option<(u64, u64)>,
}

/// A stored score to recompute: where its row is in samples, and where
/// it is in the filter table.
struct Scored {
    generation: u32,
    row: u64,
    score: f64,
    at: (u32, u32, u64),
}

impl Model<'_> {
    /// Every decision re-derived, the training runs against the kept
    /// rows; the composition and metrics go to `out`, the stored scores to
    /// `scored`, a whole-model problem to `found`.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        runs: &[SampleRun],
        filter: &Filter,
        seed: u64,
        training: &[(u64, u64)],
        out: &mut FilterFound,
        tally: &mut Tally,
        scored: &mut Vec<Scored>,
        found: &mut Vec<String>,
    ) {
        let (r, k) = (self.replicate, self.model);
        let mut comp = Composition { replicate: r, model_generation: k, ..Composition::default() };
        // Each candidate's origin, from the samples run that holds it.
        let mut candidates = Vec::with_capacity(self.rows.len());
        let mut hint = 0;
        for row in self.rows {
            let mut found = None;
            let (missing, _) = walk_from(runs, row.sample_id, row.sample_id + 1, &mut hint, |s, _, _| found = Some(s));
            let Some(s) = found.filter(|_| missing == 0) else {
                tally.add("filter rows whose sample_id is not in samples", (r, k, row.sample_id));
                continue;
            };
            if s.replicate != r || s.generation > k {
                tally.add(
                    "filter rows of another replicate or of a later generation than the model",
                    (r, k, row.sample_id),
                );
            }
            comp.rows += 1;
            comp.distinct += 1;
            match (s.real, s.generation) {
                (true, 0) => comp.real_gen0 += 1,
                (true, g) if g == k => comp.real_own += 1,
                (false, g) if g == k => comp.synthetic_own += 1,
                (false, g) if g < k => comp.synthetic_earlier += 1,
                _ => {}
            }
            if let Some(score) = row.decision.score {
                let row_in_file = s.row + (row.sample_id - s.start);
                scored.push(Scored { generation: s.generation, row: row_in_file, score, at: (r, k, row.sample_id) });
            }
            candidates.push((Candidate { sample_id: row.sample_id, real: s.real }, &row.decision));
        }
        if candidates.len() != self.rows.len() {
            return;
        }
        let plain: Vec<Candidate> = candidates.iter().map(|(c, _)| *c).collect();
        // Score kinds: the kept set from the stored scores and the rule.
        let scores: Vec<Option<f64>> = candidates.iter().map(|(_, d)| d.score).collect();
        let groups: Vec<u32> = plain.iter().map(|c| c.group(filter.best_of(), self.newest)).collect();
        let derived = filter.decide_all(seed, r, k, &plain, scores, &groups);
        // What a disagreement is measured against: a detector's draws from
        // the seed, a score kind's stored scores and its rule.
        let (flags_from, weights_from) = if filter.scores() {
            (
                "flags that disagree with the stored scores and the rule",
                "weights that disagree with the stored scores and the rule",
            )
        } else {
            (
                "flags that disagree with the detector's draw from the seed",
                "weights that disagree with the flag and the rule",
            )
        };
        for ((c, got), want) in candidates.iter().zip(derived.rows()) {
            let at = (r, k, c.sample_id);
            if got.score.is_some() != (filter.scores() && filter.judges(*c)) {
                tally.add("scores present where the filter scores nothing (a detector, or a row it does not judge: null there), or missing where it does", at);
            }
            if got.flagged != want.flagged {
                tally.add(flags_from, at);
            }
            if got.weight.to_bits() != want.weight.to_bits() {
                tally.add(weights_from, at);
            }
            if got.copies != want.copies {
                tally.add("copies that disagree with the filter's draw from the seed", at);
            }
        }
        // Training: the kept rows, each as many times as its copies, as
        // the runner lays them out.
        let mut want: Vec<(u64, u64)> = Vec::new();
        for (c, d) in &candidates {
            for _ in 0..d.copies {
                crate::values::push_run(&mut want, c.sample_id, 1);
            }
        }
        if training != want.as_slice() {
            let rows = |runs: &[(u64, u64)]| runs.iter().map(|x| x.1).sum::<u64>();
            found.push(format!(
                "filter: replicate {r} model {k}: the training table's {} rows are not the {} the filter table kept (with their copies)",
                rows(training),
                rows(&want)
            ));
        }
        out.metrics.insert((r, k), metrics(&candidates));
        out.candidates.insert((r, k), comp);
    }
}

/// What a stored score is recomputed from.
enum Rescorer {
    /// A reward is a function of the row: each samples file's rewards.
    Reward(String),
    /// A likelihood is a function of the row (its data columns) and the
    /// scoring model's stored parameters.
    Likelihood { scorer: crate::filter::Scorer, kind: Rescorable },
}

/// The recomputation of every stored score, a generation at a time: the
/// samples files (and models) the generation's scores need are read once
/// and kept while the next generation needs them too (under accumulate,
/// every earlier one; under replace, the newest).
struct Rescore {
    by: Rescorer,
    samples: BTreeMap<u32, PathBuf>,
    models: BTreeMap<u32, PathBuf>,
    /// Per samples generation: each row's reward, or its data columns.
    rows: BTreeMap<u32, Vec<f64>>,
    /// Per models generation: (replicate -> model).
    fitted: BTreeMap<u32, BTreeMap<u32, Stored>>,
}

impl Rescore {
    fn of(
        root: &Path,
        sealed: Option<u32>,
        filter: &Filter,
        rescorable: Option<Rescorable>,
    ) -> Result<Option<Rescore>> {
        let by = match (&filter.kind, rescorable) {
            (crate::filter::FilterKind::Reward { reward, .. }, _) => Rescorer::Reward(reward.clone()),
            (crate::filter::FilterKind::Likelihood { model, .. }, Some(kind)) => {
                Rescorer::Likelihood { scorer: *model, kind }
            }
            _ => return Ok(None),
        };
        let models = match by {
            Rescorer::Likelihood { .. } => partitions(root, "models", sealed)?.into_iter().collect(),
            Rescorer::Reward(_) => BTreeMap::new(),
        };
        let samples = partitions(root, "samples", sealed)?.into_iter().collect();
        Ok(Some(Rescore { by, samples, models, rows: BTreeMap::new(), fitted: BTreeMap::new() }))
    }

    fn what(&self) -> &'static str {
        match self.by {
            Rescorer::Reward(_) => "rewards",
            Rescorer::Likelihood { .. } => "likelihoods",
        }
    }

    /// Tallies each of `scored` that its recomputation does not give: a
    /// reward exactly (the run stores +0 where Polars may give -0), a
    /// likelihood within 1e-9 of its size; and a score whose scoring model
    /// is missing.
    fn check(&mut self, scored: &[Scored], tally: &mut Tally) -> Result<()> {
        let used: BTreeSet<u32> = scored.iter().map(|s| s.generation).collect();
        self.rows.retain(|g, _| used.contains(g));
        for &g in &used {
            if self.rows.contains_key(&g) {
                continue;
            }
            let Some(path) = self.samples.get(&g) else { continue };
            let values = match &self.by {
                Rescorer::Reward(reward) => rewards_of(path, reward),
                Rescorer::Likelihood { kind, .. } => columns_of(path, *kind),
            };
            self.rows.insert(g, values.map_err(file_error(path))?);
        }
        let Rescorer::Likelihood { scorer, kind } = self.by else {
            for s in scored {
                let again = self.rows.get(&s.generation).and_then(|v| v.get(s.row as usize)).copied();
                let again = again.unwrap_or(f64::NAN);
                if s.score != again && !(s.score.is_nan() && again.is_nan()) {
                    tally.add("scores that disagree with the reward recomputed from samples", s.at);
                }
            }
            return Ok(());
        };
        let by = |k: u32| match scorer {
            crate::filter::Scorer::Current => k.saturating_sub(1),
            crate::filter::Scorer::First => 0,
        };
        let wanted: BTreeSet<u32> = scored.iter().map(|s| by(s.at.1)).collect();
        self.fitted.retain(|g, _| wanted.contains(g));
        for &g in &wanted {
            if !self.fitted.contains_key(&g) {
                let fitted = match self.models.get(&g) {
                    Some(path) => models_of(path, g, kind).map_err(file_error(path))?,
                    None => BTreeMap::new(),
                };
                self.fitted.insert(g, fitted);
            }
        }
        for s in scored {
            let (r, k, _) = s.at;
            let Some(g) = self.fitted.get(&by(k)).and_then(|m| m.get(&r)) else {
                tally.add("scores whose scoring model is missing from the models table", s.at);
                continue;
            };
            let d = kind.width();
            let at = s.row as usize * d;
            let x = self.rows.get(&s.generation).and_then(|v| v.get(at..at + d));
            let again = x.map(|x| g.row_log_likelihood(x)).unwrap_or(f64::NAN);
            // A model collapsed to a point scores +inf or -inf: equal,
            // though the difference of the two is NaN.
            let same = s.score == again
                || (s.score - again).abs() <= 1e-9 * again.abs().max(1.0)
                || (s.score.is_nan() && again.is_nan());
            if !same {
                tally.add(
                    "scores that disagree with the likelihood recomputed from samples and the scoring model",
                    s.at,
                );
            }
        }
        Ok(())
    }
}

/// Each row's reward in a samples file, in row order (NaN where the
/// expression gives nothing).
fn rewards_of(path: &Path, reward: &str) -> PolarsResult<Vec<f64>> {
    let expr = polars::sql::sql_expr(reward)?;
    let df = scan_file(path)?.select([expr.cast(DataType::Float64).alias("score")]).collect()?;
    Ok(df.column("score")?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Each (replicate, generation)'s synthetic rows as (first id, rows): the
/// block best-of groups are counted in. Runs are sorted by first id.
fn newest_blocks(runs: &[SampleRun]) -> BTreeMap<(u32, u32), (u64, u64)> {
    let mut out: BTreeMap<(u32, u32), (u64, u64)> = BTreeMap::new();
    for s in runs.iter().filter(|s| !s.real) {
        let e = out.entry((s.replicate, s.generation)).or_insert((s.start, 0));
        if e.0 + e.1 == s.start {
            e.1 += s.end - s.start;
        }
    }
    out
}

/// The chain's filter metrics, from the table (see `chain::TrainingSet`).
fn metrics(candidates: &[(Candidate, &Decision)]) -> Vec<(&'static str, f64)> {
    let kept: Vec<bool> = candidates.iter().filter(|(_, d)| d.copies > 0).map(|(c, _)| c.real).collect();
    let rate = |real: bool| {
        let judged: Vec<bool> = candidates.iter().filter(|(c, _)| c.real == real).map(|(_, d)| d.flagged).collect();
        (!judged.is_empty()).then(|| judged.iter().filter(|f| **f).count() as f64 / judged.len() as f64)
    };
    let mut out = vec![
        ("filter_kept", kept.len() as f64),
        ("filter_kept_real_fraction", kept.iter().filter(|r| **r).count() as f64 / kept.len() as f64),
    ];
    out.extend(rate(false).map(|v| ("filter_tpr", v)));
    out.extend(rate(true).map(|v| ("filter_fpr", v)));
    out
}
