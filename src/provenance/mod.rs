//! Provenance: the manifest hash chain, the audit, the run lock's users,
//! and OpenLineage export.

pub mod audit;
pub mod lineage;
pub mod manifest;
pub mod study;

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::store::RunDir;
use crate::error::Result;
use crate::rng::{stream_seed, Purpose};
use manifest::{hash_file, FileEntry, Manifest, FORMAT};

const PURPOSES: [Purpose; 6] =
    [Purpose::RealData, Purpose::Holdout, Purpose::Sample, Purpose::Mix, Purpose::Fresh, Purpose::Fit];

/// blake3 over every stream seed of generation `k`, replicate-major.
/// The seeds are gathered first and hashed in one call: fed eight bytes at
/// a time, blake3 compresses block by block instead of sixteen chunks at
/// once (the same digest either way).
pub fn stream_seeds_digest(seed: u64, replicates: u32, k: u32) -> String {
    let mut bytes = Vec::with_capacity(replicates as usize * PURPOSES.len() * 8);
    for r in 0..replicates {
        for p in PURPOSES {
            bytes.extend_from_slice(&stream_seed(seed, r, k, p).to_le_bytes());
        }
    }
    blake3::hash(&bytes).to_hex().to_string()
}

/// When a run started, was resumed and finished (unix seconds), from
/// run.json, or from the file its `times_file` names (a study cell keeps
/// its times outside the run directory, so the directory's bytes do not
/// depend on when or where it ran).
pub struct Times {
    pub started: Option<u64>,
    pub resumed: Vec<u64>,
    pub finished: Option<u64>,
}

pub fn times(root: &Path) -> Times {
    times_from(root, crate::data::store::run_json(root).as_ref())
}

/// [`times`] of a run whose run.json (`run`) is already read.
pub fn times_from(root: &Path, run: Option<&serde_json::Value>) -> Times {
    let file;
    let source = match run.and_then(|j| j["times_file"].as_str()) {
        Some(rel) => {
            file =
                std::fs::read(root.join(rel)).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            file.as_ref()
        }
        None => run,
    };
    let Some(j) = source else { return Times { started: None, resumed: Vec::new(), finished: None } };
    Times {
        started: j["started_unix"].as_u64(),
        resumed: j["resumed_unix"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default(),
        finished: j["finished_unix"].as_u64(),
    }
}

/// What a manifest's `config_blake3` must be for the run's pipeline.toml.
pub struct Identity {
    /// blake3 of [`crate::pipeline::identity_toml`]: manifests of format 2.
    pub current: String,
    /// blake3 of the whole pipeline.toml, generations included: format 1
    /// manifests (before runs could be extended), still resumed and audited.
    pub format1: String,
}

impl Identity {
    /// What manifests of the run whose pipeline.toml is `text` must say.
    pub fn of(text: &[u8]) -> Identity {
        let identity = crate::pipeline::identity_of(&String::from_utf8_lossy(text)).unwrap_or_default();
        Identity {
            current: blake3::hash(identity.as_bytes()).to_hex().to_string(),
            format1: blake3::hash(text).to_hex().to_string(),
        }
    }

    pub fn matches(&self, m: &Manifest) -> bool {
        if m.format == 1 {
            m.config_blake3 == self.format1
        } else {
            m.config_blake3 == self.current
        }
    }
}

/// The longest prefix of generations 0, 1, ... whose manifests chain to
/// each other, belong to this configuration, and whose every output file
/// still has its recorded hash: what a resume may keep.
pub fn verified_prefix(root: &Path, config: &Identity, generations: u32) -> Vec<(Manifest, String)> {
    let mut out: Vec<(Manifest, String)> = Vec::new();
    for k in 0..=generations {
        let Ok((m, hash)) = Manifest::read(root, k) else { break };
        let previous = out.last().map(|(_, h)| h.clone());
        let files_ok = m
            .outputs
            .iter()
            .all(|e| hash_file(&root.join(&e.path)).is_ok_and(|(h, bytes)| h == e.blake3 && bytes == e.bytes));
        if m.generation != k || m.previous_manifest_blake3 != previous || !config.matches(&m) || !files_ok {
            break;
        }
        out.push((m, hash));
    }
    out
}

/// Seals generations one after another into the hash chain.
pub struct Sealer {
    run: String,
    config_blake3: String,
    seed: u64,
    replicates: u32,
    /// The source data files, inputs of generation 0.
    source: Vec<FileEntry>,
    previous: Option<String>,
    /// Written files by generation, for later generations' inputs.
    written: BTreeMap<u32, Vec<FileEntry>>,
}

impl Sealer {
    pub fn new(run: &str, config_blake3: String, seed: u64, replicates: u32, source: Vec<FileEntry>) -> Self {
        Sealer {
            run: run.to_string(),
            config_blake3,
            seed,
            replicates,
            source,
            previous: None,
            written: BTreeMap::new(),
        }
    }

    /// Hash of the last sealed manifest.
    pub fn last(&self) -> Option<&str> {
        self.previous.as_deref()
    }

    fn entry(&self, generation: u32, table: &str) -> Option<FileEntry> {
        self.written.get(&generation)?.iter().find(|e| e.path.starts_with(table)).cloned()
    }

    /// The manifest of generation `k`: `reads` are the earlier generations
    /// whose samples its training sets draw from.
    pub fn manifest(&self, k: u32, outputs: Vec<FileEntry>, reads: &[u32]) -> Manifest {
        let mut inputs = Vec::new();
        if k == 0 {
            inputs.extend(self.source.iter().cloned());
        } else {
            // D_k was sampled by model k-1.
            inputs.extend(self.entry(k - 1, "models"));
            inputs.extend(reads.iter().filter(|&&j| j < k).filter_map(|&j| self.entry(j, "samples")));
        }
        Manifest {
            format: FORMAT,
            run: self.run.clone(),
            generation: k,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            config_blake3: self.config_blake3.clone(),
            seed: self.seed,
            stream_seeds_blake3: stream_seeds_digest(self.seed, self.replicates, k),
            previous_manifest_blake3: self.previous.clone(),
            inputs,
            outputs,
        }
    }

    /// Seals several generations at once, in order: the manifests are
    /// chained in memory, then written in parallel. Every file they name is
    /// already synced under its final name.
    pub fn seal_all(&mut self, dir: &RunDir, batch: Vec<(u32, Vec<FileEntry>, Vec<u32>)>) -> Result<()> {
        let mut files = Vec::with_capacity(batch.len());
        for (k, outputs, reads) in batch {
            let m = self.manifest(k, outputs, &reads);
            let bytes = m.to_bytes();
            self.accept(m, blake3::hash(&bytes).to_hex().to_string());
            files.push((Manifest::path(k), bytes));
        }
        dir.write_texts(files).into_iter().try_for_each(|r| r.map(|_| ()))
    }

    /// Takes an existing, verified manifest into the chain (resume).
    pub fn accept(&mut self, m: Manifest, hash: String) {
        self.written.insert(m.generation, m.outputs);
        self.previous = Some(hash);
    }
}
