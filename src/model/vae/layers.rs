//! Layers whose weights are drawn from the project's seeded RNG (candle's
//! CPU RNG cannot be seeded), with PyTorch's default initialisation:
//! weights and biases uniform in +-1/sqrt(fan_in). One `new` + `forward`
//! per layer, as in candle-nn.

use candle_core::{Result, Shape, Tensor};

use super::fused;
use crate::model::dense::Dense;
use crate::model::device;
pub use crate::model::vars::VarList;

use crate::rng::Rng;

/// What follows a layer's affine map.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Relu,
    Identity,
}

impl Act {
    fn relu(self) -> bool {
        self == Act::Relu
    }

    fn apply(self, y: Tensor) -> Result<Tensor> {
        if self.relu() {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

/// On the CPU each layer is one fused op (`fused.rs`); elsewhere, and as
/// the reference the fused ops are tested against, candle's own ops.
fn fused_here(x: &Tensor) -> bool {
    x.device().is_cpu()
}

#[derive(Clone)]
pub struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    pub fn new(p: &mut VarList, name: &str, inputs: usize, outputs: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / (inputs as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[outputs, inputs], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[outputs], bound, rng)?;
        Ok(Linear { w, b })
    }

    /// `x`: (rows, inputs), or any shape of rows * inputs values (a batch
    /// of feature maps, flattened); the output is (rows, outputs).
    pub fn forward(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        self.forward_as(x, act, None)
    }

    /// As `forward`, the output shaped as `shape`.
    pub fn forward_as(&self, x: &Tensor, act: Act, shape: Option<Shape>) -> Result<Tensor> {
        if fused_here(x) {
            return x.contiguous()?.apply_op3(&self.w, &self.b, Dense { relu: act.relu(), shape });
        }
        let y = self.composed(x, act)?;
        match shape {
            Some(s) => y.reshape(s),
            None => Ok(y),
        }
    }

    fn composed(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        let inputs = self.w.dim(1)?;
        let x = x.reshape((x.elem_count() / inputs.max(1), inputs))?;
        act.apply(x.matmul(&self.w.t()?)?.broadcast_add(&self.b)?)
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
    pub fn new(p: &mut VarList, name: &str, c_in: usize, c_out: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / ((c_in * 16) as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[c_out, c_in, 4, 4], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[c_out], bound, rng)?;
        Ok(Down { w, b })
    }

    pub fn forward(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        if fused_here(x) {
            return x.contiguous()?.apply_op3(&self.w, &self.b, fused::Down { relu: act.relu() });
        }
        self.composed(x, act)
    }

    fn composed(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let c_out = self.b.dim(0)?;
        // (ky, kx, c_in) x c_out, the order of a patch row.
        let wm = self.w.permute((2, 3, 1, 0))?.reshape((16 * c, c_out))?;
        let cols = x.reshape((n * h * w, c))?.index_select(&patch_tensor(n, h, w)?, 0)?;
        let y = cols.reshape((n * (h / 2) * (w / 2), 16 * c))?.matmul(&wm)?.broadcast_add(&self.b)?;
        act.apply(y.reshape((n, h / 2, w / 2, c_out))?)
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
    pub fn new(p: &mut VarList, name: &str, c_in: usize, c_out: usize, rng: &mut Rng) -> Result<Self> {
        let bound = 1.0 / ((c_out * 16) as f64).sqrt();
        let w = p.uniform(&format!("{name}.weight"), &[c_in, c_out, 4, 4], bound, rng)?;
        let b = p.uniform(&format!("{name}.bias"), &[c_out], bound, rng)?;
        Ok(Up { w, b })
    }

    pub fn forward(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        if fused_here(x) {
            return x.contiguous()?.apply_op3(&self.w, &self.b, fused::Up { relu: act.relu() });
        }
        self.composed(x, act)
    }

    fn composed(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let c_out = self.b.dim(0)?;
        let (oh, ow) = (2 * h, 2 * w);
        let wm = self.w.permute((0, 2, 3, 1))?.reshape((c, 16 * c_out))?;
        let cols = x.reshape((n * h * w, c))?.matmul(&wm)?.reshape((n * h * w * 16, c_out))?;
        let zero = Tensor::zeros((n * oh * ow, c_out), cols.dtype(), cols.device())?;
        let y = zero.index_add(&patch_tensor(n, oh, ow)?, &cols, 0)?.broadcast_add(&self.b)?;
        act.apply(y.reshape((n, oh, ow, c_out))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(a: &Tensor, b: &Tensor, what: &str) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4 * y.abs().max(1.0), "{what}: {x} vs {y}");
        }
    }

    fn normal(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    /// The gradients of every weight and of the input under
    /// sum(output * r), for a fixed random r.
    fn grads(p: &VarList, input: &candle_core::Var, out: &Tensor, r: &Tensor) -> Vec<Tensor> {
        let g = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
        p.vars
            .iter()
            .chain([&("input".to_string(), input.clone())])
            .map(|(_, v)| g.get(v.as_tensor()).unwrap().clone())
            .collect()
    }

    /// The fused convolutions (the CPU path), the composed ones (the GPU
    /// path) and candle's own conv2d and conv_transpose2d (NCHW) give the
    /// same outputs and the same gradients for every weight and the input,
    /// through a ReLU and without one. Batches of 2 and of 37 images: the
    /// fused ops work in groups of 16 images and blocks of 4, so 37 makes
    /// several groups, a short last group and a short last block.
    #[test]
    fn down_and_up_match_candles_convolutions() {
        for (n, h, w) in [(2, 8, 12), (37, 4, 8)] {
            convolutions_agree(n, h, w);
        }
    }

    fn convolutions_agree(n: usize, h: usize, w: usize) {
        let mut rng = Rng::from_seed(3);
        let mut p = VarList::default();
        let down = Down::new(&mut p, "d", 3, 5, &mut rng).unwrap();
        let up = Up::new(&mut p, "u", 5, 2, &mut rng).unwrap();
        let input = candle_core::Var::from_tensor(&normal(&mut rng, &[n, h, w, 3])).unwrap();
        let nhwc = input.as_tensor();
        let r = normal(&mut rng, &[n, h, w, 2]);
        let fused_mid = down.forward(nhwc, Act::Relu).unwrap();
        let fused_out = up.forward(&fused_mid, Act::Identity).unwrap();
        let composed_mid = down.composed(nhwc, Act::Relu).unwrap();
        let composed_out = up.composed(&composed_mid, Act::Identity).unwrap();
        let nchw = nhwc.permute((0, 3, 1, 2)).unwrap();
        let theirs_mid = nchw
            .conv2d(&down.w, 1, 2, 1, 1)
            .unwrap()
            .broadcast_add(&down.b.reshape((1, 5, 1, 1)).unwrap())
            .unwrap()
            .relu()
            .unwrap();
        let theirs_out = theirs_mid
            .conv_transpose2d(&up.w, 1, 0, 2, 1)
            .unwrap()
            .broadcast_add(&up.b.reshape((1, 2, 1, 1)).unwrap())
            .unwrap()
            .permute((0, 2, 3, 1))
            .unwrap();
        assert_eq!(fused_out.dims(), &[n, h, w, 2]);
        close(&fused_mid, &theirs_mid.permute((0, 2, 3, 1)).unwrap(), "down");
        close(&composed_mid, &fused_mid, "down, composed");
        close(&fused_out, &theirs_out, "up");
        close(&composed_out, &fused_out, "up, composed");
        let theirs_grads = grads(&p, &input, &theirs_out, &r);
        for (name, out) in [("fused", &fused_out), ("composed", &composed_out)] {
            for (i, g) in grads(&p, &input, out, &r).iter().enumerate() {
                close(g, &theirs_grads[i], &format!("{name} gradient {i}"));
            }
        }
        // And the ReLU on the second layer.
        let fused = up.forward(&fused_mid, Act::Relu).unwrap();
        let theirs = up.composed(&composed_mid, Act::Identity).unwrap().relu().unwrap();
        close(&fused, &theirs, "up with relu");
        let (a, b) = (grads(&p, &input, &fused, &r), grads(&p, &input, &theirs, &r));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            close(a, b, &format!("gradient {i} through relu"));
        }
        // An input that needs no gradient (the images): the weights' are unchanged.
        let plain = nhwc.detach();
        let fused = up.forward(&down.forward(&plain, Act::Relu).unwrap(), Act::Identity).unwrap();
        let g = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(&plain).is_none());
        for (i, (_, v)) in p.vars.iter().enumerate() {
            close(g.get(v.as_tensor()).unwrap(), &theirs_grads[i], &format!("gradient {i}, plain input"));
        }
    }

    /// The fused ops give the same bits, outputs and gradients, on 1, 2
    /// and 3 threads (37 images: several groups and blocks).
    #[test]
    fn fused_ops_give_the_same_bits_on_any_thread_count() {
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut rng = Rng::from_seed(9);
                let mut p = VarList::default();
                let down = Down::new(&mut p, "d", 3, 8, &mut rng).unwrap();
                let lin = Linear::new(&mut p, "l", 2 * 4 * 8, 2 * 4 * 8, &mut rng).unwrap();
                let up = Up::new(&mut p, "u", 8, 2, &mut rng).unwrap();
                let input = candle_core::Var::from_tensor(&normal(&mut rng, &[37, 4, 8, 3])).unwrap();
                let mid = down.forward(input.as_tensor(), Act::Relu).unwrap();
                let mid = lin.forward_as(&mid, Act::Relu, Some(Shape::from((37, 2, 4, 8)))).unwrap();
                let out = up.forward(&mid, Act::Identity).unwrap();
                let r = normal(&mut rng, &[37, 4, 8, 2]);
                let mut all = vec![out.flatten_all().unwrap().to_vec1().unwrap()];
                all.extend(grads(&p, &input, &out, &r).iter().map(|g| g.flatten_all().unwrap().to_vec1().unwrap()));
                all
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            let other = run(threads);
            for (i, (a, b)) in one.iter().zip(&other).enumerate() {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "tensor {i} differs on {threads} threads"
                );
            }
        }
    }

