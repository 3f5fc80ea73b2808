//! The audit of a filtered run: every decision in the `filter` table
//! re-derived ([`crate::filter`]): the detector's flags from their seeds
//! and each row's true origin in `samples`, the weights from the flags and
//! the rule, the copies from the resampling draw; each model's training
//! runs against the rows the filter kept; and what the candidates were
//! made of, which the mixing policy must explain (instead of T_k, which
//! the filter has thinned).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::checks::{scan_file, u64_column, Composition};
use super::ranges::{partitions, training_runs, walk, SampleRun, SampleRuns};
use super::table_error;
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

/// One row of a filter file.
struct Row {
    replicate: u32,
    model: u32,
    sample_id: u64,
    decision: Decision,
}

fn rows_of(path: &Path) -> PolarsResult<Vec<Row>> {
    let df = scan_file(path)?
        .select([
            col("replicate"),
            col("model_generation"),
            col("sample_id"),
            col("score").cast(DataType::Float64),
            col("flagged").cast(DataType::Boolean),
            col("weight").cast(DataType::Float64),
            col("copies"),
        ])
        .collect()?;
    let [rep, model, id, copies] = ["replicate", "model_generation", "sample_id", "copies"].map(|n| u64_column(&df, n));
    let score = df.column("score")?.f64()?;
    let flagged = df.column("flagged")?.bool()?;
    let weight = df.column("weight")?.f64()?;
    Ok((0..df.height())
        .filter_map(|i| {
            Some(Row {
                replicate: rep[i]? as u32,
                model: model[i]? as u32,
                sample_id: id[i]?,
                decision: Decision {
                    score: score.get(i),
                    flagged: flagged.get(i)?,
                    weight: weight.get(i)?,
                    copies: u32::try_from(copies[i]?).ok()?,
                },
            })
        })
        .collect())
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

/// `models_to`: models 0 .. models_to are sealed; every one from 1 on must
/// have filter rows. `gaussian`: the run's models are Gaussians of this
/// dimension, whose parameters the `models` table holds (a likelihood
/// filter's scores are then recomputed).
#[allow(clippy::too_many_arguments)]
pub fn check(
    root: &Path,
    sealed: Option<u32>,
    runs: &SampleRuns,
    filter: &Filter,
    seed: u64,
    replicates: u32,
    models_to: u32,
    gaussian: Option<usize>,
) -> Result<FilterFound> {
    let runs: &[SampleRun] = &runs.0;
    let mut by_model: BTreeMap<(u32, u32), Vec<Row>> = BTreeMap::new();
    for (_, path) in partitions(root, super::store::FILTER_DIR, sealed)? {
        for row in rows_of(&path).map_err(table_error("filter"))? {
            by_model.entry((row.replicate, row.model)).or_default().push(row);
        }
    }
    let mut training: BTreeMap<(u32, u32), Vec<(u64, u64)>> = BTreeMap::new();
    for (_, path) in partitions(root, "training", sealed)? {
        for (rep, mg, s, e) in training_runs(&path).map_err(table_error("training"))? {
            training.entry((rep, mg)).or_default().push((s, e - s));
        }
    }

    let newest = newest_blocks(runs);
    let mut out = FilterFound::default();
    let mut tally = Tally::default();
    for r in 0..replicates {
        for k in 1..models_to {
            if !by_model.contains_key(&(r, k)) {
                out.violations.push(format!("filter: replicate {r} model {k} has no filter rows"));
            }
        }
    }
    for (&(r, k), rows) in &by_model {
        let mut comp = Composition { replicate: r, model_generation: k, ..Composition::default() };
        // Each candidate's origin, from the samples run that holds it.
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            let mut found: Option<(u32, u32, bool)> = None;
            let (missing, _) = walk(runs, row.sample_id, row.sample_id + 1, |s: &SampleRun, _, _| {
                found = Some((s.replicate, s.generation, s.real))
            });
            let Some((replicate, generation, real)) = found.filter(|_| missing == 0) else {
                tally.add("filter rows whose sample_id is not in samples", (r, k, row.sample_id));
                continue;
            };
            if replicate != r || generation > k {
                tally.add(
                    "filter rows of another replicate or of a later generation than the model",
                    (r, k, row.sample_id),
                );
            }
            comp.rows += 1;
            comp.distinct += 1;
            match (real, generation) {
                (true, 0) => comp.real_gen0 += 1,
                (true, g) if g == k => comp.real_own += 1,
                (false, g) if g == k => comp.synthetic_own += 1,
                (false, g) if g < k => comp.synthetic_earlier += 1,
                _ => {}
            }
            candidates.push((Candidate { sample_id: row.sample_id, real }, &row.decision));
        }
        if candidates.len() != rows.len() {
            continue;
        }
        let plain: Vec<Candidate> = candidates.iter().map(|(c, _)| *c).collect();
        // Score kinds: the kept set from the stored scores and the rule.
        let scores: Vec<Option<f64>> = candidates.iter().map(|(_, d)| d.score).collect();
        let newest = newest.get(&(r, k)).copied();
        let groups: Vec<u32> = plain.iter().map(|c| c.group(filter.best_of(), newest)).collect();
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
        let got = training.get(&(r, k)).map(Vec::as_slice).unwrap_or_default();
        if got != want.as_slice() {
            let rows = |runs: &[(u64, u64)]| runs.iter().map(|x| x.1).sum::<u64>();
            out.violations.push(format!(
                "filter: replicate {r} model {k}: the training table's {} rows are not the {} the filter table kept (with their copies)",
                rows(got),
                rows(&want)
            ));
        }
        out.metrics.insert((r, k), metrics(&candidates));
        out.candidates.insert((r, k), comp);
    }
    // A reward is a function of the row: every stored score recomputed
    // from samples.
    if let crate::filter::FilterKind::Reward { reward, .. } = &filter.kind {
        let sql = format!(
            "SELECT f.replicate, f.model_generation, f.sample_id, f.score, CAST(({reward}) AS DOUBLE) AS recomputed \
             FROM filter f JOIN samples s ON f.sample_id = s.sample_id WHERE f.score IS NOT NULL"
        );
        match super::query::frame_sealed(root, &sql, sealed) {
            Ok(df) => {
                let [rep, model, id] = ["replicate", "model_generation", "sample_id"].map(|n| u64_column(&df, n));
                let stored = df.column("score").and_then(|c| c.f64().cloned());
                let again = df.column("recomputed").and_then(|c| c.f64().cloned());
                if let (Ok(stored), Ok(again)) = (stored, again) {
                    for i in 0..df.height() {
                        let (Some(a), b) = (stored.get(i), again.get(i).unwrap_or(f64::NAN)) else { continue };
                        // The run stores one zero (+0); the query may give -0.
                        if a != b && !(a.is_nan() && b.is_nan()) {
                            let at = (rep[i].unwrap_or(0) as u32, model[i].unwrap_or(0) as u32, id[i].unwrap_or(0));
                            tally.add("scores that disagree with the reward recomputed from samples", at);
                        }
                    }
                }
            }
            Err(e) => out.violations.push(format!("filter: the rewards cannot be recomputed: {}", e.chain())),
        }
    }
    // A likelihood under a Gaussian is a function of the row and the
    // scoring model's stored parameters: every stored score recomputed.
    if let (crate::filter::FilterKind::Likelihood { model: scorer, .. }, Some(d)) = (&filter.kind, gaussian) {
        if let Err(e) = likelihoods(root, sealed, *scorer, d, &mut tally) {
            out.violations.push(format!("filter: the likelihoods cannot be recomputed: {}", e.chain()));
        }
    }
    for (what, (n, (r, k, id))) in tally.0 {
        out.violations.push(format!("filter: {n} {what} (e.g. replicate {r} model {k} sample_id {id})"));
    }
    Ok(out)
}

