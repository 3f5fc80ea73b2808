//! The VAE's training step on the CPU without candle's autograd: the
//! forward pass keeps each layer's output, the backward pass calls each
//! fused layer's own gradient function in reverse order, and the
//! gradients land in one buffer per parameter, in the order Adam keeps.
//!
//! The network is fixed, so its graph needs no recording. Through candle
//! the same step also zeroes a tensor for every gradient and adds each
//! contribution into it, and copies every weight and gradient between
//! tensors and host memory around the optimiser: a fifth of an epoch
//! (`perf`). The candle path stays for other devices, and it is the
//! reference the tests hold this one to.

use rayon::prelude::*;

use super::fused::{down_backward, down_forward, up_backward, up_forward, Dims};
use super::Arch;
use crate::model::dense::{dense_backward, dense_forward};
use crate::model::kernels::{error, exp_fast, ln_1p_unit, wide, Grads};

type Result<T> = candle_core::Result<T>;

/// The shape of a network: what its parameters (in `VarList` order) mean.
#[derive(Clone, Copy)]
pub struct Shape {
    pub arch: Arch,
    pub height: usize,
    pub width: usize,
}

/// One step's outcome: the batch's summed loss (BCE + beta KL) and the
/// gradient of each parameter, in `VarList` order.
pub struct Step {
    pub loss: f64,
    pub grads: Vec<Vec<f32>>,
}

/// Loss and gradients of one batch: `x` (rows, pixels) in [0, 1], `eps`
/// (rows, latent) the reparameterisation noise.
pub fn step(shape: Shape, params: &[Vec<f32>], x: &[f32], eps: &[f32], beta: f64) -> Result<Step> {
    match shape.arch {
        Arch::Conv => conv_step(shape, params, x, eps, beta),
        Arch::Mlp => mlp_step(params, x, eps, beta),
    }
}

fn conv_step(s: Shape, p: &[Vec<f32>], x: &[f32], eps: &[f32], beta: f64) -> Result<Step> {
    let [w1, b1, w2, b2, wmu, bmu, wlv, blv, wfc, bfc, wu1, bu1, wu2, bu2] = p else {
        return Err(error("vae step", format!("the conv net has 14 parameters, got {}", p.len())));
    };
    let n = x.len() / (s.height * s.width).max(1);
    let (h2, w2d, h4, w4) = (s.height / 2, s.width / 2, s.height / 4, s.width / 4);
    let img: Dims = (n, s.height, s.width, 1);
    let mid: Dims = (n, h2, w2d, b1.len());
    let low: Dims = (n, h4, w4, b2.len());
    let a1 = down_forward(x, img, w1, b1, true)?;
    let a2 = down_forward(&a1, mid, w2, b2, true)?;
    let head = Head::new(wmu, bmu, wlv, blv);
    let (enc, z) = head.forward(&a2, eps)?;
    let d = dense_forward(&z, wfc, bfc, true)?;
    let a3 = up_forward(&d, low, wu1, bu1, true)?;
    let logits = up_forward(&a3, mid, wu2, bu2, false)?;

    let (bce, gl) = bce_sum(&logits, x);
    let g6 = up_backward(&a3, mid, wu2, &logits, &gl, false, true)?;
    let g5 = up_backward(&d, low, wu1, &a3, need(&g6.x)?, true, true)?;
    let g4 = dense_backward(&z, wfc, bfc.len(), &d, need(&g5.x)?, true, true)?;
    let (kl, gh) = head.backward(&a2, &enc, eps, need(&g4.x)?, beta)?;
    let g2 = down_backward(&a1, mid, w2, &a2, need(&gh.x)?, true, true)?;
    let g1 = down_backward(x, img, w1, &a1, need(&g2.x)?, true, false)?;

    let [gmu, glv] = head.split(gh);
    let grads = [g1, g2, gmu, glv, g4, g5, g6].into_iter().flat_map(|g| [g.w, g.b]).collect();
    Ok(Step { loss: bce + beta * kl, grads })
}

