//! Curation in the loop: a filter between generating and training. The
//! mixing policy picks T_k's candidate rows (every row it would train
//! model k on, k >= 1); the filter decides each candidate's fate, and T_k
//! is what it keeps:
//!
//! - `drop`: a flagged row leaves; every other candidate is in T_k once.
//! - `resample` (Drayson et al. 2025's importance resampling): T_k has as
//!   many rows as the candidates, drawn with replacement, each draw picking
//!   candidate i with probability w_i / sum(w); a detector's weight is
//!   `flagged-weight` for a flagged row and 1 otherwise. A row may enter
//!   T_k several times (its `copies`), or not at all.
//!
//! A detector flags each candidate independently, with probability `tpr`
//! when some model made it and `fpr` when it is real, by a uniform draw of
//! its own: a function of the run's seed, the replicate, k and the row's
//! sample id ([`crate::rng::row_uniform`]), so the audit re-derives every
//! flag from the id alone. `applies-to = "synthetic"` leaves real
//! candidates unflagged. The resampling draw is the (replicate, k) stream of
//! [`Purpose::Filter`], taken in candidate order.
//!
//! Score kinds (`likelihood`, `reward`, `command`) score each judged candidate (a
//! real row under `applies-to = "synthetic"` is not judged: it is kept,
//! weight 1, score null). Under `drop`, `keep = q` keeps the ceil(q n)
//! best-scoring of the n judged rows (ties: the smaller sample id first),
//! `min-score = t` the rows scoring at least t; with `best-of = K` (reward)
//! the rows of the newest generation come in groups of K consecutive ids
//! (as the model generated them) and the best of each group is kept.
//! Under `resample` a judged row's weight is exp(bias (s - s_top)), s_top
//! the best kept score for the bias's sign (the highest for bias >= 0, the
//! lowest below), so T_k is drawn from p e^{bias r} (Ferbach et al. 2024)
//! with no weight above 1; 0 for a row the cut (keep, min-score, best-of)
//! flags or whose score is NaN.
//!
//! T_0 (model 0's training set, D_0) is never filtered: no model has
//! generated anything yet.

use crate::rng::{stream_seed, Purpose, Rng};

/// Which candidates the filter judges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AppliesTo {
    /// Only rows some model made.
    Synthetic,
    /// Every candidate, real rows too (a detector's false positives).
    All,
}

/// What happens to the judged rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Drop,
    Resample,
}

/// How rows are judged.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterKind {
    /// A simulated machine-data detector of known quality.
    Detector {
        tpr: f64,
        fpr: f64,
        /// A flagged row's weight under `resample` (unflagged rows: 1).
        flagged_weight: f64,
    },
    /// Each row's log-likelihood (per token for text, the ELBO for
    /// images) under a model of the chain.
    Likelihood { model: Scorer, cut: Option<Cut>, bias: f64 },
    /// An SQL expression over the data columns, evaluated with Polars.
    Reward { reward: String, best_of: u32, cut: Option<Cut>, bias: f64 },
    /// The user's program: reads the candidates as Parquet, writes
    /// `sample_id, score` (README, "Curation in the loop").
    Command { program: crate::model::CommandSettings, cut: Option<Cut>, bias: f64 },
}

/// Which model scores a likelihood filter's rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scorer {
    /// The model that made the newest rows (model k - 1).
    Current,
    /// Model 0, fitted on real data: perplexity filtering's reference.
    First,
}

/// Which scored rows a score filter keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cut {
    /// The best-scoring fraction (0, 1] of the judged rows.
    Keep(f64),
    /// Rows scoring at least this.
    MinScore(f64),
}

/// A validated `[filter]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub kind: FilterKind,
    pub applies_to: AppliesTo,
    pub action: Action,
}

/// Rows of one block by sample id: a run of them, or the rows at `idx`
/// of a block whose first id is `first`.
#[derive(Clone, Copy, Debug)]
pub enum RowIds<'a> {
    Run { first: u64, len: u64 },
    Picked { first: u64, idx: &'a [usize] },
}

/// [`Candidate::group`] of a row in no best-of group.
pub const NO_GROUP: u32 = u32::MAX;

/// One candidate row of T_k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub sample_id: u64,
    pub real: bool,
}

impl Candidate {
    /// Its best-of group: rows of the newest generation, K consecutive ids
    /// from the start of their block (`newest`: that block's first id and
    /// rows); [`NO_GROUP`] for any other row.
    pub fn group(&self, best_of: u32, newest: Option<(u64, u64)>) -> u32 {
        match newest {
            Some((first, rows))
                if best_of > 1 && !self.real && self.sample_id >= first && self.sample_id < first + rows =>
            {
                // A block's rows are counted in u32 (`Values` lengths of one
                // generation), so its groups fit.
                ((self.sample_id - first) / u64::from(best_of)) as u32
            }
            _ => NO_GROUP,
        }
    }
}

/// [`Candidate::group`] of rows of one block (first id `first`, all of
/// one origin): the rows at `idx`, or all `len` of them, appended to `out`.
/// The newest block's own rows are numbered by position, K at a time,
/// without a division a row.
pub fn push_groups(
    best_of: u32,
    newest: Option<(u64, u64)>,
    first: u64,
    real: bool,
    idx: Option<&[usize]>,
    len: usize,
    out: &mut Vec<u32>,
) {
    let candidate = |i: usize| Candidate { sample_id: first + i as u64, real };
    match (newest, idx) {
        (Some((newest_first, rows)), None) if best_of > 1 && !real && newest_first == first && len as u64 <= rows => {
            // Row i's group is i / K, counted up K rows at a time.
            let (mut g, mut c) = (0u32, 0u32);
            out.extend((0..len).map(|_| {
                let group = g;
                c += 1;
                let wrap = u32::from(c == best_of);
                g += wrap;
                c -= wrap * best_of;
                group
            }));
        }
        (_, None) => out.extend((0..len).map(|i| candidate(i).group(best_of, newest))),
        (_, Some(idx)) => out.extend(idx.iter().map(|&i| candidate(i).group(best_of, newest))),
    }
}

/// A score as the cuts rank it: NaN ranks last and passes no threshold.
fn score_value(s: f64) -> f64 {
    if s.is_nan() {
        f64::NEG_INFINITY
    } else {
        s
    }
}

/// A judged row's rank key, smaller is better: the higher score first, as
/// one integer that sorts ascending (a total order: -0 below +0; NaN
/// last). Never [`UNJUDGED`]: NaN ranks as -inf, whose key is below it.
fn rank_key(s: f64) -> u64 {
    let bits = score_value(s).to_bits();
    !(if bits >> 63 == 1 { !bits } else { bits | 1 << 63 })
}

