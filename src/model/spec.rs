//! What a pipeline's `[model]` table asks for: the family and its settings.
//! Parsed by the pipeline module, read by [`super::Model::fit`].

use super::{Bandwidth, GmmSettings, NgramSettings, TransformerSettings, VaeSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variance {
    Mle,
    Unbiased,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    Gaussian { variance: Variance },
    Categorical { smoothing: f64 },
    Gmm(GmmSettings),
    Kde { bandwidth: Bandwidth },
    Vae(VaeSettings),
    Ngram(NgramSettings),
    Transformer(TransformerSettings),
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Gaussian { .. } => "gaussian",
            ModelSpec::Categorical { .. } => "categorical",
            ModelSpec::Gmm(_) => "gmm",
            ModelSpec::Kde { .. } => "kde",
            ModelSpec::Vae(_) => "vae",
            ModelSpec::Ngram(_) => "ngram",
            ModelSpec::Transformer(_) => "transformer",
        }
    }
}
