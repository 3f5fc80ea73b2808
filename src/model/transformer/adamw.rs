//! AdamW as `torch.optim.AdamW` (decoupled weight decay, betas 0.9/0.999,
//! eps 1e-8), with the gradients clipped to a global norm first (as
//! `torch.nn.utils.clip_grad_norm_`) and the step size set by the caller's
//! schedule. One pass over host memory per tensor, in fixed chunks in
//! parallel (each element's update is independent; the norm's partial sums
//! are added in chunk order), so the thread count cannot change a bit.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

struct Slot {
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct AdamW {
    weight_decay: f32,
    clip: f64,
    step: i32,
    slots: Vec<Slot>,
}

impl AdamW {
    pub fn new(vars: &[Var], weight_decay: f64, clip: f64) -> Self {
        let slots = vars
            .iter()
            .map(|v| {
                let n = v.as_tensor().elem_count();
                Slot { var: v.clone(), m: vec![0.0; n], v: vec![0.0; n] }
            })
            .collect();
        AdamW { weight_decay: weight_decay as f32, clip, step: 0, slots }
    }

    /// One update at learning rate `lr`; returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut host: Vec<Option<Vec<f32>>> = Vec::with_capacity(self.slots.len());
        let mut sq = 0.0f64;
        for s in &self.slots {
            let g = match grads.get(s.var.as_tensor()) {
                Some(g) => Some(g.flatten_all()?.to_vec1::<f32>()?),
                None => None,
            };
            if let Some(g) = &g {
                let parts: Vec<f64> =
                    g.par_chunks(CHUNK).map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()).collect();
                sq += parts.iter().sum::<f64>();
            }
            host.push(g);
        }
        let norm = sq.sqrt();
        let scale = if self.clip > 0.0 && norm > self.clip { (self.clip / (norm + 1e-6)) as f32 } else { 1.0 };
        self.step += 1;
        let c1 = 1.0 - f64::from(b1).powi(self.step);
        let c2 = 1.0 - f64::from(b2).powi(self.step);
        let step_size = (lr / c1) as f32;
        let c2_sqrt = c2.sqrt() as f32;
        let decay = 1.0 - (lr as f32) * self.weight_decay;
        for (s, g) in self.slots.iter_mut().zip(host) {
            let Some(g) = g else { continue };
            let t = s.var.as_tensor();
            let mut theta: Vec<f32> = t.flatten_all()?.to_vec1()?;
            theta
                .par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(s.m.par_chunks_mut(CHUNK).zip(s.v.par_chunks_mut(CHUNK)))
                .for_each(|((theta, g), (m, v))| {
                    for (((th, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                        let gi = g * scale;
                        *th *= decay;
                        *m += (gi - *m) * (1.0 - b1);
                        *v = *v * b2 + (1.0 - b2) * gi * gi;
                        *th -= step_size * *m / (v.sqrt() / c2_sqrt + eps);
                    }
                });
            s.var.set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(norm)
    }
}
