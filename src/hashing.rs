//! What a file is, for provenance: its blake3 and size, hashed as it is
//! written or read back from disk. Used by the store that writes files and
//! by the manifests that list them.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the run directory; absolute for a source data file.
    pub path: String,
    pub blake3: String,
    pub bytes: u64,
    /// Rows of a table file.
    pub rows: Option<u64>,
}

/// blake3 and size of a file on disk.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut f = std::fs::File::open(path)?;
    let bytes = std::io::copy(&mut f, &mut hasher)?;
    Ok((hasher.finalize().to_hex().to_string(), bytes))
}

/// A `Write` that hashes and counts what passes through, so a file's hash
/// costs no second read.
pub struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: blake3::Hasher::new(), bytes: 0 }
    }

    pub fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finalize().to_hex().to_string(), self.bytes)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
