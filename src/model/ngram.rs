//! Interpolated Kneser-Ney n-gram model over token ids (Chen & Goodman
//! 1998, section 3.5; the counting as KenLM does it).
//!
//! Each row is `<s> t_1 .. t_m </s>`. The highest order, and n-grams that
//! start with `<s>` (which no left context can extend), use raw counts;
//! every lower order uses continuation counts: how many distinct tokens
//! precede the n-gram. With discount D_m at order m, context h and its
//! shortened form h',
//!
//!   P_m(w | h) = max(c(h w) - D_m, 0) / c(h) + D_m N1+(h .) / c(h) P_{m-1}(w | h'),
//!
//! and P_0 is uniform over the vocabulary and `</s>`. An unseen context
//! passes straight down to the lower order. Because every kept count is at
//! least 1 > D_m, the discounted mass of a context is exactly
//! c(h) - D_m N1+(h .), which is what lets [`Ngram::sample`] draw a token by
//! walking down the orders instead of building the whole distribution.

pub use crate::model::settings::NgramSettings;

use rayon::prelude::*;

use crate::fasthash::FastMap;
use crate::rng::Rng;

type KeyMap = FastMap<u128, u32>;

/// Rows sampled from one seed: sampling runs in parallel over fixed
/// chunks, each seeded in order from the caller's stream, so the rows do
/// not depend on the thread count.
const SAMPLE_CHUNK: usize = 256;

/// Bits per token id in a packed n-gram key; a u128 holds 6 of them.
const BITS: u32 = 20;
const MASK: u128 = (1 << BITS) - 1;
pub const MAX_ORDER: usize = 6;

