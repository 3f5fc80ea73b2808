//! Fitted models: fit on a training set, sample new rows, score held-out
//! real rows. One file (or folder) per model family.

mod categorical;
pub(crate) mod dense;
pub mod device;
mod gaussian;
pub mod gmm;
mod kde;
pub(crate) mod kernels;
pub mod ngram;
mod params;
pub mod safetensors;
pub mod settings;
pub mod transformer;
pub mod vae;
mod vars;

pub use categorical::Categorical;
pub use gaussian::{Gaussian, Moments};
pub use gmm::{CovarianceType, Gmm};
pub use kde::Kde;
pub use ngram::Ngram;
pub use params::ParamsCell;
pub use settings::{
    Arch, Bandwidth, CategoricalSettings, CommandSettings, GaussianSettings, GmmSettings, KdeSettings, ModelSpec,
    NgramSettings, TransformerSettings, VaeSettings, Variance,
};
pub use transformer::Transformer;
pub use vae::Vae;

use crate::error::{Error, Result};
use crate::progress::TrainingHook;
use crate::rng::Rng;
use crate::text::TextTokenizer;
use crate::values::Values;

/// What the data's symbols are, for the models that need to know.
#[derive(Clone, Debug)]
pub enum Vocab {
    None,
    /// K discrete symbols 0 .. K-1.
    Symbols(usize),
    /// Text: the run's tokenizer, to decode what a model writes, and the
    /// pretrained base model that transformers fine-tune, if any.
    Text {
        tokenizer: std::sync::Arc<TextTokenizer>,
        base: Option<std::sync::Arc<Transformer>>,
    },
}

/// An n-gram model with the tokenizer that turns its ids into text.
#[derive(Clone, Debug)]
pub struct TextModel {
    pub ngram: Ngram,
    pub tokenizer: std::sync::Arc<TextTokenizer>,
}

#[derive(Clone, Debug)]
pub enum Model {
    Gaussian(Gaussian),
    Categorical(Categorical),
    Gmm(Box<gmm::Fit>),
    Kde(Kde),
    Vae(Box<Vae>),
    Ngram(Box<TextModel>),
    Transformer(Box<NeuralTextModel>),
}

/// A transformer with the tokenizer that turns its ids into text.
#[derive(Clone, Debug)]
pub struct NeuralTextModel {
    pub net: Transformer,
    pub tokenizer: std::sync::Arc<TextTokenizer>,
}

fn transformer_error(e: transformer::TransformerError) -> Error {
    Error::model("transformer", e)
}

fn decode_all(tokenizer: &TextTokenizer, ids: Vec<Vec<u32>>) -> Result<Values> {
    use rayon::prelude::*;
    let text = ids.par_iter().map(|r| tokenizer.decode(r)).collect::<Result<Vec<_>, _>>();
    let text = text.map_err(|e| Error::model("text", e))?;
    Ok(Values::texts(text, ids))
}

fn vae_error(e: vae::VaeError) -> Error {
    Error::model("vae", e)
}

/// Images drawn for `latent_std`: a fixed stream, so every model is
/// measured on draws of the same noise.
const LATENT_STD_IMAGES: usize = 1000;

