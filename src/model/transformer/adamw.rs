//! AdamW as `torch.optim.AdamW` (decoupled weight decay, betas 0.9/0.999,
//! eps 1e-8), with the gradients clipped to a global norm first (as
//! `torch.nn.utils.clip_grad_norm_`) and the step size set by the caller's
//! schedule. One pass over host memory per tensor, in fixed chunks in
//! parallel (each element's update is independent; the norm's partial sums
//! are added in chunk order), so the thread count cannot change a bit.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

use crate::model::kernels::wide;

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
        let mut host: Vec<Option<Vec<f32>>> = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            host.push(match grads.get(s.var.as_tensor()) {
                Some(g) => Some(g.flatten_all()?.to_vec1::<f32>()?),
                None => None,
            });
        }
        let k = self.next(host.iter().flatten().map(|g| g.as_slice()), lr);
        for (s, g) in self.slots.iter_mut().zip(host) {
            let Some(g) = g else { continue };
            let t = s.var.as_tensor();
            let mut theta: Vec<f32> = t.flatten_all()?.to_vec1()?;
            k.apply(&mut theta, &g, &mut s.m, &mut s.v);
            s.var.set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(k.norm)
    }

    /// The same update over parameters and gradients on the host, in the
    /// order of the variables AdamW was made with (`transformer::host`).
    pub fn step_host(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>], lr: f64) -> Result<f64> {
        let fits = params.len() == self.slots.len()
            && grads.len() == self.slots.len()
            && (0..grads.len()).all(|i| grads[i].len() == params[i].len() && params[i].len() == self.slots[i].m.len());
        if !fits {
            return Err(candle_core::Error::Msg("adamw: parameters and gradients do not match the slots".into()));
        }
        let k = self.next(grads.iter().map(|g| g.as_slice()), lr);
        for ((s, theta), g) in self.slots.iter_mut().zip(params).zip(grads) {
            k.apply(theta, g, &mut s.m, &mut s.v);
        }
        Ok(k.norm)
    }

    /// The next step's constants, from the gradients' global norm (each
    /// tensor's squares summed in fixed chunks, in order).
    fn next<'a>(&mut self, grads: impl Iterator<Item = &'a [f32]>, lr: f64) -> Update {
        let mut sq = 0.0f64;
        for g in grads {
            let parts: Vec<f64> =
                g.par_chunks(CHUNK).map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()).collect();
            sq += parts.iter().sum::<f64>();
        }
        let norm = sq.sqrt();
        let scale = if self.clip > 0.0 && norm > self.clip { (self.clip / (norm + 1e-6)) as f32 } else { 1.0 };
        self.step += 1;
        let (b1, b2) = (0.9f32, 0.999f32);
        let c1 = 1.0 - f64::from(b1).powi(self.step);
        let c2 = 1.0 - f64::from(b2).powi(self.step);
        Update {
            norm,
            scale,
            step_size: (lr / c1) as f32,
            c2_sqrt: c2.sqrt() as f32,
            decay: 1.0 - (lr as f32) * self.weight_decay,
        }
    }
}

/// One step's constants.
#[derive(Clone, Copy)]
struct Update {
    norm: f64,
    scale: f32,
    step_size: f32,
    c2_sqrt: f32,
    decay: f32,
}

impl Update {
    fn apply(self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        theta
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((theta, g), (m, v))| update_chunk(self, theta, g, m, v));
    }
}

wide! {
    fn update_chunk / update_chunk_body(k: Update, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        for (((th, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = g * k.scale;
            *th *= k.decay;
            *m += (gi - *m) * (1.0 - b1);
            *v = *v * b2 + (1.0 - b2) * gi * gi;
            *th -= k.step_size * *m / (v.sqrt() / k.c2_sqrt + eps);
        }
    }
}
