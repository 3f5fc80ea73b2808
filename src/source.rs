//! Where D_0 comes from: a known distribution to draw from, or the rows of a
//! data file to draw without replacement.

use crate::model::{Categorical, CovarianceType, Gaussian, Gmm};
use crate::pipeline::{Pipeline, Source};
use crate::rng::Rng;
use crate::values::Values;

pub enum RealSource {
    Gaussian(Gaussian),
    Gmm(Gmm),
    Zipf(Categorical),
    /// Every usable row of the file, in file order.
    File(Values),
}

impl RealSource {
    /// Builds the source; `file_rows` are the loaded rows for a file source.
    pub fn new(p: &Pipeline, file_rows: Option<Values>) -> Self {
        match (&p.data.source, file_rows) {
            (Source::Gaussian { mean, spread }, _) => {
                RealSource::Gaussian(Gaussian::new(mean.clone(), spread.cov_matrix()))
            }
            (Source::Gmm { weights, means, covs }, _) => {
                let flat_means: Vec<f64> = means.iter().flatten().copied().collect();
                let flat_covs: Vec<f64> = covs.iter().flatten().flatten().copied().collect();
                RealSource::Gmm(Gmm::new(weights.clone(), &flat_means, &flat_covs, CovarianceType::Full))
            }
            (Source::Zipf { symbols, exponent }, _) => {
                let w: Vec<f64> = (1..=*symbols).map(|r| f64::from(r).powf(-exponent)).collect();
                let total: f64 = w.iter().sum();
                RealSource::Zipf(Categorical::new(w.iter().map(|x| x / total).collect()))
            }
            (Source::File { .. } | Source::Images(_), Some(rows)) => RealSource::File(rows),
            (Source::File { .. } | Source::Images(_), None) => {
                unreachable!("the runner loads a file source before building it")
            }
        }
    }

    /// Number of symbols for discrete data (0 for vectors).
    pub fn symbols(&self) -> usize {
        match self {
            RealSource::Zipf(c) => c.probs.len(),
            _ => 0,
        }
    }

    /// The true distribution when it is a known Gaussian.
    pub fn truth(&self) -> Option<&Gaussian> {
        match self {
            RealSource::Gaussian(g) => Some(g),
            _ => None,
        }
    }

    /// Total rows of a file source.
    pub fn file_rows(&self) -> Option<usize> {
        match self {
            RealSource::File(v) => Some(v.len()),
            _ => None,
        }
    }

    /// `n` new rows: drawn from the distribution, or taken from a file
    /// chain's unused rows (removing them, so no real row is used twice).
    pub fn draw(&self, rng: &mut Rng, n: usize, unused: &mut Vec<usize>) -> Values {
        match self {
            RealSource::Gaussian(g) => Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            RealSource::Gmm(g) => Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            RealSource::Zipf(c) => Values::Tokens(c.sample(rng, n)),
            RealSource::File(rows) => {
                let picked = rng.choose_sorted(unused.len(), n);
                let idx: Vec<usize> = picked.iter().map(|&i| unused[i]).collect();
                let mut keep = Vec::with_capacity(unused.len() - n);
                let mut p = picked.iter().peekable();
                for (i, &u) in unused.iter().enumerate() {
                    if p.peek() == Some(&&i) {
                        p.next();
                    } else {
                        keep.push(u);
                    }
                }
                *unused = keep;
                rows.select(&idx)
            }
        }
    }
}
