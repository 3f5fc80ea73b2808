//! Host-side pieces of the fused network ops (the VAE's, the dense layer):
//! host views of tensors, matrix products straight into
//! gemm, bias rows, ReLU and its gradient mask, and column sums. Every sum
//! runs in an order fixed by the shapes alone, never by the thread count:
//! gemm splits its work over output blocks, not over the inner dimension,
//! and the column sums add fixed blocks of rows in order.

use std::borrow::Cow;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, Var};
use gemm::Parallelism;
use rayon::prelude::*;

pub fn error(op: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: {what}"))
}

pub fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(error(op, "expects contiguous f32 tensors")),
    }
}

/// The three inputs of a three-tensor op as host slices.
pub fn f32_slices3<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
    (s3, l3): (&'a CpuStorage, &Layout),
    op: &str,
) -> Result<(&'a [f32], &'a [f32], &'a [f32])> {
    Ok((f32_slice(s1, l1, op)?, f32_slice(s2, l2, op)?, f32_slice(s3, l3, op)?))
}

/// A tensor's host values without copying them (it is made contiguous
/// first, which is free when it already is).
pub fn with_host<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(f32_slice(s, layout, op)?),
        _ => Err(error(op, "runs on the CPU only")),
    }
}

pub fn tensor(v: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(v, like.shape(), like.device())
}

/// Whether backpropagation wants this input's gradient.
pub fn wanted(t: &Tensor) -> bool {
    t.is_variable() || t.track_op()
}

/// e^x for f32 without a libm call, so the loops over logits vectorise
/// (libm's exp was 8% of a training step): x = n ln 2 + r with |r| <=
/// ln 2 / 2 (Cody and Waite's two-part ln 2), Cephes' degree-6 polynomial
/// for e^r, and 2^n put in the exponent bits. Within 2 ulp of e^x (test
/// below); 0 below -87 (where e^x leaves the normal range), including -inf.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer
    // without `round` (a libm call on baseline x86-64).
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 127], so n + 127 is a normal exponent. It is read off
    // the low mantissa bits of 2^23 + n + 127 rather than by `as i32`,
    // whose saturating conversion keeps the loops from vectorising.
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0x007f_ffff;
    let scale = f32::from_bits(biased << 23);
    if x < -87.0 {
        0.0
    } else {
        e * scale
    }
}

/// ln(1 + x) for x in [0, 1] (the softplus term of a BCE with logits,
/// x = e^-|l|), without a libm call so its loop vectorises: 1 + x = m 2^k
/// with m in [sqrt(1/2), sqrt(2)) and k 0 or 1, then Cephes' logf
/// polynomial for ln m and the two-part ln 2. Taking f = x itself when k
/// = 0 keeps small x exact (1 + x would round them away). Within 2 ulp
/// (test below).
#[inline(always)]
pub fn ln_1p_unit(x: f32) -> f32 {
    let big = x > std::f32::consts::SQRT_2 - 1.0;
    let (f, k) = if big { (0.5 * (x - 1.0), 1.0f32) } else { (x, 0.0f32) };
    let z = f * f;
    let mut p = 7.037_683_6e-2f32;
    p = p * f - 1.151_461_1e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_4e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 0.333_333_3;
    let y = f * z * p + k * -2.121_944_4e-4 - 0.5 * z;
    f + y + k * 0.693_359_4
}

/// A matrix view of a slice: element (r, c) at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major, `rows x cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// `rows x cols` starting at `data[0]`, rows `rs` apart (one head's
    /// columns inside a wider row-major matrix).
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        Mat { data, rows, cols, rs, cs: 1 }
    }

    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// Every element it names lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// How gemm may use threads: all of rayon's for a whole-batch product;
/// none inside a task that is already one of many running in parallel.
#[derive(Clone, Copy)]
pub enum Threads {
    All,
    One,
}

