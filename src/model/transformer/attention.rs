//! Causal multi-head self-attention for training, as one candle op over the
//! packed projections: qkv (b, t, 3d) -> (b, t, d). Each (sequence, head)
//! pair is one task: its scores, causal softmax and weighted values come
//! from single-thread gemm calls that read the heads in place (strided
//! views of qkv), where candle's composed form copies q, k and v into
//! head-major tensors, transposes k, materialises the scaled and masked
//! scores as three tensors of (b, heads, t, t), and transposes the result
//! back, with the same again for every gradient. The probabilities are
//! kept for the backward pass. Tasks are independent and each sums in a
//! fixed order, so results do not depend on the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::{softmax_grad_row, softmax_row};
use crate::model::kernels::{error, f32_slice, matmul, with_host, Mat, Threads};

pub struct CausalAttention {
    heads: usize,
    probs: Mutex<Option<Vec<f32>>>,
}

impl CausalAttention {
    pub fn new(heads: usize) -> Self {
        CausalAttention { heads, probs: Mutex::new(None) }
    }

    /// (b, t, d, head width) of a packed (b, t, 3d) input.
    fn shape(&self, dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
        match *dims {
            [b, t, d3] if d3 % 3 == 0 && self.heads > 0 && (d3 / 3) % self.heads == 0 => {
                Ok((b, t, d3 / 3, d3 / 3 / self.heads))
            }
            ref d => Err(error("attention", format!("{d:?} is not (batch, time, 3 x {} heads x width)", self.heads))),
        }
    }
}

/// Scores and probabilities of every (sequence, head): (b, heads, t, t).
fn probabilities(qkv: &[f32], b: usize, t: usize, d: usize, dh: usize, heads: usize) -> Result<Vec<f32>> {
    let scale = 1.0 / (dh as f32).sqrt();
    let mut probs = vec![0.0f32; b * heads * t * t];
    probs.par_chunks_mut((t * t).max(1)).enumerate().try_for_each(|(bh, p)| {
        let (q, k, _) = head(qkv, bh, heads, t, d, dh);
        matmul(p, q, k.t(), false, Threads::One)?;
        for (i, row) in p.chunks_exact_mut(t.max(1)).enumerate() {
            softmax_row(row, i + 1, scale);
        }
        Ok::<_, candle_core::Error>(())
    })?;
    Ok(probs)
}

/// Views of sequence bh / heads' head bh % heads in qkv: q, k, v, each
/// (t, dh) with rows 3d apart.
fn head(qkv: &[f32], bh: usize, heads: usize, t: usize, d: usize, dh: usize) -> (Mat<'_>, Mat<'_>, Mat<'_>) {
    let base = (bh / heads) * t * 3 * d + (bh % heads) * dh;
    let view = |part: usize| Mat::strided(&qkv[(base + part * d).min(qkv.len())..], t, dh, 3 * d);
    (view(0), view(1), view(2))
}

