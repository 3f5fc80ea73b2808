//! The VAE's convolutions on the CPU as one candle op each, forward and
//! backward: the 4x4 stride-2 convolution and its transpose, each with its
//! bias and an optional ReLU folded in (the dense layer is
//! `model::dense`). Composed from
//! candle's ops the same layers cost three to four times their matmuls: a
//! gather through an index tensor, a separate bias add and ReLU, every
//! gradient added into a zeroed tensor of its size.
//!
//! The convolutions work through the batch in fixed groups of images, in
//! parallel, and through each group in blocks of a few images: a block's
//! patch matrix (gathered, or made by a product and scattered) stays in
//! the core's cache between the two steps that touch it, where the whole
//! batch's (50 MB for the second layer) would go to memory and back, and
//! each gemm runs on one thread. Weight gradients sum per group in block
//! order, then over groups in order: the sizes are constants, so results
//! do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::patches::Grid;
use crate::model::kernels::{
    add_rows, error, f32_slices3, into_tensors, matmul, product, relu_serial, repeated, sum_in_order,
    through_relu_serial, wanted, with_host, Grads, Mat, Threads,
};

/// Images per parallel task, and per cache-sized block within it (the
/// second convolution's patch rows: 8 x 49 x 1024 floats, 1.6 MB, in a
/// 2 MB L2).
const GROUP: usize = 32;
const BLOCK: usize = 8;

fn dims4(l: &Layout, op: &str) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [n, h, w, c] => Ok((n, h, w, c)),
        ref d => Err(error(op, format!("expects (batch, height, width, channels), got {d:?}"))),
    }
}

/// Runs of `per` values of `v`, `count` at a time (the last run shorter).
fn runs(v: &[f32], per: usize, count: usize) -> std::slice::Chunks<'_, f32> {
    v.chunks((per * count).max(1))
}

fn runs_mut(v: &mut [f32], per: usize, count: usize) -> std::slice::ChunksMut<'_, f32> {
    v.chunks_mut((per * count).max(1))
}

/// The convolution's weight (c_out, c_in, 4, 4) as the (16 c_in, c_out)
/// matrix that multiplies patch rows, and back.
fn down_matrix(w: &[f32], c_in: usize, c_out: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; w.len()];
    for o in 0..c_out {
        for ci in 0..c_in {
            for tap in 0..16 {
                m[(tap * c_in + ci) * c_out + o] = w[(o * c_in + ci) * 16 + tap];
            }
        }
    }
    m
}

/// The weight from the transpose of its matrix, (c_out, 16 c_in).
fn from_down_matrix_t(mt: &[f32], c_in: usize, c_out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; mt.len()];
    for o in 0..c_out {
        for ci in 0..c_in {
            for tap in 0..16 {
                w[(o * c_in + ci) * 16 + tap] = mt[o * 16 * c_in + tap * c_in + ci];
            }
        }
    }
    w
}

/// The transposed convolution's weight (c_in, c_out, 4, 4) as the
/// (c_in, 16 c_out) matrix that makes patch rows, and back.
fn up_matrix(w: &[f32], c_in: usize, c_out: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; w.len()];
    for ci in 0..c_in {
        for o in 0..c_out {
            for tap in 0..16 {
                m[ci * 16 * c_out + tap * c_out + o] = w[(ci * c_out + o) * 16 + tap];
            }
        }
    }
    m
}

fn from_up_matrix(m: &[f32], c_in: usize, c_out: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; m.len()];
    for ci in 0..c_in {
        for o in 0..c_out {
            for tap in 0..16 {
                w[(ci * c_out + o) * 16 + tap] = m[ci * 16 * c_out + tap * c_out + o];
            }
        }
    }
    w
}

/// `relu?(conv(x) + b)`, the 4x4 stride-2 padding-1 convolution: x (n, h,
/// w, c_in) channels last, W (c_out, c_in, 4, 4) as PyTorch lays it out,
/// b (c_out); output (n, h/2, w/2, c_out).
pub fn down_forward(x: &[f32], (n, h, wd, c): Dims, w: &[f32], b: &[f32], relu: bool) -> Result<Vec<f32>> {
    let c_out = b.len();
    let image = Grid { n: 1, h, w: wd, c };
    let (cells, patch) = (image.cells(), image.patch());
    check(x, n * image.image(), w, c_out * patch, "vae-conv-down")?;
    let wm = down_matrix(w, c, c_out);
    let mut y = repeated(b, n * cells);
    y.par_chunks_mut((GROUP * cells * c_out).max(1)).zip(x.par_chunks((GROUP * image.image()).max(1))).try_for_each(
        |(yg, xg)| {
            for (yb, xb) in runs_mut(yg, cells * c_out, BLOCK).zip(runs(xg, image.image(), BLOCK)) {
                let block = Grid { n: xb.len() / image.image().max(1), ..image };
                let cols = block.gather(xb)?;
                let rows = block.n * cells;
                matmul(yb, Mat::new(&cols, rows, patch), Mat::new(&wm, patch, c_out), true, Threads::One)?;
                // While the block's output is still in cache.
                if relu {
                    relu_serial(yb);
                }
            }
            Ok::<_, candle_core::Error>(())
        },
    )?;
    Ok(y)
}

