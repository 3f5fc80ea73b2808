//! The VAE's layers on the CPU as one candle op each, forward and
//! backward: a dense layer, the 4x4 stride-2 convolution and its transpose,
//! each with its bias and an optional ReLU folded in. Each direction is a
//! patch gather or scatter plus direct gemm calls into buffers of the right
//! size. Composed from candle's ops the same layers cost three to four
//! times their matmuls: a gather through an index tensor, a separate bias
//! add and ReLU, and every gradient added into a zeroed tensor of its size.
//!
//! Determinism: gemm splits its work over output blocks, never over the
//! inner dimension, so its sums run in the same order for any thread
//! count; gathers and scatters run image by image; bias gradients sum
//! fixed chunks of rows and combine them in order.

use std::borrow::Cow;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

fn error(op: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: {what}"))
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(error(op, "expects contiguous f32 tensors")),
    }
}

/// A tensor's host values without copying them (it is made contiguous
/// first, which is free when it already is).
fn with_host<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(f32_slice(s, layout, op)?),
        _ => Err(error(op, "runs on the CPU only")),
    }
}

fn tensor(v: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(v, like.shape(), like.device())
}

/// A matrix view of a slice: element (r, c) at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// Every element it names lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst` (a.rows x b.cols, row-major) = `a * b`, or `dst + a * b` when
/// `accumulate`.
fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.len() != m * n || !a.fits() || !b.fits() {
        return Err(error("matmul", format!("shapes do not match: ({m} x {k}) times ({} x {n})", b.rows)));
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: both views were checked above to stay inside their slices,
    // and `dst` is a unique borrow of exactly m x n elements with row
    // stride n, so gemm reads and writes only memory it is lent.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// `a * b` in a new buffer that gemm writes once, without zeroing it first.
fn product(a: Mat, b: Mat) -> Result<Vec<f32>> {
    let len = a.rows * b.cols;
    if a.cols == 0 {
        return Ok(vec![0.0; len]);
    }
    let mut out: Vec<f32> = Vec::with_capacity(len);
    {
        let spare = &mut out.spare_capacity_mut()[..len];
        // SAFETY: f32 and MaybeUninit<f32> have the same layout; the slice
        // is handed to gemm as a write-only destination (`accumulate` off),
        // which stores every one of its m x n elements when k > 0.
        let dst = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<f32>(), len) };
        matmul(dst, a, b, false)?;
    }
    // SAFETY: gemm initialised all `len` elements above.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// `rows` copies of the bias, for gemm to add the product onto.
fn repeated(bias: &[f32], rows: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * bias.len());
    for _ in 0..rows {
        out.extend_from_slice(bias);
    }
    out
}

const CHUNK: usize = 1 << 15;

fn relu_in_place(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
}

/// The gradient reaching the pre-activation: `g` where the output was
/// positive, zero elsewhere (ReLU's output is positive exactly where its
/// input was).
fn through_relu<'a>(g: &'a [f32], out: &[f32], relu: bool) -> Cow<'a, [f32]> {
    if !relu {
        return Cow::Borrowed(g);
    }
    Cow::Owned(g.par_iter().zip(out.par_iter()).map(|(&gi, &oi)| if oi > 0.0 { gi } else { 0.0 }).collect())
}

