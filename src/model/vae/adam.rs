//! Adam as PyTorch's `torch.optim.Adam` does it: weight decay is an L2
//! term added to the gradient (the paper's setting), not AdamW's
//! decoupled decay. The update runs as one pass over host memory per
//! tensor, in f32 like PyTorch's, rather than a dozen candle ops that each
//! allocate a tensor; large tensors in parallel chunks (each element's
//! update is independent, so the thread count cannot change a bit).

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

use crate::model::kernels::wide;

struct Slot {
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

const CHUNK: usize = 1 << 14;

pub struct Adam {
    lr: f64,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step: i32,
    slots: Vec<Slot>,
}

/// One step's constants.
#[derive(Clone, Copy)]
struct Step {
    b1: f32,
    b2: f32,
    wd: f32,
    eps: f32,
    step_size: f32,
    c2_sqrt: f32,
}

wide! {
    fn apply_chunk / apply_chunk_body(k: Step, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        k.apply(theta, g, m, v);
    }
}

impl Step {
    #[inline(always)]
    fn apply(self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((t, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = g + self.wd * *t;
            *m += (gi - *m) * (1.0 - self.b1);
            *v = *v * self.b2 + (1.0 - self.b2) * gi * gi;
            *t -= self.step_size * *m / (v.sqrt() / self.c2_sqrt + self.eps);
        }
    }

    /// `apply` over fixed chunks in parallel.
    fn apply_par(self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        theta
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((t, g), (m, v))| apply_chunk(self, t, g, m, v));
    }
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

    /// The constants of the next step.
    fn next(&mut self) -> Step {
        self.step += 1;
        let c1 = 1.0 - f64::from(self.beta1).powi(self.step);
        let c2 = 1.0 - f64::from(self.beta2).powi(self.step);
        Step {
            b1: self.beta1,
            b2: self.beta2,
            wd: self.weight_decay,
            eps: self.eps,
            step_size: (self.lr / c1) as f32,
            c2_sqrt: c2.sqrt() as f32,
        }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let k = self.next();
        for s in self.slots.iter_mut() {
            let t = s.var.as_tensor();
            let Some(g) = grads.get(t) else { continue };
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            let mut theta: Vec<f32> = t.flatten_all()?.to_vec1()?;
            k.apply_par(&mut theta, &g, &mut s.m, &mut s.v);
            s.var.set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(())
    }

    /// The same step over parameters and gradients held on the host, in
    /// the order of the variables Adam was made with (`vae::host`).
    pub fn step_host(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) -> Result<()> {
        if params.len() != self.slots.len() || grads.len() != self.slots.len() {
            return Err(candle_core::Error::Msg(format!(
                "adam: {} parameters and {} gradients for {} slots",
                params.len(),
                grads.len(),
                self.slots.len()
            )));
        }
        if let Some(i) =
            (0..grads.len()).find(|&i| grads[i].len() != params[i].len() || params[i].len() != self.slots[i].m.len())
        {
            return Err(candle_core::Error::Msg(format!("adam: parameter {i} and its gradient differ in size")));
        }
        let k = self.next();
        for ((s, theta), g) in self.slots.iter_mut().zip(params).zip(grads) {
            k.apply_par(theta, g, &mut s.m, &mut s.v);
        }
        Ok(())
    }
}
