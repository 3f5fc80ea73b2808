//! Diversity of a set of u8 images (computed here, not in Polars: a
//! generation's pixels are a few MB of bytes).
//!
//! - `pixel_entropy`: entropy in bits of the 256-bin histogram of every
//!   pixel value. Real MNIST digits are nearly binary (mostly 0 and 255, a
//!   low entropy); a blurring model spreads mass over the grays.
//! - `pixel_std`: the std across images of each pixel position, averaged
//!   over positions, in [0, 1] intensity units. It falls as the images
//!   converge to a few shapes.

pub fn metrics(pixels: &[u8], per_image: usize) -> Vec<(String, f64)> {
    let n = pixels.len() / per_image.max(1);
    if n == 0 {
        return Vec::new();
    }
    let mut hist = [0u64; 256];
    for &p in pixels {
        hist[p as usize] += 1;
    }
    let total = pixels.len() as f64;
    let entropy: f64 = hist.iter().filter(|&&c| c > 0).map(|&c| c as f64 / total).map(|q| -q * q.log2()).sum();
    // Per-position sums in one pass, in image order (a fixed summation).
    let mut sum = vec![0f64; per_image];
    let mut sq = vec![0f64; per_image];
    for img in pixels.chunks_exact(per_image) {
        for (j, &p) in img.iter().enumerate() {
            let v = f64::from(p) / 255.0;
            sum[j] += v;
            sq[j] += v * v;
        }
    }
    let nf = n as f64;
    let std: f64 =
        sum.iter().zip(&sq).map(|(s, q)| ((q / nf - (s / nf).powi(2)).max(0.0)).sqrt()).sum::<f64>() / per_image as f64;
    vec![("pixel_entropy".into(), entropy), ("pixel_std".into(), std)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn entropy_and_std_of_known_sets() {
        // Two 2-pixel images [0, 255] and [255, 0]: values half 0, half 255
        // (1 bit); each position is 0 or 1 with equal odds (std 0.5).
        let m = super::metrics(&[0, 255, 255, 0], 2);
        assert!((m[0].1 - 1.0).abs() < 1e-12 && (m[1].1 - 0.5).abs() < 1e-12, "{m:?}");
        // Identical images: no spread across images.
        let m = super::metrics(&[7, 9, 7, 9, 7, 9], 2);
        assert!((m[0].1 - 1.0).abs() < 1e-12 && m[1].1 == 0.0, "{m:?}");
    }
}
