//! Adam as PyTorch's `torch.optim.Adam` does it: weight decay is an L2
//! term added to the gradient (the paper's setting), not AdamW's
//! decoupled decay.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

pub struct Adam {
    lr: f64,
    weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i32,
    state: Vec<(Var, Tensor, Tensor)>,
}

impl Adam {
    pub fn new(vars: &[Var], lr: f64, weight_decay: f64) -> Result<Self> {
        let state =
            vars.iter().map(|v| Ok((v.clone(), v.zeros_like()?, v.zeros_like()?))).collect::<Result<Vec<_>>>()?;
        Ok(Adam { lr, weight_decay, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0, state })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step);
        let c2 = 1.0 - self.beta2.powi(self.step);
        for (var, m, v) in self.state.iter_mut() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let theta = var.as_tensor().detach();
            let g = if self.weight_decay != 0.0 { (g + theta.affine(self.weight_decay, 0.0)?)? } else { g.clone() };
            *m = (m.affine(self.beta1, 0.0)? + g.affine(1.0 - self.beta1, 0.0)?)?;
            *v = (v.affine(self.beta2, 0.0)? + g.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
            let denom = v.affine(1.0 / c2, 0.0)?.sqrt()?.affine(1.0, self.eps)?;
            let update = (m.affine(self.lr / c1, 0.0)? / denom)?;
            var.set(&(theta - update)?)?;
        }
        Ok(())
    }
}
