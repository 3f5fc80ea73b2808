//! The transformer's element-wise work as single passes over host memory,
//! each with its gradient: softmax over the last dimension (scaled and
//! causally masked for attention), layer normalisation with its affine
//! part, GELU (tanh form), and the exp they and the loss share. candle
//! composes each from five to ten allocating tensor ops per direction,
//! which cost more than the matmuls. Rows are independent and
//! every sum runs in a fixed order, so results do not depend on threads.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::model::kernels::{exp_fast, f32_slice, f32_slices3, sum_in_order, wide, with_host};

/// Rows of `width` mapped in parallel by `f(row_in, row_out)`, into a
/// buffer that is not zeroed first (a pass over memory saved): every `f`
/// given here writes each value of its output row, which is as long as
/// its input row.
fn rows_map(input: &[f32], width: usize, f: impl Fn(&[f32], &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let len = input.len();
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(width.max(1))
        .zip(input.par_chunks(width.max(1)))
        .for_each(|(o, i)| f(i, o));
    // SAFETY: the output chunks pair one to one with input chunks of the
    // same length and tile all `len` slots, and each `f` (layer norm's and
    // GELU's row functions) writes every slot of its chunk.
    unsafe { out.set_len(len) };
    out
}

/// The largest value, over eight lanes for the same reason.
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (l, &z) in lanes.iter_mut().zip(c) {
            *l = if z > *l { z } else { *l };
        }
    }
    chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &z| if z > m { z } else { m })
}

wide! {
    /// log sum_j e^(row_j), the exponentials summed in f64 over eight fixed
    /// lanes (element j into lane j mod 8), the lanes then added in order:
    /// the same order every time, without one long chain of dependent adds
    /// (a single running sum made this 7% of a training step).
    pub fn log_sum_exp / log_sum_exp_body(row: &[f32]) -> f64 {
        let max = max_of(row);
        // The exps first, in one plain loop over a buffer, so they vectorise.
        let e: Vec<f32> = row.iter().map(|&z| exp_fast(z - max)).collect();
        let mut lanes = [0.0f64; 8];
        let mut chunks = e.chunks_exact(8);
        for c in &mut chunks {
            lanes.iter_mut().zip(c).for_each(|(l, &v)| *l += f64::from(v));
        }
        lanes.iter_mut().zip(chunks.remainder()).for_each(|(l, &v)| *l += f64::from(v));
        f64::from(max) + lanes.iter().sum::<f64>().ln()
    }
}

wide! {
    /// In place: the softmax of `scale * row[..seen]`, zero after `seen` (a
    /// causal mask).
    pub fn softmax_row / softmax_row_body(row: &mut [f32], seen: usize, scale: f32) {
        let (head, masked) = row.split_at_mut(seen.min(row.len()));
        let max = head.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(scale * z));
        // The exps in a loop of their own, so it vectorises; their sum in
        // order after it.
        head.iter_mut().for_each(|v| *v = exp_fast(scale * *v - max));
        let sum: f32 = head.iter().sum();
        head.iter_mut().for_each(|v| *v /= sum);
        masked.iter_mut().for_each(|v| *v = 0.0);
    }
}

wide! {
    /// In place: the gradient of the scores from `g`, the gradient of the
    /// probabilities `y = softmax_row(scale * scores)`: scale * y * (g -
    /// sum(g * y)) (zero where masked, as y is).
    pub fn softmax_grad_row / softmax_grad_row_body(g: &mut [f32], y: &[f32], scale: f32) {
        let dot: f32 = g.iter().zip(y).map(|(a, b)| a * b).sum();
        g.iter_mut().zip(y).for_each(|(gi, &yi)| *gi = scale * yi * (*gi - dot));
    }
}

/// Softmax over the last dimension of `scale * x`, with attention's causal
/// mask folded in: for x (.., t, past + t), row i (of the t) sees columns
/// up to past + i. Composed, the scale and the mask are two more tensors
/// the size of the attention matrix each way.
pub struct Softmax {
    pub scale: f32,
    pub causal_past: Option<usize>,
}

impl Softmax {
    /// Plain softmax.
    #[cfg(test)]
    pub fn plain() -> Self {
        Softmax { scale: 1.0, causal_past: None }
    }

