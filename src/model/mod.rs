//! Fitted models: fit on a training set, sample new rows, score held-out
//! real rows. One file (or folder) per model family.

mod categorical;
mod gaussian;
pub mod gmm;
mod kde;

pub use categorical::Categorical;
pub use gaussian::Gaussian;
pub use gmm::{CovarianceType, Gmm, GmmSettings};
pub use kde::{Bandwidth, Kde};

use crate::pipeline::ModelSpec;
use crate::rng::Rng;
use crate::values::Values;

#[derive(Clone, Debug)]
pub enum Model {
    Gaussian(Gaussian),
    Categorical(Categorical),
    Gmm(Box<gmm::Fit>),
    Kde(Kde),
}

impl Model {
    /// Fits `spec` on `train`; `symbols` is K for discrete data; `rng`
    /// drives any random start (k-means++ seeds). The spec and the data
    /// kind were matched when the pipeline was validated.
    pub fn fit(spec: &ModelSpec, train: &Values, symbols: usize, rng: &mut Rng) -> Model {
        match (spec, train) {
            (ModelSpec::Gaussian { variance }, Values::Vectors { d, data }) => {
                Model::Gaussian(Gaussian::fit(data, *d, *variance))
            }
            (ModelSpec::Categorical { smoothing }, Values::Tokens(t)) => {
                Model::Categorical(Categorical::fit(t, symbols, *smoothing))
            }
            (ModelSpec::Gmm(s), Values::Vectors { d, data }) => Model::Gmm(Box::new(gmm::fit(data, *d, s, rng))),
            (ModelSpec::Kde { bandwidth }, Values::Vectors { d, data }) => Model::Kde(Kde::fit(data, *d, *bandwidth)),
            _ => unreachable!("pipeline validation pairs vector models with vectors and categorical with tokens"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Model::Gaussian(_) => "gaussian",
            Model::Categorical(_) => "categorical",
            Model::Gmm(_) => "gmm",
            Model::Kde(_) => "kde",
        }
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Values {
        match self {
            Model::Gaussian(g) => Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            Model::Categorical(c) => Values::Tokens(c.sample(rng, n)),
            Model::Gmm(f) => Values::Vectors { d: f.gmm.dim(), data: f.gmm.sample(rng, n) },
            Model::Kde(k) => Values::Vectors { d: k.dim(), data: k.sample(rng, n) },
        }
    }

    pub fn mean_nll(&self, rows: &Values) -> f64 {
        match (self, rows) {
            (Model::Gaussian(g), Values::Vectors { data, .. }) => g.mean_nll(data),
            (Model::Categorical(c), Values::Tokens(t)) => c.mean_nll(t),
            (Model::Gmm(f), Values::Vectors { data, .. }) => f.gmm.mean_nll(data),
            (Model::Kde(k), Values::Vectors { data, .. }) => k.mean_nll(data),
            _ => f64::NAN,
        }
    }

    /// Metrics of the model itself against the chain's model 0: for
    /// mixtures `gmm_l2` (squared L2 distance of the densities) and
    /// `component_std_{i}` (ascending).
    pub fn own_metrics(&self, model0: Option<&Model>) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Model::Gmm(f) = self {
            let reference = match model0 {
                Some(Model::Gmm(r)) => &r.gmm,
                _ => &f.gmm,
            };
            out.push(("gmm_l2".to_string(), gmm::l2_squared(reference, &f.gmm)));
            for (i, s) in f.gmm.component_stds().into_iter().enumerate() {
                out.push((format!("component_std_{i}"), s));
            }
        }
        out
    }

    pub fn params_json(&self) -> String {
        match self {
            Model::Gaussian(g) => g.params_json(),
            Model::Categorical(c) => c.params_json(),
            Model::Gmm(f) => {
                let mut extra = serde_json::Map::new();
                extra.insert("iterations".into(), f.iterations.into());
                extra.insert("converged".into(), f.converged.into());
                extra.insert("lower-bound".into(), serde_json::json!(f.lower_bound));
                extra.insert("reseeded".into(), f.reseeded.into());
                f.gmm.params_json(extra)
            }
            Model::Kde(k) => k.params_json(),
        }
        .to_string()
    }
}
