//! AdamW as `torch.optim.AdamW` (decoupled weight decay, betas 0.9/0.999,
//! eps 1e-8), with the gradients clipped to a global norm first (as
//! `torch.nn.utils.clip_grad_norm_`) and the step size set by the caller's
//! schedule. One pass over host memory per tensor, summed in a fixed order.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

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
                sq += g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
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
            for i in 0..theta.len() {
                let gi = g[i] * scale;
                theta[i] *= decay;
                s.m[i] += (gi - s.m[i]) * (1.0 - b1);
                s.v[i] = s.v[i] * b2 + (1.0 - b2) * gi * gi;
                theta[i] -= step_size * s.m[i] / (s.v[i].sqrt() / c2_sqrt + eps);
            }
            s.var.set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(norm)
    }
}