/// A judged, kept row's weight under `resample`: exp(bias (s - top)), `top`
/// the kept rows' best score for the bias's sign, so the weights are
/// exp(bias s) scaled, none above 1. A row at `top` weighs 1 even where
/// `top` is infinite (a model collapsed to a point scores the rows there
/// +inf): the limit of rows tied at the best score. NaN weighs 0.
fn resample_weight(bias: f64, s: f64, top: f64) -> f64 {
    if s.is_nan() {
        return 0.0;
    }
    if s == top {
        return 1.0;
    }
    let w = (bias * (s - top)).exp();
    if w.is_finite() {
        w
    } else {
        0.0
    }
}

/// The rank key of a row the filter does not judge: after every other.
const UNJUDGED: u64 = u64::MAX;

/// Each candidate's score where the filter judged it (the `filter`
/// table's score column: null where it did not), as plain floats with
/// the judged rows as runs, so that a pass over them is a plain loop.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// One a candidate; 0 where not judged (never read as a score).
    pub values: Vec<f64>,
    /// The candidates as runs (count, judged), in candidate order: no
    /// empty run, no two neighbours alike.
    pub judged: Vec<(usize, bool)>,
}

impl Scores {
    /// Appends `values` (taking every one), judged or not (then stored
    /// as 0).
    pub fn push(&mut self, judged: bool, values: impl ExactSizeIterator<Item = f64>) {
        let n = values.len();
        match judged {
            true => self.values.extend(values),
            false => self.values.extend(values.map(|_| 0.0)),
        }
        self.push_run(n, judged);
    }

    /// Marks the next `n` candidates judged or not (their values pushed
    /// by the caller).
    pub fn push_run(&mut self, n: usize, judged: bool) {
        match self.judged.last_mut() {
            _ if n == 0 => {}
            Some(last) if last.1 == judged => last.0 += n,
            _ => self.judged.push((n, judged)),
        }
    }

    /// The scores of `candidates` as `filter` judges them: `scores[i]`
    /// where judged (no score there ranks as NaN), null elsewhere.
    pub fn of(filter: &Filter, candidates: &[Candidate], scores: &[Option<f64>]) -> Scores {
        let mut out = Scores { values: Vec::with_capacity(candidates.len()), judged: Vec::new() };
        for (i, c) in candidates.iter().enumerate() {
            let judged = filter.judges(*c);
            let s = scores.get(i).copied().flatten().unwrap_or(f64::NAN);
            out.push(judged, std::iter::once(s));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each candidate's score, `None` where not judged.
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.judged.iter().flat_map(|&(n, j)| std::iter::repeat_n(j, n)).zip(&self.values).map(|(j, &v)| j.then_some(v))
    }

    /// Exactly `n` candidates: values past the end are NaN (ranked last)
    /// and judged, runs cut or extended to match (a caller's scores are
    /// one a candidate; this keeps a short list from reading past it).
    fn fit(&mut self, n: usize) {
        self.values.resize(n, f64::NAN);
        let mut total = 0;
        self.judged.retain_mut(|r| {
            r.0 = r.0.min(n - total);
            total += r.0;
            r.0 > 0
        });
        self.push_run(n - total, true);
    }
}

/// Best-of where each group's members are adjacent: flags every member
/// of a group but its best (smallest rank key, then sample id) and
/// returns true; returns false, flags as they were, when some group's
/// members are not one run (its runs' group ids are not increasing).
fn best_of_runs(groups: &[u32], key: &[u64], ids: &[u64], flagged: &mut [bool]) -> bool {
    // One plain pass, flagging as it goes; a group out of order puts the
    // flags back. Which member wins is a coin flip, so it is picked by
    // arithmetic, not a branch (a mispredicted branch a group of two
    // was half of a best-of-2 filter's time).
    let before = flagged.to_vec();
    let mut last = None;
    let mut i = 0;
    while i < groups.len() {
        let g = groups[i];
        let mut best = i;
        let mut j = i + 1;
        while j < groups.len() && groups[j] == g {
            let (a, b) = ((key[j], ids[j]), (key[best], ids[best]));
            let less = usize::from(a.0 < b.0) | (usize::from(a.0 == b.0) & usize::from(a.1 < b.1));
            best += (j - best) * less;
            j += 1;
        }
        if g != NO_GROUP {
            if last.is_some_and(|l| l >= g) {
                flagged.copy_from_slice(&before);
                return false;
            }
            last = Some(g);
            for (t, f) in flagged[i..j].iter_mut().enumerate() {
                *f |= i + t != best;
            }
        }
        i = j;
    }
    true
}

/// The most keys [`rth_smallest`] holds.
const FEW: usize = 16;

/// Lanes of [`rth_smallest`]: one AVX-512 register of keys.
const LANES: usize = 8;

crate::simd::wide! {
    /// The r-th smallest of `keys` each xor `flip` (1 <= r <= [`FEW`] <=
    /// their count; flip u64::MAX: the r-th largest, flipped). Each of 8
    /// lanes keeps the r smallest of its keys, sorted, a key passed down
    /// the list by min and max (no branch: which keys are kept is a coin
    /// flip); the r smallest of all are among the lanes' and the keys past
    /// the last whole 8, which one scalar pass then sorts through.
    fn rth_smallest / rth_smallest_plain(keys: &[u64], flip: u64, r: usize) -> u64 {
        let mut held = [u64::MAX; FEW];
        let mut len = 0;
        // Few keys per lane held: the lanes' lists cost more than they save.
        if keys.len() < 2 * LANES * r {
            for &x in keys {
                hold(&mut held, &mut len, r, x ^ flip);
            }
            return held[r - 1];
        }
        let mut lanes = [[u64::MAX; LANES]; FEW];
        let mut chunks = keys.chunks_exact(LANES);
        for chunk in &mut chunks {
            let mut x = [0u64; LANES];
            for (x, &k) in x.iter_mut().zip(chunk) {
                *x = k ^ flip;
            }
            for h in lanes.iter_mut().take(r) {
                for (h, x) in h.iter_mut().zip(x.iter_mut()) {
                    let low = (*h).min(*x);
                    *x = (*h).max(*x);
                    *h = low;
                }
            }
        }
        // A lane's list is padded with u64::MAX; at least r keys come
        // before any padding, so it never moves the r-th smallest.
        for &x in lanes.iter().take(r).flatten() {
            hold(&mut held, &mut len, r, x);
        }
        for &x in chunks.remainder() {
            hold(&mut held, &mut len, r, x ^ flip);
        }
        held[r - 1]
    }
}

/// One step of [`rth_smallest`]'s scalar pass: `held[..len]` are the r
/// smallest so far, sorted; `x` goes in its place if it is smaller than
/// the largest of them (a few moves, where `copy_within` called memmove).
#[inline(always)]
fn hold(held: &mut [u64; FEW], len: &mut usize, r: usize, x: u64) {
    if *len == r && x >= held[r - 1] {
        return;
    }
    *len = (*len + 1).min(r);
    let mut at = *len - 1;
    while at > 0 && held[at - 1] > x {
        held[at] = held[at - 1];
        at -= 1;
    }
    held[at] = x;
}

crate::simd::wide! {
    /// The keep cut's flags: every judged row keyed after `last` (the last
    /// kept key, a judged row's), and how many keys lie below it and how
    /// many are tied with it: one loop of lanes, no branch a row.
    fn flag_after / flag_after_plain(key: &[u64], last: u64, flagged: &mut [bool]) -> (usize, usize) {
        let (mut below, mut tied) = (0usize, 0usize);
        for (f, &k) in flagged.iter_mut().zip(key) {
            *f = (k > last) & (k != UNJUDGED);
            below += usize::from(k < last);
            tied += usize::from(k == last);
        }
        (below, tied)
    }
}

crate::simd::wide! {
    /// Each judged row's rank key ([`rank_key`]).
    fn rank_keys / rank_keys_plain(values: &[f64], key: &mut [u64]) {
        for (k, &s) in key.iter_mut().zip(values) {
            *k = rank_key(s);
        }
    }
}

/// What the filter did with one candidate: one row of the `filter` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// The row's score (`None` for a detector, which scores nothing).
    pub score: Option<f64>,
    /// The filter judged against the row (a detector's flag).
    pub flagged: bool,
    /// The row's resampling weight (under `drop`: 0 flagged, 1 kept).
    pub weight: f64,
    /// How many times the row is in T_k.
    pub copies: u32,
}

