//! Word statistics of a generation's text against D_0's: what a language
//! model's collapse looks like in its output. Words are maximal runs of
//! non-whitespace (punctuation stays attached, case is kept), so the
//! figures do not depend on the tokenizer.

use crate::fasthash::{FastMap, FastSet};

/// Word n-gram orders of `distinct_{n}`.
const DISTINCT: [usize; 3] = [1, 2, 3];
/// `repetition_rate` counts repeated word trigrams within a row.
const REPEAT_ORDER: usize = 3;

/// D_0's figures that later generations are compared with.
#[derive(Clone, Debug)]
pub struct TextReference {
    /// D_0's word types.
    types: Vec<String>,
    /// D_0's word n-grams of order `order` seen at most `max_count` times.
    rare: Vec<Vec<String>>,
    order: usize,
}

/// Which n-grams of D_0 count as rare (`metrics.rare-ngram-order`,
/// `metrics.rare-max-count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RareNgrams {
    pub order: usize,
    pub max_count: usize,
}

impl Default for RareNgrams {
    fn default() -> Self {
        RareNgrams { order: 2, max_count: 1 }
    }
}

fn words(rows: &[String]) -> Vec<Vec<&str>> {
    rows.iter().map(|r| r.split_whitespace().collect()).collect()
}

/// Bits per word id in a packed word n-gram: 4 of them fill a u128.
const WORD_BITS: u32 = 32;
pub const MAX_RARE_ORDER: usize = 4;

fn pack(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |k, &w| (k << WORD_BITS) | u128::from(w))
}

/// The rows' words as ids in a per-generation dictionary.
struct Interned<'a> {
    ids: FastMap<&'a str, u32>,
    rows: Vec<Vec<u32>>,
}

