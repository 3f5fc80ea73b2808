//! Adam as PyTorch's `torch.optim.Adam` does it: weight decay is an L2
//! term added to the gradient (the paper's setting), not AdamW's
//! decoupled decay. The update runs as one pass over host memory per
//! tensor, in f32 like PyTorch's, rather than a dozen candle ops that each
//! allocate a tensor.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

struct Slot {
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct Adam {
    lr: f64,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step: i32,
    slots: Vec<Slot>,
}

impl Adam {
    pub fn new(vars: &[Var], lr: f64, weight_decay: f64) -> Result<Self> {
        let slots = vars
            .iter()
            .map(|v| {
                let n = v.as_tensor().elem_count();
                Slot { var: v.clone(), m: vec![0.0; n], v: vec![0.0; n] }
            })
            .collect();
        Ok(Adam { lr, weight_decay: weight_decay as f32, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0, slots })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c1 = 1.0 - f64::from(self.beta1).powi(self.step);
        let c2 = 1.0 - f64::from(self.beta2).powi(self.step);
        let step_size = (self.lr / c1) as f32;
        let c2_sqrt = c2.sqrt() as f32;
        let (b1, b2, wd, eps) = (self.beta1, self.beta2, self.weight_decay, self.eps);
        for s in self.slots.iter_mut() {
            let t = s.var.as_tensor();
            let Some(g) = grads.get(t) else { continue };
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            let mut theta: Vec<f32> = t.flatten_all()?.to_vec1()?;
            for i in 0..theta.len() {
                let gi = g[i] + wd * theta[i];
                s.m[i] += (gi - s.m[i]) * (1.0 - b1);
                s.v[i] = s.v[i] * b2 + (1.0 - b2) * gi * gi;
                theta[i] -= step_size * s.m[i] / (s.v[i].sqrt() / c2_sqrt + eps);
            }
            s.var.set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(())
    }
}
