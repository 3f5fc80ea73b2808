//! Matrix products straight into gemm. Every sum runs in an order fixed
//! by the shapes alone, never by the thread count: gemm splits its work
//! over output blocks, not over the inner dimension.

use candle_core::Result;
use gemm::Parallelism;

use super::host::error;

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

#[cfg(test)]
mod tests {
    use super::*;

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
