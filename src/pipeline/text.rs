//! The text source (`source = "text"`), the n-gram model's keys and the
//! text metrics' settings.

use std::path::Path;

use super::reader::Section;
use super::{at_base, Source};
use crate::metrics::text::{RareNgrams, MAX_RARE_ORDER};
use crate::text::tokenizer::{MAX_VOCAB, MIN_VOCAB};
use crate::text::{TextSource, TextUnit};

pub const TEXT_KEYS: [&str; 4] = ["test-path", "unit", "block-tokens", "vocab-size"];
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
    data.insert("source".into(), Value::String("text".into()));
    data.insert("path".into(), Value::String(t.path.display().to_string()));
    if let Some(p) = &t.test_path {
        data.insert("test-path".into(), Value::String(p.display().to_string()));
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
