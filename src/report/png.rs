//! Grayscale PNG grids of u8 images (`images/generation=K.png`): the
//! paper's picture of digits blurring generation after generation.

use std::io::Write;

/// Up to `count` images (row-major `h x w` each, one after another) laid
/// out `cols` to a row with a 1-pixel gap, as PNG bytes.
pub fn grid(pixels: &[u8], h: usize, w: usize, cols: usize, count: usize) -> Vec<u8> {
    let per = (h * w).max(1);
    let n = (pixels.len() / per).min(count);
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let (gw, gh) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    // Gaps mid-gray, so white and black digits both stand out.
    let mut canvas = vec![128u8; gw * gh];
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for y in 0..h {
            let src = &pixels[i * per + y * w..i * per + (y + 1) * w];
            let at = (1 + r * (h + 1) + y) * gw + 1 + c * (w + 1);
            canvas[at..at + w].copy_from_slice(src);
        }
    }
    encode_gray(&canvas, gw, gh)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// An 8-bit grayscale PNG (no filter, zlib at a fixed level: the same
/// pixels always give the same bytes).
pub fn encode_gray(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity((width + 1) * height);
    for row in pixels.chunks(width.max(1)).take(height) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_back_to_the_canvas() {
        // Two 2x2 images side by side: a 7x4 canvas with gray gaps.
        let png = grid(&[0, 255, 255, 0, 10, 20, 30, 40], 2, 2, 2, 10);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 7, "width");
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 4, "height");
        // IDAT: inflate and check a row.
        let len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&png[41..41 + len]), &mut raw).unwrap();
        assert_eq!(raw.len(), 4 * 8);
        assert_eq!(
            &raw[8..16],
            &[0, 128, 0, 255, 128, 10, 20, 128],
            "filter byte, gap, image 0 row 0, gap, image 1 row 0"
        );
    }
}
