//! Fitted models: fit on a training set, sample new rows, score held-out
//! real rows. One file per model family.

mod categorical;
mod gaussian;

pub use categorical::Categorical;
pub use gaussian::Gaussian;

use crate::pipeline::ModelSpec;
use crate::rng::Rng;
use crate::values::Values;

#[derive(Clone, Debug)]
pub enum Model {
    Gaussian(Gaussian),
    Categorical(Categorical),
}

impl Model {
    /// Fits `spec` on `train`; `symbols` is K for discrete data. The spec
    /// and the data kind were matched when the pipeline was validated.
    pub fn fit(spec: &ModelSpec, train: &Values, symbols: usize) -> Model {
        match (spec, train) {
            (ModelSpec::Gaussian { variance }, Values::Vectors { d, data }) => {
                Model::Gaussian(Gaussian::fit(data, *d, *variance))
            }
            (ModelSpec::Categorical { smoothing }, Values::Tokens(t)) => {
                Model::Categorical(Categorical::fit(t, symbols, *smoothing))
            }
            _ => unreachable!("pipeline validation pairs gaussian with vectors and categorical with tokens"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Model::Gaussian(_) => "gaussian",
            Model::Categorical(_) => "categorical",
        }
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Values {
        match self {
            Model::Gaussian(g) => Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            Model::Categorical(c) => Values::Tokens(c.sample(rng, n)),
        }
    }

    pub fn mean_nll(&self, rows: &Values) -> f64 {
        match (self, rows) {
            (Model::Gaussian(g), Values::Vectors { data, .. }) => g.mean_nll(data),
            (Model::Categorical(c), Values::Tokens(t)) => c.mean_nll(t),
            _ => f64::NAN,
        }
    }

    pub fn params_json(&self) -> String {
        match self {
            Model::Gaussian(g) => g.params_json(),
            Model::Categorical(c) => c.params_json(),
        }
        .to_string()
    }
}