    /// The columns row `r` (counted over all leading dimensions) may see.
    fn visible(&self, r: usize, rows: usize, width: usize) -> usize {
        match self.causal_past {
            Some(past) => (past + r % rows.max(1) + 1).min(width),
            None => width,
        }
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim-with-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "softmax")?;
        let dims = l.dims();
        let w = dims.last().copied().unwrap_or(1).max(1);
        let rows = if dims.len() >= 2 { dims[dims.len() - 2] } else { 1 };
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(w).zip(x.par_chunks(w)).enumerate().for_each(|(r, (o, row))| {
            o.copy_from_slice(row);
            softmax_row(o, self.visible(r, rows, w), self.scale);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let w = res.dims().last().copied().unwrap_or(1).max(1);
        let out = with_host(res, "softmax", |y| {
            with_host(grad_res, "softmax", |g| {
                let mut out = g.to_vec();
                out.par_chunks_mut(w).zip(y.par_chunks(w)).for_each(|(o, yr)| softmax_grad_row(o, yr, self.scale));
                Ok(out)
            })
        })?;
        Ok(Some(Tensor::from_vec(out, res.shape(), res.device())?))
    }
}

/// The sum of `f(i)` for i < n over eight fixed lanes (i into lane i mod
/// 8), the lanes then added in order: one order every time, and eight
/// independent chains of adds where one running sum waits on each add.
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    for base in (0..n / 8 * 8).step_by(8) {
        lanes.iter_mut().enumerate().for_each(|(j, l)| *l += f(base + j));
    }
    for (j, i) in (n / 8 * 8..n).enumerate() {
        lanes[j] += f(i);
    }
    lanes.iter().sum()
}

