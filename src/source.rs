//! Where D_0 comes from: a known distribution to draw from, or the rows of a
//! data file to draw without replacement.

use std::sync::Arc;

use crate::model::{Categorical, CovarianceType, Gaussian, Gmm, Transformer, Vocab};
use crate::pipeline::{Pipeline, Source};
use crate::rng::Rng;
use crate::text::{Corpus, TextTokenizer};
use crate::values::Values;

/// What the runner read from a data file.
pub enum Loaded {
    Rows(Values),
    /// A text corpus and the pretrained model transformers fine-tune
    /// (`model.base-path`), if any.
    Corpus {
        corpus: Corpus,
        base: Option<Arc<Transformer>>,
    },
}

pub enum RealSource {
    Gaussian(Gaussian),
    Gmm(Gmm),
    Zipf(Categorical),
    /// Every usable row of the file, in file order.
    File(Values),
    /// A text corpus: training rows drawn like a file's, one fixed test split;
    /// and the base model transformers fine-tune.
    Text {
        corpus: Corpus,
        base: Option<Arc<Transformer>>,
    },
}

impl RealSource {
    /// Builds the source; `loaded` is what the runner read for a file source.
    pub fn new(p: &Pipeline, loaded: Option<Loaded>) -> Self {
        match (&p.data.source, loaded) {
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
            (Source::File { .. } | Source::Images(_) | Source::Text(_), Some(Loaded::Rows(rows))) => {
                RealSource::File(rows)
            }
            (Source::File { .. } | Source::Images(_) | Source::Text(_), Some(Loaded::Corpus { corpus, base })) => {
                RealSource::Text { corpus, base }
            }
            (Source::File { .. } | Source::Images(_) | Source::Text(_), None) => {
                unreachable!("the runner loads a file source before building it")
            }
        }
    }

    /// The symbols of discrete data, or the tokenizer of text.
    pub fn vocab(&self) -> Vocab {
        match self {
            RealSource::Zipf(c) => Vocab::Symbols(c.probs.len()),
            RealSource::Text { corpus, base } => {
                Vocab::Text { tokenizer: corpus.tokenizer.clone(), base: base.clone() }
            }
            _ => Vocab::None,
        }
    }

    /// The pretrained base model of a text run, if any.
    pub fn base(&self) -> Option<&Transformer> {
        match self {
            RealSource::Text { base, .. } => base.as_deref(),
            _ => None,
        }
    }

    /// The run's tokenizer, for text.
    pub fn tokenizer(&self) -> Option<&TextTokenizer> {
        match self {
            RealSource::Text { corpus, .. } => Some(&corpus.tokenizer),
            _ => None,
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
            RealSource::Text { corpus, .. } => Some(corpus.train.len()),
            _ => None,
        }
    }

    /// The held-out rows: `n` new rows, except for text, whose test split
    /// was fixed when the corpus was read.
    pub fn holdout(&self, rng: &mut Rng, n: usize, unused: &mut Vec<usize>) -> Values {
        match self {
            RealSource::Text { corpus, .. } => corpus.test.clone(),
            _ => self.draw(rng, n, unused),
        }
    }

    /// `n` new rows: drawn from the distribution, or taken from a file
    /// chain's unused rows (removing them, so no real row is used twice).
    pub fn draw(&self, rng: &mut Rng, n: usize, unused: &mut Vec<usize>) -> Values {
        let rows = match self {
            RealSource::File(rows) => rows,
            RealSource::Text { corpus, .. } => &corpus.train,
            RealSource::Gaussian(g) => return Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            RealSource::Gmm(g) => return Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            RealSource::Zipf(c) => return Values::Tokens(c.sample(rng, n)),
        };
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
