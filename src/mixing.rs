//! The mixing policies: what a chain trains model k on (T_k), drawn from
//! D_0, the synthetic generations so far and fresh real rows; and what T_k
//! must then be made of, which the audit holds the training table to.
//!
//! Policies (Shumailov et al.; Gerstgrasser et al.; Bertrand et al.):
//! `replace` trains on D_k alone; `keep-real` on round(γN) rows of D_0 and
//! N - round(γN) of D_k; `accumulate` on D_0 and every D_1..D_k;
//! `accumulate-subsample` on N rows drawn from that pool; `augment` on D_0
//! and round(λN) rows of D_k; `fresh` on round(γN) new real rows and
//! N - round(γN) rows of D_k.

use crate::rng::Rng;
use crate::values::Block;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MixPolicy {
    Replace,
    KeepReal { real_fraction: f64 },
    Accumulate,
    AccumulateSubsample,
    Augment { lambda: f64 },
    Fresh { real_fraction: f64 },
}

impl MixPolicy {
    pub fn name(&self) -> &'static str {
        match self {
            MixPolicy::Replace => "replace",
            MixPolicy::KeepReal { .. } => "keep-real",
            MixPolicy::Accumulate => "accumulate",
            MixPolicy::AccumulateSubsample => "accumulate-subsample",
            MixPolicy::Augment { .. } => "augment",
            MixPolicy::Fresh { .. } => "fresh",
        }
    }

    /// Real rows per later training set (keep-real, fresh): round(γN).
    pub fn real_rows(&self, n: usize) -> usize {
        match self {
            MixPolicy::KeepReal { real_fraction } | MixPolicy::Fresh { real_fraction } => {
                (real_fraction * n as f64).round() as usize
            }
            _ => 0,
        }
    }

    /// Rows of D_k a later training set takes; `None` when it takes all.
    pub fn synthetic_rows(&self, n: usize) -> Option<usize> {
        match self {
            MixPolicy::KeepReal { .. } | MixPolicy::Fresh { .. } => Some(n - self.real_rows(n)),
            MixPolicy::Augment { lambda } => Some((lambda * n as f64).round() as usize),
            _ => None,
        }
    }
}

/// One block's share of T_k: all its rows, or the rows at these (sorted)
/// indices.
pub type Part<'a> = (&'a Block, Option<Vec<usize>>);

/// How many rows a part puts in T_k.
pub fn part_rows((block, idx): &Part<'_>) -> usize {
    idx.as_ref().map_or(block.values.len(), Vec::len)
}

/// What T_k must be made of, per source of rows; `None` where the policy
/// leaves a count to chance (accumulate-subsample's draw from the pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Makeup {
    pub rows: Option<u64>,
    pub real_d0: Option<u64>,
    pub real_fresh: Option<u64>,
    pub synthetic_dk: Option<u64>,
    pub synthetic_earlier: Option<u64>,
}

impl MixPolicy {
    /// Whether generation k draws fresh real rows, and how many: under
    /// `fresh`, round(γN) at every 0 < k < generations (the last generation
    /// fits no model, so it draws none).
    pub fn fresh_draw(&self, n: usize, k: u32, generations: u32) -> Option<usize> {
        match self {
            MixPolicy::Fresh { .. } if k > 0 && k < generations => Some(self.real_rows(n)),
            _ => None,
        }
    }

    /// Fresh real rows generation k adds to D_k.
    pub fn fresh_rows(&self, n: usize, k: u32, generations: u32) -> usize {
        self.fresh_draw(n, k, generations).unwrap_or(0)
    }

    /// Fresh real rows a whole run draws: the reserve a data file must hold
    /// beyond D_0 and the held-out rows.
    pub fn fresh_reserve(&self, n: usize, generations: u32) -> usize {
        (1..generations).map(|k| self.fresh_rows(n, k, generations)).sum()
    }

    /// Whether the chain must keep every D_k (the policy draws on all of them).
    pub fn keeps_all(&self) -> bool {
        matches!(self, MixPolicy::Accumulate | MixPolicy::AccumulateSubsample)
    }

    /// Earlier generations whose samples model k's training set draws from.
    pub fn reads(&self, k: u32) -> Vec<u32> {
        match self {
            _ if k == 0 => Vec::new(),
            MixPolicy::Replace | MixPolicy::Fresh { .. } => Vec::new(),
            MixPolicy::KeepReal { .. } | MixPolicy::Augment { .. } => vec![0],
            MixPolicy::Accumulate | MixPolicy::AccumulateSubsample => (0..k).collect(),
        }
    }

