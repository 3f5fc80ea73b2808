//! Reading files that come raw or gzipped (IDX images, CSV, text corpora).

use crate::error::{Error, Result};

/// A file for reading, through gzip when it starts with gzip's magic
/// bytes (the image formats come either way).
pub fn open_maybe_gz(path: &std::path::Path) -> Result<Box<dyn std::io::BufRead>> {
    use std::io::{BufReader, Read};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(if gz { Box::new(BufReader::new(flate2::read::GzDecoder::new(f))) } else { Box::new(BufReader::new(f)) })
}