impl Filter {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            FilterKind::Detector { .. } => "detector",
            FilterKind::Likelihood { .. } => "likelihood",
            FilterKind::Reward { .. } => "reward",
            FilterKind::Command { .. } => "command",
        }
    }

    /// Whether the filter scores rows (a detector only flags them).
    pub fn scores(&self) -> bool {
        !matches!(self.kind, FilterKind::Detector { .. })
    }

    /// Rows each model generates per row it is asked for (best-of K).
    pub fn best_of(&self) -> u32 {
        match self.kind {
            FilterKind::Reward { best_of, .. } => best_of,
            _ => 1,
        }
    }

    /// Whether this candidate is judged at all.
    pub fn judges(&self, c: Candidate) -> bool {
        self.judges_origin(c.real)
    }

    /// Whether the filter judges rows of this origin (every row of a
    /// block shares one).
    pub fn judges_origin(&self, real: bool) -> bool {
        !(real && self.applies_to == AppliesTo::Synthetic)
    }

    pub fn applies_name(&self) -> &'static str {
        match self.applies_to {
            AppliesTo::Synthetic => "synthetic",
            AppliesTo::All => "all",
        }
    }

    pub fn action_name(&self) -> &'static str {
        match self.action {
            Action::Drop => "drop",
            Action::Resample => "resample",
        }
    }

    /// "detector (tpr 0.9, fpr 0.1), drop, applies to synthetic": for errors.
    pub fn describe(&self) -> String {
        let cut = |c: &Option<Cut>| match c {
            Some(Cut::Keep(q)) => format!(", keep {q}"),
            Some(Cut::MinScore(t)) => format!(", min-score {t}"),
            None => String::new(),
        };
        let kind = match &self.kind {
            FilterKind::Detector { tpr, fpr, .. } => format!("detector (tpr {tpr}, fpr {fpr})"),
            FilterKind::Likelihood { model, cut: c, .. } => {
                let m = if *model == Scorer::First { "first" } else { "current" };
                format!("likelihood (model {m}{})", cut(c))
            }
            FilterKind::Reward { reward, best_of, cut: c, .. } => {
                let b = if *best_of > 1 { format!(", best-of {best_of}") } else { String::new() };
                format!("reward ({reward}{b}{})", cut(c))
            }
            FilterKind::Command { program, cut: c, .. } => format!("command `{}`{}", program.command.join(" "), cut(c)),
        };
        format!("{kind}, {}, applies to {}", self.action_name(), self.applies_name())
    }

    /// A detector's row weights: (unflagged, flagged).
    fn flag_weights(&self) -> (f64, f64) {
        match (self.action, &self.kind) {
            (Action::Resample, FilterKind::Detector { flagged_weight, .. }) => (1.0, *flagged_weight),
            _ => (1.0, 0.0),
        }
    }

    /// Every candidate's decision, in candidate order; `None` when the
    /// filter keeps nothing (the caller names the generation and replicate).
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        seed: u64,
        replicate: u32,
        k: u32,
        candidates: &[Candidate],
        scores: Vec<Option<f64>>,
        groups: &[u32],
    ) -> Option<Decisions> {
        let out = self.decide_all(seed, replicate, k, candidates, scores, groups);
        out.kept_any().then_some(out)
    }

    /// [`Self::decide`] whatever it keeps (what the audit compares a
    /// table with, a table of a run that stopped there included).
    /// Score kinds take each candidate's score (`None` where not judged)
    /// and, for best-of, its group ([`Candidate::group`]; empty: no groups).
    pub fn decide_all(
        &self,
        seed: u64,
        replicate: u32,
        k: u32,
        candidates: &[Candidate],
        scores: Vec<Option<f64>>,
        groups: &[u32],
    ) -> Decisions {
        let out = match &self.kind {
            FilterKind::Detector { .. } => {
                let stream = stream_seed(seed, replicate, k, Purpose::Filter);
                // A row's flag depends on its id and origin alone, so runs
                // of consecutive ids of one origin are flagged as one.
                let mut flagged = Vec::with_capacity(candidates.len());
                let mut rest = candidates;
                while let Some(first) = rest.first() {
                    let len = rest
                        .iter()
                        .zip(0u64..)
                        .take_while(|(c, i)| {
                            first.sample_id.checked_add(*i) == Some(c.sample_id) && c.real == first.real
                        })
                        .count();
                    let ids = RowIds::Run { first: first.sample_id, len: len as u64 };
                    self.flag_rows(stream, first.real, ids, &mut flagged);
                    rest = &rest[len..];
                }
                self.flagged(flagged)
            }
            _ => {
                let ids: Vec<u64> = candidates.iter().map(|c| c.sample_id).collect();
                self.by_score(&ids, Scores::of(self, candidates, &scores), groups)
            }
        };
        self.resampled(seed, replicate, k, out)
    }

    /// A detector's decisions from its flags, in candidate order (the chain
    /// flags its candidates a block at a time with [`Self::flag_rows`]);
    /// `None` when it keeps nothing, as [`Self::decide`].
    pub fn detect(&self, seed: u64, replicate: u32, k: u32, flagged: Vec<bool>) -> Option<Decisions> {
        let out = self.resampled(seed, replicate, k, self.flagged(flagged));
        out.kept_any().then_some(out)
    }

    /// A score kind's decisions on candidates by sample id, each scored
    /// where judged, with best-of groups as [`Self::decide_all`]'s (the
    /// chain's path: no candidate list); `None` when it keeps nothing.
    pub fn judge(
        &self,
        seed: u64,
        replicate: u32,
        k: u32,
        ids: &[u64],
        scores: Scores,
        groups: &[u32],
    ) -> Option<Decisions> {
        let out = self.resampled(seed, replicate, k, self.by_score(ids, scores, groups));
        out.kept_any().then_some(out)
    }

    /// A detector's flags of rows of one origin, by their sample ids, after
    /// `out`'s: a row is flagged when its own uniform draw (of the filter's
    /// (replicate, k) `stream`) falls below its origin's rate.
    pub fn flag_rows(&self, stream: u64, real: bool, ids: RowIds<'_>, out: &mut Vec<bool>) {
        let FilterKind::Detector { tpr, fpr, .. } = self.kind else { return };
        // A row not judged is flagged with probability 0 (a uniform draw is
        // never below it), so every row takes the one comparison.
        let rate = match (real, self.judges_origin(real)) {
            (false, _) => tpr,
            (true, true) => fpr,
            (true, false) => 0.0,
        };
        let t = crate::rng::row_threshold(rate);
        match ids {
            RowIds::Run { first, len } => crate::rng::rows_below(stream, first, len, t, out),
            RowIds::Picked { first, idx } => crate::rng::picked_below(stream, first, idx, t, out),
        }
    }

    /// A detector's decisions before any resampling.
    fn flagged(&self, flagged: Vec<bool>) -> Decisions {
        let (kept, gone) = self.flag_weights();
        Decisions {
            flagged,
            scores: Scores::default(),
            weights: Weights::ByFlag { kept, flagged: gone },
            copies: Vec::new(),
        }
    }

    /// Under `resample`, `out` with each candidate's copies drawn from its
    /// weight (as many draws as candidates); otherwise `out` as it is.
    fn resampled(&self, seed: u64, replicate: u32, k: u32, mut out: Decisions) -> Decisions {
        if self.action == Action::Resample {
            let weights: Vec<f64> = (0..out.len()).map(|i| out.weight(i)).collect();
            let mut rng = Rng::stream(seed, replicate, k, Purpose::Filter);
            // No weight at all: nothing is drawn.
            out.copies = resample(&mut rng, &weights, out.len()).unwrap_or_else(|| vec![0; weights.len()]);
        }
        out
    }

    /// Decisions of a score kind (see the module doc) on candidates by
    /// sample id.
    fn by_score(&self, ids: &[u64], mut scores: Scores, groups: &[u32]) -> Decisions {
        let (cut, bias) = match &self.kind {
            FilterKind::Detector { .. } => (None, 0.0),
            FilterKind::Likelihood { cut, bias, .. }
            | FilterKind::Reward { cut, bias, .. }
            | FilterKind::Command { cut, bias, .. } => (*cut, *bias),
        };
        let n = ids.len();
        scores.fit(n);
        // Each row's rank key (smaller is better, then the smaller sample
        // id); a row not judged keys after every judged one.
        let mut key = vec![UNJUDGED; n];
        let mut at = 0;
        for &(len, judged) in &scores.judged {
            if judged {
                rank_keys(&scores.values[at..at + len], &mut key[at..at + len]);
            } else {
                scores.values[at..at + len].fill(0.0);
            }
            at += len;
        }
        let values = &scores.values;
        let value = |i: usize| score_value(values[i]);
        let rank = |i: usize| (key[i], ids[i]);
        let mut flagged = vec![false; n];
        match cut {
            Some(Cut::Keep(q)) => {
                let n_judged: usize = scores.judged.iter().filter(|r| r.1).map(|r| r.0).sum();
                let keep = ((q * n_judged as f64).ceil() as usize).min(n_judged);
                // Only which rows pass matters, not their order: the last
                // kept key by a selection (O(n), on the keys alone), then
                // every judged row above it flagged (one pass, no branch a
                // row) and its ties settled by id.
                if keep < n_judged {
                    // keep >= 1: q > 0 (validated) and some row is judged.
                    // A row not judged keys after every judged one, so the
                    // keep-th smallest key of all rows is the judged rows'.
                    // Keeping few or dropping few (keep 0.95: 5 rows of
                    // 100), it is the keep-th smallest or the (n - keep +
                    // 1)-th largest (the smallest of !key) of a few held
                    // while the keys stream past; else a selection over a
                    // copy of them.
                    let last = if keep <= FEW {
                        rth_smallest(&key, 0, keep)
                    } else if n - keep < FEW {
                        !rth_smallest(&key, u64::MAX, n - keep + 1)
                    } else {
                        let mut keys = key.clone();
                        *keys.select_nth_unstable(keep - 1).1
                    };
                    // `last` is a judged row's key, so below UNJUDGED.
                    let (below, tied) = flag_after(&key, last, &mut flagged);
                    // Fewer than `keep` keys lie below the keep-th smallest,
                    // and it is tied with itself: usually the one tie, kept.
                    if tied > keep - below {
                        let mut ties: Vec<(u64, usize)> =
                            (0..n).filter(|&i| key[i] == last).map(|i| (ids[i], i)).collect();
                        ties.sort_unstable();
                        for &(_, i) in ties.iter().skip(keep - below) {
                            flagged[i] = true;
                        }
                    }
                }
            }
            Some(Cut::MinScore(t)) => {
                for (i, f) in flagged.iter_mut().enumerate() {
                    *f = key[i] != UNJUDGED && !(value(i) >= t);
                }
            }
            None => {}
        }
        // Best of each group (numbered from 0 within the newest block):
        // every other member is flagged. Only model-made rows have groups,
        // and a filter judges every one of them.
        // A chain's groups lie each in one run of adjacent candidates (its
        // parts' rows come in id order, whole groups picked): each run's
        // best is found in place. Any other order takes the general way.
        if !groups.is_empty() && !best_of_runs(groups, &key, ids, &mut flagged) {
            let size = groups.iter().filter(|&&g| g != NO_GROUP).max().map_or(0, |&g| g as usize + 1);
            let mut best = vec![usize::MAX; size];
            for (i, &g) in groups.iter().enumerate() {
                if g != NO_GROUP {
                    let b = &mut best[g as usize];
                    if *b == usize::MAX || rank(i) < rank(*b) {
                        *b = i;
                    }
                }
            }
            for (i, &g) in groups.iter().enumerate() {
                if g != NO_GROUP {
                    flagged[i] |= best[g as usize] != i;
                }
            }
        }
        let weights = match self.action {
            Action::Drop => Weights::ByFlag { kept: 1.0, flagged: 0.0 },
            Action::Resample => {
                let judged = |i: usize| key[i] != UNJUDGED;
                let kept = (0..n).filter(|&i| judged(i) && !flagged[i]).map(|i| values[i]).filter(|s| !s.is_nan());
                // The score that weighs 1: the best for the bias's sign, so
                // no weight overflows whatever the scores' range.
                let top = if bias >= 0.0 {
                    kept.fold(f64::NEG_INFINITY, f64::max)
                } else {
                    kept.fold(f64::INFINITY, f64::min)
                };
                Weights::Rows(
                    (0..n)
                        .map(|i| match (flagged[i], judged(i)) {
                            (true, _) => 0.0,
                            (false, false) => 1.0,
                            (false, true) => resample_weight(bias, values[i], top),
                        })
                        .collect(),
                )
            }
        };
        Decisions { flagged, scores, weights, copies: Vec::new() }
    }
}

