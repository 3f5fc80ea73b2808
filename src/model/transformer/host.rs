//! The transformer's training step on the CPU without candle's autograd:
//! the forward pass keeps what each layer's backward pass reads, the
//! backward pass calls the fused layers' gradient functions in reverse
//! order, the residual stream's gradient is one buffer added into in
//! place, and every parameter's gradient lands in its own buffer in the
//! order AdamW keeps.
//!
//! Through candle the same step zeroes a tensor for every gradient and
//! adds each contribution into it (the residual adds alone make a dozen
//! such passes over the batch's activations a layer), and copies every
//! weight and gradient between tensors and host memory around the
//! optimiser: 15-18% of a step (`perf`). The candle path stays for other
//! devices and as the reference the tests hold this one to.

use candle_core::Result;
use rayon::prelude::*;

use super::attention::{attention_backward, attention_forward};
use super::fused::{gelu_backward, gelu_forward, layer_norm_forward, layer_norm_grads};
use super::head::Logits;
use crate::model::dense::{dense_backward, dense_forward};
use crate::model::kernels::error;

/// Layer norm's epsilon, as the network's.
const EPS: f32 = 1e-5;
/// Parameters per block (see [`BlockParams`]).
const PER_BLOCK: usize = 12;

/// Where each parameter sits in `VarList` order: wte, wpe, each block's
/// twelve, ln_f's weight and bias.
struct Slots {
    blocks: usize,
}

impl Slots {
    const WTE: usize = 0;
    const WPE: usize = 1;

    /// The layout of `count` parameters, if they make whole blocks.
    fn of(count: usize) -> Option<Slots> {
        let blocks = count.saturating_sub(4) / PER_BLOCK;
        (count == 4 + PER_BLOCK * blocks).then_some(Slots { blocks })
    }

    fn block(&self, l: usize) -> std::ops::Range<usize> {
        2 + PER_BLOCK * l..2 + PER_BLOCK * (l + 1)
    }

    fn lnf_w(&self) -> usize {
        2 + PER_BLOCK * self.blocks
    }

    fn lnf_b(&self) -> usize {
        3 + PER_BLOCK * self.blocks
    }
}

/// One block's parameters by name, in their `VarList` order: ln_1,
/// attention's qkv and output projection, ln_2, the MLP's two layers
/// (weight, bias each).
struct BlockParams<'a> {
    ln1: (&'a [f32], &'a [f32]),
    qkv: (&'a [f32], &'a [f32]),
    proj: (&'a [f32], &'a [f32]),
    ln2: (&'a [f32], &'a [f32]),
    fc: (&'a [f32], &'a [f32]),
    out: (&'a [f32], &'a [f32]),
}

impl<'a> BlockParams<'a> {
    fn new(p: &'a [Vec<f32>]) -> Result<Self> {
        let [ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b] = p else {
            return Err(error("transformer step", format!("a block of {} parameters, not {PER_BLOCK}", p.len())));
        };
        Ok(BlockParams {
            ln1: (ln1_w, ln1_b),
            qkv: (qkv_w, qkv_b),
            proj: (proj_w, proj_b),
            ln2: (ln2_w, ln2_b),
            fc: (fc_w, fc_b),
            out: (out_w, out_b),
        })
    }
}

/// One training step's outcome: the mean cross-entropy and the gradient
/// of each parameter in `VarList` order.
pub struct Step {
    pub loss: f64,
    pub grads: Vec<Vec<f32>>,
}

/// What one block's backward pass reads from its forward pass.
struct Saved {
    x: Vec<f32>,
    ln1: Vec<f32>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    x1: Vec<f32>,
    ln2: Vec<f32>,
    fc: Vec<f32>,
    gelu: Vec<f32>,
}