/// `down_forward`'s gradients, given its input `x`, weight `w`, output
/// `out` and the output's gradient `g`; `want_x`: whether the input's
/// gradient is needed (the first layer's input is the images).
pub fn down_backward(
    x: &[f32],
    (n, h, wd, c): Dims,
    w: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    want_x: bool,
) -> Result<Grads> {
    let image = Grid { n: 1, h, w: wd, c };
    let (cells, patch) = (image.cells(), image.patch());
    let c_out = out.len() / (n * cells).max(1);
    check(x, n * image.image(), w, c_out * patch, "vae-conv-down")?;
    let wm = down_matrix(w, c, c_out);
    let mut gx = vec![0.0f32; if want_x { n * image.image() } else { 0 }];
    // Per group, block by block while the block is in cache: the output
    // gradient through the ReLU, its column sums (the bias gradient's
    // share), g^T cols (the weight gradient's, as (c_out, 16 c_in), gemm's
    // faster orientation), and the input gradient, the patches of g W^T
    // scattered back.
    let group_len = (GROUP * image.image()).max(1);
    let out_len = (GROUP * cells * c_out).max(1);
    let mut gx_groups: Vec<&mut [f32]> = gx.chunks_mut(group_len).collect();
    gx_groups.resize_with(n.div_ceil(GROUP), Default::default);
    let parts = gx_groups
        .into_par_iter()
        .zip(x.par_chunks(group_len))
        .zip(g.par_chunks(out_len).zip(out.par_chunks(out_len)))
        .map(|((gxg, xg), (gg, og))| {
            let (mut gwt, mut gbias) = (vec![0.0f32; c_out * patch], vec![0.0f32; c_out]);
            let outs = runs(gg, cells * c_out, BLOCK).zip(runs(og, cells * c_out, BLOCK));
            for (i, (xb, (gb, ob))) in runs(xg, image.image(), BLOCK).zip(outs).enumerate() {
                let block = Grid { n: xb.len() / image.image().max(1), ..image };
                let rows = block.n * cells;
                let gb = through_relu_serial(gb, ob, relu);
                add_rows(&mut gbias, &gb);
                let cols = block.gather(xb)?;
                let gm = Mat::new(&gb, rows, c_out);
                matmul(&mut gwt, gm.t(), Mat::new(&cols, rows, patch), true, Threads::One)?;
                if want_x {
                    let gcols = product(gm, Mat::new(&wm, patch, c_out).t(), Threads::One)?;
                    let start = i * BLOCK * image.image();
                    block.scatter_add(&gcols, &mut gxg[start..start + xb.len()])?;
                }
            }
            Ok((gwt, gbias))
        })
        .collect::<Result<Vec<_>>>()?;
    let (gw_parts, gb_parts): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let gb = sum_in_order(gb_parts, c_out);
    let gw = from_down_matrix_t(&sum_in_order(gw_parts, c_out * patch), c, c_out);
    Ok(Grads { x: want_x.then_some(gx), w: gw, b: gb })
}

/// `relu?(conv_transpose(x) + b)`, the adjoint of `down_forward`'s
/// convolution: x (n, h, w, c_in), W (c_in, c_out, 4, 4) as PyTorch lays
/// it out, b (c_out); output (n, 2h, 2w, c_out).
pub fn up_forward(x: &[f32], (n, h, wd, c): Dims, w: &[f32], b: &[f32], relu: bool) -> Result<Vec<f32>> {
    let c_out = b.len();
    // The grid of the output, whose convolution's patches are x's cells.
    let image = Grid { n: 1, h: 2 * h, w: 2 * wd, c: c_out };
    let (cells, patch) = (h * wd, image.patch());
    check(x, n * cells * c, w, c * patch, "vae-conv-up")?;
    let wu = up_matrix(w, c, c_out);
    let mut y = repeated(b, n * 4 * h * wd);
    y.par_chunks_mut((GROUP * image.image()).max(1)).zip(x.par_chunks((GROUP * cells * c).max(1))).try_for_each(
        |(yg, xg)| {
            for (yb, xb) in runs_mut(yg, image.image(), BLOCK).zip(runs(xg, cells * c, BLOCK)) {
                let block = Grid { n: yb.len() / image.image().max(1), ..image };
                let cols = product(Mat::new(xb, block.n * cells, c), Mat::new(&wu, c, patch), Threads::One)?;
                block.scatter_add(&cols, yb)?;
                if relu {
                    relu_serial(yb);
                }
            }
            Ok::<_, candle_core::Error>(())
        },
    )?;
    Ok(y)
}

