//! Models that their `models` row makes again: read back from `params`
//! with the same bits, they let the audit recompute what the run computed
//! with them (a likelihood filter's scores, the rows they drew).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::checks::{read_columns, u64_column};
use crate::rng::Rng;

/// The model kinds that their `models` row alone (its `params`) makes
/// again, the same bits: the audit recomputes a likelihood filter's every
/// score with them, and `--replay` draws their rows again. The others
/// need the model's weights or its training rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rescorable {
    /// A Gaussian of `d` dimensions (columns x0..).
    Gaussian(usize),
    /// A Gaussian mixture of `d` dimensions.
    Gmm(usize),
    /// Frequencies over symbols (the `token` column).
    Categorical,
}

impl Rescorable {
    /// The data columns a row's values come from, in order.
    pub fn columns(self) -> Vec<String> {
        match self {
            Rescorable::Gaussian(d) | Rescorable::Gmm(d) => (0..d).map(|j| format!("x{j}")).collect(),
            Rescorable::Categorical => vec!["token".to_string()],
        }
    }

    /// How many values a row is (its data columns).
    pub fn width(self) -> usize {
        match self {
            Rescorable::Gaussian(d) | Rescorable::Gmm(d) => d,
            Rescorable::Categorical => 1,
        }
    }
}

/// A model read back from its `params`.
pub enum Stored {
    Gaussian(crate::model::Gaussian),
    Gmm(crate::model::Gmm),
    Categorical(crate::model::Categorical),
}

impl Stored {
    pub fn from_params(kind: Rescorable, json: &str) -> Option<Stored> {
        match kind {
            Rescorable::Gaussian(_) => crate::model::Gaussian::from_params_json(json).map(Stored::Gaussian),
            Rescorable::Gmm(_) => crate::model::Gmm::from_params_json(json).map(Stored::Gmm),
            Rescorable::Categorical => crate::model::Categorical::from_params_json(json).map(Stored::Categorical),
        }
    }

    /// One row's log-likelihood; a token row is its id as a float (exact
    /// below 2^53), NaN where the column was null.
    pub fn row_log_likelihood(&self, row: &[f64]) -> f64 {
        match self {
            Stored::Gaussian(g) => g.row_log_likelihoods(row)[0],
            Stored::Gmm(g) => g.row_log_likelihoods(row)[0],
            Stored::Categorical(c) => match row[0] {
                t if t >= 0.0 && t <= f64::from(u32::MAX) && t.fract() == 0.0 => c.row_log_likelihoods(&[t as u32])[0],
                _ => f64::NAN,
            },
        }
    }

    /// `n` rows drawn as the run drew them from the same stream, row-major
    /// (tokens as floats, as [`columns_of`] reads them).
    pub fn sample(&self, rng: &mut Rng, n: usize) -> Vec<f64> {
        match self {
            Stored::Gaussian(g) => g.sample(rng, n),
            Stored::Gmm(g) => g.sample(rng, n),
            Stored::Categorical(c) => c.sample(rng, n).into_iter().map(f64::from).collect(),
        }
    }
}

/// Each row's data columns in a samples file, row-major: `x0..` as
/// floats, or the `token` as a float (NaN where null).
pub fn columns_of(path: &Path, kind: Rescorable) -> PolarsResult<Vec<f64>> {
    let names = kind.columns();
    let df = read_columns(path, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
    data_rows(&df, kind)
}

/// `kind`'s data columns of a frame that holds them, row-major, as
/// [`columns_of`] gives them.
pub fn data_rows(df: &DataFrame, kind: Rescorable) -> PolarsResult<Vec<f64>> {
    let names = kind.columns();
    let d = names.len();
    let columns = names.iter().map(|n| df.column(n)?.cast(&DataType::Float64)).collect::<PolarsResult<Vec<_>>>()?;
    let mut rows = vec![f64::NAN; df.height() * d];
    for (j, c) in columns.iter().enumerate() {
        for (i, v) in c.f64()?.iter().enumerate() {
            rows[i * d + j] = v.unwrap_or(f64::NAN);
        }
    }
    Ok(rows)
}

/// The models of generation `g` in a models file, by replicate (a row
/// whose params do not read back as a `kind` model is left out: its
/// scores are then named as having no scoring model).
pub fn models_of(path: &Path, g: u32, kind: Rescorable) -> PolarsResult<BTreeMap<u32, Stored>> {
    let df = read_columns(path, &["replicate", "model_generation", "params"])?;
    let [rep, model] = ["replicate", "model_generation"].map(|n| u64_column(&df, n));
    let params = df.column("params")?.str()?;
    let mut out = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(r), Some(m), Some(json)) = (rep[i], model[i], params.get(i)) else { continue };
        if m != u64::from(g) {
            continue;
        }
        if let Some(fitted) = Stored::from_params(kind, json) {
            out.insert(r as u32, fitted);
        }
    }
    Ok(out)
}
