//! A decoder-only transformer (GPT-2's layout): token and learned position
//! embeddings, pre-norm blocks of causal multi-head attention and a GELU
//! MLP, a final layer norm, and an output layer tied to the token
//! embedding. Weights are drawn N(0, 0.02) from the project's RNG, biases
//! and norms start at 0 and 1; the residual projections are scaled by
//! 1/sqrt(2 layers) as GPT-2 does.

use candle_core::{DType, Result, Shape, Tensor, D};

use super::attention::CausalAttention;
use super::fused::{Gelu, LayerNorm as FusedLayerNorm, Softmax};
use super::head::HeadCrossEntropy;
use crate::model::dense::Dense;
use crate::model::device;
pub use crate::model::vars::VarList;
use crate::rng::Rng;

#[derive(Clone)]
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(p: &mut VarList, name: &str, inputs: usize, outputs: usize, std: f64, rng: &mut Rng) -> Result<Self> {
        let w = p.normal(&format!("{name}.weight"), &[outputs, inputs], std, rng)?;
        let b = p.constant(&format!("{name}.bias"), &[outputs], 0.0)?;
        Ok(Linear { w, b })
    }

    /// `x`: (b, t, inputs) -> (b, t, outputs). On the CPU one fused op
    /// (`model::dense`); elsewhere candle's matmul and bias add.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        if x.device().is_cpu() {
            let shape = Some(Shape::from((b, t, self.b.dim(0)?)));
            return x.contiguous()?.apply_op3(&self.w, &self.b, Dense { relu: false, shape });
        }
        x.reshape((b * t, d))?.matmul(&self.w.t()?)?.broadcast_add(&self.b)?.reshape((b, t, ()))
    }
}

/// Layer norm from differentiable ops (candle-nn's fused one has no backward).
#[derive(Clone)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn new(p: &mut VarList, name: &str, d: usize) -> Result<Self> {
        Ok(LayerNorm {
            w: p.constant(&format!("{name}.weight"), &[d], 1.0)?,
            b: p.constant(&format!("{name}.bias"), &[d], 0.0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() {
            return x.contiguous()?.apply_op3(&self.w, &self.b, FusedLayerNorm { eps: 1e-5 });
        }
        // The fused ops run on the host; on a GPU, candle's own.
        let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let xhat = xc.broadcast_div(&(xc.sqr()?.mean_keepdim(D::Minus1)? + 1e-5)?.sqrt()?)?;
        xhat.broadcast_mul(&self.w)?.broadcast_add(&self.b)
    }
}

#[derive(Clone)]
struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc: Linear,
    fc2: Linear,
    heads: usize,
    context: usize,
}

/// One layer's keys and values of the tokens seen so far: buffers of
/// (b, heads, context, dh) filled in place up to `len`, so decoding a token
/// writes one slice instead of copying the whole cache into a new tensor.
#[derive(Clone)]
pub struct KvBuffer {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl KvBuffer {
    /// Keeps the rows `idx` (beam search's surviving hypotheses).
    pub fn select(&self, idx: &Tensor) -> Result<KvBuffer> {
        Ok(KvBuffer { k: self.k.index_select(idx, 0)?, v: self.v.index_select(idx, 0)?, len: self.len })
    }
}

pub type Cache = Option<KvBuffer>;

impl Block {
    fn attention(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut Cache>) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = self.qkv.forward(x)?;
        if cache.is_none() && qkv.device().is_cpu() {
            // Training and scoring: causal attention within the window, as
            // one fused op (the mask is always causal_mask(t, 0) here).
            if let Some(m) = mask {
                if m.dims() != [t, t] {
                    candle_core::bail!("attention mask {:?} for a window of {t}", m.dims());
                }
            }
            return self.proj.forward(&qkv.contiguous()?.apply_op1(CausalAttention::new(h))?);
        }
        let split = |i: usize| qkv.narrow(2, i * d, d)?.reshape((b, t, h, dh))?.transpose(1, 2)?.contiguous();
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some(cache) = cache {
            let buf = match cache.take() {
                Some(buf) => buf,
                None => {
                    let zeros = Tensor::zeros((b, h, self.context, dh), k.dtype(), k.device())?;
                    KvBuffer { k: zeros.clone(), v: zeros.copy()?, len: 0 }
                }
            };
            buf.k.slice_set(&k, 2, buf.len)?;
            buf.v.slice_set(&v, 2, buf.len)?;
            let len = buf.len + t;
            k = buf.k.narrow(2, 0, len)?;
            v = buf.v.narrow(2, 0, len)?;
            *cache = Some(KvBuffer { len, ..buf });
        }
        let scores = q.matmul(&k.t()?.contiguous()?)?;
        let scale = 1.0 / (dh as f64).sqrt();
        let att = if scores.device().is_cpu() {
            // The mask is always `causal_mask(t, s - t)`: the new rows come
            // after the s - t cached ones, and the fused softmax applies
            // that mask and the scale itself.
            let causal_past = match mask {
                Some(m) if m.dims() == [t, k.dim(2)?] => Some(k.dim(2)? - t),
                Some(m) => candle_core::bail!("attention mask {:?} for {t} rows over {} keys", m.dims(), k.dim(2)?),
                None => None,
            };
            scores.contiguous()?.apply_op1(Softmax { scale: scale as f32, causal_past })?
        } else {
            let att = (scores * scale)?;
            let att = match mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            candle_nn::ops::softmax(&att, D::Minus1)?
        };
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.proj.forward(&y)
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut Cache>) -> Result<Tensor> {
        let x = (x + self.attention(&self.ln1.forward(x)?, mask, cache)?)?;
        let h = self.fc.forward(&self.ln2.forward(&x)?)?;
        let h = if h.device().is_cpu() { h.contiguous()?.apply_op1(Gelu)? } else { h.gelu()? };
        let m = self.fc2.forward(&h)?;
        x + m
    }
}