/// Sums of the columns of a row-major matrix `width` wide: fixed blocks of
/// rows summed in parallel, then the blocks in order.
fn column_sums(g: &[f32], width: usize) -> Vec<f32> {
    const ROWS: usize = 256;
    let blocks: Vec<Vec<f32>> = g
        .par_chunks(ROWS * width.max(1))
        .map(|block| {
            let mut s = vec![0.0f32; width];
            for row in block.chunks_exact(width.max(1)) {
                s.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            s
        })
        .collect();
    let mut out = vec![0.0f32; width];
    for b in blocks {
        out.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    }
    out
}

/// A batch of channels-last images and the grid a 4x4, stride-2,
/// padding-1 convolution maps them to: output cell (y, x) reads input
/// pixels (2y + ky - 1, 2x + kx - 1).
#[derive(Clone, Copy)]
struct Grid {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
}

impl Grid {
    fn cells(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }

    fn patch(&self) -> usize {
        16 * self.c
    }

    /// The input pixel under tap (ky, kx) of output cell (oy, ox), if the
    /// tap lands inside the image.
    fn pixel(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (2 * oy + ky).checked_sub(1).filter(|&y| y < self.h)?;
        let ix = (2 * ox + kx).checked_sub(1).filter(|&x| x < self.w)?;
        Some(iy * self.w + ix)
    }

    /// For each tap of output cell `cell` that lands inside the image: the
    /// tap's index (ky * 4 + kx) and the input pixel's index.
    fn taps(&self, cell: usize, mut f: impl FnMut(usize, usize)) {
        let (oy, ox) = (cell / (self.w / 2), cell % (self.w / 2));
        for tap in 0..16 {
            if let Some(px) = self.pixel(oy, ox, tap / 4, tap % 4) {
                f(tap, px);
            }
        }
    }

    fn check(&self, img: &[f32]) -> Result<()> {
        if img.len() != self.n * self.h * self.w * self.c {
            return Err(error(
                "vae convolution",
                format!("{} values for a batch of {} ({} x {} x {})", img.len(), self.n, self.h, self.w, self.c),
            ));
        }
        Ok(())
    }

    /// The patch matrix (n * cells, 16 c): each output cell's 4x4 window,
    /// taps in (ky, kx) order, channels inner; zero past the edges.
    fn gather(&self, img: &[f32]) -> Result<Vec<f32>> {
        self.check(img)?;
        let (c, patch) = (self.c, self.patch());
        let len = self.n * self.cells() * patch;
        let mut cols: Vec<f32> = Vec::with_capacity(len);
        let chunks = cols.spare_capacity_mut()[..len].par_chunks_mut((self.cells() * patch).max(1));
        chunks.zip(img.par_chunks((self.h * self.w * c).max(1))).for_each(|(out, im)| {
            for (cell, dst) in out.chunks_exact_mut(patch).enumerate() {
                let (oy, ox) = (cell / (self.w / 2), cell % (self.w / 2));
                for (tap, d) in dst.chunks_exact_mut(c.max(1)).enumerate() {
                    match self.pixel(oy, ox, tap / 4, tap % 4) {
                        Some(px) => d.iter_mut().zip(&im[px * c..(px + 1) * c]).for_each(|(d, &v)| {
                            d.write(v);
                        }),
                        None => d.iter_mut().for_each(|d| {
                            d.write(0.0);
                        }),
                    }
                }
            }
        });
        // SAFETY: `check` made the images exactly n whole images, so the
        // zip above paired every chunk of the `len` slots with an image,
        // and each chunk's cells and taps tile it: every slot was written.
        unsafe { cols.set_len(len) };
        Ok(cols)
    }

    /// The adjoint of `gather`: each patch entry added back onto its pixel,
    /// onto images that start as `init` (a per-channel value) everywhere.
    fn scatter(&self, cols: &[f32], init: &[f32]) -> Vec<f32> {
        let (c, patch) = (self.c, self.patch());
        let mut img = repeated(init, self.n * self.h * self.w);
        img.par_chunks_mut(self.h * self.w * c).zip(cols.par_chunks(self.cells() * patch)).for_each(|(im, cs)| {
            for (cell, src) in cs.chunks_exact(patch).enumerate() {
                self.taps(cell, |tap, px| {
                    let dst = &mut im[px * c..(px + 1) * c];
                    dst.iter_mut().zip(&src[tap * c..(tap + 1) * c]).for_each(|(a, b)| *a += b);
                });
            }
        });
        img
    }
}

fn dims4(l: &Layout, op: &str) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [n, h, w, c] => Ok((n, h, w, c)),
        ref d => Err(error(op, format!("expects (batch, height, width, channels), got {d:?}"))),
    }
}

/// Whether backpropagation wants this input's gradient.
fn wanted(t: &Tensor) -> bool {
    t.is_variable() || t.track_op()
}