impl CustomOp1 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(s, l, self.name())?;
        let (b, t, d, _) = self.shape(l.dims())?;
        let (y, probs) = attention_forward(qkv, b, t, d, self.heads)?;
        if let Ok(mut kept) = self.probs.lock() {
            *kept = Some(probs);
        }
        Ok((CpuStorage::F32(y), Shape::from((b, t, d))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (b, t, d, dh) = self.shape(arg.dims())?;
        let out = with_host(arg, self.name(), |qkv| {
            let probs = match self.probs.lock().ok().and_then(|mut k| k.take()) {
                Some(p) => p,
                None => probabilities(qkv, b, t, d, dh, self.heads)?,
            };
            with_host(grad_res, self.name(), |g| attention_backward(qkv, &probs, g, b, t, d, self.heads))
        })?;
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

/// Causal attention over packed qkv (b, t, 3d) with `heads` heads: the
/// output (b, t, d) and the probabilities (b, heads, t, t) its backward
/// pass reads.
pub fn attention_forward(qkv: &[f32], b: usize, t: usize, d: usize, heads: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let dh = d / heads.max(1);
    if qkv.len() != b * t * 3 * d || dh * heads != d {
        return Err(error("attention", format!("{} values for ({b}, {t}, 3 x {d}) over {heads} heads", qkv.len())));
    }
    let probs = probabilities(qkv, b, t, d, dh, heads)?;
    // Per (sequence, head) P V, then heads side by side: (b, t, d).
    let mut per_head = vec![0.0f32; b * heads * t * dh];
    per_head.par_chunks_mut((t * dh).max(1)).zip(probs.par_chunks((t * t).max(1))).enumerate().try_for_each(
        |(bh, (y, p))| {
            let (_, _, v) = head(qkv, bh, heads, t, d, dh);
            matmul(y, Mat::new(p, t, t), v, false, Threads::One)
        },
    )?;
    let len = b * t * d;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    y.spare_capacity_mut()[..len].par_chunks_mut((t * d).max(1)).enumerate().for_each(|(bi, ys)| {
        for (i, row) in ys.chunks_exact_mut(d.max(1)).enumerate() {
            for (hi, cell) in row.chunks_exact_mut(dh.max(1)).enumerate() {
                let src = ((bi * heads + hi) * t + i) * dh;
                cell.iter_mut().zip(&per_head[src..src + dh]).for_each(|(c, &v)| {
                    c.write(v);
                });
            }
        }
    });
    // SAFETY: d = heads * dh (checked above), so the chunks of t * d, their
    // rows of d and the rows' cells of dh tile all `len` slots, and each
    // cell was written from a run of dh values.
    unsafe { y.set_len(len) };
    Ok((y, probs))
}

/// The gradient of packed qkv given the forward pass's probabilities and
/// the output's gradient `g` (b, t, d).
pub fn attention_backward(
    qkv: &[f32],
    probs: &[f32],
    g: &[f32],
    b: usize,
    t: usize,
    d: usize,
    heads: usize,
) -> Result<Vec<f32>> {
    let dh = d / heads.max(1);
    if qkv.len() != b * t * 3 * d || g.len() != b * t * d || probs.len() != b * heads * t * t || dh * heads != d {
        return Err(error("attention", format!("backward: {} values for ({b}, {t}, 3 x {d})", qkv.len())));
    }
    let scale = 1.0 / (dh as f32).sqrt();
    // With dY this head's output gradient: dP = dY V^T;
    // dS = scale * P o (dP - rowsum(dP o P)); dQ = dS K;
    // dK = dS^T Q; dV = P^T dY.
    let grads = probs
        .par_chunks((t * t).max(1))
        .enumerate()
        .map(|(bh, p)| {
            let (q, k, v) = head(qkv, bh, heads, t, d, dh);
            let base = (bh / heads) * t * d + (bh % heads) * dh;
            let dy = Mat::strided(&g[base.min(g.len())..], t, dh, d);
            let mut ds = vec![0.0f32; t * t];
            matmul(&mut ds, dy, v.t(), false, Threads::One)?;
            for (dsr, pr) in ds.chunks_exact_mut(t.max(1)).zip(p.chunks_exact(t.max(1))) {
                softmax_grad_row(dsr, pr, scale);
            }
            let (mut dq, mut dk, mut dv) = (vec![0.0f32; t * dh], vec![0.0f32; t * dh], vec![0.0f32; t * dh]);
            let (ds, p) = (Mat::new(&ds, t, t), Mat::new(p, t, t));
            matmul(&mut dq, ds, k, false, Threads::One)?;
            matmul(&mut dk, ds.t(), q, false, Threads::One)?;
            matmul(&mut dv, p.t(), dy, false, Threads::One)?;
            Ok([dq, dk, dv])
        })
        .collect::<Result<Vec<_>>>()?;
    // Back into the packed layout: (b, t, [q heads | k heads | v heads]).
    let len = b * t * 3 * d;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut((t * 3 * d).max(1)).enumerate().for_each(|(bi, os)| {
        for (i, row) in os.chunks_exact_mut((3 * d).max(1)).enumerate() {
            for (part, block) in row.chunks_exact_mut(d.max(1)).enumerate() {
                for (hi, cell) in block.chunks_exact_mut(dh.max(1)).enumerate() {
                    let src = &grads[bi * heads + hi][part][i * dh..(i + 1) * dh];
                    cell.iter_mut().zip(src).for_each(|(c, &v)| {
                        c.write(v);
                    });
                }
            }
        }
    });
    // SAFETY: as in `attention_forward`: the chunks, rows, parts and cells
    // tile all `len` slots, and each cell was written from a run of dh
    // values (every head's gradients hold t * dh).
    unsafe { out.set_len(len) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// The fused attention and its gradient equal candle's composed form:
    /// heads split out, scaled scores, causal mask, softmax, weighted sum.
    #[test]
    fn fused_attention_matches_candles_ops() {
        let (b, t, h, dh) = (3, 7, 2, 4);
        let d = h * dh;
        let mut rng = crate::rng::Rng::from_seed(21);
        let dev = Device::Cpu;
        let data: Vec<f32> = (0..b * t * 3 * d).map(|_| rng.normal() as f32).collect();
        let qkv = Var::from_vec(data, (b, t, 3 * d), &dev).unwrap();
        let r: Vec<f32> = (0..b * t * d).map(|_| rng.normal() as f32).collect();
        let r = Tensor::from_vec(r, (b, t, d), &dev).unwrap();
        let x = qkv.as_tensor();
        let fused = x.apply_op1(CausalAttention::new(h)).unwrap();
        let split = |i: usize| x.narrow(2, i * d, d).unwrap().reshape((b, t, h, dh)).unwrap().transpose(1, 2).unwrap();
        let (q, k, v) =
            (split(0).contiguous().unwrap(), split(1).contiguous().unwrap(), split(2).contiguous().unwrap());
        let mask: Vec<f32> =
            (0..t).flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY })).collect();
        let mask = Tensor::from_vec(mask, (t, t), &dev).unwrap();
        let scores = (q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap() * (1.0 / (dh as f64).sqrt())).unwrap();
        let p = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        let plain = p.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b, t, d)).unwrap();
        let close = |a: &Tensor, c: &Tensor, what: &str| {
            let (a, c): (Vec<f32>, Vec<f32>) =
                (a.flatten_all().unwrap().to_vec1().unwrap(), c.flatten_all().unwrap().to_vec1().unwrap());
            assert_eq!(a.len(), c.len());
            for (x, y) in a.iter().zip(&c) {
                assert!((x - y).abs() < 1e-5 * y.abs().max(1.0), "{what}: {x} vs {y}");
            }
        };
        close(&fused, &plain, "attention");
        let ga = (&fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&plain * &r).unwrap().sum_all().unwrap().backward().unwrap();
        close(ga.get(x).unwrap(), gb.get(x).unwrap(), "attention gradient");
    }
}
