//! The validated pipeline: every value checked, every default filled in.
//! Built only by [`super::parse`]; the runner never sees raw TOML.

use std::path::PathBuf;

pub use crate::data::load::FileFormat;
use crate::metrics::text::RareNgrams;
pub use crate::mixing::MixPolicy;
pub use crate::model::{ModelSpec, Variance};
use crate::text::TextSource;
pub use crate::values::RowKind;

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub seed: u64,
    /// Models 0 .. generations-1; samples are written for 0 ..= generations.
    pub generations: u32,
    pub replicates: u32,
    pub data: DataSpec,
    pub model: ModelSpec,
    /// M: synthetic rows each model generates.
    pub generate_n: usize,
    pub mix: MixPolicy,
    /// The curation filter between generating and training, if any.
    pub filter: Option<crate::filter::Filter>,
    pub tail_quantiles: Vec<f64>,
    /// Which of D_0's word n-grams `rare_ngram_coverage` follows (text runs).
    pub rare_ngrams: RareNgrams,
    /// The folder relative data paths start at (the pipeline file's). Not
    /// written to pipeline.toml: paths are kept there as written, so a run
    /// does not depend on the folder it was made in; run.json records it.
    pub base: std::path::PathBuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    /// N: real training rows (D_0) per replicate; `None` for a file means
    /// every row the holdout and fresh reserve leave.
    pub n: Option<usize>,
    /// Held-out real rows (split = 'test') per replicate, in addition to n.
    pub holdout: usize,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Gaussian {
        mean: Vec<f64>,
        spread: Spread,
    },
    /// A Gaussian mixture; `covs` are the components' d x d covariances.
    Gmm {
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covs: Vec<Vec<Vec<f64>>>,
    },
    Zipf {
        symbols: u32,
        exponent: f64,
    },
    File {
        path: PathBuf,
        format: FileFormat,
        columns: Vec<String>,
    },
    /// u8 images from a file (`idx`, or `csv` with `image = [h, w]`).
    Images(ImageSource),
    /// Text, a row a line or a block of tokens.
    Text(TextSource),
}

/// An image file. `path` may name a folder in the MNIST layout until the
/// environment is resolved ([`crate::resolve`]), which finds the files in it;
/// the shape is in the file's header, so only the resolution knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSource {
    pub path: PathBuf,
    pub format: ImageFormat,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImageFormat {
    /// MNIST's format, with an optional labels file beside it.
    Idx { labels: Option<PathBuf> },
    /// One image a line (scikit-learn's 8x8 digits).
    Csv(crate::data::csv_images::CsvImages),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Spread {
    Std(Vec<f64>),
    Cov(Vec<Vec<f64>>),
}

impl Spread {
    /// The covariance matrix, row-major d x d.
    pub fn cov_matrix(&self) -> Vec<f64> {
        match self {
            Spread::Std(s) => {
                let d = s.len();
                let mut c = vec![0.0; d * d];
                for i in 0..d {
                    c[i * d + i] = s[i] * s[i];
                }
                c
            }
            Spread::Cov(rows) => rows.iter().flatten().copied().collect(),
        }
    }
}

/// Dimension of a source's vector rows, or `None` for other rows.
pub fn dim_of(source: &Source) -> Option<usize> {
    match source {
        Source::Gaussian { mean, .. } => Some(mean.len()),
        Source::Gmm { means, .. } => means.first().map(Vec::len),
        Source::File { columns, .. } => Some(columns.len()),
        Source::Zipf { .. } | Source::Images(_) | Source::Text(_) => None,
    }
}

impl Pipeline {
    /// Rows each model generates: generate.n, times best-of's K (K
    /// candidates for every row asked for).
    pub fn generated_rows(&self) -> usize {
        self.generate_n * self.filter.as_ref().map_or(1, |f| f.best_of() as usize)
    }

    /// Dimension of vector data, or `None` for discrete tokens.
    pub fn dim(&self) -> Option<usize> {
        dim_of(&self.data.source)
    }

    /// Whether the rows are images.
    pub fn images(&self) -> bool {
        matches!(self.data.source, Source::Images(_))
    }

    /// Whether the model is a network (candle; run.json names its device).
    pub fn network(&self) -> bool {
        matches!(self.model, ModelSpec::Vae(_) | ModelSpec::Transformer(_))
    }

    /// Whether the rows are text.
    pub fn text(&self) -> bool {
        matches!(self.data.source, Source::Text(_))
    }

    pub fn row_kind(&self) -> RowKind {
        match (&self.data.source, self.dim()) {
            (Source::Images(_), _) => RowKind::Images,
            (Source::Text(_), _) => RowKind::Text,
            (_, Some(d)) => RowKind::Vectors(d),
            (_, None) => RowKind::Tokens,
        }
    }

    /// The data file D_0 is drawn from, if any.
    pub fn data_file(&self) -> Option<&PathBuf> {
        match &self.data.source {
            Source::File { path, .. } => Some(path),
            Source::Images(i) => Some(&i.path),
            Source::Text(t) => Some(&t.path),
            _ => None,
        }
    }

    /// Fewest rows a training set may have for the model to be fitted.
    pub fn min_train_rows(&self) -> usize {
        match (&self.model, self.dim()) {
            // A full covariance needs d+1 rows to be non-singular.
            (ModelSpec::Gaussian(_), Some(d)) => d + 1,
            // k-means++ picks each centre among the rows.
            (ModelSpec::Gmm(s), _) => s.components,
            // The kernel is the data's covariance, scaled.
            (ModelSpec::Kde(_), _) => 2,
            _ => 1,
        }
    }

    /// Checks the sizes the mixing policy needs once N is known; each
    /// problem names the key to change.
    pub fn size_problems(&self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let m = self.generate_n;
        let min = self.min_train_rows();
        if n < min {
            out.push(format!("data.n: the {} model needs at least {min} training rows, got {n}", self.model_name()));
        }
        match self.mix.synthetic_rows(n) {
            Some(s) if s > m => out.push(format!(
                "generate.n: policy {} takes {s} rows of each D_k (N = {n}), but generate.n is {m}; raise generate.n to at least {s}",
                self.mix.name()
            )),
            _ => {}
        }
        if matches!(self.mix, MixPolicy::Replace) && m < min {
            out.push(format!(
                "generate.n: with policy replace each model trains on generate.n rows; the {} model needs at least {min}, got {m}",
                self.model_name()
            ));
        }
        out
    }

    /// Why a data file of `total` usable rows is too short for D_0 of `n`
    /// rows, `holdout` held-out rows and the reserve the fresh policy draws
    /// from; `None` when it is long enough.
    pub fn row_shortfall(&self, total: usize, n: usize, holdout: usize) -> Option<String> {
        let fresh = self.mix.fresh_reserve(n, self.generations);
        let need = n + holdout + fresh;
        (need > total || n == 0).then(|| {
            format!(
                "has {total} usable rows but the pipeline needs {need} (data.n {n} + data.holdout {holdout} + fresh rows {fresh}); lower data.n or data.holdout"
            )
        })
    }

    pub fn model_name(&self) -> &'static str {
        self.model.name()
    }
}