/// `dst` (a.rows x b.cols, row-major) = `a * b`, or `dst + a * b` when
/// `accumulate`.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: Threads) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.len() != m * n || !a.fits() || !b.fits() {
        return Err(error("matmul", format!("shapes do not match: ({m} x {k}) times ({} x {n})", b.rows)));
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return Ok(());
    }
    let par = match (threads, rayon::current_num_threads()) {
        (Threads::All, t) if t > 1 => Parallelism::Rayon(t),
        _ => Parallelism::None,
    };
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
pub fn product(a: Mat, b: Mat, threads: Threads) -> Result<Vec<f32>> {
    let len = a.rows * b.cols;
    if a.cols == 0 || b.rows != a.cols {
        let mut out = vec![0.0; len];
        matmul(&mut out, a, b, false, threads)?;
        return Ok(out);
    }
    let mut out: Vec<f32> = Vec::with_capacity(len);
    {
        let spare = &mut out.spare_capacity_mut()[..len];
        // SAFETY: f32 and MaybeUninit<f32> have the same layout; the slice
        // is handed to gemm as a write-only destination (`accumulate` off),
        // which stores every one of its m x n elements when k > 0.
        let dst = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<f32>(), len) };
        matmul(dst, a, b, false, threads)?;
    }
    // SAFETY: gemm initialised all `len` elements above.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// `rows` copies of the bias, for gemm to add the product onto (in
/// parallel: the largest is 13 MB a batch), written once.
pub fn repeated(bias: &[f32], rows: usize) -> Vec<f32> {
    let width = bias.len();
    if width == 0 {
        return Vec::new();
    }
    let len = rows * width;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut((CHUNK / width).max(1) * width).for_each(|c| {
        for row in c.chunks_exact_mut(width) {
            row.iter_mut().zip(bias).for_each(|(d, &b)| {
                d.write(b);
            });
        }
    });
    // SAFETY: the chunks are whole multiples of `width` and tile the `len`
    // slots, and every row of every chunk was written above.
    unsafe { out.set_len(len) };
    out
}

const CHUNK: usize = 1 << 15;

pub fn relu_in_place(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(relu_serial);
}

/// ReLU of `y` in place, on this thread.
pub fn relu_serial(y: &mut [f32]) {
    y.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// The gradient reaching the pre-activation: `g` where the output was
/// positive, zero elsewhere (ReLU's output is positive exactly where its
/// input was).
pub fn through_relu<'a>(g: &'a [f32], out: &[f32], relu: bool) -> Cow<'a, [f32]> {
    if !relu {
        return Cow::Borrowed(g);
    }
    Cow::Owned(g.par_iter().zip(out.par_iter()).map(|(&gi, &oi)| if oi > 0.0 { gi } else { 0.0 }).collect())
}

/// The values of a network's parameters on the host, in order (the host
/// training steps work on these and hand them back with `store_values`).
pub fn host_values(vars: &[(String, Var)]) -> Result<Vec<Vec<f32>>> {
    vars.iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>()).collect()
}

/// Writes host values back into the parameters' tensors.
pub fn store_values(vars: &[(String, Var)], values: &[Vec<f32>]) -> Result<()> {
    for ((_, var), v) in vars.iter().zip(values) {
        let t = var.as_tensor();
        var.set(&Tensor::from_vec(v.clone(), t.shape(), t.device())?)?;
    }
    Ok(())
}

/// What a fused layer's backward pass gives: the gradient of its input
/// (None where the input needs none) and of its weight (in the weight's
/// own layout) and bias.
pub struct Grads {
    pub x: Option<Vec<f32>>,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// `g` as the candle op's three input gradients, shaped as `x`, `w`, `b`.
pub fn into_tensors(
    g: Grads,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let gx = g.x.map(|v| tensor(v, x)).transpose()?;
    Ok((gx, Some(tensor(g.w, w)?), Some(tensor(g.b, b)?)))
}

/// `through_relu` on this thread, for a block a task already holds in
/// cache.
pub fn through_relu_serial<'a>(g: &'a [f32], out: &[f32], relu: bool) -> Cow<'a, [f32]> {
    if !relu {
        return Cow::Borrowed(g);
    }
    Cow::Owned(g.iter().zip(out).map(|(&gi, &oi)| if oi > 0.0 { gi } else { 0.0 }).collect())
}