/// What the filter did with one replicate's candidates of T_k, by column
/// in candidate order: the `filter` table's rows without their ids. A
/// run writes one a candidate row (as many as `samples`), so what follows
/// from the flags is not stored: under `drop` a row's weight and copies,
/// a detector's weight under `resample`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    /// Each candidate's flag: the filter judged against it.
    pub flagged: Vec<bool>,
    /// Each candidate's score where judged; empty for a detector, which
    /// scores nothing.
    pub scores: Scores,
    pub weights: Weights,
    /// How many times each candidate is in T_k; empty: once when
    /// unflagged, never when flagged (`drop`).
    pub copies: Vec<u32>,
}

/// One replicate's rows of a generation's `filter` table.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterRows {
    pub replicate: u32,
    /// The candidates' sample ids as runs (first, count), in candidate order.
    pub ids: Vec<(u64, u64)>,
    pub decisions: Decisions,
}

/// Which candidates are in T_k ([`Decisions::in_training`]), as the slice
/// that says it, so that a count over it is a plain loop over one slice.
pub enum InTraining<'a> {
    /// In T_k where not flagged.
    Unflagged(&'a [bool]),
    /// In T_k where copied at least once.
    Copies(&'a [u32]),
}

/// The candidates' resampling weights.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// By the row's flag.
    ByFlag { kept: f64, flagged: f64 },
    /// One a row (a score kind under `resample`).
    Rows(Vec<f64>),
}