#[derive(Clone)]
pub struct Gpt {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    lnf: LayerNorm,
    pub context: usize,
}

impl Gpt {
    pub fn new(
        vocab: usize,
        layers: usize,
        heads: usize,
        d: usize,
        context: usize,
        p: &mut VarList,
        rng: &mut Rng,
    ) -> Result<Gpt> {
        let std = 0.02;
        let resid = std / (2.0 * layers as f64).sqrt();
        let wte = p.normal("wte", &[vocab, d], std, rng)?;
        let wpe = p.normal("wpe", &[context, d], std, rng)?;
        let mut blocks = Vec::with_capacity(layers);
        for l in 0..layers {
            let n = |s: &str| format!("h.{l}.{s}");
            blocks.push(Block {
                ln1: LayerNorm::new(p, &n("ln_1"), d)?,
                qkv: Linear::new(p, &n("attn.c_attn"), d, 3 * d, std, rng)?,
                proj: Linear::new(p, &n("attn.c_proj"), d, d, resid, rng)?,
                ln2: LayerNorm::new(p, &n("ln_2"), d)?,
                fc: Linear::new(p, &n("mlp.c_fc"), d, 4 * d, std, rng)?,
                fc2: Linear::new(p, &n("mlp.c_proj"), 4 * d, d, resid, rng)?,
                heads,
                context,
            });
        }
        let lnf = LayerNorm::new(p, "ln_f", d)?;
        Ok(Gpt { wte, wpe, blocks, lnf, context })
    }

    /// Logits (b, t, vocab) for token ids (b, t) at positions pos0 ..
    /// pos0+t. With `caches` (one per layer) the new tokens attend to the
    /// cached ones and are appended; without, attention is causal within
    /// the window.
    pub fn forward(&self, ids: &Tensor, pos0: usize, caches: Option<&mut Vec<Cache>>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let d = self.wte.dim(1)?;
        let x = self.hidden(ids, pos0, caches)?;
        x.reshape((b * t, d))?.matmul(&self.wte.t()?)?.reshape((b, t, ()))
    }

    /// Mean cross-entropy of `targets` (b * t, the next token of each
    /// position) given ids (b, t) seen causally from position 0.
    pub fn loss(&self, ids: &Tensor, targets: Vec<u32>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let d = self.wte.dim(1)?;
        let x = self.hidden(ids, 0, None)?.reshape((b * t, d))?;
        if x.device().is_cpu() {
            return x.contiguous()?.apply_op2(&self.wte, HeadCrossEntropy::new(targets));
        }
        let logits = x.matmul(&self.wte.t()?)?;
        candle_nn::loss::cross_entropy(&logits, &Tensor::from_vec(targets, b * t, ids.device())?)
    }

    /// The final layer-normed hidden states (b, t, d).
    fn hidden(&self, ids: &Tensor, pos0: usize, caches: Option<&mut Vec<Cache>>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let d = self.wte.dim(1)?;
        let tok = self.wte.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?;
        let pos = self.wpe.narrow(0, pos0, t)?;
        let mut x = tok.broadcast_add(&pos)?;
        match caches {
            Some(caches) => {
                // New tokens see every cached one; among themselves, causal.
                let mask = (t > 1).then(|| causal_mask(t, pos0)).transpose()?;
                for (blk, cache) in self.blocks.iter().zip(caches.iter_mut()) {
                    x = blk.forward(&x, mask.as_ref(), Some(cache))?;
                }
            }
            None => {
                let mask = causal_mask(t, 0)?;
                for blk in &self.blocks {
                    x = blk.forward(&x, Some(&mask), None)?;
                }
            }
        }
        self.lnf.forward(&x)
    }

    pub fn layers(&self) -> usize {
        self.blocks.len()
    }
}

/// (t, past + t): 0 where a query may look, -inf after it.
fn causal_mask(t: usize, past: usize) -> Result<Tensor> {
    let data: Vec<f32> =
        (0..t).flat_map(|i| (0..past + t).map(move |j| if j <= past + i { 0.0 } else { f32::NEG_INFINITY })).collect();
    Tensor::from_vec(data, (t, past + t), device::device())?.to_dtype(DType::F32)
}
