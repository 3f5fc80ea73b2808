//! Text runs: reading a corpus into rows, the BPE tokenizer, and the word
//! statistics the text metrics use.

pub mod corpus;
pub mod tokenizer;

pub use corpus::{Corpus, TextSource, TextUnit};
pub use tokenizer::TextTokenizer;

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}
