//! A dense layer on the CPU as one candle op, forward and backward:
//! `relu?(x W^T + b)` with gemm called directly into buffers it writes
//! once, the bias and an optional ReLU folded in. Composed from candle's
//! ops the same layer allocates its product, adds the bias in a second
//! tensor, and pays a reduction over the batch for the bias gradient.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::kernels::{
    column_sums, error, f32_slices3, matmul, product, relu_in_place, repeated, tensor, through_relu, wanted, with_host,
    Mat, Threads,
};

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
        let mut y = repeated(b, rows);
        matmul(&mut y, Mat::new(x, rows, inputs), Mat::new(w, outputs, inputs).t(), true, Threads::All)?;
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
                    let gx = product(Mat::new(&g, rows, outputs), Mat::new(wv, outputs, inputs), Threads::All)?;
                    Ok(Some(tensor(gx, x)?))
                })?;
                let gw = with_host(x, self.name(), |xv| {
                    let gw = product(Mat::new(&g, rows, outputs).t(), Mat::new(xv, rows, inputs), Threads::All)?;
                    tensor(gw, w)
                })?;
                Ok((gx, Some(gw), Some(tensor(gb, b)?)))
            })
        })
    }
}
