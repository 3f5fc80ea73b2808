//! Times the transformer's training and generation, for
//! benches/peer_torch_transformer.py: `transformer_speed LAYERS HEADS DMODEL
//! CONTEXT BATCH VOCAB TRAIN_TOKENS GEN_ROWS` prints one JSON line with
//! training and generation tokens per second.
//!
//! Training data: TRAIN_TOKENS seeded uniform token ids in rows of 30; one
//! epoch. Generation: GEN_ROWS rows of exactly CONTEXT-1 tokens (the model
//! is untrained, so `</s>` is rare; rows that draw it stop early and are
//! counted by their real length).

use std::time::Instant;

use collapse::model::{Transformer, TransformerSettings};
use collapse::rng::Rng;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // As the `collapse` binary: freed memory is kept for reuse
    // (`mi_option_purge_delay`, 15 in the bundled mimalloc.h).
    // SAFETY: sets a process-wide integer option; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    anyhow::ensure!(
        a.len() == 8,
        "usage: transformer_speed LAYERS HEADS DMODEL CONTEXT BATCH VOCAB TRAIN_TOKENS GEN_ROWS"
    );
    let (layers, heads, d_model, context, batch, vocab, train_tokens, gen_rows) =
        (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    let mut rng = Rng::from_seed(7);
    let rows: Vec<Vec<u32>> =
        (0..train_tokens / 30).map(|_| (0..30).map(|_| rng.below(vocab as u64) as u32).collect()).collect();
    let s = TransformerSettings {
        layers,
        heads,
        d_model,
        context,
        epochs: 1,
        batch,
        max_tokens: context - 1,
        ..TransformerSettings::default()
    };
    let t = Instant::now();
    let m = Transformer::fit(&rows, vocab as u32, &s, &mut Rng::from_seed(1))?;
    let train_s = t.elapsed().as_secs_f64();
    // Tokens the windows covered: the stream (rows with <s> and </s>) cut into whole windows.
    let stream = rows.len() * 32;
    let trained = (stream - 1) / context * context;
    let t = Instant::now();
    let out = m.sample(&mut Rng::from_seed(2), gen_rows)?;
    let gen_s = t.elapsed().as_secs_f64();
    let generated: usize = out.iter().map(|r| r.len() + 1).sum();
    println!(
        "{}",
        serde_json::json!({
            "train_tokens": trained, "train_s": train_s, "train_tok_per_s": trained as f64 / train_s,
            "gen_tokens": generated, "gen_s": gen_s, "gen_tok_per_s": generated as f64 / gen_s,
            "loss": m.epoch_loss[0], "parameters": m.parameter_count(),
        })
    );
    Ok(())
}