fn mlp_step(p: &[Vec<f32>], x: &[f32], eps: &[f32], beta: f64) -> Result<Step> {
    let [w1, b1, wmu, bmu, wlv, blv, w3, b3, w4, b4] = p else {
        return Err(error("vae step", format!("the MLP has 10 parameters, got {}", p.len())));
    };
    let h = dense_forward(x, w1, b1, true)?;
    let head = Head::new(wmu, bmu, wlv, blv);
    let (enc, z) = head.forward(&h, eps)?;
    let h3 = dense_forward(&z, w3, b3, true)?;
    let logits = dense_forward(&h3, w4, b4, false)?;

    let (bce, gl) = bce_sum(&logits, x);
    let g4 = dense_backward(&h3, w4, b4.len(), &logits, &gl, false, true)?;
    let g3 = dense_backward(&z, w3, b3.len(), &h3, need(&g4.x)?, true, true)?;
    let (kl, gh) = head.backward(&h, &enc, eps, need(&g3.x)?, beta)?;
    let g1 = dense_backward(x, w1, b1.len(), &h, need(&gh.x)?, true, false)?;

    let [gmu, glv] = head.split(gh);
    let grads = [g1, gmu, glv, g3, g4].into_iter().flat_map(|g| [g.w, g.b]).collect();
    Ok(Step { loss: bce + beta * kl, grads })
}

fn need(g: &Option<Vec<f32>>) -> Result<&[f32]> {
    g.as_deref().ok_or_else(|| error("vae step", "a hidden layer's input gradient is missing"))
}

/// The encoder's two heads, mu and logvar, as one dense layer of 2 latent
/// outputs (one pass over the features each way instead of two), and the
/// reparameterisation z = mu + eps e^(logvar / 2).
struct Head {
    w: Vec<f32>,
    b: Vec<f32>,
    latent: usize,
}

impl Head {
    fn new(wmu: &[f32], bmu: &[f32], wlv: &[f32], blv: &[f32]) -> Self {
        Head { w: [wmu, wlv].concat(), b: [bmu, blv].concat(), latent: bmu.len() }
    }

    /// The heads' outputs, rows of (mu, logvar), and z.
    fn forward(&self, h: &[f32], eps: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let enc = dense_forward(h, &self.w, &self.b, false)?;
        let l = self.latent;
        let z = enc
            .chunks_exact(2 * l)
            .zip(eps.chunks_exact(l))
            .flat_map(|(row, e)| (0..l).map(move |j| row[j] + e[j] * (0.5 * row[l + j]).exp()))
            .collect();
        Ok((enc, z))
    }

    /// beta KL(N(mu, e^logvar) || N(0, I)) summed over the batch, and the
    /// heads' gradients given z's gradient `gz`: d/dmu = gz + beta mu,
    /// d/dlogvar = gz eps e^(logvar/2) / 2 + beta (e^logvar - 1) / 2.
    fn backward(&self, h: &[f32], enc: &[f32], eps: &[f32], gz: &[f32], beta: f64) -> Result<(f64, Grads)> {
        let l = self.latent;
        let b = beta as f32;
        let mut kl = 0.0f64;
        let mut g = vec![0.0f32; enc.len()];
        for ((row, gr), (e, gzr)) in
            enc.chunks_exact(2 * l).zip(g.chunks_exact_mut(2 * l)).zip(eps.chunks_exact(l).zip(gz.chunks_exact(l)))
        {
            for j in 0..l {
                let (mu, lv) = (row[j], row[l + j]);
                let var = lv.exp();
                kl += f64::from(-0.5 * (1.0 + lv - mu * mu - var));
                gr[j] = gzr[j] + b * mu;
                gr[l + j] = gzr[j] * e[j] * 0.5 * (0.5 * lv).exp() + b * 0.5 * (var - 1.0);
            }
        }
        Ok((kl, dense_backward(h, &self.w, 2 * l, enc, &g, false, true)?))
    }

    /// The heads' weight and bias gradients apart again (the features'
    /// gradient is taken out before).
    fn split(&self, g: Grads) -> [Grads; 2] {
        let cut = self.w.len() / 2;
        let (wmu, wlv) = g.w.split_at(cut);
        let (bmu, blv) = g.b.split_at(self.latent);
        [Grads { x: None, w: wmu.to_vec(), b: bmu.to_vec() }, Grads { x: None, w: wlv.to_vec(), b: blv.to_vec() }]
    }
}

const BCE_CHUNK: usize = 1 << 13;

