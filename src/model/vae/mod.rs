//! A variational autoencoder on u8 images, in candle on the CPU: the
//! paper's image experiment. Every random number (initial weights, batch
//! order, reparameterisation noise, prior draws) comes from the project's
//! seeded RNG; tensors are built from those numbers.

pub use crate::model::settings::{Arch, VaeSettings};

mod adam;
mod fused;
mod host;
mod layers;
mod net;
mod patches;

use candle_core::Tensor;

use super::device;
use super::kernels::{host_values, store_values};
use super::safetensors;

use crate::progress::{Trained, TrainingHook};
use crate::rng::Rng;
use adam::Adam;
use layers::VarList;
use net::Net;

/// A candle failure, which with shapes fixed by validation means a bug or
/// an allocation failure: reported, never a panic.
#[derive(Debug, thiserror::Error)]
#[error("candle")]
pub struct VaeError(#[from] candle_core::Error);

type Result<T> = std::result::Result<T, VaeError>;

/// Clones share the tensors (reference-counted, never changed after
/// training).
#[derive(Clone)]
pub struct Vae {
    pub settings: VaeSettings,
    pub height: usize,
    pub width: usize,
    net: Net,
    params: VarList,
    /// Mean training loss (negative ELBO per image) of each epoch.
    pub epoch_loss: Vec<f64>,
}

impl std::fmt::Debug for Vae {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vae").field("settings", &self.settings).field("height", &self.height).finish()
    }
}

/// `n` images of `pixels` u8 values as a (n, pixels) tensor in [0, 1].
/// Also returns the values on the host, which the fused loss reads.
fn to_tensor(images: &[u8], pixels: usize) -> candle_core::Result<(Tensor, Vec<f32>)> {
    let n = images.len() / pixels.max(1);
    let data: Vec<f32> = images.iter().map(|&p| f32::from(p) / 255.0).collect();
    Ok((Tensor::from_vec(data.clone(), (n, pixels), device::device())?, data))
}

fn normal(rng: &mut Rng, rows: usize, cols: usize) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(data, (rows, cols), device::device())
}

/// The training loop: each epoch a fresh batch order, each batch its
/// pixels in [0, 1] and its noise (rows x latent) from `rng`, in that
/// order, handed to `step`, which returns the batch's summed loss. Gives
/// each epoch's mean loss per image.
fn epochs(
    images: &[u8],
    pixels: usize,
    s: &VaeSettings,
    rng: &mut Rng,
    on_batch: TrainingHook,
    mut step: impl FnMut(&[f32], &[f32]) -> candle_core::Result<f64>,
) -> Result<Vec<f64>> {
    let n = images.len() / pixels.max(1);
    let mut epoch_loss = Vec::with_capacity(s.epochs);
    for epoch in 0..s.epochs {
        let order = rng.permutation(n);
        let mut total = 0.0;
        let batches = n.div_ceil(s.batch.max(1));
        for (i, batch) in order.chunks(s.batch.max(1)).enumerate() {
            let mut rows = Vec::with_capacity(batch.len() * pixels);
            for &i in batch {
                rows.extend(images[i * pixels..(i + 1) * pixels].iter().map(|&p| f32::from(p) / 255.0));
            }
            let eps: Vec<f32> = (0..batch.len() * s.latent).map(|_| rng.normal() as f32).collect();
            total += step(&rows, &eps)?;
            on_batch(Trained::after(epoch, s.epochs, i + 1, batches));
        }
        let mean = total / n.max(1) as f64;
        tracing::debug!(epoch, loss = mean, "vae epoch");
        epoch_loss.push(mean);
    }
    Ok(epoch_loss)
}

impl Vae {
    /// Trains a fresh network on `images` (row-major u8, `height x width`
    /// each). `rng` draws the weights, then each epoch's batch order and
    /// each batch's noise, in that order. `on_batch` hears of each batch.
    pub fn fit(
        images: &[u8],
        height: usize,
        width: usize,
        s: &VaeSettings,
        rng: &mut Rng,
        on_batch: TrainingHook,
    ) -> Result<Vae> {
        let pixels = height * width;
        let mut params = VarList::default();
        let net = Net::new(s.arch, height, width, s.hidden, s.latent, &mut params, rng)?;
        let vars: Vec<_> = params.vars.iter().map(|(_, v)| v.clone()).collect();
        let mut opt = Adam::new(&vars, s.lr, s.weight_decay)?;
        let epoch_loss = if device::device().is_cpu() {
            let shape = host::Shape { arch: s.arch, height, width };
            let mut values = host_values(&params.vars)?;
            let losses = epochs(images, pixels, s, rng, on_batch, |rows, eps| {
                let step = host::step(shape, &values, rows, eps, s.beta)?;
                opt.step_host(&mut values, &step.grads)?;
                Ok(step.loss)
            })?;
            store_values(&params.vars, &values)?;
            losses
        } else {
            epochs(images, pixels, s, rng, on_batch, |rows, eps| {
                let x = Tensor::from_vec(rows.to_vec(), (eps.len() / s.latent, pixels), device::device())?;
                let eps = Tensor::from_vec(eps.to_vec(), (eps.len() / s.latent, s.latent), device::device())?;
                let (mu, logvar) = net.encode(&x)?;
                let z = (&mu + (eps * logvar.affine(0.5, 0.0)?.exp()?)?)?;
                let logits = net.decode(&z)?;
                let loss = net::loss(&logits, &x, rows, &mu, &logvar, s.beta)?;
                opt.step(&loss.backward()?)?;
                Ok(f64::from(loss.to_scalar::<f32>()?))
            })?
        };
        Ok(Vae { settings: s.clone(), height, width, net, params, epoch_loss })
    }

