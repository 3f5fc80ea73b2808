//! The two VAE architectures: the paper's convolutional one (encoder conv
//! 1->64->128, 4x4 kernels, stride 2; decoder mirrors it) and a quick MLP
//! (pixels-400-latent). Both map images in [0, 1] to (mu, logvar) and
//! latents to pixel logits.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::model::kernels::f32_slice;

use super::layers::{Act, Down, Linear, Up, VarList};
use super::Arch;
use crate::rng::Rng;

#[derive(Clone)]
pub enum Net {
    Mlp { fc1: Linear, mu: Linear, logvar: Linear, fc3: Linear, fc4: Linear },
    Conv { c1: Down, c2: Down, mu: Linear, logvar: Linear, fc: Linear, u1: Up, u2: Up, h4: usize, w4: usize },
}

impl Net {
    /// Layers in a fixed order, so a seed gives the same weights.
    pub fn new(
        arch: Arch,
        h: usize,
        w: usize,
        hidden: usize,
        latent: usize,
        p: &mut VarList,
        rng: &mut Rng,
    ) -> Result<Net> {
        let pixels = h * w;
        Ok(match arch {
            Arch::Mlp => Net::Mlp {
                fc1: Linear::new(p, "enc.fc1", pixels, hidden, rng)?,
                mu: Linear::new(p, "enc.mu", hidden, latent, rng)?,
                logvar: Linear::new(p, "enc.logvar", hidden, latent, rng)?,
                fc3: Linear::new(p, "dec.fc1", latent, hidden, rng)?,
                fc4: Linear::new(p, "dec.fc2", hidden, pixels, rng)?,
            },
            Arch::Conv => {
                let (h4, w4) = (h / 4, w / 4);
                let flat = 128 * h4 * w4;
                Net::Conv {
                    c1: Down::new(p, "enc.conv1", 1, 64, rng)?,
                    c2: Down::new(p, "enc.conv2", 64, 128, rng)?,
                    mu: Linear::new(p, "enc.mu", flat, latent, rng)?,
                    logvar: Linear::new(p, "enc.logvar", flat, latent, rng)?,
                    fc: Linear::new(p, "dec.fc", latent, flat, rng)?,
                    u1: Up::new(p, "dec.deconv1", 128, 64, rng)?,
                    u2: Up::new(p, "dec.deconv2", 64, 1, rng)?,
                    h4,
                    w4,
                }
            }
        })
    }

    /// `x`: (batch, h*w) in [0, 1] -> (mu, logvar), each (batch, latent).
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        match self {
            Net::Mlp { fc1, mu, logvar, .. } => {
                let h = fc1.forward(x, Act::Relu)?;
                Ok((mu.forward(&h, Act::Identity)?, logvar.forward(&h, Act::Identity)?))
            }
            Net::Conv { c1, c2, mu, logvar, h4, w4, .. } => {
                let b = x.dim(0)?;
                // Channels last: see layers::Down.
                let img = x.reshape((b, h4 * 4, w4 * 4, 1))?;
                // mu and logvar read the (b, h/4, w/4, 128) maps as rows.
                let h = c2.forward(&c1.forward(&img, Act::Relu)?, Act::Relu)?;
                Ok((mu.forward(&h, Act::Identity)?, logvar.forward(&h, Act::Identity)?))
            }
        }
    }

    /// `z`: (batch, latent) -> pixel logits (batch, h*w).
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        match self {
            Net::Mlp { fc3, fc4, .. } => fc4.forward(&fc3.forward(z, Act::Relu)?, Act::Identity),
            Net::Conv { fc, u1, u2, h4, w4, .. } => {
                let b = z.dim(0)?;
                let h = fc.forward_as(z, Act::Relu, Some(Shape::from((b, *h4, *w4, 128))))?;
                u2.forward(&u1.forward(&h, Act::Relu)?, Act::Identity)?.flatten_from(1)
            }
        }
    }
}

/// Per-row negative ELBO terms, summed over the batch: BCE of the pixels
/// under the logits (sum over pixels, in the stable form
/// max(l, 0) - l x + log(1 + e^-|l|)) and beta times the KL divergence of
/// N(mu, e^logvar) from N(0, I). `target` is `x` on the host.
pub fn loss(logits: &Tensor, x: &Tensor, target: &[f32], mu: &Tensor, logvar: &Tensor, beta: f64) -> Result<Tensor> {
    let bce = if logits.device().is_cpu() {
        logits.apply_op1(BceSum { target: target.to_vec() })?
    } else {
        let soft = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        ((logits.relu()? - (logits * x)?)? + soft)?.sum_all()?
    };
    let kl = (logvar.affine(1.0, 1.0)? - mu.sqr()? - logvar.exp()?)?.sum_all()?.affine(-0.5, 0.0)?;
    bce + kl.affine(beta, 0.0)?
}

/// The BCE sum as one pass forward and one backward (its gradient is
/// sigmoid(l) - x), where candle's ops would make eight passes and as many
/// tensors each way. Fixed chunks in parallel, each summed in f64, the
/// chunks added in order: the same whatever the thread count.
struct BceSum {
    target: Vec<f32>,
}

const BCE_CHUNK: usize = 1 << 13;

impl CustomOp1 for BceSum {
    fn name(&self) -> &'static str {
        "bce-with-logits-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let logits = f32_slice(s, l, "bce")?;
        let parts: Vec<f64> = logits
            .par_chunks(BCE_CHUNK)
            .zip(self.target.par_chunks(BCE_CHUNK))
            .map(|(z, x)| {
                z.iter().zip(x).map(|(&z, &x)| f64::from(z.max(0.0) - z * x + (-z.abs()).exp().ln_1p())).sum()
            })
            .collect();
        let sum: f64 = parts.iter().sum();
        Ok((CpuStorage::F32(vec![sum as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let scale = grad_res.to_scalar::<f32>()?;
        let logits: Vec<f32> = arg.flatten_all()?.to_vec1()?;
        let g: Vec<f32> = logits
            .par_iter()
            .zip(self.target.par_iter())
            .map(|(&z, &x)| scale * (1.0 / (1.0 + (-z).exp()) - x))
            .collect();
        Ok(Some(Tensor::from_vec(g, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused BCE and its gradient equal candle's op-by-op form.
    #[test]
    fn fused_bce_matches_candles_ops() {
        let mut rng = crate::rng::Rng::from_seed(5);
        let dev = candle_core::Device::Cpu;
        let z: Vec<f32> = (0..60).map(|_| 4.0 * rng.normal() as f32).collect();
        let x: Vec<f32> = (0..60).map(|_| rng.uniform() as f32).collect();
        let zv = candle_core::Var::from_vec(z, (3, 20), &dev).unwrap();
        let xt = Tensor::from_vec(x.clone(), (3, 20), &dev).unwrap();
        let fused = zv.as_tensor().apply_op1(BceSum { target: x }).unwrap();
        let l = zv.as_tensor();
        let soft = l.abs().unwrap().neg().unwrap().exp().unwrap().affine(1.0, 1.0).unwrap().log().unwrap();
        let plain = ((l.relu().unwrap() - (l * &xt).unwrap()).unwrap() + soft).unwrap().sum_all().unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), plain.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-4 * b.abs(), "{a} vs {b}");
        let ga = fused.affine(3.0, 0.0).unwrap().backward().unwrap();
        let gb = plain.affine(3.0, 0.0).unwrap().backward().unwrap();
        let d = (ga.get(l).unwrap() - gb.get(l).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "{d}");
    }
}
