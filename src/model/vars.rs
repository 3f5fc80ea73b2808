//! A network's trainable tensors in creation order: the order of the
//! optimiser's state, of the host training steps' parameter slices and of
//! the safetensors file's names. Shared by the VAE and the transformer.

use candle_core::{Result, Tensor, Var};

use crate::model::device;
use crate::rng::Rng;

/// Every trainable tensor of a network, in creation order.
#[derive(Clone, Default)]
pub struct VarList {
    pub vars: Vec<(String, Var)>,
}

impl VarList {
    pub fn add(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, device::device())?)?;
        let t = var.as_tensor().clone();
        self.vars.push((name.to_string(), var));
        Ok(t)
    }

    /// Uniform in [-bound, bound] (PyTorch's default init of a layer).
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64, rng: &mut Rng) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32).collect();
        self.add(name, shape, data)
    }

    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64, rng: &mut Rng) -> Result<Tensor> {
        let n = shape.iter().product();
        self.add(name, shape, (0..n).map(|_| (rng.normal() * std) as f32).collect())
    }

    pub fn constant(&mut self, name: &str, shape: &[usize], value: f32) -> Result<Tensor> {
        self.add(name, shape, vec![value; shape.iter().product()])
    }
}
