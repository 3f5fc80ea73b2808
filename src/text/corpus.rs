//! A text file as rows: one a line, or the whole file cut into blocks of a
//! fixed number of tokens. The held-out test split is chosen first (by
//! line), the tokenizer is trained on the rest, then both are tokenized.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::TextTokenizer;
use crate::error::{Error, Result};
use crate::rng::{Purpose, Rng};
use crate::values::Values;

#[derive(Clone, Debug, PartialEq)]
pub struct TextSource {
    pub path: PathBuf,
    /// A separate file of held-out text (WikiText's test split); without
    /// it, `data.holdout` lines of `path` are held out.
    pub test_path: Option<PathBuf>,
    pub unit: TextUnit,
    pub vocab_size: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextUnit {
    /// One row a non-empty line (a sentence, a verse, a document).
    Line,
    /// The text, lines joined by newlines, cut into rows of this many tokens.
    Block { tokens: usize },
}

/// The corpus of a text run: the same for every replicate, so one
/// tokenizer serves them all and the test split is the same fixed text
/// for every chain (like WikiText-2's test set in the paper).
pub struct Corpus {
    pub tokenizer: Arc<TextTokenizer>,
    /// Rows D_0 is drawn from.
    pub train: Values,
    /// The held-out rows (split = 'test').
    pub test: Values,
}

/// Non-empty lines, trimmed; gzip read through.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let reader = crate::gzip::open_maybe_gz(path)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::Data {
            file: path.to_path_buf(),
            message: format!("line {}: cannot read it as UTF-8 text ({e}); convert the file to UTF-8", i + 1),
        })?;
        let t = line.trim();
        if !t.is_empty() {
            out.push(t.to_string());
        }
    }
    if out.is_empty() {
        return Err(Error::Data { file: path.to_path_buf(), message: "has no non-empty lines of text".into() });
    }
    Ok(out)
}

impl Corpus {
    /// Reads the text, splits off `holdout` test lines (seeded by `seed`),
    /// trains the tokenizer on the training lines and cuts both into rows.
    pub fn build(src: &TextSource, holdout: usize, seed: u64) -> Result<Corpus> {
        let lines = read_lines(&src.path)?;
        let mut rng = Rng::stream(seed, 0, 0, Purpose::Corpus);
        let (train_lines, test_lines) = match &src.test_path {
            Some(t) => {
                let test = read_lines(t)?;
                let test = if holdout == 0 || holdout >= test.len() {
                    test
                } else {
                    rng.choose_sorted(test.len(), holdout).into_iter().map(|i| test[i].clone()).collect()
                };
                (lines, test)
            }
            None => {
                if holdout >= lines.len() {
                    return Err(Error::Data {
                        file: src.path.clone(),
                        message: format!(
                            "has {} lines of text but data.holdout asks for {holdout} held-out lines; lower data.holdout",
                            lines.len()
                        ),
                    });
                }
                let picked = rng.choose_sorted(lines.len(), holdout);
                let mut is_test = vec![false; lines.len()];
                for i in picked {
                    is_test[i] = true;
                }
                let (mut train, mut test) = (Vec::new(), Vec::new());
                for (line, t) in lines.into_iter().zip(is_test) {
                    if t {
                        test.push(line)
                    } else {
                        train.push(line)
                    }
                }
                (train, test)
            }
        };
        let tokenizer = TextTokenizer::train(&train_lines, src.vocab_size)
            .map_err(|e| Error::Data { file: src.path.clone(), message: e.to_string() })?;
        let tokenizer = Arc::new(tokenizer);
        let rows = |lines: Vec<String>, file: &Path| -> Result<Values> {
            let text_error = |e: super::TextError| Error::Data { file: file.to_path_buf(), message: e.to_string() };
            let ids = tokenizer.encode_all(&lines).map_err(text_error)?;
            match src.unit {
                TextUnit::Line => Ok(Values::texts(lines, ids)),
                TextUnit::Block { tokens } => {
                    let newline = tokenizer.single_id("\n").map_err(text_error)?;
                    let mut stream: Vec<u32> = Vec::with_capacity(ids.iter().map(|r| r.len() + 1).sum());
                    for r in ids {
                        stream.extend_from_slice(&r);
                        stream.extend(newline);
                    }
                    let blocks: Vec<Vec<u32>> = stream.chunks_exact(tokens).map(<[u32]>::to_vec).collect();
                    let text = blocks.iter().map(|b| tokenizer.decode(b)).collect::<Result<Vec<_>, _>>();
                    Ok(Values::texts(text.map_err(text_error)?, blocks))
                }
            }
        };
        let train = rows(train_lines, &src.path)?;
        let test = rows(test_lines, src.test_path.as_deref().unwrap_or(&src.path))?;
        if train.is_empty() {
            return Err(Error::Data {
                file: src.path.clone(),
                message: "gives no training rows (a block needs data.block-tokens tokens); lower data.block-tokens"
                    .into(),
            });
        }
        Ok(Corpus { tokenizer, train, test })
    }
}
