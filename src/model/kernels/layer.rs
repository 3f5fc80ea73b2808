//! A dense layer's host loops around its matrix product: bias rows, ReLU
//! and its gradient mask, column sums. The column sums add fixed blocks of
//! rows in order, so the result does not depend on the thread count.

use std::borrow::Cow;

use rayon::prelude::*;

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
