//! The patches of a 4x4, stride-2, padding-1 convolution over channels-last
//! images: `gather` lays each output cell's window out as one row (so the
//! convolution is a matrix product), `scatter_add` is its adjoint (what a
//! transposed convolution and the convolution's input gradient need).
//! Both run on one thread: the fused ops call them on blocks of a few
//! images, many blocks in parallel, so a block's patch rows stay in cache
//! between the gather and the product that reads them.

use candle_core::Result;

use crate::model::kernels::error;

/// `n` images of `h x w` pixels and `c` channels; output cell (y, x) of
/// the convolution reads input pixels (2y + ky - 1, 2x + kx - 1).
#[derive(Clone, Copy)]
pub struct Grid {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Grid {
    /// Output cells per image.
    pub fn cells(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }

    /// Values in one patch row.
    pub fn patch(&self) -> usize {
        16 * self.c
    }

    /// Values in one image.
    pub fn image(&self) -> usize {
        self.h * self.w * self.c
    }

    /// The input pixel under tap (ky, kx) of output cell `cell`, if the tap
    /// lands inside the image.
    fn pixel(&self, cell: usize, tap: usize) -> Option<usize> {
        let (oy, ox) = (cell / (self.w / 2).max(1), cell % (self.w / 2).max(1));
        let iy = (2 * oy + tap / 4).checked_sub(1).filter(|&y| y < self.h)?;
        let ix = (2 * ox + tap % 4).checked_sub(1).filter(|&x| x < self.w)?;
        Some(iy * self.w + ix)
    }

    fn check(&self, img: &[f32], what: &str) -> Result<()> {
        if img.len() != self.n * self.image() {
            return Err(error(
                "vae convolution",
                format!("{what}: {} values for {} images of {} x {} x {}", img.len(), self.n, self.h, self.w, self.c),
            ));
        }
        Ok(())
    }

    /// The patch matrix (n * cells, 16 c): each output cell's 4x4 window,
    /// taps in (ky, kx) order, channels inner; zero past the edges.
    pub fn gather(&self, img: &[f32]) -> Result<Vec<f32>> {
        self.check(img, "gather")?;
        let (c, patch) = (self.c, self.patch());
        let len = self.n * self.cells() * patch;
        let mut cols: Vec<f32> = Vec::with_capacity(len);
        let slots = &mut cols.spare_capacity_mut()[..len];
        for (out, im) in
            slots.chunks_exact_mut((self.cells() * patch).max(1)).zip(img.chunks_exact(self.image().max(1)))
        {
            for (cell, row) in out.chunks_exact_mut(patch.max(1)).enumerate() {
                for (tap, d) in row.chunks_exact_mut(c.max(1)).enumerate() {
                    match self.pixel(cell, tap) {
                        Some(px) => d.iter_mut().zip(&im[px * c..(px + 1) * c]).for_each(|(d, &v)| {
                            d.write(v);
                        }),
                        None => d.iter_mut().for_each(|d| {
                            d.write(0.0);
                        }),
                    }
                }
            }
        }
        // SAFETY: `check` made `img` exactly n whole images, so the loop
        // above paired each of the n image-sized runs of the `len` slots
        // with an image, and the cells and taps of a run tile it: every
        // slot was written.
        unsafe { cols.set_len(len) };
        Ok(cols)
    }

    /// The adjoint of `gather`: each patch entry added onto its pixel of
    /// `img` (n images, already holding what the sums start from).
    pub fn scatter_add(&self, cols: &[f32], img: &mut [f32]) -> Result<()> {
        self.check(img, "scatter")?;
        let (c, patch) = (self.c, self.patch());
        if cols.len() != self.n * self.cells() * patch {
            return Err(error(
                "vae convolution",
                format!("scatter: {} patch values for {} images", cols.len(), self.n),
            ));
        }
        for (im, cs) in img.chunks_exact_mut(self.image().max(1)).zip(cols.chunks_exact((self.cells() * patch).max(1)))
        {
            for (cell, row) in cs.chunks_exact(patch.max(1)).enumerate() {
                for (tap, src) in row.chunks_exact(c.max(1)).enumerate() {
                    if let Some(px) = self.pixel(cell, tap) {
                        im[px * c..(px + 1) * c].iter_mut().zip(src).for_each(|(a, b)| *a += b);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scatter_add is gather's adjoint: <gather(x), y> = <x, scatter(y)>
    /// for any x and y, including the padded edges; and a gathered patch
    /// holds exactly the pixels under the window.
    #[test]
    fn scatter_is_the_adjoint_of_gather() {
        let g = Grid { n: 2, h: 6, w: 4, c: 3 };
        let x: Vec<f32> = (0..g.n * g.image()).map(|i| (i as f32 * 0.61).sin()).collect();
        let y: Vec<f32> = (0..g.n * g.cells() * g.patch()).map(|i| (i as f32 * 0.23).cos()).collect();
        let gx = g.gather(&x).unwrap();
        let mut sy = vec![0.0f32; x.len()];
        g.scatter_add(&y, &mut sy).unwrap();
        let lhs: f64 = gx.iter().zip(&y).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x.iter().zip(&sy).map(|(a, b)| f64::from(a * b)).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        // Cell (1, 1) of image 1, tap (ky, kx) = (2, 3): pixel (2*1+2-1, 2*1+3-1) = (3, 4)
        // is past the width (4), so zero; tap (1, 0) reads pixel (2, 1).
        let row = &gx[(g.cells() + g.w / 2 + 1) * g.patch()..][..g.patch()];
        assert!(row[(2 * 4 + 3) * 3..][..3].iter().all(|&v| v == 0.0));
        assert_eq!(&row[4 * 3..4 * 3 + 3], &x[g.image() + (2 * g.w + 1) * 3..][..3]);
        assert!(g.gather(&x[1..]).is_err(), "a partial image is refused");
    }
}