/// `relu?(x W^T + b)`: x (n, in) or any shape of n * in values, W (out,
/// in), b (out); the output is (n, out), or `shape` when given (taking
/// and giving the neighbouring layers' shapes spares candle a reshape
/// node, whose gradient costs a zeroed tensor and an add).
pub struct Dense {
    pub relu: bool,
    pub shape: Option<Shape>,
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "vae-dense"
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
        let (x, w, b) =
            (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        let (outputs, inputs) = (b.len(), l2.dims().last().copied().unwrap_or(0));
        let rows = x.len() / inputs.max(1);
        let shape = self.shape.clone().unwrap_or(Shape::from((rows, outputs)));
        if rows * inputs != x.len() || shape.elem_count() != rows * outputs {
            return Err(error(
                self.name(),
                format!("{:?} does not split into rows of {inputs}, or not into {shape:?}", l1.dims()),
            ));
        }
        let mut y = repeated(b, rows);
        matmul(&mut y, Mat::new(x, rows, inputs), Mat::new(w, outputs, inputs).t(), true)?;
        if self.relu {
            relu_in_place(&mut y);
        }
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (outputs, inputs) = w.dims2()?;
        let rows = x.elem_count() / inputs.max(1);
        with_host(grad, self.name(), |g| {
            with_host(res, self.name(), |out| {
                let g = through_relu(g, out, self.relu);
                let gb = column_sums(&g, outputs);
                let gx = with_host(w, self.name(), |wv| {
                    if !wanted(x) {
                        return Ok(None);
                    }
                    let gx = product(Mat::new(&g, rows, outputs), Mat::new(wv, outputs, inputs))?;
                    Ok(Some(tensor(gx, x)?))
                })?;
                let gw = with_host(x, self.name(), |xv| {
                    let gw = product(Mat::new(&g, rows, outputs).t(), Mat::new(xv, rows, inputs))?;
                    tensor(gw, w)
                })?;
                Ok((gx, Some(gw), Some(tensor(gb, b)?)))
            })
        })
    }
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
pub struct Down {
    relu: bool,
    /// The forward pass's patch matrix, kept for the weight gradient (the
    /// largest buffer of the network; gathering it again costs a pass).
    cols: Mutex<Option<Vec<f32>>>,
}

impl Down {
    pub fn new(relu: bool) -> Self {
        Down { relu, cols: Mutex::new(None) }
    }
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
        let (x, w, b) =
            (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        let (n, h, wd, c) = dims4(l1, self.name())?;
        let grid = Grid { n, h, w: wd, c };
        let c_out = b.len();
        let rows = n * grid.cells();
        let cols = grid.gather(x)?;
        let mut y = repeated(b, rows);
        matmul(
            &mut y,
            Mat::new(&cols, rows, grid.patch()),
            Mat::new(&down_matrix(w, c, c_out), grid.patch(), c_out),
            true,
        )?;
        if self.relu {
            relu_in_place(&mut y);
        }
        if let Ok(mut kept) = self.cols.lock() {
            *kept = Some(cols);
        }
        Ok((CpuStorage::F32(y), Shape::from((n, h / 2, wd / 2, c_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, h, wd, c) = x.dims4()?;
        let grid = Grid { n, h, w: wd, c };
        let c_out = b.elem_count();
        let rows = n * grid.cells();
        with_host(grad, self.name(), |g| {
            with_host(res, self.name(), |out| {
                let g = through_relu(g, out, self.relu);
                let gb = column_sums(&g, c_out);
                let wm = with_host(w, self.name(), |wv| Ok(down_matrix(wv, c, c_out)))?;
                let gx = if wanted(x) {
                    let gcols = product(Mat::new(&g, rows, c_out), Mat::new(&wm, grid.patch(), c_out).t())?;
                    Some(tensor(grid.scatter(&gcols, &vec![0.0; c]), x)?)
                } else {
                    None
                };
                let kept = self.cols.lock().ok().and_then(|mut k| k.take());
                let cols = match kept {
                    Some(cols) => cols,
                    None => with_host(x, self.name(), |xv| grid.gather(xv))?,
                };
                // As g^T cols (c_out x 16 c_in) rather than cols^T g: gemm
                // runs near twice as fast with the long, transposed operand
                // on the left of a short output.
                let gwt = product(Mat::new(&g, rows, c_out).t(), Mat::new(&cols, rows, grid.patch()))?;
                let gw = tensor(from_down_matrix_t(&gwt, c, c_out), w)?;
                Ok((gx, Some(gw), Some(tensor(gb, b)?)))
            })
        })
    }
}

/// `relu?(conv_transpose(x) + b)`, the adjoint of `Down`'s convolution:
/// x (n, h, w, c_in), W (c_in, c_out, 4, 4) as PyTorch lays it out, b
/// (c_out); output (n, 2h, 2w, c_out).
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
        let (x, w, b) =
            (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        let (n, h, wd, c) = dims4(l1, self.name())?;
        let c_out = b.len();
        let grid = Grid { n, h: 2 * h, w: 2 * wd, c: c_out };
        let rows = n * h * wd;
        let cols = product(Mat::new(x, rows, c), Mat::new(&up_matrix(w, c, c_out), c, grid.patch()))?;
        let mut y = grid.scatter(&cols, b);
        if self.relu {
            relu_in_place(&mut y);
        }
        Ok((CpuStorage::F32(y), Shape::from((n, 2 * h, 2 * wd, c_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, h, wd, c) = x.dims4()?;
        let c_out = b.elem_count();
        let grid = Grid { n, h: 2 * h, w: 2 * wd, c: c_out };
        let rows = n * h * wd;
        with_host(grad, self.name(), |g| {
            with_host(res, self.name(), |out| {
                let g = through_relu(g, out, self.relu);
                let gb = column_sums(&g, c_out);
                let gcols = grid.gather(&g)?;
                let wu = with_host(w, self.name(), |wv| Ok(up_matrix(wv, c, c_out)))?;
                let gx = if wanted(x) {
                    let gx = product(Mat::new(&gcols, rows, grid.patch()), Mat::new(&wu, c, grid.patch()).t())?;
                    Some(tensor(gx, x)?)
                } else {
                    None
                };
                let gw = with_host(x, self.name(), |xv| {
                    let gwu = product(Mat::new(xv, rows, c).t(), Mat::new(&gcols, rows, grid.patch()))?;
                    tensor(from_up_matrix(&gwu, c, c_out), w)
                })?;
                Ok((gx, Some(gw), Some(tensor(gb, b)?)))
            })
        })
    }
}