impl Decisions {
    pub fn len(&self) -> usize {
        self.flagged.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flagged.is_empty()
    }

    pub fn weight(&self, i: usize) -> f64 {
        match &self.weights {
            Weights::ByFlag { kept, flagged } => {
                if self.flagged[i] {
                    *flagged
                } else {
                    *kept
                }
            }
            Weights::Rows(w) => w[i],
        }
    }

    /// Which candidates are in T_k at least once.
    pub fn in_training(&self) -> InTraining<'_> {
        match self.copies.is_empty() {
            // `drop`: the unflagged rows are in, once each.
            true => InTraining::Unflagged(&self.flagged),
            false => InTraining::Copies(&self.copies),
        }
    }

    /// Candidates in T_k at least once.
    pub fn kept(&self) -> usize {
        match self.in_training() {
            InTraining::Unflagged(flags) => flags.iter().filter(|&&f| !f).count(),
            InTraining::Copies(copies) => copies.iter().filter(|&&c| c > 0).count(),
        }
    }

    pub fn copies(&self, i: usize) -> u32 {
        self.copies.get(i).copied().unwrap_or(u32::from(!self.flagged[i]))
    }

    /// Whether the filter keeps any candidate.
    pub fn kept_any(&self) -> bool {
        match self.in_training() {
            InTraining::Unflagged(flags) => flags.contains(&false),
            InTraining::Copies(copies) => copies.iter().any(|&c| c > 0),
        }
    }

    /// Every candidate's row of the `filter` table, in candidate order.
    pub fn rows(&self) -> impl Iterator<Item = Decision> + '_ {
        let scores = self.scores.iter().chain(std::iter::repeat(None));
        (0..self.len()).zip(scores).map(|(i, score)| Decision {
            score,
            flagged: self.flagged[i],
            weight: self.weight(i),
            copies: self.copies(i),
        })
    }
}

