//! The training loss as one op: the output layer (tied to the token
//! embedding) and the mean cross-entropy of the next tokens, from the final
//! hidden states (n, d) and the embedding (vocab, d). Composed, the logits
//! (n, vocab: 64 MB for a batch of 32 windows of 128 over 4,096 tokens) are
//! a tensor in candle's graph, their gradient another, and candle adds that
//! gradient into a zeroed third; here the logits buffer is kept from the
//! forward pass and overwritten by its own gradient in the backward one.
//! Rows are independent; gemm sums in a fixed order; the loss adds the
//! rows' terms in order: the same bits on any thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::log_sum_exp;
use crate::model::kernels::{error, exp_fast, f32_slice, matmul, product, wide, with_host, Mat, Threads};

pub struct HeadCrossEntropy {
    targets: Vec<u32>,
    /// The forward pass's logits and each row's log-sum-exp.
    kept: Mutex<Option<Logits>>,
}

impl HeadCrossEntropy {
    pub fn new(targets: Vec<u32>) -> Self {
        HeadCrossEntropy { targets, kept: Mutex::new(None) }
    }
}

/// The output layer's logits x w^T (n, vocab) and each row's
/// log-sum-exp, for hidden states x (n, d) and the embedding w (vocab, d).
pub struct Logits {
    logits: Vec<f32>,
    lse: Vec<f32>,
}

impl Logits {
    pub fn new(x: &[f32], w: &[f32], d: usize, targets: &[u32]) -> Result<Self> {
        let (n, vocab) = (x.len() / d.max(1), w.len() / d.max(1));
        if targets.len() != n || targets.iter().any(|&t| t as usize >= vocab) {
            return Err(error("cross-entropy", format!("{} targets for {n} rows over {vocab} tokens", targets.len())));
        }
        let logits = product(Mat::new(x, n, d), Mat::new(w, vocab, d).t(), Threads::All)?;
        let lse = logits.par_chunks(vocab.max(1)).map(|row| log_sum_exp(row) as f32).collect();
        Ok(Logits { logits, lse })
    }

    /// The mean cross-entropy of `targets`, rows' terms added in order.
    pub fn mean_loss(&self, targets: &[u32]) -> f64 {
        let vocab = self.logits.len() / targets.len().max(1);
        let sum: f64 = self
            .logits
            .chunks(vocab.max(1))
            .zip(&self.lse)
            .zip(targets)
            .map(|((row, &l), &t)| f64::from(l) - f64::from(row[t as usize]))
            .sum();
        sum / targets.len().max(1) as f64
    }

    /// The gradients of `scale` times the summed cross-entropy for x and w;
    /// the logits buffer becomes their gradient in place.
    pub fn backward(self, x: &[f32], w: &[f32], d: usize, targets: &[u32], scale: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        let Logits { logits: mut dl, lse } = self;
        let (n, vocab) = (targets.len(), w.len() / d.max(1));
        // d loss / d logits = scale (softmax - one-hot), in place.
        dl.par_chunks_mut(vocab.max(1)).zip(lse.par_iter().zip(targets.par_iter())).for_each(|(row, (&l, &t))| {
            softmax_scaled(row, l, scale);
            row[t as usize] -= scale;
        });
        let dx = product(Mat::new(&dl, n, vocab), Mat::new(w, vocab, d), Threads::All)?;
        let mut dw = vec![0.0f32; vocab * d];
        matmul(&mut dw, Mat::new(&dl, n, vocab).t(), Mat::new(x, n, d), false, Threads::All)?;
        Ok((dx, dw))
    }
}

wide! {
    /// In place: `scale * e^(z - lse)`, the row's softmax times `scale`.
    fn softmax_scaled / softmax_scaled_body(row: &mut [f32], lse: f32, scale: f32) {
        row.iter_mut().for_each(|z| *z = scale * exp_fast(*z - lse));
    }
}

impl CustomOp2 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "output-layer-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        let d = l2.dims().last().copied().unwrap_or(0);
        let logits = Logits::new(x, w, d, &self.targets)?;
        let mean = logits.mean_loss(&self.targets);
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(logits);
        }
        Ok((CpuStorage::F32(vec![mean as f32]), Shape::from(())))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = w.dim(1)?;
        let scale = grad.to_scalar::<f32>()? / self.targets.len().max(1) as f32;
        let (dx, dw) = with_host(x, self.name(), |xv| {
            with_host(w, self.name(), |wv| {
                let logits = match self.kept.lock().ok().and_then(|mut k| k.take()) {
                    Some(kept) => kept,
                    None => Logits::new(xv, wv, d, &self.targets)?,
                };
                logits.backward(xv, wv, d, &self.targets, scale)
            })
        })?;
        Ok((Some(Tensor::from_vec(dx, x.shape(), x.device())?), Some(Tensor::from_vec(dw, w.shape(), w.device())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Loss and gradients equal candle's matmul and cross-entropy.
    #[test]
    fn fused_head_matches_candles_ops() {
        let (n, d, vocab) = (9, 5, 13);
        let mut rng = crate::rng::Rng::from_seed(31);
        let dev = Device::Cpu;
        let x = Var::from_vec((0..n * d).map(|_| rng.normal() as f32).collect(), (n, d), &dev).unwrap();
        let w = Var::from_vec((0..vocab * d).map(|_| rng.normal() as f32).collect(), (vocab, d), &dev).unwrap();
        let targets: Vec<u32> = (0..n).map(|i| (i * 5 % vocab) as u32).collect();
        let fused = x.as_tensor().apply_op2(w.as_tensor(), HeadCrossEntropy::new(targets.clone())).unwrap();
        let logits = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
        let plain = candle_nn::loss::cross_entropy(&logits, &Tensor::new(targets.as_slice(), &dev).unwrap()).unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), plain.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        let ga = fused.affine(2.5, 0.0).unwrap().backward().unwrap();
        let gb = plain.affine(2.5, 0.0).unwrap().backward().unwrap();
        for v in [&x, &w] {
            let (p, q): (Vec<f32>, Vec<f32>) = (
                ga.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap(),
                gb.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap(),
            );
            for (p, q) in p.iter().zip(&q) {
                assert!((p - q).abs() < 1e-5 * q.abs().max(1.0), "{p} vs {q}");
            }
        }
        let bad = x.as_tensor().apply_op2(w.as_tensor(), HeadCrossEntropy::new(vec![0; n - 1]));
        assert!(bad.is_err(), "a target count that does not match the rows is refused");
    }
}
