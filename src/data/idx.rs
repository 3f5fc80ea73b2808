//! The IDX format of MNIST and Fashion-MNIST, raw or gzipped: a magic
//! number (0x0000_0803 for u8 images, 0x0000_0801 for u8 labels), then the
//! dimensions as big-endian u32, then the bytes.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::values::Values;

const IMAGES: u32 = 0x0803;
const LABELS: u32 = 0x0801;

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Data { file: path.to_path_buf(), message: message.into() }
}

/// The magic number and dimensions at the start of an IDX file.
fn header(path: &Path, r: &mut dyn Read, want: u32) -> Result<Vec<usize>> {
    let mut word = [0u8; 4];
    r.read_exact(&mut word).map_err(|e| bad(path, format!("not an IDX file (cannot read its header: {e})")))?;
    let magic = u32::from_be_bytes(word);
    if magic != want {
        let what = if want == IMAGES { "images (0x00000803)" } else { "labels (0x00000801)" };
        return Err(bad(path, format!("magic number {magic:#010x} is not IDX u8 {what}; is this the right file?")));
    }
    let dims = (magic & 0xff) as usize;
    let mut out = Vec::with_capacity(dims);
    for _ in 0..dims {
        r.read_exact(&mut word).map_err(|e| bad(path, format!("IDX header cut short: {e}")))?;
        out.push(u32::from_be_bytes(word) as usize);
    }
    Ok(out)
}

/// (images, height, width) from an images file's header alone.
pub fn shape(path: &Path) -> Result<(usize, usize, usize)> {
    let mut r = super::open_maybe_gz(path)?;
    let d = header(path, &mut r, IMAGES)?;
    if d[1] == 0 || d[2] == 0 || d[1] * d[2] > 1 << 20 {
        return Err(bad(path, format!("images of {}x{} pixels are not usable", d[1], d[2])));
    }
    Ok((d[0], d[1], d[2]))
}

fn body(path: &Path, r: &mut dyn Read, bytes: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.min(1 << 30));
    r.take(bytes as u64).read_to_end(&mut out).map_err(|e| bad(path, format!("cannot read the data: {e}")))?;
    if out.len() != bytes {
        return Err(bad(path, format!("the header promises {bytes} bytes of data but the file holds {}", out.len())));
    }
    Ok(out)
}

/// Every image of `images`, with the labels of `labels` when given.
pub fn read(images: &Path, labels: Option<&Path>) -> Result<Values> {
    let (n, h, w) = shape(images)?;
    let mut r = super::open_maybe_gz(images)?;
    header(images, &mut r, IMAGES)?;
    let pixels = body(images, &mut r, n * h * w)?;
    let labels = match labels {
        Some(path) => {
            let mut r = super::open_maybe_gz(path)?;
            let d = header(path, &mut r, LABELS)?;
            if d[0] != n {
                return Err(bad(path, format!("has {} labels but {} has {n} images", d[0], images.display())));
            }
            body(path, &mut r, n)?.into_iter().map(Some).collect()
        }
        None => vec![None; n],
    };
    Ok(Values::Images { h, w, pixels, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_raw_and_gzipped_files_and_names_bad_ones() {
        let dir = std::env::temp_dir().join(format!("collapse-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("img.idx");
        std::fs::write(&raw, idx(IMAGES, &[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])).unwrap();
        let gz = dir.join("lab.idx.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&idx(LABELS, &[2], &[7, 3])).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let v = read(&raw, Some(&gz)).unwrap();
        assert_eq!(v, Values::Images { h: 2, w: 3, pixels: (0..12).collect(), labels: vec![Some(7), Some(3)] });
        // Swapped files, a short body, a label count that disagrees.
        let err = read(&gz, None).unwrap_err().to_string();
        assert!(err.contains("lab.idx.gz") && err.contains("not IDX u8 images"), "{err}");
        let short = dir.join("short.idx");
        std::fs::write(&short, idx(IMAGES, &[2, 2, 3], &[0; 5])).unwrap();
        assert!(read(&short, None).unwrap_err().to_string().contains("promises 12 bytes"));
        let three = dir.join("three.idx");
        std::fs::write(&three, idx(LABELS, &[3], &[1, 2, 3])).unwrap();
        assert!(read(&raw, Some(&three)).unwrap_err().to_string().contains("has 3 labels but"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
