//! A dense layer on the CPU as one candle op, forward and backward:
//! `relu?(x W^T + b)` with gemm called directly into buffers it writes
//! once, the bias and an optional ReLU folded in. Composed from candle's
//! ops the same layer allocates its product, adds the bias in a second
//! tensor, and pays a reduction over the batch for the bias gradient.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::kernels::{
    column_sums, error, f32_slices3, into_tensors, matmul, product, relu_in_place, repeated, through_relu, wanted,
    with_host, Grads, Mat, Threads,
};

/// `relu?(x W^T + b)` over host slices: x (rows, inputs) row-major, W
/// (outputs, inputs), b (outputs); gemm on all threads.
pub fn dense_forward(x: &[f32], w: &[f32], b: &[f32], relu: bool) -> Result<Vec<f32>> {
    let outputs = b.len();
    let inputs = w.len() / outputs.max(1);
    let rows = x.len() / inputs.max(1);
    if rows * inputs != x.len() || outputs * inputs != w.len() {
        return Err(error("dense", format!("{} inputs do not split into rows of {inputs}", x.len())));
    }
    let mut y = repeated(b, rows);
    matmul(&mut y, Mat::new(x, rows, inputs), Mat::new(w, outputs, inputs).t(), true, Threads::All)?;
    if relu {
        relu_in_place(&mut y);
    }
    Ok(y)
}

/// `dense_forward`'s gradients from its input `x`, weight `w` (`outputs`
/// rows), output `out` and the output's gradient `g`; the input's only
/// when `want_x`.
pub fn dense_backward(
    x: &[f32],
    w: &[f32],
    outputs: usize,
    out: &[f32],
    g: &[f32],
    relu: bool,
    want_x: bool,
) -> Result<Grads> {
    let inputs = w.len() / outputs.max(1);
    let rows = g.len() / outputs.max(1);
    if rows * inputs != x.len() || outputs * inputs != w.len() || out.len() != g.len() {
        return Err(error("dense", format!("{} inputs, {} weights, {} outputs do not fit", x.len(), w.len(), g.len())));
    }
    let g = through_relu(g, out, relu);
    let b = column_sums(&g, outputs);
    let gx = if want_x {
        Some(product(Mat::new(&g, rows, outputs), Mat::new(w, outputs, inputs), Threads::All)?)
    } else {
        None
    };
    let gw = product(Mat::new(&g, rows, outputs).t(), Mat::new(x, rows, inputs), Threads::All)?;
    Ok(Grads { x: gx, w: gw, b })
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
        let (x, w, b) = f32_slices3((s1, l1), (s2, l2), (s3, l3), self.name())?;
        let (outputs, inputs) = (b.len(), l2.dims().last().copied().unwrap_or(0));
        let rows = x.len() / inputs.max(1);
        let shape = self.shape.clone().unwrap_or(Shape::from((rows, outputs)));
        if rows * inputs != x.len() || shape.elem_count() != rows * outputs {
            return Err(error(
                self.name(),
                format!("{:?} does not split into rows of {inputs}, or not into {shape:?}", l1.dims()),
            ));
        }
        Ok((CpuStorage::F32(dense_forward(x, w, b, self.relu)?), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let outputs = w.dim(0)?;
        let op = self.name();
        let grads = with_host(x, op, |xv| {
            with_host(w, op, |wv| {
                with_host(res, op, |out| {
                    with_host(grad, op, |g| dense_backward(xv, wv, outputs, out, g, self.relu, wanted(x)))
                })
            })
        })?;
        into_tensors(grads, x, w, b)
    }
}