/// Loss and gradients for `b` windows of `t` token ids (row-major) and
/// their next tokens, `heads` attention heads per block. `params` are
/// the network's in `VarList` order: wte, wpe, the blocks, ln_f.
pub fn step(params: &[Vec<f32>], heads: usize, ids: &[u32], targets: &[u32], b: usize, t: usize) -> Result<Step> {
    let slots = Slots::of(params.len()).filter(|_| ids.len() == b * t && targets.len() == b * t);
    let Some(slots) = slots else {
        return Err(error("transformer step", format!("{} parameters, {} ids for {b} x {t}", params.len(), ids.len())));
    };
    let blocks = slots.blocks;
    let (wte, wpe) = (&params[Slots::WTE], &params[Slots::WPE]);
    let (lnf_w, lnf_b) = (&params[slots.lnf_w()], &params[slots.lnf_b()]);
    let d = lnf_w.len();
    let block = |l: usize| BlockParams::new(&params[slots.block(l)]);

    let mut x = embed(wte, wpe, ids, t, d)?;
    let mut saved = Vec::with_capacity(blocks);
    for l in 0..blocks {
        let p = block(l)?;
        let ln1 = layer_norm_forward(&x, p.ln1.0, p.ln1.1, EPS)?;
        let qkv = dense_forward(&ln1, p.qkv.0, p.qkv.1, false)?;
        let (att, probs) = attention_forward(&qkv, b, t, d, heads)?;
        let mut x1 = dense_forward(&att, p.proj.0, p.proj.1, false)?;
        add_into(&mut x1, &x);
        let ln2 = layer_norm_forward(&x1, p.ln2.0, p.ln2.1, EPS)?;
        let fc = dense_forward(&ln2, p.fc.0, p.fc.1, false)?;
        let gelu = gelu_forward(&fc);
        let mut x2 = dense_forward(&gelu, p.out.0, p.out.1, false)?;
        add_into(&mut x2, &x1);
        saved.push(Saved { x: std::mem::replace(&mut x, x2), ln1, qkv, probs, att, x1, ln2, fc, gelu });
    }
    let lnf = layer_norm_forward(&x, lnf_w, lnf_b, EPS)?;
    let logits = Logits::new(&lnf, wte, d, targets)?;
    let loss = logits.mean_loss(targets);

    let mut grads: Vec<Vec<f32>> = vec![Vec::new(); params.len()];
    let (g_lnf, mut g_wte) = logits.backward(&lnf, wte, d, targets, 1.0 / targets.len().max(1) as f32)?;
    let (mut g, gw, gb) = layer_norm_grads(&x, lnf_w, &g_lnf, EPS);
    grads[slots.lnf_w()] = gw;
    grads[slots.lnf_b()] = gb;
    // `g`: the gradient of the residual stream, from the top block down.
    for l in (0..blocks).rev() {
        let (p, s) = (block(l)?, saved.pop().ok_or_else(|| error("transformer step", "a block's activations"))?);
        let out = dense_backward(&s.gelu, p.out.0, d, &g, &g, false, true)?;
        let g_fc = gelu_backward(&s.fc, need(&out.x)?)?;
        let fc = dense_backward(&s.ln2, p.fc.0, 4 * d, &g_fc, &g_fc, false, true)?;
        let (g_x1, ln2_w, ln2_b) = layer_norm_grads(&s.x1, p.ln2.0, need(&fc.x)?, EPS);
        add_into(&mut g, &g_x1);
        let proj = dense_backward(&s.att, p.proj.0, d, &g, &g, false, true)?;
        let g_qkv = attention_backward(&s.qkv, &s.probs, need(&proj.x)?, b, t, d, heads)?;
        let qkv = dense_backward(&s.ln1, p.qkv.0, 3 * d, &g_qkv, &g_qkv, false, true)?;
        let (g_x, ln1_w, ln1_b) = layer_norm_grads(&s.x, p.ln1.0, need(&qkv.x)?, EPS);
        add_into(&mut g, &g_x);
        // In `BlockParams` order.
        let named = [ln1_w, ln1_b, qkv.w, qkv.b, proj.w, proj.b, ln2_w, ln2_b, fc.w, fc.b, out.w, out.b];
        for (slot, v) in grads[slots.block(l)].iter_mut().zip(named) {
            *slot = v;
        }
    }
    // The embeddings: each token's row of g onto its wte row (the output
    // layer's share is already there), positions summed over windows; both
    // in row order on one thread, so the sums do not depend on threads.
    let mut g_wpe = vec![0.0f32; wpe.len()];
    for (row, &id) in g.chunks_exact(d.max(1)).zip(ids) {
        g_wte[id as usize * d..(id as usize + 1) * d].iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
    for window in g.chunks_exact((t * d).max(1)) {
        g_wpe[..t * d].iter_mut().zip(window).for_each(|(a, &v)| *a += v);
    }
    grads[Slots::WTE] = g_wte;
    grads[Slots::WPE] = g_wpe;
    Ok(Step { loss, grads })
}

/// Token plus position embeddings of windows of `t` ids from position 0.
fn embed(wte: &[f32], wpe: &[f32], ids: &[u32], t: usize, d: usize) -> Result<Vec<f32>> {
    let vocab = wte.len() / d.max(1);
    if ids.iter().any(|&i| i as usize >= vocab) || wpe.len() < t * d {
        return Err(error("transformer step", format!("a token id past {vocab}, or a window past {}", wpe.len() / d)));
    }
    let mut x = vec![0.0f32; ids.len() * d];
    x.par_chunks_mut(d.max(1)).zip(ids.par_iter()).enumerate().for_each(|(i, (row, &id))| {
        let (tok, pos) = (&wte[id as usize * d..][..d], &wpe[(i % t.max(1)) * d..][..d]);
        row.iter_mut().zip(tok.iter().zip(pos)).for_each(|(r, (&a, &b))| *r = a + b);
    });
    Ok(x)
}

/// `acc += v`, element-wise, in parallel chunks (each element on its own).
fn add_into(acc: &mut [f32], v: &[f32]) {
    acc.par_chunks_mut(1 << 14).zip(v.par_chunks(1 << 14)).for_each(|(a, v)| {
        a.iter_mut().zip(v).for_each(|(a, &v)| *a += v);
    });
}

fn need(g: &Option<Vec<f32>>) -> Result<&[f32]> {
    g.as_deref().ok_or_else(|| error("transformer step", "a layer's input gradient is missing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::transformer::net::{Gpt, VarList};
    use crate::rng::Rng;
    use candle_core::{Device, Tensor};

    /// One host step gives the loss and every parameter's gradient that
    /// candle's autograd gives through the fused ops. They differ only in
    /// summation order (the residual stream's gradient is added in another
    /// order; the embedding's shares likewise), so they agree to f32
    /// rounding: 1e-4 of each tensor's largest gradient.
    #[test]
    fn host_step_matches_candles_autograd() {
        let (vocab, layers, heads, d, context, b) = (13, 2, 2, 8, 6, 3);
        let mut rng = Rng::from_seed(5);
        let mut params = VarList::default();
        let net = Gpt::new(vocab, layers, heads, d, context, &mut params, &mut rng).unwrap();
        // Nudge the norms and biases off their initial 1 and 0, so their
        // gradients' paths are all exercised.
        for (_, v) in &params.vars {
            let t = v.as_tensor();
            let n = t.elem_count();
            let noise: Vec<f32> = (0..n).map(|_| 0.1 * rng.normal() as f32).collect();
            let noise = Tensor::from_vec(noise, t.shape(), &Device::Cpu).unwrap();
            v.set(&(t + noise).unwrap()).unwrap();
        }
        let ids: Vec<u32> = (0..b * context).map(|_| rng.below(vocab as u64) as u32).collect();
        let targets: Vec<u32> = (0..b * context).map(|_| rng.below(vocab as u64) as u32).collect();
        let values: Vec<Vec<f32>> =
            params.vars.iter().map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        let host = step(&values, heads, &ids, &targets, b, context).unwrap();

        let idt = Tensor::from_vec(ids.clone(), (b, context), &Device::Cpu).unwrap();
        let loss = net.loss(&idt, targets.clone()).unwrap();
        let want = f64::from(loss.to_scalar::<f32>().unwrap());
        assert!((host.loss - want).abs() < 1e-5 * want, "loss {} vs {want}", host.loss);
        let grads = loss.backward().unwrap();
        assert_eq!(host.grads.len(), params.vars.len());
        for ((name, var), got) in params.vars.iter().zip(&host.grads) {
            let want: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got.len(), want.len(), "{name}");
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
            for (a, w) in got.iter().zip(&want) {
                assert!((a - w).abs() < 1e-4 * scale, "{name}: {a} vs {w}");
            }
        }
    }
}
