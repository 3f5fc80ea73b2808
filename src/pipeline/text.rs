//! The text source (`source = "text"`), the n-gram model's keys and the
//! text metrics' settings.

use std::path::Path;

use super::reader::Section;
use super::{at_base, ModelSpec, Source};
use crate::metrics::text::{RareNgrams, MAX_RARE_ORDER};
use crate::model::ngram::MAX_ORDER;
use crate::model::{NgramSettings, TransformerSettings};
use crate::text::tokenizer::{MAX_VOCAB, MIN_VOCAB};
use crate::text::{TextSource, TextUnit};

pub const TEXT_KEYS: [&str; 4] = ["test-path", "unit", "block-tokens", "vocab-size"];
pub const NGRAM_KEYS: [&str; 3] = ["order", "discount", "max-tokens"];
pub const TRANSFORMER_KEYS: [&str; 18] = [
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
];

pub fn text_source(s: &mut Section, base: &Path) -> Option<Source> {
    let path: Option<String> = s.req("path", "the text file (UTF-8, raw or .gz), relative to the pipeline file");
    let test_path: Option<String> = s.opt("test-path");
    let unit: String = s.opt("unit").unwrap_or_else(|| "line".to_string());
    let block_tokens: Option<u64> = s.opt("block-tokens");
    let vocab: u64 = s.opt("vocab-size").unwrap_or(4096);
    let mut ok = true;
    let unit = match (unit.as_str(), block_tokens) {
        ("line", None) => Some(TextUnit::Line),
        ("line", Some(_)) => {
            s.problem("block-tokens", "applies to unit = \"block\" only; remove it or set unit = \"block\"");
            None
        }
        ("block", b) => match b.unwrap_or(64) {
            t @ 2..=65536 => Some(TextUnit::Block { tokens: t as usize }),
            t => {
                s.problem("block-tokens", format!("must be in [2, 65536], got {t}"));
                None
            }
        },
        (other, _) => {
            s.problem(
                "unit",
                format!(
                    "unknown value {other:?}; use \"line\" (a row a line) or \"block\" (rows of block-tokens tokens)"
                ),
            );
            None
        }
    };
    if !(MIN_VOCAB as u64 + 1..=MAX_VOCAB as u64).contains(&vocab) {
        s.problem(
            "vocab-size",
            format!(
                "must be in [{}, {MAX_VOCAB}] (byte-level BPE starts from {MIN_VOCAB} byte tokens), got {vocab}",
                MIN_VOCAB + 1
            ),
        );
        ok = false;
    }
    // Whether the files exist is the environment's question (crate::resolve).
    let path = path.map(|p| at_base(base, &p));
    let test_path = test_path.map(|t| at_base(base, &t));
    let src = TextSource { path: path?, test_path, unit: unit?, vocab_size: vocab as usize };
    ok.then_some(Source::Text(src))
}

pub fn ngram_model(s: &mut Section) -> Option<ModelSpec> {
    let order: u64 = s.opt("order").unwrap_or(3);
    let discount: Option<f64> = s.opt("discount");
    let max_tokens: u64 = s.opt("max-tokens").unwrap_or(256);
    let mut ok = true;
    if !(1..=MAX_ORDER as u64).contains(&order) {
        s.problem("order", format!("must be in [1, {MAX_ORDER}], got {order}"));
        ok = false;
    }
    if let Some(d) = discount {
        if !(d > 0.0 && d < 1.0) {
            s.problem("discount", format!("must be in (0, 1) (leave it out to estimate it per order), got {d}"));
            ok = false;
        }
    }
    if !(1..=1_000_000).contains(&max_tokens) {
        s.problem("max-tokens", format!("must be in [1, 1000000], got {max_tokens}"));
        ok = false;
    }
    ok.then_some(ModelSpec::Ngram(NgramSettings { order: order as usize, discount, max_tokens: max_tokens as usize }))
}