/// `n` draws with replacement, row i with probability w_i / sum(w): how
/// many times each row was drawn. `None` when no row has weight.
pub fn resample(rng: &mut Rng, weights: &[f64], n: usize) -> Option<Vec<u32>> {
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut total = 0.0;
    for w in weights {
        total += w;
        cumulative.push(total);
    }
    // Weights are finite and >= 0 (validated), so the total is too.
    if total <= 0.0 {
        return None;
    }
    let mut copies = vec![0u32; weights.len()];
    for _ in 0..n {
        let u = rng.uniform() * total;
        // The first row whose cumulative weight passes u: a zero-weight
        // row's equals its predecessor's, so it is never the first.
        let i = cumulative.partition_point(|&c| c <= u).min(weights.len() - 1);
        copies[i] += 1;
    }
    Some(copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(d: Decisions) -> Vec<Decision> {
        d.rows().collect()
    }
    fn detector(tpr: f64, fpr: f64, applies_to: AppliesTo, action: Action) -> Filter {
        Filter { kind: FilterKind::Detector { tpr, fpr, flagged_weight: 0.1 }, applies_to, action }
    }

    fn candidates(n: u64, real_every: u64) -> Vec<Candidate> {
        (0..n).map(|i| Candidate { sample_id: 1000 + i, real: i % real_every == 0 }).collect()
    }

    /// Flag rates: with n rows at rate p the count is Binomial(n, p), sd
    /// sqrt(n p (1 - p)) <= 0.5 sqrt(n); 5 sd of 40,000 rows is 500.
    #[test]
    fn a_detector_flags_at_its_rates() {
        let f = detector(0.9, 0.2, AppliesTo::All, Action::Drop);
        let c = candidates(80_000, 2);
        let d = rows(f.decide(7, 3, 5, &c, Vec::new(), &[]).unwrap());
        let rate = |real: bool| {
            let (n, flagged) = c
                .iter()
                .zip(&d)
                .filter(|(c, _)| c.real == real)
                .fold((0, 0), |(n, k), (_, d)| (n + 1, k + usize::from(d.flagged)));
            (flagged as f64, n as f64)
        };
        let (fs, ns) = rate(false);
        assert!((fs - 0.9 * ns).abs() < 5.0 * (ns * 0.9 * 0.1f64).sqrt(), "tpr: {fs} of {ns}");
        let (fr, nr) = rate(true);
        assert!((fr - 0.2 * nr).abs() < 5.0 * (nr * 0.2 * 0.8f64).sqrt(), "fpr: {fr} of {nr}");
        assert!(d.iter().all(|d| d.copies == u32::from(!d.flagged) && d.weight == if d.flagged { 0.0 } else { 1.0 }));
    }

    #[test]
    fn synthetic_only_leaves_real_rows_alone_and_flags_are_per_row() {
        let f = detector(1.0, 1.0, AppliesTo::Synthetic, Action::Drop);
        let c = candidates(100, 4);
        let d = rows(f.decide(1, 0, 1, &c, Vec::new(), &[]).unwrap());
        assert!(c.iter().zip(&d).all(|(c, d)| d.flagged != c.real));
        // A row's flag does not depend on the other candidates.
        let half = detector(0.5, 0.0, AppliesTo::All, Action::Drop);
        let all = rows(half.decide(1, 0, 1, &c, Vec::new(), &[]).unwrap());
        let some = rows(half.decide(1, 0, 1, &c[40..60], Vec::new(), &[]).unwrap());
        assert_eq!(&all[40..60], &some[..]);
        // Another generation draws again.
        assert_ne!(all, rows(half.decide(1, 0, 2, &c, Vec::new(), &[]).unwrap()));
    }

    /// The audit's candidates come in any order: runs of ids are flagged
    /// as one, every row as its own draw says, to the last id there is.
    #[test]
    fn flags_of_candidates_in_any_order_are_each_rows_draw() {
        let f = detector(0.5, 0.3, AppliesTo::All, Action::Drop);
        let mut c: Vec<Candidate> = (0..300u64).map(|i| Candidate { sample_id: 5000 + i, real: i % 7 < 2 }).collect();
        c.swap(10, 200);
        c.reverse();
        c.extend([u64::MAX - 2, u64::MAX - 1, u64::MAX, 0, 1].map(|id| Candidate { sample_id: id, real: false }));
        let got = f.decide_all(9, 4, 2, &c, Vec::new(), &[]).flagged;
        let stream = stream_seed(9, 4, 2, Purpose::Filter);
        let want: Vec<bool> =
            c.iter().map(|c| crate::rng::row_uniform(stream, c.sample_id) < if c.real { 0.3 } else { 0.5 }).collect();
        assert_eq!(got, want);
    }

    /// Runs stay canonical (no empty run, neighbours unlike), rows not
    /// judged read as null, and `fit` cuts or pads to the candidates.
    #[test]
    fn scores_are_runs_of_judged_rows() {
        let mut s = Scores::default();
        s.push(true, [1.0, 2.0].into_iter());
        s.push(true, std::iter::empty());
        s.push(false, [7.0].into_iter());
        let mut rest = [8.0, 9.0, 10.0].into_iter();
        s.push(false, rest.by_ref().take(2));
        assert_eq!(rest.next(), Some(10.0), "the rows not judged are taken too");
        s.push(true, [f64::NAN].into_iter());
        assert_eq!(s.judged, vec![(2, true), (3, false), (1, true)]);
        assert_eq!(&s.values[..5], &[1.0, 2.0, 0.0, 0.0, 0.0]);
        let got: Vec<Option<u64>> = s.iter().map(|v| v.map(f64::to_bits)).collect();
        let want = [Some(1.0), Some(2.0), None, None, None, Some(f64::NAN)].map(|v| v.map(f64::to_bits));
        assert_eq!(got, want);
        let mut short = s.clone();
        short.fit(3);
        assert_eq!((short.values.len(), short.judged), (3, vec![(2, true), (1, false)]));
        let mut long = s.clone();
        long.fit(8);
        assert_eq!(long.judged, vec![(2, true), (3, false), (3, true)]);
        assert!(long.values[6..].iter().all(|v| v.is_nan()), "missing scores rank last");
    }

    #[test]
    fn nothing_kept_is_none() {
        let f = detector(1.0, 0.0, AppliesTo::Synthetic, Action::Drop);
        assert!(f.decide(1, 0, 1, &candidates(50, 1000)[1..], Vec::new(), &[]).is_none());
        let mut r = detector(1.0, 0.0, AppliesTo::Synthetic, Action::Resample);
        r.kind = FilterKind::Detector { tpr: 1.0, fpr: 0.0, flagged_weight: 0.0 };
        assert!(r.decide(1, 0, 1, &candidates(50, 1000)[1..], Vec::new(), &[]).is_none());
    }

    /// Resampling draws n rows in proportion to weight: with weights 1 and
    /// w the expected share of the weight-w rows is q = W_w / W. Over n
    /// draws the count is Binomial(n, q): 5 sd is 5 sqrt(n q (1 - q)).
    #[test]
    fn resampling_draws_in_proportion_to_weight() {
        let f = detector(0.5, 0.0, AppliesTo::Synthetic, Action::Resample);
        let c = candidates(100_000, 1_000_000);
        let d = rows(f.decide(11, 2, 3, &c, Vec::new(), &[]).unwrap());
        let n = c.len() as f64;
        assert_eq!(d.iter().map(|d| u64::from(d.copies)).sum::<u64>(), c.len() as u64);
        let flagged = d.iter().filter(|d| d.flagged).count() as f64;
        let weight_flagged = 0.1 * flagged;
        let q = weight_flagged / (weight_flagged + (n - flagged));
        let drawn_flagged: f64 = d.iter().filter(|d| d.flagged).map(|d| f64::from(d.copies)).sum();
        assert!((drawn_flagged - q * n).abs() < 5.0 * (n * q * (1.0 - q)).sqrt(), "{drawn_flagged} vs {}", q * n);
        assert!(d.iter().all(|d| d.weight == if d.flagged { 0.1 } else { 1.0 }));
        // The same seed draws the same copies.
        assert_eq!(d, rows(f.decide(11, 2, 3, &c, Vec::new(), &[]).unwrap()));
    }

    #[test]
    fn zero_weight_rows_are_never_drawn() {
        let mut rng = Rng::from_seed(3);
        let copies = resample(&mut rng, &[0.0, 1.0, 0.0, 0.0, 2.0, 0.0], 3000).unwrap();
        assert_eq!(copies.iter().sum::<u32>(), 3000);
        assert_eq!([copies[0], copies[2], copies[3], copies[5]], [0, 0, 0, 0]);
        assert!(resample(&mut rng, &[0.0, 0.0], 4).is_none());
    }

    fn scored(cut: Option<Cut>, action: Action, applies_to: AppliesTo) -> Filter {
        Filter { kind: FilterKind::Likelihood { model: Scorer::Current, cut, bias: 1.0 }, applies_to, action }
    }

    fn resample_weights(bias: f64, scores: &[f64]) -> Vec<f64> {
        let f = Filter {
            kind: FilterKind::Likelihood { model: Scorer::Current, cut: None, bias },
            applies_to: AppliesTo::All,
            action: Action::Resample,
        };
        // Every row judged (row 0 is real).
        let c = candidates(scores.len() as u64, 1000);
        rows(f.decide_all(1, 0, 1, &c, scores.iter().map(|&s| Some(s)).collect(), &[]))
            .iter()
            .map(|d| d.weight)
            .collect()
    }

    /// Resampling weights are exp(bias s) scaled so that the best score for
    /// the bias's sign weighs 1: a negative bias (favouring low scores)
    /// over log-likelihoods a thousand nats apart gives the lowest weight 1,
    /// not exp(1000) = inf (which a weight of 0 once stood for).
    #[test]
    fn resample_weights_scale_by_the_best_score_for_the_bias_sign() {
        let s = [-1000.0, -500.0, -1.0, 0.0];
        let w = resample_weights(-1.0, &s);
        assert_eq!(w[0], 1.0);
        for (wi, si) in w.iter().zip(s) {
            assert!((wi - (-(si + 1000.0)).exp()).abs() <= 1e-15, "{w:?}");
        }
        let w = resample_weights(2.5, &s);
        assert_eq!(w[3], 1.0);
        for (wi, si) in w.iter().zip(s) {
            assert!((wi - (2.5 * si).exp()).abs() <= 1e-15, "{w:?}");
        }
        // Bias 0: every scored row alike.
        assert_eq!(resample_weights(0.0, &[-3.0, 7.0, 1e300]), [1.0; 3]);
        // NaN weighs nothing, whatever the bias.
        assert_eq!(resample_weights(-1.0, &[f64::NAN, 2.0])[0], 0.0);
        assert_eq!(resample_weights(1.0, &[f64::NAN, 2.0])[0], 0.0);
    }

    /// A model collapsed to a point scores the rows at the point +inf and
    /// the rest -inf: the rows at the point weigh 1 (the limit of tied best
    /// scores, where exp(inf - inf) is NaN), the rest 0; and rows all at
    /// -inf are tied, so they weigh alike rather than leaving nothing to draw.
    #[test]
    fn resample_weights_of_infinite_scores_are_their_limit() {
        let inf = f64::INFINITY;
        assert_eq!(resample_weights(1.0, &[inf, -inf, inf, -2.0]), [1.0, 0.0, 1.0, 0.0]);
        assert_eq!(resample_weights(-1.0, &[inf, -inf, 3.0]), [0.0, 1.0, 0.0]);
        assert_eq!(resample_weights(1.0, &[-inf, -inf]), [1.0, 1.0]);
    }

    proptest::proptest! {
        /// The r-th smallest is the sorted keys' (r - 1)-th, with repeats.
        #[test]
        fn rth_smallest_is_the_sorted_rth(
            keys in proptest::collection::vec(proptest::prop_oneof![0u64..20, proptest::strategy::Just(u64::MAX), proptest::strategy::Just(0)], 1..700),
            r in 1usize..=FEW,
        ) {
            let r = r.min(keys.len());
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            proptest::prop_assert_eq!(rth_smallest(&keys, 0, r), sorted[r - 1]);
            proptest::prop_assert_eq!(rth_smallest_plain(&keys, 0, r), sorted[r - 1]);
            proptest::prop_assert_eq!(!rth_smallest(&keys, u64::MAX, r), sorted[keys.len() - r]);
            proptest::prop_assert_eq!(!rth_smallest_plain(&keys, u64::MAX, r), sorted[keys.len() - r]);
        }

        /// The keep cut's flag pass and rank keys: the same from both
        /// builds, and as a row-at-a-time reading of their rule.
        #[test]
        fn flag_after_and_rank_keys_are_the_same_from_both_builds(
            keys in proptest::collection::vec(proptest::prop_oneof![0u64..6, proptest::strategy::Just(UNJUDGED)], 0..300),
            last in 0u64..6,
            values in proptest::collection::vec(proptest::prop_oneof![proptest::num::f64::ANY, proptest::strategy::Just(f64::NAN)], 0..100),
        ) {
            let (mut wide, mut plain) = (vec![false; keys.len()], vec![false; keys.len()]);
            let counts = flag_after(&keys, last, &mut wide);
            proptest::prop_assert_eq!(counts, flag_after_plain(&keys, last, &mut plain));
            proptest::prop_assert_eq!(&wide, &plain);
            let want: Vec<bool> = keys.iter().map(|&k| k != UNJUDGED && k > last).collect();
            proptest::prop_assert_eq!(&wide, &want);
            proptest::prop_assert_eq!(counts, (keys.iter().filter(|&&k| k < last).count(), keys.iter().filter(|&&k| k == last).count()));
            let (mut a, mut b) = (vec![0u64; values.len()], vec![0u64; values.len()]);
            rank_keys(&values, &mut a);
            rank_keys_plain(&values, &mut b);
            proptest::prop_assert_eq!(&a, &b);
            proptest::prop_assert!(a.iter().all(|&k| k != UNJUDGED));
        }
    }

    #[test]
    fn keep_takes_the_best_fraction_ties_by_sample_id() {
        // Ten synthetic rows, scores 0,1,..; rows 7 and 8 tie; one real row.
        let mut c = candidates(11, 1000);
        c[0].real = false;
        c[10].real = true;
        let mut scores: Vec<Option<f64>> = (0..10).map(|i| Some(i as f64)).collect();
        scores[8] = Some(7.0);
        scores.push(None);
        let f = scored(Some(Cut::Keep(0.25)), Action::Drop, AppliesTo::Synthetic);
        let d = rows(f.decide(1, 0, 1, &c, scores.clone(), &[]).unwrap());
        // ceil(0.25 * 10) = 3 kept: 9, then the tie 7/8 resolved to 7 and 8 (both), i.e. ids 1009, 1007, 1008.
        let kept: Vec<u64> = c.iter().zip(&d).filter(|(_, d)| d.copies > 0).map(|(c, _)| c.sample_id).collect();
        assert_eq!(kept, vec![1007, 1008, 1009, 1010], "the real row is not judged, so kept");
        assert_eq!(d[10].score, None);
        // Keep 0.2: two rows, 9 then the smaller id of the tie (1007).
        let f = scored(Some(Cut::Keep(0.2)), Action::Drop, AppliesTo::Synthetic);
        let d = rows(f.decide(1, 0, 1, &c, scores.clone(), &[]).unwrap());
        let kept: Vec<u64> = c.iter().zip(&d).filter(|(_, d)| d.copies > 0).map(|(c, _)| c.sample_id).collect();
        assert_eq!(kept, vec![1007, 1009, 1010]);
        let f = scored(Some(Cut::MinScore(6.5)), Action::Drop, AppliesTo::All);
        let d = rows(f.decide(1, 0, 1, &c, scores.clone(), &[]).unwrap());
        assert_eq!(d.iter().filter(|d| !d.flagged).count(), 3, "7, 7 (the tie), 9, and not the unscored real row");
    }

    proptest::proptest! {
        /// `keep` selects what a full sort would keep: scores from a few
        /// values (ties), NaN (last), both zeros (-0 below +0), unjudged
        /// real rows; ids in any order.
        #[test]
        fn keep_selects_what_a_sort_would(
            cases in proptest::collection::vec((0usize..7, proptest::prelude::any::<bool>(), 0u64..1000), 1..80),
            q in 0.01f64..1.0,
        ) {
            let pool = [1.5, -0.0, 0.0, f64::NAN, -3.0, 1.5, 7.0];
            let mut seen = std::collections::BTreeSet::new();
            let cases: Vec<_> = cases.into_iter().filter(|r| seen.insert(r.2)).collect();
            let c: Vec<Candidate> = cases.iter().map(|r| Candidate { sample_id: r.2, real: r.1 }).collect();
            let scores: Vec<Option<f64>> = cases.iter().map(|r| Some(pool[r.0])).collect();
            let f = scored(Some(Cut::Keep(q)), Action::Drop, AppliesTo::Synthetic);
            let got: Vec<bool> = rows(f.decide_all(1, 0, 1, &c, scores.clone(), &[])).iter().map(|d| d.flagged).collect();
            let value = |i: usize| if c[i].real || scores[i].unwrap().is_nan() { f64::NEG_INFINITY } else { scores[i].unwrap() };
            let mut judged: Vec<usize> = (0..c.len()).filter(|&i| !c[i].real).collect();
            let keep = ((q * judged.len() as f64).ceil() as usize).min(judged.len());
            judged.sort_by(|&a, &b| value(b).total_cmp(&value(a)).then(c[a].sample_id.cmp(&c[b].sample_id)));
            let mut want = vec![false; c.len()];
            for &i in &judged[keep..] {
                want[i] = true;
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// Best-of keeps of each group what a sort of its members would
        /// put first (ties by the smaller id, NaN last, -0 below +0); rows
        /// outside the newest block (older or real ones) are not grouped
        /// and stay; a keep cut flags on top of it.
        #[test]
        fn best_of_keeps_what_a_sort_of_each_group_would(
            cases in proptest::collection::vec((0usize..6, 0u64..40, proptest::prelude::any::<bool>()), 1..60),
            k in 2u32..5,
            cut in proptest::prelude::any::<bool>(),
        ) {
            let pool = [2.0, -0.0, 0.0, f64::NAN, -1.0, 2.0];
            let mut seen = std::collections::BTreeSet::new();
            let cases: Vec<_> = cases.into_iter().filter(|r| seen.insert(r.1)).collect();
            // Ids 100.. are the newest block (24 rows); below it older rows.
            let c: Vec<Candidate> = cases.iter().map(|r| Candidate { sample_id: 76 + r.1, real: r.2 && r.1 < 24 }).collect();
            let scores: Vec<Option<f64>> = cases.iter().map(|r| Some(pool[r.0])).collect();
            let groups: Vec<u32> = c.iter().map(|c| c.group(k, Some((100, 24)))).collect();
            let f = Filter {
                kind: FilterKind::Reward { reward: "x0".into(), best_of: k, cut: None, bias: 1.0 },
                applies_to: AppliesTo::Synthetic,
                action: Action::Drop,
            };
            let got: Vec<bool> = f.decide_all(1, 0, 1, &c, scores.clone(), &groups).flagged;
            let value = |i: usize| if scores[i].unwrap().is_nan() { f64::NEG_INFINITY } else { scores[i].unwrap() };
            let mut want = vec![false; c.len()];
            for g in 0..(24 / k + 1) {
                let mut members: Vec<usize> = (0..c.len()).filter(|&i| groups[i] == g).collect();
                members.sort_by(|&a, &b| value(b).total_cmp(&value(a)).then(c[a].sample_id.cmp(&c[b].sample_id)));
                for &i in members.iter().skip(1) {
                    want[i] = true;
                }
            }
            proptest::prop_assert_eq!(&got, &want);
            proptest::prop_assert!(c.iter().zip(&groups).all(|(c, &g)| (g == NO_GROUP) == (c.real || c.sample_id < 100)));
            if cut {
                let keep = Filter { kind: FilterKind::Reward { reward: "x0".into(), best_of: k, cut: Some(Cut::Keep(0.5)), bias: 1.0 }, ..f };
                let both = keep.decide_all(1, 0, 1, &c, scores.clone(), &groups).flagged;
                let alone = keep.decide_all(1, 0, 1, &c, scores, &[]).flagged;
                let union: Vec<bool> = want.iter().zip(&alone).map(|(a, b)| a | b).collect();
                proptest::prop_assert_eq!(both, union);
            }
        }
    }

    proptest::proptest! {
        /// Groups in runs (with ungrouped rows between them): each run's
        /// best is the member of smallest (key, sample id), as over the
        /// whole column; a group split in two runs is left to the general way.
        #[test]
        fn best_of_runs_flags_all_but_each_groups_best(
            groups_of in proptest::collection::vec((1usize..5, proptest::prelude::any::<bool>()), 0..30),
            keys in proptest::collection::vec(0u64..4, 160),
        ) {
            let mut groups = Vec::new();
            for (g, &(size, gap)) in groups_of.iter().enumerate() {
                if gap {
                    groups.push(NO_GROUP);
                }
                groups.extend(std::iter::repeat_n(g as u32, size));
            }
            let ids: Vec<u64> = (0..keys.len()).map(|i| (i as u64 * 7919) % 1009).collect();
            let rank = |i: usize| (keys[i], ids[i]);
            let mut got = vec![false; groups.len()];
            proptest::prop_assert!(best_of_runs(&groups, &keys, &ids, &mut got));
            for (i, &g) in groups.iter().enumerate() {
                let best = (0..groups.len()).filter(|&j| groups[j] == g).min_by_key(|&j| rank(j)).unwrap();
                proptest::prop_assert_eq!(got[i], g != NO_GROUP && i != best);
            }
            if groups_of.len() > 1 {
                let mut split = groups.clone();
                split.push(0);
                let mut none = vec![false; split.len()];
                proptest::prop_assert!(!best_of_runs(&split, &keys, &ids, &mut none));
                proptest::prop_assert!(none.iter().all(|&f| !f));
            }
        }
    }

    proptest::proptest! {
        /// A block's groups, a block at a time, are each row's own.
        #[test]
        fn push_groups_is_each_rows_group(
            len in 0usize..60,
            k in 1u32..5,
            real in proptest::prelude::any::<bool>(),
            at in 0u64..3,
            rows in 0u64..80,
            picked in proptest::collection::btree_set(0usize..60, 0..20),
        ) {
            let newest = Some((1000 + at * 30, rows));
            let idx: Vec<usize> = picked.into_iter().filter(|&i| i < len).collect();
            for which in [None, Some(idx.as_slice())] {
                let mut got = vec![7];
                push_groups(k, newest, 1000, real, which, len, &mut got);
                let ids: Vec<usize> = which.map_or((0..len).collect(), <[usize]>::to_vec);
                let want: Vec<u32> = std::iter::once(7)
                    .chain(ids.iter().map(|&i| Candidate { sample_id: 1000 + i as u64, real }.group(k, newest)))
                    .collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn best_of_keeps_one_per_group_and_resample_weighs_by_exp_bias_score() {
        let mut c = candidates(8, 1000);
        c[0].real = false;
        let groups: Vec<u32> = c.iter().map(|c| c.group(4, Some((1000, 8)))).collect();
        assert_eq!(groups, [0, 0, 0, 0, 1, 1, 1, 1]);
        let scores: Vec<Option<f64>> = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0].map(Some).to_vec();
        let f = Filter {
            kind: FilterKind::Reward { reward: "x0".into(), best_of: 4, cut: None, bias: 1.0 },
            applies_to: AppliesTo::Synthetic,
            action: Action::Drop,
        };
        let d = rows(f.decide(1, 0, 1, &c, scores.clone(), &groups).unwrap());
        let kept: Vec<usize> = (0..8).filter(|&i| d[i].copies == 1).collect();
        assert_eq!(kept, vec![2, 5]);
        let f = scored(None, Action::Resample, AppliesTo::Synthetic);
        let d = rows(f.decide(1, 0, 1, &c, scores.clone(), &[]).unwrap());
        for (s, d) in scores.iter().zip(&d) {
            assert!((d.weight - (s.unwrap() - 9.0).exp()).abs() < 1e-15);
        }
        assert_eq!(d.iter().map(|d| d.copies).sum::<u32>(), 8);
    }
}