/// One order's table: contexts (order-1 tokens) and, for each, its
/// followers sorted by id with their counts.
#[derive(Clone, Debug, Default)]
struct Level {
    index: KeyMap,
    /// Followers of context j are `words[start[j]..start[j + 1]]`.
    start: Vec<u32>,
    total: Vec<f64>,
    words: Vec<u32>,
    counts: Vec<u32>,
    /// Running sums of (count - D) within each context, for sampling.
    cum: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct Ngram {
    pub order: usize,
    /// Token ids 0 .. vocab-1; `<s>` is `vocab`, `</s>` is `vocab + 1`.
    pub vocab: u32,
    pub discounts: Vec<f64>,
    pub max_tokens: usize,
    levels: Vec<Level>,
}

fn pack(tokens: &[u32]) -> u128 {
    tokens.iter().fold(0u128, |k, &t| (k << BITS) | u128::from(t))
}

/// Sorted (key, count) of the keys.
fn count_sorted(mut keys: Vec<u128>) -> Vec<(u128, u32)> {
    keys.sort_unstable();
    let mut out: Vec<(u128, u32)> = Vec::new();
    for k in keys {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

impl Ngram {
    pub fn bos(&self) -> u32 {
        self.vocab
    }

    pub fn eos(&self) -> u32 {
        self.vocab + 1
    }

    /// Counts the rows (token ids below `vocab`) and builds every order.
    pub fn fit(rows: &[Vec<u32>], vocab: u32, s: &NgramSettings) -> Ngram {
        let n = s.order;
        let (bos, eos) = (vocab, vocab + 1);
        // grams[m-1]: every m-gram occurrence ending at a predicted token.
        let mut grams: Vec<Vec<u128>> = vec![Vec::new(); n];
        let mut seq = Vec::new();
        for r in rows {
            seq.clear();
            seq.push(bos);
            seq.extend_from_slice(r);
            seq.push(eos);
            for i in 1..seq.len() {
                for m in 1..=n.min(i + 1) {
                    grams[m - 1].push(pack(&seq[i + 1 - m..=i]));
                }
            }
        }
        let starts_with_bos = |key: u128, m: usize| (key >> (BITS * (m as u32 - 1))) as u32 == bos;
        let mut adjusted: Vec<Vec<(u128, u32)>> = vec![Vec::new(); n];
        // The distinct (m+1)-grams, whose suffixes give order m's continuation counts.
        let mut types_above: Vec<u128> = Vec::new();
        for m in (1..=n).rev() {
            let raw = count_sorted(std::mem::take(&mut grams[m - 1]));
            let mask = (1u128 << (BITS * m as u32)) - 1;
            let cont = count_sorted(types_above.iter().map(|k| k & mask).collect());
            types_above = raw.iter().map(|x| x.0).collect();
            adjusted[m - 1] = if m == n {
                raw
            } else {
                let mut cont = cont;
                cont.extend(raw.into_iter().filter(|(k, _)| starts_with_bos(*k, m)));
                cont.sort_unstable_by_key(|x| x.0);
                cont
            };
        }
        let discounts: Vec<f64> = adjusted
            .iter()
            .map(|a| match s.discount {
                Some(d) => d,
                None => {
                    let n1 = a.iter().filter(|x| x.1 == 1).count() as f64;
                    let n2 = a.iter().filter(|x| x.1 == 2).count() as f64;
                    if n1 > 0.0 && n2 > 0.0 {
                        (n1 / (n1 + 2.0 * n2)).clamp(0.05, 0.95)
                    } else {
                        0.75
                    }
                }
            })
            .collect();
        let levels = adjusted.into_iter().zip(&discounts).map(|(a, &d)| Level::build(a, d)).collect();
        Ngram { order: n, vocab, discounts, max_tokens: s.max_tokens, levels }
    }

    /// P(w | the last order-1 tokens of `history`), history starting with `<s>`.
    pub fn prob(&self, history: &[u32], w: u32) -> f64 {
        let mut p = 1.0 / f64::from(self.vocab + 1);
        let longest = self.order.min(history.len() + 1);
        for m in 1..=longest {
            let level = &self.levels[m - 1];
            let ctx = pack(&history[history.len() + 1 - m..]);
            if let Some(&j) = level.index.get(&ctx) {
                let j = j as usize;
                let (lo, hi) = (level.start[j] as usize, level.start[j + 1] as usize);
                let d = self.discounts[m - 1];
                let c = match level.words[lo..hi].binary_search(&w) {
                    Ok(i) => f64::from(level.counts[lo + i]),
                    Err(_) => 0.0,
                };
                let types = (hi - lo) as f64;
                p = ((c - d).max(0.0) + d * types * p) / level.total[j];
            }
        }
        p
    }

    /// Negative log-likelihood (nats) of each token and `</s>` of a row.
    pub fn row_nll(&self, row: &[u32]) -> (f64, usize) {
        let mut seq = Vec::with_capacity(row.len() + 2);
        seq.push(self.bos());
        let mut nll = 0.0;
        for &w in row.iter().chain(std::iter::once(&self.eos())) {
            let start = seq.len().saturating_sub(self.order - 1);
            nll -= self.prob(&seq[start..], w).ln();
            seq.push(w);
        }
        (nll, row.len() + 1)
    }

    /// Mean NLL per token (`</s>` included) over the rows: rows scored in
    /// parallel, summed in row order.
    pub fn mean_nll(&self, rows: &[Vec<u32>]) -> f64 {
        let per_row: Vec<(f64, usize)> = rows.par_iter().map(|r| self.row_nll(r)).collect();
        let (nll, count) = per_row.into_iter().fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        nll / count.max(1) as f64
    }

    /// Perplexity of each row, in parallel.
    pub fn rows_ppl(&self, rows: &[Vec<u32>]) -> Vec<f64> {
        rows.par_iter().map(|r| self.row_ppl(r)).collect()
    }

    /// Perplexity of one row.
    pub fn row_ppl(&self, row: &[u32]) -> f64 {
        let (nll, n) = self.row_nll(row);
        (nll / n as f64).exp()
    }

    /// One row by ancestral sampling, up to `max_tokens` tokens.
    pub fn sample_row(&self, rng: &mut Rng) -> Vec<u32> {
        let mut seq = vec![self.bos()];
        while seq.len() <= self.max_tokens {
            let start = seq.len().saturating_sub(self.order - 1);
            let w = self.draw(&seq[start..], rng);
            if w == self.eos() {
                break;
            }
            seq.push(w);
        }
        seq.remove(0);
        seq
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<Vec<u32>> {
        let seeds: Vec<u64> = (0..n.div_ceil(SAMPLE_CHUNK)).map(|_| rng.next_u64()).collect();
        let chunks: Vec<Vec<Vec<u32>>> = seeds
            .par_iter()
            .enumerate()
            .map(|(c, &seed)| {
                let mut rng = Rng::from_seed(seed);
                let rows = SAMPLE_CHUNK.min(n - c * SAMPLE_CHUNK);
                (0..rows).map(|_| self.sample_row(&mut rng)).collect()
            })
            .collect();
        chunks.into_iter().flatten().collect()
    }

    /// A token from P(. | history): at each order from the longest down,
    /// the discounted mass picks a seen follower, the rest falls through.
    fn draw(&self, history: &[u32], rng: &mut Rng) -> u32 {
        let longest = self.order.min(history.len() + 1);
        for m in (1..=longest).rev() {
            let level = &self.levels[m - 1];
            let ctx = pack(&history[history.len() + 1 - m..]);
            let Some(&j) = level.index.get(&ctx) else { continue };
            let j = j as usize;
            let (lo, hi) = (level.start[j] as usize, level.start[j + 1] as usize);
            let u = rng.uniform() * level.total[j];
            let kept = level.cum[hi - 1];
            if u < kept {
                // First follower whose running sum passes u.
                let i = level.cum[lo..hi].partition_point(|&c| c <= u);
                return level.words[lo + i.min(hi - lo - 1)];
            }
        }
        // The uniform floor: any token or `</s>`, never `<s>`.
        let w = rng.below(u64::from(self.vocab) + 1) as u32;
        if w == self.vocab {
            self.eos()
        } else {
            w
        }
    }

    /// Distinct n-grams kept at each order.
    pub fn sizes(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.words.len()).collect()
    }
}

impl Level {
    fn build(grams: Vec<(u128, u32)>, d: f64) -> Level {
        let mut l = Level::default();
        l.index.reserve(grams.len() / 2);
        let mut run = 0.0;
        let mut prev = None;
        for (key, c) in grams {
            let ctx = key >> BITS;
            if prev != Some(ctx) {
                prev = Some(ctx);
                run = 0.0;
                l.index.insert(ctx, l.start.len() as u32);
                l.start.push(l.words.len() as u32);
                l.total.push(0.0);
            }
            // Keys are sorted, so a context's followers are contiguous.
            *l.total.last_mut().expect("a context was just pushed") += f64::from(c);
            l.words.push((key & MASK) as u32);
            l.counts.push(c);
            run += f64::from(c) - d;
            l.cum.push(run);
        }
        l.start.push(l.words.len() as u32);
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows "0 1", "0 2", "1 2" over vocab {0, 1, 2}; <s> = 3, </s> = 4.
    fn toy() -> Ngram {
        Ngram::fit(
            &[vec![0, 1], vec![0, 2], vec![1, 2]],
            3,
            &NgramSettings { order: 2, discount: Some(0.5), max_tokens: 10 },
        )
    }

    #[test]
    fn hand_checked_kneser_ney() {
        let m = toy();
        // Bigram counts (raw, highest order): <s>0:2 <s>1:1 01:1 02:1 12:1 1</s>:1 2</s>:2.
        assert_eq!(m.sizes(), vec![4, 7]);
        // Unigram continuation counts: 0 after {<s>} = 1; 1 after {<s>, 0} = 2;
        // 2 after {0, 1} = 2; </s> after {1, 2} = 2; total 7, 4 types.
        // P1(w) = (max(c - 0.5, 0) + 0.5 * 4 * 1/4) / 7, uniform 1/4 over {0, 1, 2, </s>}.
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        close(m.prob(&[], 0), 1.0 / 7.0);
        close(m.prob(&[], 1), 2.0 / 7.0);
        close(m.prob(&[], 4), 2.0 / 7.0);
        // Context 0: followers 1 and 2, one each: P(1|0) = (0.5 + 0.5 * 2 * 2/7) / 2 = 11/28.
        close(m.prob(&[0], 1), 11.0 / 28.0);
        // An unseen follower of 0 keeps only the backoff mass: P(</s>|0) = 0.5 * 2 * 2/7 / 2 = 1/7.
        close(m.prob(&[0], 4), 1.0 / 7.0);
        // Context <s>: followers 0 (2) and 1 (1), total 3: P(0|<s>) = (1.5 + 0.5 * 2 * 1/7) / 3.
        close(m.prob(&[3], 0), (1.5 + 1.0 / 7.0) / 3.0);
        // Context 2: only </s> follows it (twice), so P(1|2) = 0.5 * 1 * 2/7 / 2.
        close(m.prob(&[2], 1), 0.5 * 2.0 / 7.0 / 2.0);
    }

    #[test]
    fn probabilities_sum_to_one() {
        let mut rng = Rng::from_seed(5);
        let rows: Vec<Vec<u32>> =
            (0..300).map(|_| (0..1 + rng.below(12)).map(|_| rng.below(40) as u32).collect()).collect();
        for order in 1..=4 {
            let m = Ngram::fit(&rows, 50, &NgramSettings { order, discount: None, max_tokens: 50 });
            for h in [vec![50], vec![50, 3], vec![7, 9, 11], vec![1, 2, 3, 4], vec![49, 49, 49]] {
                let h = &h[h.len().saturating_sub(order - 1)..];
                let total: f64 = (0..50).chain([51]).map(|w| m.prob(h, w)).sum();
                assert!((total - 1.0).abs() < 1e-12, "order {order} history {h:?}: {total}");
            }
        }
    }

    #[test]
    fn sampling_follows_the_probabilities() {
        // 200,000 draws after context 0: each frequency within 5 standard
        // errors sqrt(p (1 - p) / n) of P(w | 0).
        let m = toy();
        let mut rng = Rng::from_seed(9);
        let n = 200_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[m.draw(&[0], &mut rng) as usize] += 1;
        }
        assert_eq!(counts[3], 0, "<s> is never drawn");
        for w in [0u32, 1, 2, 4] {
            let p = m.prob(&[0], w);
            let f = counts[w as usize] as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((f - p).abs() < 5.0 * se, "token {w}: {f} vs {p}");
        }
    }
}