    /// `n` images: decoder means of z ~ N(0, I), rounded to u8 (the
    /// paper's next-generation training images).
    pub fn sample(&self, rng: &mut Rng, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n * self.height * self.width);
        let mut left = n;
        while left > 0 {
            let b = left.min(256);
            let z = normal(rng, b, self.settings.latent)?;
            let p = candle_nn::ops::sigmoid(&self.net.decode(&z)?)?;
            let p: Vec<f32> = p.flatten_all()?.to_vec1()?;
            out.extend(p.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8));
            left -= b;
        }
        Ok(out)
    }

    /// Encoder means of `images`, row-major (n, latent).
    pub fn encode_means(&self, images: &[u8]) -> Result<Vec<f32>> {
        let pixels = self.height * self.width;
        let mut out = Vec::new();
        for chunk in images.chunks(256 * pixels) {
            let (mu, _) = self.net.encode(&to_tensor(chunk, pixels)?.0)?;
            out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Mean negative ELBO (nats per image) of `images`, one
    /// reparameterised draw each from a fixed stream, so every model is
    /// scored with the same noise.
    pub fn neg_elbo(&self, images: &[u8]) -> Result<f64> {
        let pixels = self.height * self.width;
        let n = images.len() / pixels;
        let mut rng = Rng::from_seed(0x0000_E1B0_E1B0);
        let mut total = 0.0;
        for chunk in images.chunks(256 * pixels) {
            let (x, host) = to_tensor(chunk, pixels)?;
            let (mu, logvar) = self.net.encode(&x)?;
            let eps = normal(&mut rng, x.dim(0)?, self.settings.latent)?;
            let z = (&mu + (eps * logvar.affine(0.5, 0.0)?.exp()?)?)?;
            let loss = net::loss(&self.net.decode(&z)?, &x, &host, &mu, &logvar, 1.0)?;
            total += f64::from(loss.to_scalar::<f32>()?);
        }
        Ok(total / n.max(1) as f64)
    }

    /// Each image's negative ELBO (nats; BCE + KL, one reparameterised
    /// draw from the same fixed noise stream as [`Self::neg_elbo`]).
    pub fn row_neg_elbo(&self, images: &[u8]) -> Result<Vec<f64>> {
        let pixels = self.height * self.width;
        let mut rng = Rng::from_seed(0x0000_E1B0_E1B0);
        let mut out = Vec::with_capacity(images.len() / pixels.max(1));
        for chunk in images.chunks(256 * pixels) {
            let (x, _) = to_tensor(chunk, pixels)?;
            let (mu, logvar) = self.net.encode(&x)?;
            let eps = normal(&mut rng, x.dim(0)?, self.settings.latent)?;
            let z = (&mu + (eps * logvar.affine(0.5, 0.0)?.exp()?)?)?;
            let logits = self.net.decode(&z)?;
            // BCE with logits, stable: relu(l) - l x + log(1 + exp(-|l|)).
            let soft = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
            let bce = ((logits.relu()? - (&logits * &x)?)? + soft)?.sum(1)?;
            let kl = (logvar.affine(1.0, 1.0)? - mu.sqr()? - logvar.exp()?)?.sum(1)?.affine(-0.5, 0.0)?;
            out.extend((bce + kl)?.to_vec1::<f32>()?.into_iter().map(f64::from));
        }
        Ok(out)
    }

    /// The weights as a safetensors file (names sorted).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        Ok(safetensors::from_vars(&self.params.vars)?)
    }

    pub fn parameter_count(&self) -> usize {
        safetensors::parameter_count(&self.params.vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8x8 images of two shapes (left or right half lit), with noise.
    fn shapes(n: usize, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 64);
        for i in 0..n {
            for _y in 0..8 {
                for x in 0..8 {
                    let lit = (x < 4) == (i % 2 == 0);
                    let noise = (rng.uniform() * 40.0) as u8;
                    out.push(if lit { 215 + noise } else { noise });
                }
            }
        }
        out
    }

    fn settings(arch: Arch) -> VaeSettings {
        VaeSettings { arch, latent: 2, hidden: 32, epochs: 40, batch: 16, lr: 1e-2, weight_decay: 1e-5, beta: 1.0 }
    }

    #[test]
    fn training_lowers_the_loss_and_a_seed_gives_the_same_weights() {
        for arch in [Arch::Mlp, Arch::Conv] {
            let data = shapes(64, &mut Rng::from_seed(1));
            let fit = |seed| {
                Vae::fit(&data, 8, 8, &settings(arch), &mut Rng::from_seed(seed), &crate::progress::unwatched).unwrap()
            };
            let a = fit(7);
            // An untrained net's BCE is about 64 ln 2 = 44 nats per image;
            // the two shapes are learnable to well under half of that.
            let (first, last) = (a.epoch_loss[0], *a.epoch_loss.last().unwrap());
            assert!(first > 30.0 && last < 0.6 * first, "{arch:?}: loss {first} -> {last}");
            let elbo = a.neg_elbo(&data).unwrap();
            assert!(elbo < 0.7 * first, "{arch:?}: held-in negative ELBO {elbo}");
            let b = fit(7);
            assert_eq!(a.to_safetensors().unwrap(), b.to_safetensors().unwrap(), "{arch:?}: same seed, same bytes");
            assert_ne!(a.to_safetensors().unwrap(), fit(8).to_safetensors().unwrap(), "{arch:?}: the seed matters");
            let s = a.sample(&mut Rng::from_seed(3), 10).unwrap();
            assert_eq!(s.len(), 640);
            assert_eq!(a.encode_means(&s).unwrap().len(), 20);
        }
    }
}