/// Adds each row of the row-major `m` onto `acc` (a row wide), in order.
pub fn add_rows(acc: &mut [f32], m: &[f32]) {
    for row in m.chunks_exact(acc.len().max(1)) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}

/// Sums of the columns of a row-major matrix `width` wide: fixed blocks of
/// rows summed in parallel, then the blocks in order.
pub fn column_sums(g: &[f32], width: usize) -> Vec<f32> {
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
    sum_in_order(blocks, width)
}

/// The element-wise sum of `parts`, each `len` long, added in their order.
pub fn sum_in_order(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_else(|| vec![0.0; len]);
    for p in parts {
        out.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    out
}

/// `wide! { pub fn name / plain(args) -> R { body } }` defines `plain`, the
/// body as written, and `name`, which runs that body compiled for AVX-512
/// when the CPU has it and as built (x86-64's SSE2) otherwise. Element-wise
/// loops then run 16 lanes wide instead of 4. The results are the same
/// bits either way (`plain` is there for the tests that check it): each
/// element's arithmetic is unchanged, Rust never fuses a multiply and an
/// add on its own, and it never reorders a float sum, so sequential sums
/// stay sequential.
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident / $plain:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $plain($($arg: $ty),*) $(-> $ret)? $body

        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU has every feature `avx512` was
                    // compiled for (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
            }
            $plain($($arg),*)
        }
    };
}
pub(crate) use wide;

#[cfg(test)]
mod tests {
    use super::*;

    /// ln_1p_unit is within 2 ulp of ln(1 + x) over [0, 1], tiny x included.
    #[test]
    fn fast_ln_1p_is_within_two_ulp() {
        let xs =
            (0..=100_000).map(|i| i as f32 / 100_000.0).chain([1e-30, 1e-12, 3e-8, 1e-6, 0.414, 0.4143, 0.999_999]);
        for x in xs {
            let exact = f64::from(x).ln_1p();
            let got = f64::from(ln_1p_unit(x));
            let ulp = f64::from(f32::EPSILON) * exact.abs().max(f64::from(f32::MIN_POSITIVE));
            assert!((got - exact).abs() <= 2.0 * ulp, "ln_1p({x}) = {got}, exact {exact}");
        }
        assert_eq!(ln_1p_unit(0.0), 0.0);
    }

    /// gemm through the strided views equals the textbook triple loop, for
    /// every transposition and with accumulation.
    #[test]
    fn matmul_matches_the_triple_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let naive = |at: bool, bt: bool| -> Vec<f32> {
            let mut out = vec![0.0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        let av = if at { a[p * m + i] } else { a[i * k + p] };
                        let bv = if bt { b[j * k + p] } else { b[p * n + j] };
                        out[i * n + j] += av * bv;
                    }
                }
            }
            out
        };
        for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
            let av = if at { Mat::new(&a, k, m).t() } else { Mat::new(&a, m, k) };
            let bv = if bt { Mat::new(&b, n, k).t() } else { Mat::new(&b, k, n) };
            let want = naive(at, bt);
            for threads in [Threads::All, Threads::One] {
                let got = product(av, bv, threads).unwrap();
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5, "{at} {bt}: {x} vs {y}");
                }
                let mut acc = vec![1.0f32; m * n];
                matmul(&mut acc, av, bv, true, threads).unwrap();
                for (x, y) in acc.iter().zip(&want) {
                    assert!((x - 1.0 - y).abs() < 1e-5, "accumulated: {x} vs 1 + {y}");
                }
            }
        }
        assert!(product(Mat::new(&a, m, k), Mat::new(&b, n, k), Threads::All).is_err(), "mismatched shapes");
    }
}