    /// The fused dense layer equals x W^T + b (and its ReLU) in candle's
    /// ops, outputs and gradients.
    #[test]
    fn dense_matches_candles_matmul() {
        let mut rng = Rng::from_seed(4);
        let mut p = VarList::default();
        let lin = Linear::new(&mut p, "l", 7, 5, &mut rng).unwrap();
        let input = candle_core::Var::from_tensor(&normal(&mut rng, &[6, 7])).unwrap();
        let r = normal(&mut rng, &[6, 5]);
        for act in [Act::Relu, Act::Identity] {
            let fused = lin.forward(input.as_tensor(), act).unwrap();
            let theirs = act
                .apply(input.as_tensor().matmul(&lin.w.t().unwrap()).unwrap().broadcast_add(&lin.b).unwrap())
                .unwrap();
            close(&fused, &theirs, "dense");
            let (a, b) = (grads(&p, &input, &fused, &r), grads(&p, &input, &theirs, &r));
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                close(a, b, &format!("dense gradient {i}"));
            }
            // Rows given as feature maps and the output shaped for the next
            // layer, on both paths: the same values and gradients.
            let maps = input.as_tensor().reshape((3, 2, 7)).unwrap();
            let shape = Some(Shape::from((3, 2, 5)));
            let fused = lin.forward_as(&maps, act, shape.clone()).unwrap();
            let composed = lin.composed(&maps, act).unwrap().reshape((3, 2, 5)).unwrap();
            assert_eq!(fused.dims(), &[3, 2, 5]);
            close(&fused, &theirs.reshape((3, 2, 5)).unwrap(), "dense from maps");
            let r = r.reshape((3, 2, 5)).unwrap();
            let (a, b) = (grads(&p, &input, &fused, &r), grads(&p, &input, &composed, &r));
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                close(a, b, &format!("dense gradient {i}, from maps"));
            }
        }
    }
}
