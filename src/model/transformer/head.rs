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

use super::fused::{exp_fast, log_sum_exp};
use crate::model::kernels::{error, f32_slice, matmul, product, with_host, Mat, Threads};

pub struct HeadCrossEntropy {
    targets: Vec<u32>,
    /// The forward pass's logits and each row's log-sum-exp.
    kept: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl HeadCrossEntropy {
    pub fn new(targets: Vec<u32>) -> Self {
        HeadCrossEntropy { targets, kept: Mutex::new(None) }
    }

    /// Logits x w^T (n, vocab) and each row's log-sum-exp.
    fn logits(&self, x: &[f32], w: &[f32], d: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let (n, vocab) = (x.len() / d.max(1), w.len() / d.max(1));
        if self.targets.len() != n || self.targets.iter().any(|&t| t as usize >= vocab) {
            return Err(error(
                "cross-entropy",
                format!("{} targets for {n} rows over {vocab} tokens", self.targets.len()),
            ));
        }
        let logits = product(Mat::new(x, n, d), Mat::new(w, vocab, d).t(), Threads::All)?;
        let lse = logits.par_chunks(vocab.max(1)).map(|row| log_sum_exp(row) as f32).collect();
        Ok((logits, lse))
    }
}

impl CustomOp2 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "output-layer-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        let d = l2.dims().last().copied().unwrap_or(0);
        let (logits, lse) = self.logits(x, w, d)?;
        let vocab = w.len() / d.max(1);
        let sum: f64 = logits
            .chunks(vocab.max(1))
            .zip(&lse)
            .zip(&self.targets)
            .map(|((row, &l), &t)| f64::from(l) - f64::from(row[t as usize]))
            .sum();
        let mean = sum / self.targets.len().max(1) as f64;
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((logits, lse));
        }
        Ok((CpuStorage::F32(vec![mean as f32]), Shape::from(())))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (vocab, d) = w.dims2()?;
        let n = self.targets.len();
        let scale = grad.to_scalar::<f32>()? / n.max(1) as f32;
        let (dx, dw) = with_host(x, self.name(), |xv| {
            with_host(w, self.name(), |wv| {
                let (mut dl, lse) = match self.kept.lock().ok().and_then(|mut k| k.take()) {
                    Some(kept) => kept,
                    None => self.logits(xv, wv, d)?,
                };
                // d loss / d logits = (softmax - one-hot) / n, in place.
                dl.par_chunks_mut(vocab.max(1)).zip(lse.par_iter().zip(self.targets.par_iter())).for_each(
                    |(row, (&l, &t))| {
                        row.iter_mut().for_each(|z| *z = scale * exp_fast(*z - l));
                        row[t as usize] -= scale;
                    },
                );
                let dx = product(Mat::new(&dl, n, vocab), Mat::new(wv, vocab, d), Threads::All)?;
                let mut dw = vec![0.0f32; vocab * d];
                matmul(&mut dw, Mat::new(&dl, n, vocab).t(), Mat::new(xv, n, d), false, Threads::All)?;
                Ok((dx, dw))
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
