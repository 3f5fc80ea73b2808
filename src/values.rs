//! Rows in memory, apart from any table library: the runner, the models and
//! the mixing policies work on these.

/// The data columns of a set of rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Row-major `len x d` matrix (columns x0 .. x{d-1}).
    Vectors { d: usize, data: Vec<f64> },
    /// Discrete symbols (column `token`).
    Tokens(Vec<u32>),
    /// `h x w` u8 images, row-major, one after another (column `pixels`),
    /// with a class label per image where known (real rows).
    Images { h: usize, w: usize, pixels: Vec<u8>, labels: Vec<Option<u8>> },
    /// Text rows (column `text`) with their token ids under the run's
    /// tokenizer (`n_tokens` is their count), and for synthetic rows their
    /// perplexity under the chain's model 0 (`gen0_ppl`).
    Texts { text: Vec<String>, ids: Vec<Vec<u32>>, gen0_ppl: Vec<Option<f64>> },
}

impl Values {
    /// Real text rows (no gen0_ppl).
    pub fn texts(text: Vec<String>, ids: Vec<Vec<u32>>) -> Values {
        let gen0_ppl = vec![None; text.len()];
        Values::Texts { text, ids, gen0_ppl }
    }

    pub fn empty_like(&self) -> Values {
        self.empty_with_room(0)
    }

    /// No rows, of this kind and shape, with room for `rows` of them.
    fn empty_with_room(&self, rows: usize) -> Values {
        match self {
            Values::Vectors { d, .. } => Values::Vectors { d: *d, data: Vec::with_capacity(rows * d) },
            Values::Tokens(_) => Values::Tokens(Vec::with_capacity(rows)),
            Values::Images { h, w, .. } => Values::Images {
                h: *h,
                w: *w,
                pixels: Vec::with_capacity(rows * h * w),
                labels: Vec::with_capacity(rows),
            },
            Values::Texts { .. } => Values::Texts {
                text: Vec::with_capacity(rows),
                ids: Vec::with_capacity(rows),
                gen0_ppl: Vec::with_capacity(rows),
            },
        }
    }