impl<'a> Interned<'a> {
    fn new(words: &[Vec<&'a str>]) -> Interned<'a> {
        let total: usize = words.iter().map(Vec::len).sum();
        let mut ids: FastMap<&str, u32> = FastMap::with_capacity_and_hasher(total / 8 + 16, Default::default());
        let rows = words
            .iter()
            .map(|row| {
                row.iter()
                    .map(|w| {
                        let next = ids.len() as u32;
                        *ids.entry(w).or_insert(next)
                    })
                    .collect()
            })
            .collect();
        Interned { ids, rows }
    }

    /// Sorted distinct n-grams of order `n`, and how many there are in all.
    fn ngrams(&self, n: usize) -> (Vec<u128>, usize) {
        let mut keys: Vec<u128> = self.rows.iter().flat_map(|r| r.windows(n).map(pack)).collect();
        let total = keys.len();
        keys.sort_unstable();
        keys.dedup();
        (keys, total)
    }
}

impl TextReference {
    pub fn new(d0: &[String], rare: RareNgrams) -> TextReference {
        let w = words(d0);
        let mut types: Vec<String> =
            w.iter().flatten().copied().collect::<FastSet<&str>>().into_iter().map(str::to_string).collect();
        types.sort();
        let mut counts: FastMap<&[&str], usize> = FastMap::default();
        for row in &w {
            for g in row.windows(rare.order) {
                *counts.entry(g).or_default() += 1;
            }
        }
        let mut rare_grams: Vec<Vec<String>> = counts
            .into_iter()
            .filter(|(_, c)| *c <= rare.max_count)
            .map(|(g, _)| g.iter().map(|s| s.to_string()).collect())
            .collect();
        rare_grams.sort();
        TextReference { types, rare: rare_grams, order: rare.order }
    }
}

/// The metrics of one generation's rows, in a fixed order.
pub fn metrics(
    rows: &[String],
    n_tokens: impl Iterator<Item = usize>,
    reference: &TextReference,
) -> Vec<(String, f64)> {
    let w = words(rows);
    let interned = Interned::new(&w);
    let mut out = Vec::new();
    for n in DISTINCT {
        let (distinct, total) = interned.ngrams(n);
        if total > 0 {
            out.push((format!("distinct_{n}"), distinct.len() as f64 / total as f64));
        }
    }
    if !reference.types.is_empty() {
        let kept = reference.types.iter().filter(|t| interned.ids.contains_key(t.as_str())).count();
        out.push(("vocab_retention".into(), kept as f64 / reference.types.len() as f64));
    }
    if !reference.rare.is_empty() {
        let (grams, _) = interned.ngrams(reference.order);
        let kept = reference
            .rare
            .iter()
            .filter(|g| {
                let ids: Option<Vec<u32>> = g.iter().map(|s| interned.ids.get(s.as_str()).copied()).collect();
                ids.is_some_and(|ids| grams.binary_search(&pack(&ids)).is_ok())
            })
            .count();
        out.push(("rare_ngram_coverage".into(), kept as f64 / reference.rare.len() as f64));
    }
    // A row's trigram occurrences beyond its distinct trigrams repeat an earlier one.
    let (mut repeated, mut total) = (0usize, 0usize);
    let mut keys = Vec::new();
    for row in &interned.rows {
        keys.clear();
        keys.extend(row.windows(REPEAT_ORDER).map(pack));
        total += keys.len();
        keys.sort_unstable();
        keys.dedup();
        repeated += row.len().saturating_sub(REPEAT_ORDER - 1) - keys.len();
    }
    if total > 0 {
        out.push(("repetition_rate".into(), repeated as f64 / total as f64));
    }
    let (count, sum) = n_tokens.fold((0usize, 0usize), |(c, s), n| (c + 1, s + n));
    if count > 0 {
        out.push(("mean_tokens".into(), sum as f64 / count as f64));
    }
    out
}

/// Quantiles of the rows' perplexity under model 0 (`gen0_ppl_p{q}`):
/// linear interpolation between order statistics, as numpy's default.
pub fn gen0_ppl_quantiles(ppl: &[f64]) -> Vec<(String, f64)> {
    let mut v: Vec<f64> = ppl.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    [5u32, 25, 50, 75, 95]
        .into_iter()
        .map(|q| {
            let h = (v.len() - 1) as f64 * f64::from(q) / 100.0;
            let (lo, frac) = (h.floor() as usize, h - h.floor());
            let hi = (lo + 1).min(v.len() - 1);
            (format!("gen0_ppl_p{q:02}"), v[lo] + frac * (v[hi] - v[lo]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn hand_counted_figures() {
        // D_0 bigrams: "a b" x2, "b c" x1, "c d" x1, "b a" x1; rare (seen once): "b c", "c d", "b a".
        let d0 = s(&["a b c d", "a b a"]);
        let r = TextReference::new(&d0, RareNgrams::default());
        assert_eq!(r.types, s(&["a", "b", "c", "d"]));
        assert_eq!(r.rare.len(), 3);
        // D_k: words {a, b, x}; bigrams "a b", "b x", "x a", "b a"; trigrams "a b x", "b x a", "x a b", "a b x" (a repeat).
        let dk = s(&["a b x a b x", "b a"]);
        let m: std::collections::BTreeMap<String, f64> =
            metrics(&dk, [6usize, 2].into_iter(), &r).into_iter().collect();
        assert_eq!(m["distinct_1"], 3.0 / 8.0);
        // Bigrams: ab, bx, xa, ab, bx | ba: 6 in all, 4 distinct.
        assert_eq!(m["distinct_2"], 4.0 / 6.0);
        // Trigrams: abx, bxa, xab, abx: 4 in all, 3 distinct.
        assert_eq!(m["distinct_3"], 3.0 / 4.0);
        assert_eq!(m["vocab_retention"], 2.0 / 4.0);
        // Of "b c", "c d", "b a" only "b a" is in D_k.
        assert_eq!(m["rare_ngram_coverage"], 1.0 / 3.0);
        assert_eq!(m["repetition_rate"], 1.0 / 4.0);
        assert_eq!(m["mean_tokens"], 4.0);
        // D_0 against itself keeps everything.
        let m0: std::collections::BTreeMap<String, f64> =
            metrics(&d0, [4usize, 3].into_iter(), &r).into_iter().collect();
        assert_eq!(m0["vocab_retention"], 1.0);
        assert_eq!(m0["rare_ngram_coverage"], 1.0);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4, 100], [5, 25, 50, 75, 95]) = [1.2, 2, 3, 4, 80.8]
        let q = gen0_ppl_quantiles(&[4.0, 100.0, 2.0, 1.0, 3.0]);
        let want = [1.2, 2.0, 3.0, 4.0, 80.8];
        for ((name, v), w) in q.iter().zip(want) {
            assert!((v - w).abs() < 1e-12, "{name}: {v} vs {w}");
        }
        assert_eq!(q[2].0, "gen0_ppl_p50");
    }
}