#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row.len(), |i| row[i]) / n;
    let var = lane_sum(row.len(), |i| (row[i] - mean) * (row[i] - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Layer normalisation with its affine part, `xhat * w + b` over the last
/// dimension: x (.., d), w and b (d). Composed, the affine part is two
/// broadcast ops forward and two reductions over every row backward.
pub struct LayerNorm {
    pub eps: f32,
}

/// Rows per block of the weight and bias gradients' sums (a constant, so
/// the blocks, added in order, give the same bits on any thread count).
const LN_ROWS: usize = 64;

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm-affine"
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
        let (x, w, b) = f32_slices3((s1, l1), (s2, l2), (s3, l3), "layer norm")?;
        Ok((CpuStorage::F32(layer_norm_forward(x, w, b, self.eps)?), l1.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_host(arg, "layer norm", |x| {
            with_host(weight, "layer norm", |w| {
                with_host(grad_res, "layer norm", |g| Ok(layer_norm_grads(x, w, g, self.eps)))
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, arg.shape(), arg.device())?),
            Some(Tensor::from_vec(dw, weight.shape(), weight.device())?),
            Some(Tensor::from_vec(db, bias.shape(), bias.device())?),
        ))
    }
}

/// `xhat * w + b` over rows of `w.len()` values.
pub fn layer_norm_forward(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Result<Vec<f32>> {
    let d = w.len();
    if d == 0 || !x.len().is_multiple_of(d) || b.len() != d {
        return Err(candle_core::Error::Msg(format!("layer norm: rows of {d} for {} values", x.len())));
    }
    Ok(rows_map(x, d, |row, o| layer_norm_row(row, o, w, b, eps)))
}

wide! {
    /// Writes every value of `o` (as long as `row`, `w` and `b`: checked by
    /// `layer_norm_forward`).
    fn layer_norm_row / layer_norm_row_body(row: &[f32], o: &mut [MaybeUninit<f32>], w: &[f32], b: &[f32], eps: f32) {
        let (mean, inv) = moments(row, eps);
        for (((oi, &xi), &wi), &bi) in o.iter_mut().zip(row).zip(w).zip(b) {
            oi.write((xi - mean) * inv * wi + bi);
        }
    }
}

/// Layer norm's gradients for x (rows of w.len()), w and b, given the
/// output's gradient g: with gh = g * w, dx = (gh - mean(gh) - xhat *
/// mean(gh * xhat)) / sigma; dw = sum over rows of g * xhat; db = sum over
/// rows of g, in fixed blocks of rows added in order.
pub fn layer_norm_grads(x: &[f32], w: &[f32], g: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = w.len().max(1);
    let mut dx = vec![0.0f32; x.len()];
    let parts: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(LN_ROWS * d)
        .zip(x.par_chunks(LN_ROWS * d).zip(g.par_chunks(LN_ROWS * d)))
        .map(|(o, (xb, gb))| {
            let (mut dw, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
            let mut xhat = vec![0.0f32; d];
            for ((or, xr), gr) in o.chunks_exact_mut(d).zip(xb.chunks_exact(d)).zip(gb.chunks_exact(d)) {
                layer_norm_grad_row(or, xr, gr, w, &mut xhat, &mut dw, &mut db, eps);
            }
            (dw, db)
        })
        .collect();
    let (dw, db): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    (dx, sum_in_order(dw, d), sum_in_order(db, d))
}

wide! {
    /// One row's share of `layer_norm_grads`: its input gradient into `or`,
    /// and its terms added onto the weight and bias gradients.
    fn layer_norm_grad_row / layer_norm_grad_row_body(
        or: &mut [f32],
        xr: &[f32],
        gr: &[f32],
        w: &[f32],
        xhat: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        eps: f32,
    ) {
        let n = w.len() as f32;
        let (mean, inv) = moments(xr, eps);
        xhat.iter_mut().zip(xr).for_each(|(h, &xi)| *h = (xi - mean) * inv);
        let mg = lane_sum(w.len(), |i| gr[i] * w[i]) / n;
        let mgh = lane_sum(w.len(), |i| gr[i] * w[i] * xhat[i]) / n;
        for (((dwi, dbi), &gi), &hi) in dw.iter_mut().zip(db.iter_mut()).zip(gr).zip(xhat.iter()) {
            *dwi += gi * hi;
            *dbi += gi;
        }
        for (((oi, &gi), &wi), &hi) in or.iter_mut().zip(gr).zip(w).zip(xhat.iter()) {
            *oi = (gi * wi - mg - hi * mgh) * inv;
        }
    }
}

/// GELU, tanh form (GPT-2's, and candle's `gelu`).
pub struct Gelu;

/// tanh for f32 as a ratio of polynomials on a clamped input (Eigen's
/// `generic_fast_tanh_float` coefficients): no branch and no libm call, so
/// the GELU loops vectorise. libm's `tanhf` was 15% of a training step;
/// this is 7x faster on plain x86-64 and within 4e-7 of tanh (test below).
#[inline(always)]
fn tanh_fast(x: f32) -> f32 {
    // Beyond this, tanh rounds to +-1 in f32.
    const CLAMP: f32 = 7.905_311;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16f32;
    p = p * x2 + 2.000_188e-13;
    p = p * x2 - 8.604_672e-11;
    p = p * x2 + 5.122_297_1e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    let mut q = 1.198_258_4e-6f32;
    q = q * x2 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    x * p / q
}

const C: f32 = 0.797_884_6; // sqrt(2 / pi)

pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    rows_map(x, (1 << 15).min(x.len().max(1)), gelu_rows)
}

wide! {
    /// Writes every value of `o` (as long as `row`).
    fn gelu_rows / gelu_rows_body(row: &[f32], o: &mut [MaybeUninit<f32>]) {
        for (oi, &v) in o.iter_mut().zip(row) {
            oi.write(0.5 * v * (1.0 + tanh_fast(C * (v + 0.044_715 * v * v * v))));
        }
    }
}

/// GELU's input gradient given its input `x` and output gradient `g`.
pub fn gelu_backward(x: &[f32], g: &[f32]) -> Result<Vec<f32>> {
    if x.len() != g.len() {
        return Err(candle_core::Error::Msg(format!("gelu: {} inputs, {} gradients", x.len(), g.len())));
    }
    let len = x.len();
    let w = (1 << 15).min(len.max(1));
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(w)
        .zip(x.par_chunks(w).zip(g.par_chunks(w)))
        .for_each(|(o, (xr, gr))| gelu_grad_rows(o, xr, gr));
    // SAFETY: x and g are as long as the `len` slots (checked above), so
    // their chunks pair one to one with the output's, which tile the
    // slots, and `gelu_grad_rows` writes every slot of its chunk.
    unsafe { out.set_len(len) };
    Ok(out)
}

wide! {
    /// Writes every value of `o` (as long as `x` and `g`).
    fn gelu_grad_rows / gelu_grad_rows_body(o: &mut [MaybeUninit<f32>], x: &[f32], g: &[f32]) {
        for ((oi, &v), &gi) in o.iter_mut().zip(x).zip(g) {
            let t = tanh_fast(C * (v + 0.044_715 * v * v * v));
            let dt = C * (1.0 + 3.0 * 0.044_715 * v * v) * (1.0 - t * t);
            oi.write(gi * (0.5 * (1.0 + t) + 0.5 * v * dt));
        }
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh-with-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "gelu")?;
        Ok((CpuStorage::F32(gelu_forward(x)), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let out = with_host(arg, "gelu", |x| with_host(grad_res, "gelu", |g| gelu_backward(x, g)))?;
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// The AVX-512 builds of the element-wise loops (chosen at run time
    /// where the CPU has it, as on the project's machines) give the same
    /// bits as the plain build: their results reach the Parquet files,
    /// which must not depend on the machine's vector width. On a CPU
    /// without AVX-512 both sides are the plain build. The test profile
    /// builds this crate at opt-level 1, where loops are not vectorised;
    /// `cargo test --release --lib wide` checks the vectorised build.
    #[test]
    fn wide_loops_give_the_plain_builds_bits() {
        let mut rng = crate::rng::Rng::from_seed(41);
        // 1,000 values: 62 full 16-lane vectors and a tail.
        let x: Vec<f32> = (0..1000).map(|_| 3.0 * rng.normal() as f32).collect();
        let g: Vec<f32> = (0..1000).map(|_| rng.normal() as f32).collect();
        let fresh = |n: usize| vec![MaybeUninit::new(0.0f32); n];
        // SAFETY: every slot was initialised by `fresh` (and rewritten).
        let read = |v: &[MaybeUninit<f32>]| -> Vec<f32> { v.iter().map(|x| unsafe { x.assume_init() }).collect() };
        let (mut a, mut b) = (fresh(1000), fresh(1000));
        gelu_rows(&x, &mut a);
        gelu_rows_body(&x, &mut b);
        assert_eq!(read(&a), read(&b), "gelu");
        gelu_grad_rows(&mut a, &x, &g);
        gelu_grad_rows_body(&mut b, &x, &g);
        assert_eq!(read(&a), read(&b), "gelu gradient");
        let (mut a, mut b) = (x.clone(), x.clone());
        softmax_row(&mut a, 700, 0.3);
        softmax_row_body(&mut b, 700, 0.3);
        assert_eq!(a, b, "softmax");
        let (mut ga, mut gb) = (g.clone(), g.clone());
        softmax_grad_row(&mut ga, &a, 0.3);
        softmax_grad_row_body(&mut gb, &a, 0.3);
        assert_eq!(ga, gb, "softmax gradient");
        assert_eq!(log_sum_exp(&x).to_bits(), log_sum_exp_body(&x).to_bits(), "log-sum-exp");
        let (w, bias) = (&g[..250], &x[..250]);
        let (mut a, mut b) = (fresh(250), fresh(250));
        layer_norm_row(&x[250..500], &mut a, w, bias, 1e-5);
        layer_norm_row_body(&x[250..500], &mut b, w, bias, 1e-5);
        assert_eq!(read(&a), read(&b), "layer norm");
        let (mut da, mut db) = (
            (vec![0.0f32; 250], vec![0.0f32; 250], vec![0.0f32; 250]),
            (vec![0.0f32; 250], vec![0.0f32; 250], vec![0.0f32; 250]),
        );
        let (mut ha, mut hb) = (vec![0.0f32; 250], vec![0.0f32; 250]);
        layer_norm_grad_row(&mut da.0, &x[500..750], &g[500..750], w, &mut ha, &mut da.1, &mut da.2, 1e-5);
        layer_norm_grad_row_body(&mut db.0, &x[500..750], &g[500..750], w, &mut hb, &mut db.1, &mut db.2, 1e-5);
        assert_eq!(da, db, "layer norm gradient");
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(d < tol, "{what}: max difference {d}");
    }

    /// The rational tanh against f64's over its whole range, every 1.2e-5:
    /// a minimax fit of this degree is good to a few ulp of 1.0 (f32's ulp
    /// there is 1.19e-7), and it never leaves [-1, 1].
    #[test]
    fn fast_tanh_is_within_a_few_ulp() {
        let n = 2_000_000;
        let mut worst = 0.0f64;
        for i in 0..=n {
            let x = -12.0f32 + 24.0 * i as f32 / n as f32;
            let t = tanh_fast(x);
            assert!(t.abs() <= 1.0, "tanh_fast({x}) = {t}");
            worst = worst.max((f64::from(t) - f64::from(x).tanh()).abs());
        }
        assert!(worst < 5e-7, "worst error {worst:e}");
        for x in [1e-30f32, 1e-8, 3e-4] {
            assert!((tanh_fast(x) / x - 1.0).abs() < 3e-7, "relative error at {x}");
        }
    }

    #[test]
    fn fast_exp_is_within_two_ulp() {
        let n = 2_000_000;
        for i in 0..=n {
            let x = -87.0f32 + 175.0 * i as f32 / n as f32;
            let (got, want) = (f64::from(exp_fast(x)), f64::from(x).exp());
            assert!(((got - want) / want).abs() < 2.5e-7, "exp_fast({x}) = {got}, e^x = {want}");
        }
        assert_eq!(exp_fast(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_fast(-100.0), 0.0);
        assert_eq!(exp_fast(0.0), 1.0);
    }

    /// Each fused op and its gradient equal candle's op-by-op form.
    #[test]
    fn fused_ops_match_candles_ops() {
        let mut rng = crate::rng::Rng::from_seed(11);
        let dev = Device::Cpu;
        let data: Vec<f32> = (0..6 * 40).map(|_| 3.0 * rng.normal() as f32).collect();
        let x = Var::from_vec(data, (6, 40), &dev).unwrap();
        let xt = x.as_tensor();
        // A fixed weighting turns each output into a scalar loss with a
        // non-trivial gradient.
        let wdata: Vec<f32> = (0..6 * 40).map(|_| rng.normal() as f32).collect();
        let weight = Tensor::from_vec(wdata, (6, 40), &dev).unwrap();
        let grad = |y: &Tensor| (y * &weight).unwrap().sum_all().unwrap().backward().unwrap().get(xt).unwrap().clone();

        let fused = xt.apply_op1(Softmax::plain()).unwrap();
        let plain = candle_nn::ops::softmax(xt, D::Minus1).unwrap();
        close(&fused, &plain, 1e-6, "softmax");
        close(&grad(&fused), &grad(&plain), 1e-5, "softmax grad");

        // Scaled and causally masked, as attention uses it: (2, 3) heads of
        // 4 new rows over 2 cached + 4 columns.
        let a: Vec<f32> = (0..2 * 3 * 4 * 6).map(|_| 3.0 * rng.normal() as f32).collect();
        let a = Var::from_vec(a, (2, 3, 4, 6), &dev).unwrap();
        let mask: Vec<f32> =
            (0..4).flat_map(|i| (0..6).map(move |j| if j <= 2 + i { 0.0 } else { f32::NEG_INFINITY })).collect();
        let mask = Tensor::from_vec(mask, (4, 6), &dev).unwrap();
        let r: Vec<f32> = (0..2 * 3 * 4 * 6).map(|_| rng.normal() as f32).collect();
        let r = Tensor::from_vec(r, (2, 3, 4, 6), &dev).unwrap();
        let fused = a.as_tensor().apply_op1(Softmax { scale: 0.5, causal_past: Some(2) }).unwrap();
        let plain =
            candle_nn::ops::softmax(&(a.as_tensor() * 0.5).unwrap().broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        close(&fused, &plain, 1e-6, "masked softmax");
        let ga = (&fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&plain * &r).unwrap().sum_all().unwrap().backward().unwrap();
        close(ga.get(a.as_tensor()).unwrap(), gb.get(a.as_tensor()).unwrap(), 1e-5, "masked softmax grad");

        let fused = xt.apply_op1(Gelu).unwrap();
        let plain = xt.gelu().unwrap();
        close(&fused, &plain, 1e-5, "gelu");
        close(&grad(&fused), &grad(&plain), 1e-4, "gelu grad");
    }
}