    /// `parts`' rows one after another, in one allocation (growing a
    /// vector by doubling copied a generation's rewards' input twice over);
    /// `None` when there is no part.
    pub fn concat(parts: &[&Values]) -> Option<Values> {
        let first = parts.first()?;
        let mut out = first.empty_with_room(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend(p);
        }
        Some(out)
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Vectors { d, data } => data.len() / d,
            Values::Tokens(t) => t.len(),
            Values::Images { labels, .. } => labels.len(),
            Values::Texts { text, .. } => text.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Values {
        match self {
            // One column (the 1-D runs): a gather, not a slice copy a row.
            Values::Vectors { d: 1, data } => Values::Vectors { d: 1, data: idx.iter().map(|&i| data[i]).collect() },
            Values::Vectors { d, data } => {
                let mut out = Vec::with_capacity(idx.len() * d);
                for &i in idx {
                    out.extend_from_slice(&data[i * d..(i + 1) * d]);
                }
                Values::Vectors { d: *d, data: out }
            }
            Values::Tokens(t) => Values::Tokens(idx.iter().map(|&i| t[i]).collect()),
            Values::Images { h, w, pixels, labels } => {
                let p = h * w;
                let mut out = Vec::with_capacity(idx.len() * p);
                for &i in idx {
                    out.extend_from_slice(&pixels[i * p..(i + 1) * p]);
                }
                Values::Images { h: *h, w: *w, pixels: out, labels: idx.iter().map(|&i| labels[i]).collect() }
            }
            Values::Texts { text, ids, gen0_ppl } => Values::Texts {
                text: idx.iter().map(|&i| text[i].clone()).collect(),
                ids: idx.iter().map(|&i| ids[i].clone()).collect(),
                gen0_ppl: idx.iter().map(|&i| gen0_ppl[i]).collect(),
            },
        }
    }

    /// Appends `other`'s rows; both must be of the same kind.
    pub fn extend(&mut self, other: &Values) {
        match (self, other) {
            (Values::Vectors { data, .. }, Values::Vectors { data: o, .. }) => data.extend_from_slice(o),
            (Values::Tokens(t), Values::Tokens(o)) => t.extend_from_slice(o),
            (Values::Images { pixels, labels, .. }, Values::Images { pixels: p, labels: l, .. }) => {
                pixels.extend_from_slice(p);
                labels.extend_from_slice(l);
            }
            (Values::Texts { text, ids, gen0_ppl }, Values::Texts { text: t, ids: i, gen0_ppl: g }) => {
                text.extend_from_slice(t);
                ids.extend_from_slice(i);
                gen0_ppl.extend_from_slice(g);
            }
            _ => unreachable!("a run's rows are all of one kind: vectors, tokens, images or text"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Real,
    Synthetic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Rows written together with consecutive sample ids.
#[derive(Clone, Debug)]
pub struct Block {
    pub first_id: u64,
    pub replicate: u32,
    pub generation: u32,
    pub origin: Origin,
    pub model_generation: Option<u32>,
    pub split: Split,
    pub values: Values,
}

/// Sample ids are unique in a run and stable when `replicates` grows: the
/// replicate takes the high 24 bits, a per-chain counter the low 40.
pub const ID_BITS: u32 = 40;

pub fn first_sample_id(replicate: u32) -> u64 {
    u64::from(replicate) << ID_BITS
}

/// What one row of the run is; decides the data columns of `samples`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Vectors(usize),
    Tokens,
    Images,
    Text,
}

/// Appends a run of ids, merging it with the previous one when adjacent.
pub fn push_run(ranges: &mut Vec<(u64, u64)>, start: u64, count: u64) {
    if count == 0 {
        return;
    }
    if let Some(last) = ranges.last_mut() {
        if last.0 + last.1 == start {
            last.1 += count;
            return;
        }
    }
    ranges.push((start, count));
}

/// [`push_run`] of each row `idx` picks from a block whose first id is
/// `first`, a run of consecutive rows at a time.
pub fn push_rows(ranges: &mut Vec<(u64, u64)>, first: u64, idx: &[usize]) {
    if idx.is_empty() {
        return;
    }
    // A run ends where a row does not follow the one before. A filter's
    // runs end at random, so those rows are found 64 at a time as a bit
    // mask, a loop without branches, and a run is pushed per set bit.
    let mut start = 0;
    let mut at = 1;
    while at < idx.len() {
        let end = (at + 64).min(idx.len());
        let mut mask = match <&[usize; 65]>::try_from(&idx[at - 1..end]) {
            Ok(w) => breaks64(w),
            Err(_) => breaks(&idx[at - 1..end]),
        };
        while mask != 0 {
            let j = at + mask.trailing_zeros() as usize;
            push_run(ranges, first + idx[start] as u64, (j - start) as u64);
            start = j;
            mask &= mask - 1;
        }
        at = end;
    }
    push_run(ranges, first + idx[start] as u64, (idx.len() - start) as u64);
}

/// Bit j set where `w[j + 1]` does not follow `w[j]` (up to 65 rows).
fn breaks(w: &[usize]) -> u64 {
    w.windows(2).enumerate().fold(0, |mask, (j, p)| mask | u64::from(p[1] != p[0].wrapping_add(1)) << j)
}

crate::simd::wide! {
    /// [`breaks`] of 65 rows: a fixed count, so the compares become one
    /// mask of lanes.
    fn breaks64 / breaks64_plain(w: &[usize; 65]) -> u64 {
        let mut mask = 0u64;
        for j in 0..64 {
            mask |= u64::from(w[j + 1] != w[j].wrapping_add(1)) << j;
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Long runs (past the 64-row masks), repeats, steps back: the
        /// runs pushed are those of one row at a time, and both builds of
        /// the mask agree.
        #[test]
        fn long_runs_push_as_their_rows(pieces in proptest::collection::vec((0usize..400, 1usize..150), 0..10), first in 0u64..100) {
            let idx: Vec<usize> = pieces.iter().flat_map(|&(s, n)| s..s + n).collect();
            let mut a = vec![(first + 3, 2)];
            let mut b = a.clone();
            push_rows(&mut a, first + 5, &idx);
            for &i in &idx {
                push_run(&mut b, first + 5 + i as u64, 1);
            }
            proptest::prop_assert_eq!(a, b);
            for w in idx.windows(65) {
                let w: &[usize; 65] = w.try_into().unwrap();
                proptest::prop_assert_eq!(breaks64(w), breaks(w));
                proptest::prop_assert_eq!(breaks64_plain(w), breaks(w));
            }
        }
    }

    /// One allocation or many, the rows are the same: each kind's parts
    /// concatenated equal them appended one by one, in order.
    #[test]
    fn concat_is_extend_in_order() {
        let kinds = [
            vec![
                Values::Vectors { d: 2, data: vec![1.0, 2.0, 3.0, 4.0] },
                Values::Vectors { d: 2, data: vec![5.0, 6.0] },
            ],
            vec![Values::Tokens(vec![3, 1]), Values::Tokens(vec![]), Values::Tokens(vec![7])],
            vec![
                Values::Images { h: 1, w: 2, pixels: vec![1, 2], labels: vec![Some(0)] },
                Values::Images { h: 1, w: 2, pixels: vec![3, 4, 5, 6], labels: vec![None, Some(9)] },
            ],
            vec![Values::texts(vec!["a b".into()], vec![vec![0, 1]]), Values::texts(vec!["c".into()], vec![vec![2]])],
        ];
        for parts in kinds {
            let refs: Vec<&Values> = parts.iter().collect();
            let mut appended = parts[0].empty_like();
            for p in &parts {
                appended.extend(p);
            }
            let joined = Values::concat(&refs).unwrap();
            assert_eq!(joined.len(), parts.iter().map(Values::len).sum::<usize>());
            assert_eq!(joined, appended);
        }
        assert_eq!(Values::concat(&[]), None);
    }
}
