//! `kind = "transformer"`: a small GPT-2-style language model, trained from
//! scratch or fine-tuned from a base model pretrained once per run.

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{at_base, int, int_in, real_where, string, Family, Keys};

#[derive(Clone, Debug, PartialEq)]
pub struct TransformerSettings {
    pub layers: usize,
    pub heads: usize,
    pub d_model: usize,
    /// Longest window, in tokens, the model attends over.
    pub context: usize,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate: linear warm-up over the first 5% of steps, then
    /// a cosine decay to a tenth of it.
    pub lr: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: none).
    pub clip: f64,
    pub temperature: f64,
    /// Sample among the k likeliest tokens (0: all).
    pub top_k: usize,
    /// Sample among the likeliest tokens holding this much mass (1: all).
    pub top_p: f64,
    /// Longest generated row, in tokens (below `context`).
    pub max_tokens: usize,
    /// `</s>` is barred until a row has this many tokens (Hugging Face's
    /// `min_new_tokens`); `max_tokens` makes every row that long, as the
    /// paper's 64-token continuations.
    pub min_tokens: usize,
    /// The paper's structure: a base model pretrained once on this corpus
    /// for `base_epochs` epochs; every generation fine-tunes a copy of it.
    pub base: Option<std::path::PathBuf>,
    pub base_epochs: usize,
    /// The paper's rows: each generated row continues the first this many
    /// tokens of a D_0 row (0: rows start from `<s>` alone).
    pub prompt_tokens: usize,
    /// Beam search with this many beams (1: sampling).
    pub beams: usize,
    /// Divides positive logits (multiplies negative ones) of tokens already
    /// in the row, prompt included, as Hugging Face's `repetition_penalty`.
    pub repetition_penalty: f64,
}

impl Default for TransformerSettings {
    fn default() -> Self {
        TransformerSettings {
            layers: 2,
            heads: 4,
            d_model: 128,
            context: 128,
            epochs: 2,
            batch: 32,
            lr: 1e-3,
            weight_decay: 0.01,
            clip: 1.0,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_tokens: 127,
            min_tokens: 0,
            base: None,
            base_epochs: 1,
            prompt_tokens: 0,
            beams: 1,
            repetition_penalty: 1.0,
        }
    }
}

