//! Images as CSV, raw or gzipped: one image a line, `height * width`
//! integer pixels in `0..=pixel_max` row-major, then the label when the
//! file has one (scikit-learn's 8x8 digits: pixels 0..16, label last).
//! Pixels are rescaled to u8 so every image source stores the same thing.

use std::io::BufRead;
use std::path::Path;

use crate::error::{Error, Result};
use crate::values::Values;

/// How to read such a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvImages {
    pub height: usize,
    pub width: usize,
    /// The value that means full intensity (255 for u8 data, 16 for digits).
    pub pixel_max: u32,
    /// Whether a label column follows the pixels.
    pub labelled: bool,
    /// Whether the first line names the columns (and is skipped).
    pub header: bool,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Data { file: path.to_path_buf(), message: message.into() }
}

impl CsvImages {
    /// Every image of the file, pixels rescaled to 0..=255.
    pub fn read(&self, path: &Path) -> Result<Values> {
        let px = self.height * self.width;
        let want = px + usize::from(self.labelled);
        let scale = 255.0 / f64::from(self.pixel_max);
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in super::open_maybe_gz(path)?.lines().enumerate() {
            let line = line.map_err(|e| bad(path, format!("cannot read line {}: {e}", i + 1)))?;
            if (i == 0 && self.header) || line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != want {
                let label = if self.labelled { " + 1 label" } else { "" };
                return Err(bad(
                    path,
                    format!(
                        "line {} has {} fields, but images of {}x{} need {px}{label}; check data.image and data.labelled",
                        i + 1,
                        fields.len(),
                        self.height,
                        self.width
                    ),
                ));
            }
            for (j, f) in fields.iter().enumerate() {
                let v: u32 = f.parse().map_err(|_| {
                    let hint = if i == 0 { " (if this line names the columns, set data.header = true)" } else { "" };
                    bad(path, format!("line {}, field {}: {f:?} is not a whole number >= 0{hint}", i + 1, j + 1))
                })?;
                if j < px {
                    if v > self.pixel_max {
                        return Err(bad(
                            path,
                            format!(
                                "line {}, field {}: pixel {v} is above data.pixel-max = {}; raise pixel-max",
                                i + 1,
                                j + 1,
                                self.pixel_max
                            ),
                        ));
                    }
                    // Exact for pixel_max = 255; rounds to nearest otherwise.
                    pixels.push((f64::from(v) * scale).round() as u8);
                } else {
                    let l = u8::try_from(v)
                        .map_err(|_| bad(path, format!("line {}: label {v} does not fit in 0..=255", i + 1)))?;
                    labels.push(Some(l));
                }
            }
            if !self.labelled {
                labels.push(None);
            }
        }
        if labels.is_empty() {
            return Err(bad(path, "holds no images"));
        }
        Ok(Values::Images { h: self.height, w: self.width, pixels, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_labelled_gzipped_digits_and_names_bad_lines() {
        let dir = std::env::temp_dir().join(format!("collapse-csvimg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("d.csv.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"0,16,8,4,7\n16,0,0,16,2\n").unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let spec = CsvImages { height: 2, width: 2, pixel_max: 16, labelled: true, header: false };
        let v = spec.read(&gz).unwrap();
        // 8 * 255/16 = 127.5 rounds to 128; 4 * 255/16 = 63.75 to 64.
        assert_eq!(
            v,
            Values::Images {
                h: 2,
                w: 2,
                pixels: vec![0, 255, 128, 64, 255, 0, 0, 255],
                labels: vec![Some(7), Some(2)]
            }
        );

        let raw = dir.join("h.csv");
        std::fs::write(&raw, "p0,p1,p2,p3\n1,2,3,4\n").unwrap();
        let plain = CsvImages { height: 2, width: 2, pixel_max: 255, labelled: false, header: false };
        let err = plain.read(&raw).unwrap_err().to_string();
        assert!(err.contains("h.csv") && err.contains("line 1") && err.contains("header = true"), "{err}");
        let v = CsvImages { header: true, ..plain }.read(&raw).unwrap();
        assert_eq!(v, Values::Images { h: 2, w: 2, pixels: vec![1, 2, 3, 4], labels: vec![None] });

        std::fs::write(&raw, "1,2,3\n").unwrap();
        assert!(plain.read(&raw).unwrap_err().to_string().contains("has 3 fields, but images of 2x2 need 4"));
        std::fs::write(&raw, "1,2,3,17,1\n").unwrap();
        assert!(spec.read(&raw).unwrap_err().to_string().contains("above data.pixel-max = 16"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