/// Recomputes every stored likelihood score from the row (`samples`) and
/// the scoring model's parameters (`models`: model k - 1 for `current`,
/// model 0 for `first`); a score off by more than 1e-9 of its size is
/// tallied, as is one whose model is missing or unreadable.
fn likelihoods(
    root: &Path,
    sealed: Option<u32>,
    scorer: crate::filter::Scorer,
    d: usize,
    tally: &mut Tally,
) -> Result<()> {
    let models = super::query::frame_sealed(root, "SELECT replicate, model_generation, params FROM models", sealed)?;
    let [rep, model] = ["replicate", "model_generation"].map(|n| u64_column(&models, n));
    let params = models.column("params").and_then(|c| c.str().cloned()).map_err(table_error("models"))?;
    let mut by_model: BTreeMap<(u32, u32), crate::model::Gaussian> = BTreeMap::new();
    for i in 0..models.height() {
        let (Some(r), Some(m), Some(json)) = (rep[i], model[i], params.get(i)) else { continue };
        if let Some(g) = crate::model::Gaussian::from_params_json(json) {
            by_model.insert((r as u32, m as u32), g);
        }
    }
    let xs: Vec<String> = (0..d).map(|j| format!("s.x{j}")).collect();
    let sql = format!(
        "SELECT f.replicate, f.model_generation, f.sample_id, f.score, {} \
         FROM filter f JOIN samples s ON f.sample_id = s.sample_id WHERE f.score IS NOT NULL",
        xs.join(", ")
    );
    let scored = super::query::frame_sealed(root, &sql, sealed)?;
    let [rep, model, id] = ["replicate", "model_generation", "sample_id"].map(|n| u64_column(&scored, n));
    let score = scored.column("score").and_then(|c| c.f64().cloned()).map_err(table_error("filter"))?;
    let columns = (0..d)
        .map(|j| scored.column(&format!("x{j}")).and_then(|c| c.f64().cloned()))
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(table_error("samples"))?;
    for i in 0..scored.height() {
        let (Some(r), Some(k), Some(stored)) = (rep[i], model[i], score.get(i)) else { continue };
        let (r, k) = (r as u32, k as u32);
        let at = (r, k, id[i].unwrap_or(0));
        let by = match scorer {
            crate::filter::Scorer::Current => k.saturating_sub(1),
            crate::filter::Scorer::First => 0,
        };
        let Some(g) = by_model.get(&(r, by)) else {
            tally.add("scores whose scoring model is missing from the models table", at);
            continue;
        };
        let row: Option<Vec<f64>> = columns.iter().map(|c| c.get(i)).collect();
        let again = row.map(|x| g.row_log_likelihoods(&x)[0]).unwrap_or(f64::NAN);
        let same = (stored - again).abs() <= 1e-9 * again.abs().max(1.0) || (stored.is_nan() && again.is_nan());
        if !same {
            tally.add("scores that disagree with the likelihood recomputed from samples and the scoring model", at);
        }
    }
    Ok(())
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
