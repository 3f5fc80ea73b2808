//! The run's byte-level BPE tokenizer, trained with the `tokenizers` crate
//! on the real training split only, so no held-out text shapes the
//! vocabulary. Byte-level means every string encodes (no unknown token) and
//! every id sequence decodes.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer, TokenizerBuilder,
};

use super::TextError;

/// Byte-level BPE starts from 256 byte symbols; merges come on top.
pub const MIN_VOCAB: usize = 256;
/// Token ids are packed 20 bits apiece in n-gram keys.
pub const MAX_VOCAB: usize = (1 << 20) - 2;

pub struct TextTokenizer {
    inner: Tokenizer,
    json: String,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextTokenizer(vocab {})", self.vocab_size())
    }
}

fn err(what: &str) -> impl Fn(tokenizers::Error) -> TextError + '_ {
    move |e| TextError::Tokenizer(format!("{what}: {e}"))
}

impl TextTokenizer {
    /// Trains BPE merges on `rows` up to `vocab_size` tokens. Deterministic:
    /// the trainer sorts its alphabet and breaks count ties by pair id.
    pub fn train(rows: &[String], vocab_size: usize) -> Result<TextTokenizer, TextError> {
        let mut builder =
            TokenizerBuilder::<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>::new(
            )
            .with_model(BPE::default())
            .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true))))
            .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())))
            .build()
            .map_err(err("building the tokenizer"))?;
        let mut trainer = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        builder.train(&mut trainer, rows.iter()).map_err(err("training BPE"))?;
        let inner: Tokenizer = builder.into();
        Self::from_inner(inner)
    }

    /// A tokenizer saved by [`TextTokenizer::json`].
    pub fn from_json(json: &str) -> Result<TextTokenizer, TextError> {
        let inner: Tokenizer = json.parse().map_err(err("reading tokenizer.json"))?;
        Self::from_inner(inner)
    }

    fn from_inner(inner: Tokenizer) -> Result<TextTokenizer, TextError> {
        let json = inner.to_string(true).map_err(err("saving the tokenizer"))?;
        Ok(TextTokenizer { inner, json })
    }

    /// Ids 0 .. vocab_size-1.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokenizer as `tokenizer.json` (loadable by Hugging Face tools).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Token ids of each row, rows encoded in parallel (each row's ids do
    /// not depend on the others).
    pub fn encode_all(&self, rows: &[String]) -> Result<Vec<Vec<u32>>, TextError> {
        use rayon::prelude::*;
        rows.par_iter()
            .map(|r| {
                self.inner.encode_fast(r.as_str(), false).map(|e| e.get_ids().to_vec()).map_err(err("encoding text"))
            })
            .collect()
    }

    /// The id of a string that is one token (the newline between lines).
    pub fn single_id(&self, s: &str) -> Result<Option<u32>, TextError> {
        let e = self.inner.encode_fast(s, false).map_err(err("encoding text"))?;
        Ok(match e.get_ids() {
            [id] => Some(*id),
            _ => None,
        })
    }

    /// Text of an id sequence; bytes that end mid-character decode as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TextError> {
        self.inner.decode(ids, false).map_err(err("decoding tokens"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..200).map(|i| format!("the cat sat on the mat {i} times, and the dog barked at the cat")).collect()
    }

    #[test]
    fn round_trips_and_repeats() {
        let rows = corpus();
        let t = TextTokenizer::train(&rows, 300).unwrap();
        assert!(t.vocab_size() > MIN_VOCAB && t.vocab_size() <= 300, "{}", t.vocab_size());
        let ids = t.encode_all(&rows[..3]).unwrap();
        for (r, i) in rows.iter().zip(&ids) {
            assert_eq!(&t.decode(i).unwrap(), r);
            // Merges shorten the text: fewer tokens than bytes.
            assert!(i.len() < r.len());
        }
        // Text never seen in training still encodes, byte by byte at worst.
        let odd = vec!["Zürich ünd 東京".to_string()];
        assert_eq!(t.decode(&t.encode_all(&odd).unwrap()[0]).unwrap(), odd[0]);
        let again = TextTokenizer::train(&rows, 300).unwrap();
        assert_eq!(t.json(), again.json());
        let loaded = TextTokenizer::from_json(t.json()).unwrap();
        assert_eq!(loaded.encode_all(&rows[..3]).unwrap(), ids);
    }
}
