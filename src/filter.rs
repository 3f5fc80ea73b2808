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
//! T_0 (model 0's training set, D_0) is never filtered: no model has
//! generated anything yet.

use crate::rng::{row_uniform, stream_seed, Purpose, Rng};

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
}

/// A validated `[filter]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub kind: FilterKind,
    pub applies_to: AppliesTo,
    pub action: Action,
}

/// One candidate row of T_k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub sample_id: u64,
    pub real: bool,
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
        }
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
        let kind = match &self.kind {
            FilterKind::Detector { tpr, fpr, .. } => format!("detector (tpr {tpr}, fpr {fpr})"),
        };
        format!("{kind}, {}, applies to {}", self.action_name(), self.applies_name())
    }

    /// Whether a detector flags this candidate of model k's training set.
    pub fn flags(&self, seed: u64, replicate: u32, k: u32, c: Candidate) -> bool {
        let FilterKind::Detector { tpr, fpr, .. } = self.kind;
        if c.real && self.applies_to == AppliesTo::Synthetic {
            return false;
        }
        let p = if c.real { fpr } else { tpr };
        row_uniform(stream_seed(seed, replicate, k, Purpose::Filter), c.sample_id) < p
    }

    /// A judged row's weight.
    pub fn weight(&self, flagged: bool) -> f64 {
        match (self.action, &self.kind) {
            (_, _) if !flagged => 1.0,
            (Action::Drop, _) => 0.0,
            (Action::Resample, FilterKind::Detector { flagged_weight, .. }) => *flagged_weight,
        }
    }

    /// Every candidate's decision, in candidate order; `None` when the
    /// filter keeps nothing (the caller names the generation and replicate).
    pub fn decide(&self, seed: u64, replicate: u32, k: u32, candidates: &[Candidate]) -> Option<Vec<Decision>> {
        let mut out: Vec<Decision> = candidates
            .iter()
            .map(|&c| {
                let flagged = self.flags(seed, replicate, k, c);
                Decision { score: None, flagged, weight: self.weight(flagged), copies: u32::from(!flagged) }
            })
            .collect();
        if self.action == Action::Resample {
            let weights: Vec<f64> = out.iter().map(|d| d.weight).collect();
            let mut rng = Rng::stream(seed, replicate, k, Purpose::Filter);
            let copies = resample(&mut rng, &weights, candidates.len())?;
            for (d, c) in out.iter_mut().zip(copies) {
                d.copies = c;
            }
        }
        out.iter().any(|d| d.copies > 0).then_some(out)
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
        let d = f.decide(7, 3, 5, &c).unwrap();
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
        let d = f.decide(1, 0, 1, &c).unwrap();
        assert!(c.iter().zip(&d).all(|(c, d)| d.flagged != c.real));
        // A row's flag does not depend on the other candidates.
        let half = detector(0.5, 0.0, AppliesTo::All, Action::Drop);
        let all = half.decide(1, 0, 1, &c).unwrap();
        let some = half.decide(1, 0, 1, &c[40..60]).unwrap();
        assert_eq!(&all[40..60], &some[..]);
        // Another generation draws again.
        assert_ne!(all, half.decide(1, 0, 2, &c).unwrap());
    }

    #[test]
    fn nothing_kept_is_none() {
        let f = detector(1.0, 0.0, AppliesTo::Synthetic, Action::Drop);
        assert!(f.decide(1, 0, 1, &candidates(50, 1000)[1..]).is_none());
        let mut r = detector(1.0, 0.0, AppliesTo::Synthetic, Action::Resample);
        r.kind = FilterKind::Detector { tpr: 1.0, fpr: 0.0, flagged_weight: 0.0 };
        assert!(r.decide(1, 0, 1, &candidates(50, 1000)[1..]).is_none());
    }

    /// Resampling draws n rows in proportion to weight: with weights 1 and
    /// w the expected share of the weight-w rows is q = W_w / W. Over n
    /// draws the count is Binomial(n, q): 5 sd is 5 sqrt(n q (1 - q)).
    #[test]
    fn resampling_draws_in_proportion_to_weight() {
        let f = detector(0.5, 0.0, AppliesTo::Synthetic, Action::Resample);
        let c = candidates(100_000, 1_000_000);
        let d = f.decide(11, 2, 3, &c).unwrap();
        let n = c.len() as f64;
        assert_eq!(d.iter().map(|d| u64::from(d.copies)).sum::<u64>(), c.len() as u64);
        let flagged = d.iter().filter(|d| d.flagged).count() as f64;
        let weight_flagged = 0.1 * flagged;
        let q = weight_flagged / (weight_flagged + (n - flagged));
        let drawn_flagged: f64 = d.iter().filter(|d| d.flagged).map(|d| f64::from(d.copies)).sum();
        assert!((drawn_flagged - q * n).abs() < 5.0 * (n * q * (1.0 - q)).sqrt(), "{drawn_flagged} vs {}", q * n);
        assert!(d.iter().all(|d| d.weight == if d.flagged { 0.1 } else { 1.0 }));
        // The same seed draws the same copies.
        assert_eq!(d, f.decide(11, 2, 3, &c).unwrap());
    }

    #[test]
    fn zero_weight_rows_are_never_drawn() {
        let mut rng = Rng::from_seed(3);
        let copies = resample(&mut rng, &[0.0, 1.0, 0.0, 0.0, 2.0, 0.0], 3000).unwrap();
        assert_eq!(copies.iter().sum::<u32>(), 3000);
        assert_eq!([copies[0], copies[2], copies[3], copies[5]], [0, 0, 0, 0]);
        assert!(resample(&mut rng, &[0.0, 0.0], 4).is_none());
    }
}
