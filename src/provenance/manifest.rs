//! Per-generation manifests: the blake3 of every file a generation read and
//! wrote, chained to the previous manifest's hash, so changing any byte of
//! any file or manifest breaks the chain. No timestamps: a resumed run's
//! manifests are byte-identical to an uninterrupted run's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::hashing::{hash_file, FileEntry, HashingWriter};

/// 2: `config_blake3` hashes the pipeline without `generations`.
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub run: String,
    pub generation: u32,
    pub tool_version: String,
    /// blake3 of the run's resolved pipeline.toml.
    pub config_blake3: String,
    pub seed: u64,
    /// blake3 of every stream seed this generation's draws used, in
    /// (replicate, purpose) order; see rng::stream_seed.
    pub stream_seeds_blake3: String,
    pub previous_manifest_blake3: Option<String>,
    /// Files from earlier generations (and the source data) it read.
    pub inputs: Vec<FileEntry>,
    pub outputs: Vec<FileEntry>,
}

impl Manifest {
    pub fn path(generation: u32) -> PathBuf {
        PathBuf::from("manifests").join(format!("generation={generation}.json"))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    pub fn read(root: &Path, generation: u32) -> Result<(Manifest, String)> {
        let path = root.join(Self::path(generation));
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Data { file: path.clone(), message: format!("not a valid manifest: {e}") })?;
        Ok((m, blake3::hash(&bytes).to_hex().to_string()))
    }
}
