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

/// For a 4x4, stride-2, padding-1 convolution from an `h x w` image to its
/// `h/2 x w/2` grid, batch `b`, channels last: the image row (pixel) that
/// each (grid cell, ky, kx) reads, or u32::MAX where the patch hangs over
/// the edge (candle's index_select reads zero there and index_add skips it).
/// Convolutions become one gather plus one matmul, both ways, which is
/// what makes them fast on the CPU (candle's own conv backward is a naive
/// loop), and every op has a device-agnostic gradient.
fn patch_rows(b: usize, h: usize, w: usize) -> Vec<u32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut idx = Vec::with_capacity(b * oh * ow * 16);
    for n in 0..b {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..4 {
                    for kx in 0..4 {
                        let (iy, ix) = ((2 * oy + ky) as isize - 1, (2 * ox + kx) as isize - 1);
                        idx.push(if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            u32::MAX
                        } else {
                            // Fits: validation caps a batch's pixels far below 2^32.
                            ((n * h + iy as usize) * w + ix as usize) as u32
                        });
                    }
                }
            }
        }
    }
    idx
}

fn patch_tensor(b: usize, h: usize, w: usize) -> Result<Tensor> {
    let idx = patch_rows(b, h, w);
    let n = idx.len();
    Tensor::from_vec(idx, n, device::device())
}

/// 4x4 convolution, stride 2, padding 1: halves height and width. Images
/// are (batch, height, width, channels); the weight keeps PyTorch's
/// (c_out, c_in, 4, 4) layout and initialisation.
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
        let (n, h, w, c) = x.dims4()?;
        let c_out = self.b.dim(0)?;
        // (ky, kx, c_in) x c_out, the order of a patch row.
        let wm = self.w.permute((2, 3, 1, 0))?.reshape((16 * c, c_out))?;
        let cols = x.reshape((n * h * w, c))?.index_select(&patch_tensor(n, h, w)?, 0)?;
        let y = cols.reshape((n * (h / 2) * (w / 2), 16 * c))?.matmul(&wm)?.broadcast_add(&self.b)?;
        y.reshape((n, h / 2, w / 2, c_out))
    }
}

/// 4x4 transposed convolution, stride 2, padding 1: doubles height and
/// width; the adjoint of `Down` (a matmul, then the patches scattered and
/// summed). PyTorch's weight layout (c_in, c_out, 4, 4), and its fan_in
/// from the second axis (c_out).
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
        let (n, h, w, c) = x.dims4()?;
        let c_out = self.b.dim(0)?;
        let (oh, ow) = (2 * h, 2 * w);
        let wm = self.w.permute((0, 2, 3, 1))?.reshape((c, 16 * c_out))?;
        let cols = x.reshape((n * h * w, c))?.matmul(&wm)?.reshape((n * h * w * 16, c_out))?;
        let zero = Tensor::zeros((n * oh * ow, c_out), cols.dtype(), cols.device())?;
        let y = zero.index_add(&patch_tensor(n, oh, ow)?, &cols, 0)?.broadcast_add(&self.b)?;
        y.reshape((n, oh, ow, c_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather-and-matmul convolutions equal candle's own conv2d and
    /// conv_transpose2d (NCHW) on the same weights, to float rounding.
    #[test]
    fn down_and_up_match_candles_convolutions() {
        let mut rng = Rng::from_seed(3);
        let mut p = Params::default();
        let down = Down::new(&mut p, "d", 3, 5, &mut rng).unwrap();
        let up = Up::new(&mut p, "u", 5, 2, &mut rng).unwrap();
        let (n, h, w) = (2, 8, 12);
        let data: Vec<f32> = (0..n * h * w * 3).map(|_| rng.normal() as f32).collect();
        let nhwc = Tensor::from_vec(data, (n, h, w, 3), &candle_core::Device::Cpu).unwrap();
        let nchw = nhwc.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
        };
        let ours = down.forward(&nhwc).unwrap();
        let theirs =
            nchw.conv2d(&down.w, 1, 2, 1, 1).unwrap().broadcast_add(&down.b.reshape((1, 5, 1, 1)).unwrap()).unwrap();
        close(&ours, &theirs.permute((0, 2, 3, 1)).unwrap());
        let ours_up = up.forward(&ours).unwrap();
        let theirs_up = theirs
            .conv_transpose2d(&up.w, 1, 0, 2, 1)
            .unwrap()
            .broadcast_add(&up.b.reshape((1, 2, 1, 1)).unwrap())
            .unwrap();
        assert_eq!(ours_up.dims(), &[n, h, w, 2]);
        close(&ours_up, &theirs_up.permute((0, 2, 3, 1)).unwrap());
        // And so do the gradients of every weight, through both layers.
        let r: Vec<f32> = (0..n * h * w * 2).map(|_| rng.normal() as f32).collect();
        let r = Tensor::from_vec(r, (n, h, w, 2), &candle_core::Device::Cpu).unwrap();
        let g_ours = (ours_up * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let r_nchw = r.permute((0, 3, 1, 2)).unwrap();
        let g_theirs = (theirs_up * r_nchw).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in &p.vars {
            let (a, b) = (g_ours.get(var.as_tensor()).unwrap(), g_theirs.get(var.as_tensor()).unwrap());
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4 * scale, "{name}: gradients differ by {diff}");
        }
    }
}
