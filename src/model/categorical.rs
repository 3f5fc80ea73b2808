//! Maximum-likelihood frequencies over K symbols: the paper's discrete
//! setting, where a symbol that draws no sample is gone for good (unless
//! `smoothing` adds a pseudo-count to every symbol).

use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct Categorical {
    pub probs: Vec<f64>,
    /// Cumulative probabilities; exactly 1.0 from the last positive symbol
    /// on, so a uniform draw in [0, 1) never lands on a zero-mass symbol.
    cdf: Vec<f64>,
}

impl Categorical {
    pub fn new(probs: Vec<f64>) -> Self {
        let mut cdf = Vec::with_capacity(probs.len());
        let mut acc = 0.0;
        for p in &probs {
            acc += p;
            cdf.push(acc);
        }
        if let Some(last) = probs.iter().rposition(|p| *p > 0.0) {
            for c in &mut cdf[last..] {
                *c = 1.0;
            }
        }
        Categorical { probs, cdf }
    }

    pub fn fit(tokens: &[u32], symbols: usize, smoothing: f64) -> Self {
        let mut counts = vec![0u64; symbols];
        for &t in tokens {
            counts[t as usize] += 1;
        }
        let total = tokens.len() as f64 + smoothing * symbols as f64;
        Categorical::new(counts.iter().map(|&c| (c as f64 + smoothing) / total).collect())
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let u = rng.uniform();
                self.cdf.partition_point(|&c| c <= u) as u32
            })
            .collect()
    }

    /// Each token's log-probability (nats).
    pub fn row_log_likelihoods(&self, tokens: &[u32]) -> Vec<f64> {
        tokens.iter().map(|&t| self.probs.get(t as usize).map_or(f64::NEG_INFINITY, |p| p.ln())).collect()
    }

    /// Mean negative log-likelihood (nats); infinite when a held-out token
    /// has lost all its mass.
    pub fn mean_nll(&self, tokens: &[u32]) -> f64 {
        if tokens.is_empty() {
            return f64::NAN;
        }
        -tokens.iter().map(|&t| self.probs[t as usize].ln()).sum::<f64>() / tokens.len() as f64
    }

    /// The model [`Categorical::params_json`] wrote (a `models` row's
    /// `params`), the same bits: what the audit rescores tokens with.
    /// `None` when the text is not one (a symbol out of range, a
    /// probability written null).
    pub fn from_params_json(json: &str) -> Option<Categorical> {
        #[derive(serde::Deserialize)]
        struct Json {
            symbols: usize,
            probs: Vec<(usize, f64)>,
        }
        let j: Json = serde_json::from_str(json).ok()?;
        let mut probs = vec![0.0; j.symbols];
        for (i, p) in j.probs {
            *probs.get_mut(i)? = p;
        }
        Some(Categorical::new(probs))
    }

    pub fn params_json(&self) -> serde_json::Value {
        // Only symbols with mass: K can be large and most may be gone.
        let support: Vec<(usize, f64)> =
            self.probs.iter().enumerate().filter(|(_, p)| **p > 0.0).map(|(i, p)| (i, *p)).collect();
        serde_json::json!({ "symbols": self.probs.len(), "probs": support })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read back from its params, a model scores every token with the
    /// same bits, lost symbols (-inf) and symbols past the end included.
    #[test]
    fn params_json_reads_back_the_same_model() {
        let c = Categorical::fit(&[0, 0, 2, 2, 2, 4, 5, 5, 5, 5, 5, 5, 5], 7, 0.0);
        let back = Categorical::from_params_json(&c.params_json().to_string()).unwrap();
        let tokens: Vec<u32> = (0..9).collect();
        let (a, b) = (c.row_log_likelihoods(&tokens), back.row_log_likelihoods(&tokens));
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()), "{a:?} != {b:?}");
        assert_eq!(a[1], f64::NEG_INFINITY);
        assert!(Categorical::from_params_json(r#"{"symbols": 2, "probs": [[2, 0.5]]}"#).is_none());
    }

    #[test]
    fn zero_mass_symbols_are_never_drawn() {
        let c = Categorical::fit(&[0, 0, 2, 2, 2, 4], 6, 0.0);
        assert_eq!(c.probs[1], 0.0);
        let mut rng = Rng::from_seed(9);
        let draws = c.sample(&mut rng, 10_000);
        assert!(draws.iter().all(|t| [0, 2, 4].contains(t)));
        // P(token 2) = 1/2: 10k draws, sd 50; 5 sd.
        let twos = draws.iter().filter(|t| **t == 2).count() as f64;
        assert!((twos - 5000.0).abs() < 250.0, "{twos}");
        assert!(c.mean_nll(&[1]).is_infinite());
    }

    #[test]
    fn smoothing_gives_every_symbol_mass() {
        let c = Categorical::fit(&[0, 0], 3, 1.0);
        assert_eq!(c.probs, vec![3.0 / 5.0, 1.0 / 5.0, 1.0 / 5.0]);
    }
}
