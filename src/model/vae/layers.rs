//! Layers whose weights are drawn from the project's seeded RNG (candle's
//! CPU RNG cannot be seeded), with PyTorch's default initialisation:
//! weights and biases uniform in +-1/sqrt(fan_in). One `new` + `forward`
//! per layer, as in candle-nn.

use candle_core::{Result, Tensor, Var};

use crate::model::device;

use crate::rng::Rng;

/// Every trainable tensor of a network, in creation order (the order of
/// the optimiser state and of the safetensors file's names).
#[derive(Clone, Default)]
pub struct Params {
    pub vars: Vec<(String, Var)>,
}

impl Params {
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64, rng: &mut Rng) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32).collect();
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, device::device())?)?;
        let t = var.as_tensor().clone();
        self.vars.push((name.to_string(), var));
        Ok(t)
    }
}

#[derive(Clone)]
pub struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    pub fn new(p: &mut Params, name: &str, inputs: usize, outputs: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / (inputs as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[outputs, inputs], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[outputs], bound, rng)?;
        Ok(Linear { w, b })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.w.t()?)?.broadcast_add(&self.b)
    }
}

/// 4x4 convolution, stride 2, padding 1: halves height and width.
#[derive(Clone)]
pub struct Down {
    w: Tensor,
    b: Tensor,
}

impl Down {
    pub fn new(p: &mut Params, name: &str, c_in: usize, c_out: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / ((c_in * 16) as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[c_out, c_in, 4, 4], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[c_out], bound, rng)?;
        Ok(Down { w, b })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.b.dim(0)?;
        x.conv2d(&self.w, 1, 2, 1, 1)?.broadcast_add(&self.b.reshape((1, c, 1, 1))?)
    }
}

/// 4x4 transposed convolution, stride 2, padding 1: doubles height and
/// width. PyTorch takes fan_in from the weight's second axis (c_out).
#[derive(Clone)]
pub struct Up {
    w: Tensor,
    b: Tensor,
}

impl Up {
    pub fn new(p: &mut Params, name: &str, c_in: usize, c_out: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / ((c_out * 16) as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[c_in, c_out, 4, 4], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[c_out], bound, rng)?;
        Ok(Up { w, b })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.b.dim(0)?;
        x.conv_transpose2d(&self.w, 1, 0, 2, 1)?.broadcast_add(&self.b.reshape((1, c, 1, 1))?)
    }
}