    /// T_k for k > 0 as parts of blocks: `d0` is D_0 (N rows), `synthetic`
    /// D_1..D_k (the last is D_k), `fresh` this generation's fresh real
    /// rows. `rng` is the chain's mixing stream for generation k. `group`:
    /// D_k's rows come in groups of that many consecutive rows (best-of
    /// curation's candidates for one row), and a policy that takes some of
    /// D_k takes whole groups, as many as it would take rows.
    pub fn pick<'a>(
        &self,
        rng: &mut Rng,
        n: usize,
        d0: &'a Block,
        synthetic: &'a [Block],
        fresh: Option<&'a Block>,
        group: usize,
    ) -> Vec<Part<'a>> {
        let of_last = |rng: &mut Rng, len: usize, count: usize| -> Vec<usize> {
            if group <= 1 {
                return rng.choose_sorted(len, count);
            }
            rng.choose_sorted(len / group, count).into_iter().flat_map(|g| g * group..(g + 1) * group).collect()
        };
        let Some(last) = synthetic.last() else { return vec![(d0, None)] };
        let mut parts: Vec<Part<'a>> = Vec::new();
        match self {
            MixPolicy::Replace => parts.push((last, None)),
            MixPolicy::KeepReal { .. } => {
                let r = self.real_rows(n);
                parts.push((d0, Some(rng.choose_sorted(n, r))));
                parts.push((last, Some(of_last(rng, last.values.len(), n - r))));
            }
            MixPolicy::Accumulate => {
                parts.push((d0, None));
                parts.extend(synthetic.iter().map(|b| (b, None)));
            }
            MixPolicy::AccumulateSubsample => {
                let pool: Vec<&Block> = std::iter::once(d0).chain(synthetic).collect();
                let total: usize = pool.iter().map(|b| b.values.len()).sum();
                let mut picked = rng.choose_sorted(total, n).into_iter().peekable();
                let mut offset = 0;
                for b in pool {
                    let len = b.values.len();
                    let mut idx = Vec::new();
                    while let Some(&i) = picked.peek() {
                        if i >= offset + len {
                            break;
                        }
                        idx.push(i - offset);
                        picked.next();
                    }
                    offset += len;
                    if !idx.is_empty() {
                        parts.push((b, Some(idx)));
                    }
                }
            }
            MixPolicy::Augment { .. } => {
                let s = self.synthetic_rows(n).unwrap_or(0);
                parts.push((d0, None));
                parts.push((last, Some(of_last(rng, last.values.len(), s))));
            }
            MixPolicy::Fresh { .. } => {
                let r = self.real_rows(n);
                if let Some(f) = fresh {
                    parts.push((f, None));
                }
                parts.push((last, Some(of_last(rng, last.values.len(), n - r))));
            }
        }
        parts
    }

    /// What model k's training set must hold, given N, D_0's size `d0`,
    /// D_k's synthetic size `dk` and the synthetic rows of D_1..D_{k-1}.
    pub fn makeup(&self, k: u32, n: u64, d0: u64, dk: u64, earlier: u64) -> Makeup {
        let real = self.real_rows(n as usize) as u64;
        let take = self.synthetic_rows(n as usize).map(|s| s as u64);
        let m = |rows, real_d0, real_fresh, synthetic_dk, synthetic_earlier| Makeup {
            rows,
            real_d0,
            real_fresh,
            synthetic_dk,
            synthetic_earlier,
        };
        match self {
            _ if k == 0 => m(Some(d0), Some(d0), Some(0), Some(0), Some(0)),
            MixPolicy::Replace => m(Some(dk), Some(0), Some(0), Some(dk), Some(0)),
            MixPolicy::KeepReal { .. } => m(Some(n), Some(real), Some(0), take, Some(0)),
            MixPolicy::Accumulate => m(Some(d0 + earlier + dk), Some(d0), Some(0), Some(dk), Some(earlier)),
            MixPolicy::AccumulateSubsample => m(Some(n), None, Some(0), None, None),
            MixPolicy::Augment { .. } => m(take.map(|s| d0 + s), Some(d0), Some(0), take, Some(0)),
            MixPolicy::Fresh { .. } => m(Some(n), Some(0), Some(real), take, Some(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Origin, Split, Values};

    fn block(first_id: u64, rows: usize, origin: Origin) -> Block {
        Block {
            first_id,
            replicate: 0,
            generation: 1,
            origin,
            model_generation: None,
            split: Split::Train,
            values: Values::Vectors { d: 1, data: vec![0.0; rows] },
        }
    }

    /// Best-of candidates: a policy that takes some of D_k takes whole
    /// groups, as many as it would take rows; without groups the draw is
    /// the one it always was.
    #[test]
    fn subsampling_policies_take_whole_groups() {
        let d0 = block(0, 10, Origin::Real);
        let dk = [block(100, 40, Origin::Synthetic)];
        let policy = MixPolicy::KeepReal { real_fraction: 0.2 };
        let parts = policy.pick(&mut Rng::from_seed(9), 10, &d0, &dk, None, 4);
        let idx = parts[1].1.clone().unwrap();
        assert_eq!(idx.len(), 8 * 4, "N - round(0.2 N) = 8 groups of 4");
        for g in idx.chunks(4) {
            assert_eq!(g, [g[0], g[0] + 1, g[0] + 2, g[0] + 3]);
            assert_eq!(g[0] % 4, 0);
        }
        let plain = policy.pick(&mut Rng::from_seed(9), 10, &d0, &dk, None, 1);
        let mut rng = Rng::from_seed(9);
        let _real = rng.choose_sorted(10, 2);
        assert_eq!(plain[1].1.as_ref().unwrap(), &rng.choose_sorted(40, 8));
    }
}