/// BCE-with-logits summed over every pixel, and its gradient sigmoid(l) -
/// x, from one exp per pixel. Fixed chunks in parallel, each summed in
/// f64 in order, the chunks added in order: the same whatever the thread
/// count.
fn bce_sum(logits: &[f32], x: &[f32]) -> (f64, Vec<f32>) {
    let mut grad = vec![0.0f32; logits.len()];
    let parts: Vec<f64> = grad
        .par_chunks_mut(BCE_CHUNK)
        .zip(logits.par_chunks(BCE_CHUNK).zip(x.par_chunks(BCE_CHUNK)))
        .map(|(g, (l, x))| {
            let mut terms = vec![0.0f32; g.len()];
            bce_terms(g, &mut terms, l, x);
            terms.iter().map(|&t| f64::from(t)).sum::<f64>()
        })
        .collect();
    (parts.iter().sum(), grad)
}

wide! {
    /// Each pixel's BCE term max(l, 0) - l x + ln(1 + e^-|l|) into `terms`
    /// and its gradient into `g`, in a loop of its own so it vectorises
    /// (libm's log1pf and expf were a quarter of the MLP's epoch).
    fn bce_terms / bce_terms_body(g: &mut [f32], terms: &mut [f32], l: &[f32], x: &[f32]) {
        for (((g, t), &l), &x) in g.iter_mut().zip(terms.iter_mut()).zip(l).zip(x) {
            let e = exp_fast(-l.abs());
            *t = l.max(0.0) - l * x + ln_1p_unit(e);
            let sigmoid = if l >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            *g = sigmoid - x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::host_values;
    use crate::model::vae::layers::VarList;
    use crate::model::vae::net::{loss, Net};
    use crate::rng::Rng;
    use candle_core::{Device, Tensor};

    /// The BCE loop's AVX-512 build gives the plain build's bits (see
    /// transformer::fused's `wide_loops_give_the_plain_builds_bits`).
    #[test]
    fn wide_bce_gives_the_plain_builds_bits() {
        let mut rng = Rng::from_seed(9);
        let l: Vec<f32> = (0..1000).map(|_| 6.0 * rng.normal() as f32).collect();
        let x: Vec<f32> = (0..1000).map(|_| rng.uniform() as f32).collect();
        let (mut ga, mut ta, mut gb, mut tb) =
            (vec![0.0f32; 1000], vec![0.0f32; 1000], vec![0.0f32; 1000], vec![0.0f32; 1000]);
        bce_terms(&mut ga, &mut ta, &l, &x);
        bce_terms_body(&mut gb, &mut tb, &l, &x);
        assert_eq!((ga, ta), (gb, tb));
    }

    /// One host step gives the loss and every gradient that candle's
    /// autograd gives through the fused ops, for both architectures. The
    /// two differ only in summation order (the heads' input gradient is
    /// one product here, two added there; the KL is summed in f64 here),
    /// so they agree to f32 rounding: 1e-4 relative.
    #[test]
    fn host_step_matches_candles_autograd() {
        for (arch, h, w) in [(Arch::Conv, 8, 12), (Arch::Mlp, 6, 5)] {
            let mut rng = Rng::from_seed(11);
            let mut params = VarList::default();
            let latent = 3;
            let net = Net::new(arch, h, w, 7, latent, &mut params, &mut rng).unwrap();
            let n = 37;
            let x: Vec<f32> = (0..n * h * w).map(|_| rng.uniform() as f32).collect();
            let eps: Vec<f32> = (0..n * latent).map(|_| rng.normal() as f32).collect();
            let beta = 0.7;

            let shape = Shape { arch, height: h, width: w };
            let host = step(shape, &host_values(&params.vars).unwrap(), &x, &eps, beta).unwrap();

            let xt = Tensor::from_vec(x.clone(), (n, h * w), &Device::Cpu).unwrap();
            let et = Tensor::from_vec(eps.clone(), (n, latent), &Device::Cpu).unwrap();
            let (mu, logvar) = net.encode(&xt).unwrap();
            let z = (&mu + (et * logvar.affine(0.5, 0.0).unwrap().exp().unwrap()).unwrap()).unwrap();
            let l = loss(&net.decode(&z).unwrap(), &xt, &x, &mu, &logvar, beta).unwrap();
            let want = f64::from(l.to_scalar::<f32>().unwrap());
            assert!((host.loss - want).abs() < 1e-5 * want.abs(), "{arch:?}: loss {} vs {want}", host.loss);
            let grads = l.backward().unwrap();
            assert_eq!(host.grads.len(), params.vars.len());
            for ((name, var), got) in params.vars.iter().zip(&host.grads) {
                let want: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                assert_eq!(got.len(), want.len(), "{name}");
                let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4 * scale, "{arch:?} {name}: {a} vs {b}");
                }
            }
        }
    }
}