impl Model {
    /// Fits `spec` on `train`; `rng` drives any random start (k-means++
    /// seeds, network weights). The spec and the data kind were matched
    /// when the pipeline was validated. Networks tell `on_batch` after
    /// each training batch.
    pub fn fit(
        spec: &ModelSpec,
        train: &Values,
        vocab: &Vocab,
        rng: &mut Rng,
        on_batch: TrainingHook,
    ) -> Result<Model> {
        let symbols = match vocab {
            Vocab::Symbols(k) => *k,
            _ => 0,
        };
        Ok(match (spec, train) {
            (ModelSpec::Gaussian(GaussianSettings { variance }), Values::Vectors { d, data }) => {
                Model::Gaussian(Gaussian::fit(data, *d, *variance))
            }
            (ModelSpec::Categorical(CategoricalSettings { smoothing }), Values::Tokens(t)) => {
                Model::Categorical(Categorical::fit(t, symbols, *smoothing))
            }
            (ModelSpec::Gmm(s), Values::Vectors { d, data }) => Model::Gmm(Box::new(gmm::fit(data, *d, s, rng))),
            (ModelSpec::Kde(KdeSettings { bandwidth }), Values::Vectors { d, data }) => {
                Model::Kde(Kde::fit(data, *d, *bandwidth))
            }
            (ModelSpec::Vae(s), Values::Images { h, w, pixels, .. }) => {
                Model::Vae(Box::new(Vae::fit(pixels, *h, *w, s, rng, on_batch).map_err(vae_error)?))
            }
            (ModelSpec::Ngram(s), Values::Texts { ids, .. }) => {
                let Vocab::Text { tokenizer, .. } = vocab else { unreachable!("a text run always has its tokenizer") };
                let ngram = Ngram::fit(ids, tokenizer.vocab_size() as u32, s);
                Model::Ngram(Box::new(TextModel { ngram, tokenizer: tokenizer.clone() }))
            }
            (ModelSpec::Transformer(s), Values::Texts { ids, .. }) => {
                let Vocab::Text { tokenizer, base } = vocab else {
                    unreachable!("a text run always has its tokenizer")
                };
                let vocab = tokenizer.vocab_size() as u32;
                let net =
                    Transformer::fine_tune(base.as_deref(), ids, vocab, s, rng, on_batch).map_err(transformer_error)?;
                Model::Transformer(Box::new(NeuralTextModel { net, tokenizer: tokenizer.clone() }))
            }
            _ => unreachable!("pipeline validation pairs each model with its kind of data"),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Model::Gaussian(_) => "gaussian",
            Model::Categorical(_) => "categorical",
            Model::Gmm(_) => "gmm",
            Model::Kde(_) => "kde",
            Model::Vae(_) => "vae",
            Model::Ngram(_) => "ngram",
            Model::Transformer(_) => "transformer",
        }
    }

    pub fn sample(&self, rng: &mut Rng, n: usize) -> Result<Values> {
        Ok(match self {
            Model::Gaussian(g) => Values::Vectors { d: g.dim(), data: g.sample(rng, n) },
            Model::Categorical(c) => Values::Tokens(c.sample(rng, n)),
            Model::Gmm(f) => Values::Vectors { d: f.gmm.dim(), data: f.gmm.sample(rng, n) },
            Model::Kde(k) => Values::Vectors { d: k.dim(), data: k.sample(rng, n) },
            Model::Vae(v) => Values::Images {
                h: v.height,
                w: v.width,
                pixels: v.sample(rng, n).map_err(vae_error)?,
                labels: vec![None; n],
            },
            Model::Ngram(m) => decode_all(&m.tokenizer, m.ngram.sample(rng, n))?,
            Model::Transformer(m) => decode_all(&m.tokenizer, m.net.sample(rng, n).map_err(transformer_error)?)?,
        })
    }

    /// Text models: for each prompt (token ids), the row the model writes
    /// after it. Only the transformer takes prompts; others sample afresh.
    pub fn continue_text(&self, rng: &mut Rng, prompts: &[Vec<u32>]) -> Result<Values> {
        match self {
            Model::Transformer(m) => {
                decode_all(&m.tokenizer, m.net.continue_rows(prompts, rng).map_err(transformer_error)?)
            }
            _ => self.sample(rng, prompts.len()),
        }
    }

    /// Perplexity of each text row under this model (text models only).
    pub fn row_ppl(&self, rows: &Values) -> Result<Option<Vec<f64>>> {
        Ok(match (self, rows) {
            (Model::Ngram(m), Values::Texts { ids, .. }) => Some(m.ngram.rows_ppl(ids)),
            (Model::Transformer(m), Values::Texts { ids, .. }) => Some(
                m.net
                    .rows_nll(ids)
                    .map_err(transformer_error)?
                    .into_iter()
                    .map(|(nll, n)| (nll / n as f64).exp())
                    .collect(),
            ),
            _ => None,
        })
    }

    /// Each row's log-likelihood (nats; per token for text, the negative
    /// of the negative ELBO for images): what a likelihood filter scores.
    /// `None` for rows this model does not describe.
    pub fn row_log_likelihoods(&self, rows: &Values) -> Result<Option<Vec<f64>>> {
        Ok(Some(match (self, rows) {
            (Model::Gaussian(g), Values::Vectors { data, .. }) => g.row_log_likelihoods(data),
            (Model::Categorical(c), Values::Tokens(t)) => c.row_log_likelihoods(t),
            (Model::Gmm(f), Values::Vectors { data, .. }) => f.gmm.row_log_likelihoods(data),
            (Model::Kde(k), Values::Vectors { data, .. }) => k.row_log_likelihoods(data),
            (Model::Vae(v), Values::Images { pixels, .. }) => {
                v.row_neg_elbo(pixels).map_err(vae_error)?.into_iter().map(|x| -x).collect()
            }
            (Model::Ngram(m), Values::Texts { ids, .. }) => {
                use rayon::prelude::*;
                ids.par_iter().map(|r| m.ngram.row_nll(r)).map(|(nll, n)| -nll / n as f64).collect()
            }
            (Model::Transformer(m), Values::Texts { ids, .. }) => {
                m.net.rows_nll(ids).map_err(transformer_error)?.into_iter().map(|(nll, n)| -nll / n as f64).collect()
            }
            _ => return Ok(None),
        }))
    }

    pub fn mean_nll(&self, rows: &Values) -> Result<f64> {
        Ok(match (self, rows) {
            (Model::Gaussian(g), Values::Vectors { data, .. }) => g.mean_nll(data),
            (Model::Categorical(c), Values::Tokens(t)) => c.mean_nll(t),
            (Model::Gmm(f), Values::Vectors { data, .. }) => f.gmm.mean_nll(data),
            (Model::Kde(k), Values::Vectors { data, .. }) => k.mean_nll(data),
            // The negative ELBO: an upper bound on the NLL, in nats per image.
            (Model::Vae(v), Values::Images { pixels, .. }) => v.neg_elbo(pixels).map_err(vae_error)?,
            // Per token, `</s>` included: exp of it is real_ppl.
            (Model::Ngram(m), Values::Texts { ids, .. }) => m.ngram.mean_nll(ids),
            (Model::Transformer(m), Values::Texts { ids, .. }) => {
                let per_row = m.net.rows_nll(ids).map_err(transformer_error)?;
                let (nll, count) = per_row.into_iter().fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                nll / count.max(1) as f64
            }
            _ => f64::NAN,
        })
    }

    /// Metrics of the model itself against the chain's model 0: for
    /// mixtures `gmm_l2` (squared L2 distance of the densities) and
    /// `component_std_{i}` (ascending).
    pub fn own_metrics(&self, model0: Option<&Model>) -> Result<Vec<(String, f64)>> {
        let mut out = Vec::new();
        if let Model::Vae(v) = self {
            // latent_std: 1000 images of this model, encoded by model 0's
            // encoder; the std of all their latent means (the official
            // notebook's figure).
            let encoder = match model0 {
                Some(Model::Vae(r)) => r,
                _ => v,
            };
            let mut rng = Rng::from_seed(0x1A7E_575D);
            let images = v.sample(&mut rng, LATENT_STD_IMAGES).map_err(vae_error)?;
            let mu = encoder.encode_means(&images).map_err(vae_error)?;
            let n = mu.len().max(1) as f64;
            let mean = mu.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let var = mu.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
            out.push(("latent_std".to_string(), var.sqrt()));
        }
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
        Ok(out)
    }

    /// A weights file for models that have one (safetensors).
    pub fn weights(&self) -> Result<Option<Vec<u8>>> {
        match self {
            Model::Vae(v) => Ok(Some(v.to_safetensors().map_err(vae_error)?)),
            Model::Transformer(m) => Ok(Some(m.net.to_safetensors().map_err(transformer_error)?)),
            _ => Ok(None),
        }
    }

    pub fn params_json(&self) -> String {
        match self {
            // Written straight from the parameters (see `ParamsCell`), where
            // building a JSON tree first cost 13% of the main thread.
            Model::Gaussian(g) => return g.params_json(),
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
            Model::Ngram(m) => serde_json::json!({
                "order": m.ngram.order,
                "vocab": m.ngram.vocab,
                "bos": m.ngram.bos(),
                "eos": m.ngram.eos(),
                "discounts": m.ngram.discounts,
                "ngrams": m.ngram.sizes(),
                "max-tokens": m.ngram.max_tokens,
            }),
            Model::Transformer(m) => serde_json::json!({
                "layers": m.net.settings.layers,
                "heads": m.net.settings.heads,
                "d-model": m.net.settings.d_model,
                "context": m.net.settings.context,
                "vocab": m.net.vocab,
                "bos": m.net.bos(),
                "eos": m.net.eos(),
                "parameters": m.net.parameter_count(),
                "epoch_loss": m.net.epoch_loss,
            }),
            Model::Vae(v) => serde_json::json!({
                "arch": v.settings.arch.name(),
                "height": v.height,
                "width": v.width,
                "latent": v.settings.latent,
                "parameters": v.parameter_count(),
                "epoch_loss": v.epoch_loss,
            }),
        }
        .to_string()
    }
}