pub fn transformer_model(s: &mut Section, base_dir: &Path) -> Option<ModelSpec> {
    let d = TransformerSettings::default();
    let int = |s: &mut Section, key: &str, default: usize, lo: u64, hi: u64| -> Option<usize> {
        let v: u64 = s.opt(key).unwrap_or(default as u64);
        if !(lo..=hi).contains(&v) {
            s.problem(key, format!("must be in [{lo}, {hi}], got {v}"));
            return None;
        }
        Some(v as usize)
    };
    let layers = int(s, "layers", d.layers, 1, 64);
    let heads = int(s, "heads", d.heads, 1, 64);
    let d_model = int(s, "d-model", d.d_model, 1, 8192);
    let context = int(s, "context", d.context, 2, 8192);
    let epochs = int(s, "epochs", d.epochs, 1, 100_000);
    let batch = int(s, "batch-size", d.batch, 1, 1 << 16);
    let top_k = int(s, "top-k", d.top_k, 0, 1 << 20);
    let base_epochs = int(s, "base-epochs", d.base_epochs, 1, 100_000);
    let prompt_tokens = int(s, "prompt-tokens", d.prompt_tokens, 0, 8192);
    let beams = int(s, "beams", d.beams, 1, 64);
    let base_path: Option<String> = s.opt("base-path");
    let base = base_path.map(|b| at_base(base_dir, &b));
    let max_tokens: Option<u64> = s.opt("max-tokens");
    let min_tokens: u64 = s.opt("min-tokens").unwrap_or(0);
    let real = |s: &mut Section, key: &str, default: f64, ok: fn(f64) -> bool, what: &str| -> Option<f64> {
        let v: f64 = s.opt(key).unwrap_or(default);
        if !ok(v) {
            s.problem(key, format!("must be {what}, got {v}"));
            return None;
        }
        Some(v)
    };
    let lr = real(s, "lr", d.lr, |v| v > 0.0 && v.is_finite(), "a finite number > 0");
    let weight_decay = real(s, "weight-decay", d.weight_decay, |v| (0.0..1.0).contains(&v), "in [0, 1)");
    let clip = real(s, "clip", d.clip, |v| v >= 0.0 && v.is_finite(), "a finite number >= 0 (0: no clipping)");
    let temperature = real(s, "temperature", d.temperature, |v| v > 0.0 && v.is_finite(), "a finite number > 0");
    let top_p = real(s, "top-p", d.top_p, |v| v > 0.0 && v <= 1.0, "in (0, 1] (1: no nucleus cut)");
    let repetition_penalty = real(
        s,
        "repetition-penalty",
        d.repetition_penalty,
        |v| v > 0.0 && v.is_finite(),
        "a finite number > 0 (1: none; the paper's code uses 3.0)",
    );
    let (layers, heads, d_model, context) = (layers?, heads?, d_model?, context?);
    if d_model % heads != 0 {
        s.problem("d-model", format!("must be a multiple of heads ({heads}), got {d_model}"));
        return None;
    }
    if beams.is_some_and(|b| b > 1) && prompt_tokens == Some(0) {
        s.problem("beams", "beam search is deterministic, so every row would be the same: give prompt-tokens (rows continue D_0's rows) or use beams = 1");
    }
    // A row is <s>, the prompt, then what the model writes: all within the context.
    let prompt_tokens = prompt_tokens?;
    let room = context.saturating_sub(1 + prompt_tokens);
    if room == 0 {
        s.problem(
            "prompt-tokens",
            format!("leaves no room to generate in a context of {context}; lower it or raise context"),
        );
        return None;
    }
    let max_tokens = match max_tokens {
        None => room,
        Some(m) if (1..=room as u64).contains(&m) => m as usize,
        Some(m) => {
            s.problem("max-tokens", format!("must be in [1, context - 1 - prompt-tokens = {room}], got {m}"));
            return None;
        }
    };
    if min_tokens > max_tokens as u64 {
        s.problem("min-tokens", format!("must be in [0, max-tokens = {max_tokens}], got {min_tokens}"));
        return None;
    }
    Some(ModelSpec::Transformer(TransformerSettings {
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
    }))
}

pub fn transformer_toml(model: &mut toml::Table, t: &TransformerSettings) {
    use toml::Value;
    model.insert("kind".into(), Value::String("transformer".into()));
    for (k, v) in [
        ("layers", t.layers),
        ("heads", t.heads),
        ("d-model", t.d_model),
        ("context", t.context),
        ("epochs", t.epochs),
        ("batch-size", t.batch),
        ("top-k", t.top_k),
        ("max-tokens", t.max_tokens),
        ("base-epochs", t.base_epochs),
        ("prompt-tokens", t.prompt_tokens),
        ("beams", t.beams),
    ] {
        model.insert(k.into(), Value::Integer(v as i64));
    }
    // Written only when set, so the resolved pipeline.toml of a run made
    // before the key existed still matches (resume compares the bytes).
    if t.min_tokens > 0 {
        model.insert("min-tokens".into(), Value::Integer(t.min_tokens as i64));
    }
    for (k, v) in [
        ("lr", t.lr),
        ("weight-decay", t.weight_decay),
        ("clip", t.clip),
        ("temperature", t.temperature),
        ("top-p", t.top_p),
        ("repetition-penalty", t.repetition_penalty),
    ] {
        model.insert(k.into(), Value::Float(v));
    }
    if let Some(b) = &t.base {
        let abs = std::path::absolute(b).unwrap_or_else(|_| b.clone());
        model.insert("base-path".into(), Value::String(abs.display().to_string()));
    }
}

pub fn rare_ngrams(s: &mut Section) -> RareNgrams {
    let d = RareNgrams::default();
    let order: u64 = s.opt("rare-ngram-order").unwrap_or(d.order as u64);
    let max_count: u64 = s.opt("rare-max-count").unwrap_or(d.max_count as u64);
    if !(1..=MAX_RARE_ORDER as u64).contains(&order) {
        s.problem("rare-ngram-order", format!("must be in [1, {MAX_RARE_ORDER}], got {order}"));
    }
    if max_count == 0 {
        s.problem("rare-max-count", "must be at least 1 (n-grams of D_0 seen at most this often are rare)");
    }
    RareNgrams { order: order as usize, max_count: max_count as usize }
}

/// The keys of `to_toml` for a text source.
pub fn source_toml(data: &mut toml::Table, t: &TextSource) {
    use toml::Value;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    data.insert("source".into(), Value::String("text".into()));
    data.insert("path".into(), Value::String(abs(&t.path)));
    if let Some(p) = &t.test_path {
        data.insert("test-path".into(), Value::String(abs(p)));
    }
    match t.unit {
        TextUnit::Line => {
            data.insert("unit".into(), Value::String("line".into()));
        }
        TextUnit::Block { tokens } => {
            data.insert("unit".into(), Value::String("block".into()));
            data.insert("block-tokens".into(), Value::Integer(tokens as i64));
        }
    }
    data.insert("vocab-size".into(), Value::Integer(t.vocab_size as i64));
}

pub fn ngram_toml(model: &mut toml::Table, n: &NgramSettings) {
    use toml::Value;
    model.insert("kind".into(), Value::String("ngram".into()));
    model.insert("order".into(), Value::Integer(n.order as i64));
    if let Some(d) = n.discount {
        model.insert("discount".into(), Value::Float(d));
    }
    model.insert("max-tokens".into(), Value::Integer(n.max_tokens as i64));
}