impl Family for TransformerSettings {
    const KIND: &'static str = "transformer";
    const KEYS: &'static [&'static str] = &[
        "min-tokens",
        "base-path",
        "base-epochs",
        "prompt-tokens",
        "beams",
        "repetition-penalty",
        "layers",
        "heads",
        "d-model",
        "context",
        "epochs",
        "batch-size",
        "lr",
        "weight-decay",
        "clip",
        "temperature",
        "top-k",
        "top-p",
        "max-tokens",
    ];

    fn read(keys: &mut impl Keys, base_dir: &Path) -> Option<Self> {
        let d = TransformerSettings::default();
        let layers = int_in(keys, "layers", d.layers, 1, 64);
        let heads = int_in(keys, "heads", d.heads, 1, 64);
        let d_model = int_in(keys, "d-model", d.d_model, 1, 8192);
        let context = int_in(keys, "context", d.context, 2, 8192);
        let epochs = int_in(keys, "epochs", d.epochs, 1, 100_000);
        let batch = int_in(keys, "batch-size", d.batch, 1, 1 << 16);
        let top_k = int_in(keys, "top-k", d.top_k, 0, 1 << 20);
        let base_epochs = int_in(keys, "base-epochs", d.base_epochs, 1, 100_000);
        let prompt_tokens = int_in(keys, "prompt-tokens", d.prompt_tokens, 0, 8192);
        let beams = int_in(keys, "beams", d.beams, 1, 64);
        let base_path: Option<String> = keys.opt("base-path");
        // Whether the file exists is the environment's question (crate::resolve).
        let base = base_path.map(|b| at_base(base_dir, &b));
        let max_tokens: Option<u64> = keys.opt("max-tokens");
        let min_tokens: u64 = keys.opt("min-tokens").unwrap_or(0);
        let lr = real_where(keys, "lr", d.lr, |v| v > 0.0 && v.is_finite(), "a finite number > 0");
        let weight_decay = real_where(keys, "weight-decay", d.weight_decay, |v| (0.0..1.0).contains(&v), "in [0, 1)");
        let clip =
            real_where(keys, "clip", d.clip, |v| v >= 0.0 && v.is_finite(), "a finite number >= 0 (0: no clipping)");
        let temperature =
            real_where(keys, "temperature", d.temperature, |v| v > 0.0 && v.is_finite(), "a finite number > 0");
        let top_p = real_where(keys, "top-p", d.top_p, |v| v > 0.0 && v <= 1.0, "in (0, 1] (1: no nucleus cut)");
        let repetition_penalty = real_where(
            keys,
            "repetition-penalty",
            d.repetition_penalty,
            |v| v > 0.0 && v.is_finite(),
            "a finite number > 0 (1: none; the paper's code uses 3.0)",
        );
        let (layers, heads, d_model, context) = (layers?, heads?, d_model?, context?);
        if d_model % heads != 0 {
            keys.problem("d-model", &format!("must be a multiple of heads ({heads}), got {d_model}"));
            return None;
        }
        if beams.is_some_and(|b| b > 1) && prompt_tokens == Some(0) {
            keys.problem("beams", "beam search is deterministic, so every row would be the same: give prompt-tokens (rows continue D_0's rows) or use beams = 1");
        }
        // A row is <s>, the prompt, then what the model writes: all within the context.
        let prompt_tokens = prompt_tokens?;
        let room = context.saturating_sub(1 + prompt_tokens);
        if room == 0 {
            keys.problem(
                "prompt-tokens",
                &format!("leaves no room to generate in a context of {context}; lower it or raise context"),
            );
            return None;
        }
        let max_tokens = match max_tokens {
            None => room,
            Some(m) if (1..=room as u64).contains(&m) => m as usize,
            Some(m) => {
                keys.problem("max-tokens", &format!("must be in [1, context - 1 - prompt-tokens = {room}], got {m}"));
                return None;
            }
        };
        if min_tokens > max_tokens as u64 {
            keys.problem("min-tokens", &format!("must be in [0, max-tokens = {max_tokens}], got {min_tokens}"));
            return None;
        }
        Some(TransformerSettings {
            layers,
            heads,
            d_model,
            context,
            epochs: epochs?,
            batch: batch?,
            lr: lr?,
            weight_decay: weight_decay?,
            clip: clip?,
            temperature: temperature?,
            top_k: top_k?,
            top_p: top_p?,
            max_tokens,
            min_tokens: min_tokens as usize,
            base,
            base_epochs: base_epochs?,
            prompt_tokens,
            beams: beams?,
            repetition_penalty: repetition_penalty?,
        })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        for (k, v) in [
            ("layers", self.layers),
            ("heads", self.heads),
            ("d-model", self.d_model),
            ("context", self.context),
            ("epochs", self.epochs),
            ("batch-size", self.batch),
            ("top-k", self.top_k),
            ("max-tokens", self.max_tokens),
            ("base-epochs", self.base_epochs),
            ("prompt-tokens", self.prompt_tokens),
            ("beams", self.beams),
        ] {
            table.insert(k.into(), int(v));
        }
        // Written only when set, so the resolved pipeline.toml of a run made
        // before the key existed still matches (resume compares the bytes).
        if self.min_tokens > 0 {
            table.insert("min-tokens".into(), int(self.min_tokens));
        }
        for (k, v) in [
            ("lr", self.lr),
            ("weight-decay", self.weight_decay),
            ("clip", self.clip),
            ("temperature", self.temperature),
            ("top-p", self.top_p),
            ("repetition-penalty", self.repetition_penalty),
        ] {
            table.insert(k.into(), Value::Float(v));
        }
        if let Some(b) = &self.base {
            table.insert("base-path".into(), toml::Value::String(b.display().to_string()));
        }
    }
}
