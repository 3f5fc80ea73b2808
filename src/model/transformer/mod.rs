//! A small decoder-only transformer language model in candle, trained from
//! scratch on each generation's rows and sampled with a KV cache. Initial
//! weights, window order and every sampling draw come from the project's
//! seeded RNG; tensors are built from those numbers.

pub use crate::model::settings::TransformerSettings;

mod adamw;
mod attention;
mod fused;
mod head;
mod host;
mod net;

use candle_core::Tensor;

use super::device;
use super::kernels::{host_values, store_values};
use super::safetensors;
use crate::progress::{unwatched, Trained, TrainingHook};
use crate::rng::Rng;
use adamw::AdamW;
use net::{Cache, Gpt, VarList};

#[derive(Debug, thiserror::Error)]
#[error("candle")]
pub struct TransformerError(#[from] candle_core::Error);

type Result<T> = std::result::Result<T, TransformerError>;

#[derive(Clone)]
pub struct Transformer {
    pub settings: TransformerSettings,
    /// Token ids 0 .. vocab-1; `<s>` is `vocab`, `</s>` is `vocab + 1`.
    pub vocab: u32,
    net: Gpt,
    params: VarList,
    pub epoch_loss: Vec<f64>,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transformer({:?})", self.settings)
    }
}

/// Rows as one stream `<s> row </s> <s> row </s> ...`.
fn stream(rows: &[Vec<u32>], bos: u32, eos: u32) -> Vec<u32> {
    let mut s = Vec::with_capacity(rows.iter().map(|r| r.len() + 2).sum());
    for r in rows {
        s.push(bos);
        s.extend_from_slice(r);
        s.push(eos);
    }
    s
}

fn ids_tensor(ids: Vec<u32>, b: usize, t: usize) -> candle_core::Result<Tensor> {
    Tensor::from_vec(ids, (b, t), device::device())
}

impl Transformer {
    pub fn bos(&self) -> u32 {
        self.vocab
    }

    pub fn eos(&self) -> u32 {
        self.vocab + 1
    }

    /// Trains a fresh network on `rows` packed into windows of `context + 1`
    /// tokens (inputs and next-token targets). `rng` draws the weights, then
    /// each epoch's window order.
    pub fn fit(rows: &[Vec<u32>], vocab: u32, s: &TransformerSettings, rng: &mut Rng) -> Result<Transformer> {
        Self::fine_tune(None, rows, vocab, s, rng, &unwatched)
    }

    /// As [`Transformer::fit`], starting from `base`'s weights when given
    /// (the weights are still drawn, so `rng` moves the same either way).
    /// `on_batch` hears of each batch.
    pub fn fine_tune(
        base: Option<&Transformer>,
        rows: &[Vec<u32>],
        vocab: u32,
        s: &TransformerSettings,
        rng: &mut Rng,
        on_batch: TrainingHook,
    ) -> Result<Transformer> {
        let (bos, eos) = (vocab, vocab + 1);
        let mut params = VarList::default();
        let net = Gpt::new(vocab as usize + 2, s.layers, s.heads, s.d_model, s.context, &mut params, rng)?;
        if let Some(b) = base {
            for ((_, v), (_, w)) in params.vars.iter().zip(&b.params.vars) {
                v.set(w.as_tensor())?;
            }
        }
        let vars: Vec<_> = params.vars.iter().map(|(_, v)| v.clone()).collect();
        let mut opt = AdamW::new(&vars, s.weight_decay, s.clip);
        // On the CPU the weights train in host buffers (`host.rs`) and go
        // back into the tensors at the end.
        let mut host = if device::device().is_cpu() { Some(host_values(&params.vars)?) } else { None };
        let data = stream(rows, bos, eos);
        let t = s.context;
        let windows: Vec<usize> = (0..data.len().saturating_sub(1) / t).map(|w| w * t).collect();
        let steps = (windows.len().div_ceil(s.batch.max(1)) * s.epochs).max(1);
        let warmup = (steps / 20).max(1);
        let mut step = 0usize;
        let mut epoch_loss = Vec::with_capacity(s.epochs);
        for epoch in 0..s.epochs {
            let order = rng.permutation(windows.len());
            let (mut total, mut count) = (0.0, 0usize);
            let batches = order.len().div_ceil(s.batch.max(1));
            for (i, batch) in order.chunks(s.batch.max(1)).enumerate() {
                let (mut x, mut y) = (Vec::with_capacity(batch.len() * t), Vec::with_capacity(batch.len() * t));
                for &w in batch {
                    let start = windows[w];
                    x.extend_from_slice(&data[start..start + t]);
                    y.extend_from_slice(&data[start + 1..start + t + 1]);
                }
                let b = batch.len();
                let lr = if step < warmup {
                    s.lr * (step + 1) as f64 / warmup as f64
                } else {
                    let progress = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
                    s.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
                };
                let loss = match host.as_mut() {
                    Some(values) => {
                        let out = host::step(values, s.heads, &x, &y, b, t)?;
                        opt.step_host(values, &out.grads, lr)?;
                        out.loss
                    }
                    None => {
                        let loss = net.loss(&ids_tensor(x, b, t)?, y)?;
                        opt.step(&loss.backward()?, lr)?;
                        f64::from(loss.to_scalar::<f32>()?)
                    }
                };
                total += loss * b as f64;
                count += b;
                step += 1;
                on_batch(Trained::after(epoch, s.epochs, i + 1, batches));
            }
            let mean = total / count.max(1) as f64;
            tracing::debug!(epoch, loss = mean, "transformer epoch");
            epoch_loss.push(mean);
        }
        if let Some(values) = &host {
            store_values(&params.vars, values)?;
        }
        Ok(Transformer { settings: s.clone(), vocab, net, params, epoch_loss })
    }

