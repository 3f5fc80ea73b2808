//! A fitted model's `params` cell in the models table.
//!
//! A closed-form Gaussian run writes one per replicate per generation
//! (200,000 in the paper's M=100 study). Formatting them is the writer's
//! work: the thread that computes the chains is the longer of the run's
//! two at that size, so the fitted Gaussian travels to the writer as
//! numbers and becomes JSON there, the same text either way.

use std::borrow::Cow;

use super::{Gaussian, Model};

pub enum ParamsCell {
    /// JSON made when the model was fitted.
    Json(String),
    /// A Gaussian, formatted by `Gaussian::params_json` when written.
    Gaussian(Gaussian),
}

impl ParamsCell {
    /// The model's params, taking a Gaussian over as it is.
    pub fn of(model: Model) -> ParamsCell {
        match model {
            Model::Gaussian(g) => ParamsCell::Gaussian(g),
            other => ParamsCell::Json(other.params_json()),
        }
    }

    pub fn json(&self) -> Cow<'_, str> {
        match self {
            ParamsCell::Json(s) => Cow::Borrowed(s),
            ParamsCell::Gaussian(g) => Cow::Owned(g.params_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deferred text is the text the model gives when fitted.
    #[test]
    fn a_gaussian_formats_as_the_model_would() {
        let model = Model::Gaussian(Gaussian::new(vec![0.5, -1.0], vec![2.0, 0.25, 0.25, 1.0]));
        let eager = model.params_json();
        let params = ParamsCell::of(model);
        assert!(matches!(params, ParamsCell::Gaussian(_)));
        assert_eq!(params.json(), eager);
    }
}