/// `up_forward`'s gradients, as `down_backward`'s.
pub fn up_backward(
    x: &[f32],
    (n, h, wd, c): Dims,
    w: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    want_x: bool,
) -> Result<Grads> {
    let c_out = out.len() / (n * 4 * h * wd).max(1);
    let image = Grid { n: 1, h: 2 * h, w: 2 * wd, c: c_out };
    let (cells, patch) = (h * wd, image.patch());
    check(x, n * cells * c, w, c * patch, "vae-conv-up")?;
    let wu = up_matrix(w, c, c_out);
    let mut gx = vec![0.0f32; n * cells * c];
    // Per group, block by block: the output gradient through the ReLU and
    // its column sums (the bias gradient's share), its patches, then from
    // them the input gradient (patches times W^T) and the weight
    // gradient's share (x^T patches).
    let out_len = (GROUP * image.image()).max(1);
    let parts = gx
        .par_chunks_mut((GROUP * cells * c).max(1))
        .zip(x.par_chunks((GROUP * cells * c).max(1)))
        .zip(g.par_chunks(out_len).zip(out.par_chunks(out_len)))
        .map(|((gxg, xg), (gg, og))| {
            let (mut gwu, mut gbias) = (vec![0.0f32; c * patch], vec![0.0f32; c_out]);
            let blocks = runs_mut(gxg, cells * c, BLOCK).zip(runs(xg, cells * c, BLOCK));
            let outs = runs(gg, image.image(), BLOCK).zip(runs(og, image.image(), BLOCK));
            for ((gxb, xb), (gb, ob)) in blocks.zip(outs) {
                let block = Grid { n: gb.len() / image.image().max(1), ..image };
                let rows = block.n * cells;
                let gb = through_relu_serial(gb, ob, relu);
                add_rows(&mut gbias, &gb);
                let gcols = block.gather(&gb)?;
                let gc = Mat::new(&gcols, rows, patch);
                if want_x {
                    matmul(gxb, gc, Mat::new(&wu, c, patch).t(), false, Threads::One)?;
                }
                matmul(&mut gwu, Mat::new(xb, rows, c).t(), gc, true, Threads::One)?;
            }
            Ok((gwu, gbias))
        })
        .collect::<Result<Vec<_>>>()?;
    let (gw_parts, gb_parts): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let gb = sum_in_order(gb_parts, c_out);
    let gw = from_up_matrix(&sum_in_order(gw_parts, c * patch), c, c_out);
    Ok(Grads { x: want_x.then_some(gx), w: gw, b: gb })
}

/// (batch, height, width, channels) of a layer's input.
pub type Dims = (usize, usize, usize, usize);

fn check(x: &[f32], x_len: usize, w: &[f32], w_len: usize, op: &str) -> Result<()> {
    if x.len() != x_len || w.len() != w_len {
        return Err(error(op, format!("{} input values for {x_len}, {} weights for {w_len}", x.len(), w.len())));
    }
    Ok(())
}

/// The convolution as a candle op (`down_forward`, `down_backward`).
pub struct Down {
    pub relu: bool,
}

impl CustomOp3 for Down {
    fn name(&self) -> &'static str {
        "vae-conv-down"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = f32_slices3((s1, l1), (s2, l2), (s3, l3), self.name())?;
        let (n, h, wd, c) = dims4(l1, self.name())?;
        let y = down_forward(x, (n, h, wd, c), w, b, self.relu)?;
        Ok((CpuStorage::F32(y), Shape::from((n, h / 2, wd / 2, b.len()))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = x.dims4()?;
        let grads =
            on_host(x, w, res, grad, |xv, wv, out, g| down_backward(xv, dims, wv, out, g, self.relu, wanted(x)))?;
        into_tensors(grads, x, w, b)
    }
}

/// The transposed convolution as a candle op (`up_forward`,
/// `up_backward`).
pub struct Up {
    pub relu: bool,
}

impl CustomOp3 for Up {
    fn name(&self) -> &'static str {
        "vae-conv-up"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = f32_slices3((s1, l1), (s2, l2), (s3, l3), self.name())?;
        let (n, h, wd, c) = dims4(l1, self.name())?;
        let y = up_forward(x, (n, h, wd, c), w, b, self.relu)?;
        Ok((CpuStorage::F32(y), Shape::from((n, 2 * h, 2 * wd, b.len()))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = x.dims4()?;
        let grads = on_host(x, w, res, grad, |xv, wv, out, g| up_backward(xv, dims, wv, out, g, self.relu, wanted(x)))?;
        into_tensors(grads, x, w, b)
    }
}

/// Runs `f` over the host slices of a backward pass's four tensors.
fn on_host<R>(
    x: &Tensor,
    w: &Tensor,
    res: &Tensor,
    grad: &Tensor,
    f: impl FnOnce(&[f32], &[f32], &[f32], &[f32]) -> Result<R>,
) -> Result<R> {
    let op = "vae fused backward";
    with_host(x, op, |xv| with_host(w, op, |wv| with_host(res, op, |out| with_host(grad, op, |g| f(xv, wv, out, g)))))
}