    /// `n` rows, each from `<s>` until `</s>` or `max_tokens`, decoded 64
    /// at a time with a KV cache; every draw comes from `rng`, row by row.
    pub fn sample(&self, rng: &mut Rng, n: usize) -> Result<Vec<Vec<u32>>> {
        // Rows from `<s>` alone: continuations of empty prompts.
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let b = left.min(64);
            out.extend(self.decode_batch(&vec![&[][..]; b], rng)?);
            left -= b;
        }
        Ok(out)
    }

    /// For each prompt, the tokens the model writes after `<s> prompt`, up
    /// to `max_tokens` or `</s>`: by beam search when `beams > 1`, else by
    /// sampling (prompts of equal length decoded together, 64 at a time).
    pub fn continue_rows(&self, prompts: &[Vec<u32>], rng: &mut Rng) -> Result<Vec<Vec<u32>>> {
        if self.settings.beams > 1 {
            return prompts.iter().map(|p| self.beam_search(p)).collect();
        }
        let mut out = vec![Vec::new(); prompts.len()];
        // Equal lengths share a batch; groups in order of first appearance.
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            match groups.iter_mut().find(|g| g.0 == p.len()) {
                Some(g) => g.1.push(i),
                None => groups.push((p.len(), vec![i])),
            }
        }
        for (_, members) in groups {
            for chunk in members.chunks(64) {
                let rows = self.decode_batch(&chunk.iter().map(|&i| prompts[i].as_slice()).collect::<Vec<_>>(), rng)?;
                for (&i, r) in chunk.iter().zip(rows) {
                    out[i] = r;
                }
            }
        }
        Ok(out)
    }

    /// Sampled continuations of equal-length prompts, one batch.
    fn decode_batch(&self, prompts: &[&[u32]], rng: &mut Rng) -> Result<Vec<Vec<u32>>> {
        let b = prompts.len();
        let len = prompts.first().map_or(0, |p| p.len()) + 1;
        let limit = self.settings.max_tokens.min(self.net.context - len);
        let mut caches: Vec<Cache> = vec![None; self.net.layers()];
        let mut x = Vec::with_capacity(b * len);
        for p in prompts {
            x.push(self.bos());
            x.extend_from_slice(p);
        }
        let logits = self.net.forward(&ids_tensor(x, b, len)?, 0, Some(&mut caches))?;
        let mut last: Vec<f32> = logits.narrow(1, len - 1, 1)?.flatten_all()?.to_vec1()?;
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut done = vec![false; b];
        for step in 0..limit {
            let v = last.len() / b;
            let mut next = Vec::with_capacity(b);
            for i in 0..b {
                let row = &last[i * v..(i + 1) * v];
                let too_short = rows[i].len() < self.settings.min_tokens;
                let tok = if self.settings.repetition_penalty == 1.0 && !too_short {
                    self.draw(row, rng)
                } else {
                    let mut l = row.to_vec();
                    self.penalise(&mut l, prompts[i].iter().chain(&rows[i]));
                    if too_short {
                        l[self.eos() as usize] = f32::NEG_INFINITY;
                    }
                    self.draw(&l, rng)
                };
                if !done[i] {
                    if tok == self.eos() {
                        done[i] = true;
                    } else {
                        rows[i].push(tok);
                    }
                }
                next.push(tok);
            }
            if done.iter().all(|&d| d) || step + 1 == limit {
                break;
            }
            let logits = self.net.forward(&ids_tensor(next, b, 1)?, len + step, Some(&mut caches))?;
            last = logits.flatten_all()?.to_vec1()?;
        }
        Ok(rows)
    }

    /// Hugging Face's repetition penalty on the logits of tokens in `seen`.
    fn penalise<'a>(&self, logits: &mut [f32], seen: impl Iterator<Item = &'a u32>) {
        let r = self.settings.repetition_penalty as f32;
        if r == 1.0 {
            return;
        }
        let mut hit = vec![false; logits.len()];
        for &t in seen {
            if let Some(h) = hit.get_mut(t as usize) {
                *h = true;
            }
        }
        for (l, h) in logits.iter_mut().zip(hit) {
            if h {
                *l = if *l > 0.0 { *l / r } else { *l * r };
            }
        }
    }

    /// Beam search: `beams` hypotheses scored by their summed log-probability
    /// (after the repetition penalty); a hypothesis that draws `</s>` is
    /// finished, and the best finished or surviving one by mean log-probability
    /// per token wins. No randomness: ties go to the lower beam and token id.
    fn beam_search(&self, prompt: &[u32]) -> Result<Vec<u32>> {
        let beams = self.settings.beams;
        let len = prompt.len() + 1;
        let limit = self.settings.max_tokens.min(self.net.context - len);
        let mut caches: Vec<Cache> = vec![None; self.net.layers()];
        let mut x = vec![self.bos()];
        x.extend_from_slice(prompt);
        let logits = self.net.forward(&ids_tensor(x, 1, len)?, 0, Some(&mut caches))?;
        let mut last: Vec<f32> = logits.narrow(1, len - 1, 1)?.flatten_all()?.to_vec1()?;
        // Alive hypotheses: (tokens, score); one to start with.
        let mut alive: Vec<(Vec<u32>, f64)> = vec![(Vec::new(), 0.0)];
        let mut finished: Vec<(Vec<u32>, f64)> = Vec::new();
        for step in 0..limit {
            let v = last.len() / alive.len();
            let mut cand: Vec<(f64, usize, u32)> = Vec::new();
            for (bi, (toks, score)) in alive.iter().enumerate() {
                let mut l = last[bi * v..(bi + 1) * v].to_vec();
                self.penalise(&mut l, prompt.iter().chain(toks));
                l[self.bos() as usize] = f32::NEG_INFINITY;
                if toks.len() < self.settings.min_tokens {
                    l[self.eos() as usize] = f32::NEG_INFINITY;
                }
                let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = f64::from(max) + l.iter().map(|&z| f64::from(z - max).exp()).sum::<f64>().ln();
                for (t, &z) in l.iter().enumerate() {
                    if z > f32::NEG_INFINITY {
                        cand.push((score + f64::from(z) - lse, bi, t as u32));
                    }
                }
            }
            cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut next: Vec<(Vec<u32>, f64)> = Vec::new();
            let mut parents = Vec::new();
            let mut tokens = Vec::new();
            for (score, bi, t) in cand {
                if next.len() == beams {
                    break;
                }
                if t == self.eos() {
                    finished.push((alive[bi].0.clone(), score));
                    continue;
                }
                let mut toks = alive[bi].0.clone();
                toks.push(t);
                next.push((toks, score));
                parents.push(bi as u32);
                tokens.push(t);
            }
            if finished.len() >= beams || next.is_empty() || step + 1 == limit {
                finished.extend(next);
                break;
            }
            let idx = Tensor::from_vec(parents, tokens.len(), device::device())?;
            for c in caches.iter_mut() {
                if let Some(buf) = c.take() {
                    *c = Some(buf.select(&idx)?);
                }
            }
            let n = tokens.len();
            let logits = self.net.forward(&ids_tensor(tokens, n, 1)?, len + step, Some(&mut caches))?;
            last = logits.flatten_all()?.to_vec1()?;
            alive = next;
        }
        let best = finished
            .into_iter()
            .map(|(t, s)| {
                let per = s / (t.len() + 1) as f64;
                (t, per)
            })
            .fold(None::<(Vec<u32>, f64)>, |best, c| match best {
                Some(b) if b.1 >= c.1 => Some(b),
                _ => Some(c),
            });
        Ok(best.map(|b| b.0).unwrap_or_default())
    }

    /// A token from the logits with temperature, top-k and top-p; `<s>` never.
    fn draw(&self, logits: &[f32], rng: &mut Rng) -> u32 {
        let s = &self.settings;
        let bos = self.bos() as usize;
        let temp = s.temperature.max(1e-6);
        let max = logits
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != bos)
            .map(|(_, &l)| f64::from(l))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut p: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != bos)
            .map(|(i, &l)| (i as u32, ((f64::from(l) - max) / temp).exp()))
            .collect();
        if s.top_k > 0 || s.top_p < 1.0 {
            // Likeliest first; ties by id, so the order is fixed.
            p.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if s.top_k > 0 {
                p.truncate(s.top_k);
            }
            if s.top_p < 1.0 {
                let total: f64 = p.iter().map(|x| x.1).sum();
                let mut acc = 0.0;
                let mut keep = p.len();
                for (i, x) in p.iter().enumerate() {
                    acc += x.1;
                    if acc >= s.top_p * total {
                        keep = i + 1;
                        break;
                    }
                }
                p.truncate(keep);
            }
        }
        let total: f64 = p.iter().map(|x| x.1).sum();
        let mut u = rng.uniform() * total;
        for &(id, w) in &p {
            if u < w {
                return id;
            }
            u -= w;
        }
        p.last().map_or(self.eos(), |x| x.0)
    }

    /// Negative log-likelihood (nats) of each row's tokens and `</s>`, and
    /// their count. A row longer than the context is scored window by window.
    pub fn rows_nll(&self, rows: &[Vec<u32>]) -> Result<Vec<(f64, usize)>> {
        let t = self.net.context;
        // (row, inputs, targets) windows of at most `context` predictions.
        let mut windows: Vec<(usize, Vec<u32>, Vec<u32>)> = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let mut seq = Vec::with_capacity(row.len() + 2);
            seq.push(self.bos());
            seq.extend_from_slice(row);
            seq.push(self.eos());
            let mut start = 0;
            while start + 1 < seq.len() {
                let end = (start + t).min(seq.len() - 1);
                windows.push((r, seq[start..end].to_vec(), seq[start + 1..end + 1].to_vec()));
                start = end;
            }
        }
        let mut out = vec![(0.0, 0usize); rows.len()];
        for chunk in windows.chunks(32) {
            let len = chunk.iter().map(|w| w.1.len()).max().unwrap_or(1);
            let b = chunk.len();
            let mut x = Vec::with_capacity(b * len);
            for w in chunk {
                x.extend_from_slice(&w.1);
                x.extend(std::iter::repeat_n(self.eos(), len - w.1.len()));
            }
            let logits = self.net.forward(&ids_tensor(x, b, len)?, 0, None)?;
            let logp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
            let logp: Vec<f32> = logp.flatten_all()?.to_vec1()?;
            let v = logp.len() / (b * len);
            for (i, w) in chunk.iter().enumerate() {
                let nll: f64 =
                    w.2.iter().enumerate().map(|(j, &y)| -f64::from(logp[(i * len + j) * v + y as usize])).sum();
                out[w.0].0 += nll;
                out[w.0].1 += w.2.len();
            }
        }
        Ok(out)
    }

    /// The weights as a safetensors file (names sorted).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        Ok(safetensors::from_vars(&self.params.vars)?)
    }

    pub fn parameter_count(&self) -> usize {
        safetensors::parameter_count(&self.params.vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> TransformerSettings {
        TransformerSettings {
            layers: 1,
            heads: 2,
            d_model: 16,
            context: 16,
            epochs: 150,
            batch: 4,
            lr: 1e-2,
            max_tokens: 12,
            ..Default::default()
        }
    }

    /// The cached one-token-at-a-time path gives the logits of the full
    /// causal forward pass.
    #[test]
    fn kv_cache_matches_the_full_pass() {
        let s = tiny();
        let m = Transformer::fit(&[vec![1, 2, 3]], 8, &TransformerSettings { epochs: 1, ..s }, &mut Rng::from_seed(1))
            .unwrap();
        let ids = vec![8u32, 1, 2, 3, 4, 5];
        let full = m.net.forward(&ids_tensor(ids.clone(), 1, 6).unwrap(), 0, None).unwrap();
        let full: Vec<f32> = full.flatten_all().unwrap().to_vec1().unwrap();
        let mut caches: Vec<Cache> = vec![None; m.net.layers()];
        // A two-token prefill, then one token at a time.
        let mut got: Vec<f32> = m
            .net
            .forward(&ids_tensor(ids[..2].to_vec(), 1, 2).unwrap(), 0, Some(&mut caches))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (p, &id) in ids.iter().enumerate().skip(2) {
            let l = m.net.forward(&ids_tensor(vec![id], 1, 1).unwrap(), p, Some(&mut caches)).unwrap();
            got.extend(l.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        assert_eq!(got.len(), full.len());
        for (a, b) in got.iter().zip(&full) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// A network learns a deterministic toy language: after training, the
    /// rows it writes are the training rows, and their loss is near zero.
    #[test]
    fn learns_and_repeats_a_toy_language() {
        let rows = vec![vec![1, 2, 3, 4], vec![5, 6, 7]];
        let train: Vec<Vec<u32>> = (0..40).map(|i| rows[i % 2].clone()).collect();
        let m = Transformer::fit(&train, 8, &tiny(), &mut Rng::from_seed(2)).unwrap();
        assert!(m.epoch_loss.last().unwrap() < &m.epoch_loss[0], "{:?}", m.epoch_loss);
        let nll = m.rows_nll(&rows).unwrap();
        // Each row starts with one of two choices (ln 2 = 0.69) then is fixed.
        for (n, c) in nll {
            assert!(n / (c as f64) < 0.5, "{n} over {c} tokens");
        }
        let again = Transformer::fit(&train, 8, &tiny(), &mut Rng::from_seed(2)).unwrap();
        assert_eq!(m.to_safetensors().unwrap(), again.to_safetensors().unwrap(), "same seed, same weights");
        let s = TransformerSettings { temperature: 0.5, ..tiny() };
        let cold = Transformer { settings: s.clone(), ..m.clone() };
        let samples = cold.sample(&mut Rng::from_seed(3), 20).unwrap();
        let matches = samples.iter().filter(|r| rows.contains(r)).count();
        assert!(matches >= 16, "{samples:?}");
        // Prompted with a row's first token, the model finishes that row:
        // by sampling, and by beam search (which is deterministic).
        let prompts = vec![vec![1], vec![5, 6], vec![1, 2]];
        let want = vec![vec![2, 3, 4], vec![7], vec![3, 4]];
        assert_eq!(cold.continue_rows(&prompts, &mut Rng::from_seed(4)).unwrap(), want);
        let beam = Transformer { settings: TransformerSettings { beams: 3, ..s.clone() }, ..m.clone() };
        assert_eq!(beam.continue_rows(&prompts, &mut Rng::from_seed(5)).unwrap(), want);
        // min-tokens bars `</s>`: where the language would end a row, the
        // model must write on, to exactly min-tokens = max-tokens tokens.
        for beams in [1, 3] {
            let long = Transformer {
                settings: TransformerSettings { beams, min_tokens: 6, max_tokens: 6, ..s.clone() },
                ..m.clone()
            };
            let rows = long.continue_rows(&prompts, &mut Rng::from_seed(7)).unwrap();
            assert!(rows.iter().all(|r| r.len() == 6 && !r.contains(&long.eos())), "beams {beams}: {rows:?}");
            assert_eq!(rows[1][0], 7, "beams {beams}: the row still goes on as learned: {rows:?}");
        }
        // A repetition penalty on a one-token language cannot make it repeat.
        let penalised =
            Transformer { settings: TransformerSettings { beams: 3, repetition_penalty: 3.0, ..s }, ..m.clone() };
        let p = penalised.continue_rows(&[vec![1, 2, 3, 4]], &mut Rng::from_seed(6)).unwrap();
        assert!(p[0].iter().all(|t| ![1, 2, 3, 4].contains(t)) || p[0].is_empty(), "{p:?}");
        // Fine-tuning starts from the base's weights: zero epochs keep them.
        let copy = Transformer::fine_tune(
            Some(&m),
            &train,
            8,
            &TransformerSettings { epochs: 0, ..tiny() },
            &mut Rng::from_seed(9),
            &unwatched,
        )
        .unwrap();
        assert_eq!(copy.to_safetensors().unwrap(), m.to_safetensors().unwrap());
    }
}
