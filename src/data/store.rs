//! The run directory on disk. Every file is written under a temporary name
//! in its final folder, synced, then renamed, so a reader never sees a
//! half-written file under a finished name. A lock file holds the directory
//! for one live run.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::frames::{self, MetricRow, ModelRow, SamplesTable};
use super::table_error;
use crate::error::{Error, Result};
use crate::fault::{self, Point};
use crate::provenance::manifest::{FileEntry, HashingWriter};

const LOCK: &str = ".collapse.lock";
/// The folders a run writes tables and manifests into.
pub const TABLE_DIRS: [&str; 5] = ["samples", "training", "models", "metrics", "manifests"];

pub struct RunDir {
    root: PathBuf,
}

/// One generation's tables, handed to the writer as a whole.
pub struct GenerationFiles {
    pub k: u32,
    pub samples: SamplesTable,
    /// Model k's training set per replicate; `None` at the last generation.
    pub training: Option<Vec<(u32, Vec<(u64, u64)>)>>,
    pub models: Option<Vec<ModelRow>>,
    pub metrics: Vec<MetricRow>,
}

/// Fixed writer settings: the same frame always gives the same bytes.
/// Snappy: every Parquet reader has it, and against zstd it took 15% off a
/// 1000-generation run (BENCHMARKS.md). Column-parallel encoding only pays
/// on large frames; on a generation of 20k rows its task overhead cost more.
fn parquet_writer<W: Write>(w: W, rows: usize) -> ParquetWriter<W> {
    ParquetWriter::new(w)
        .set_parallel(rows >= 1 << 18)
        .with_compression(ParquetCompression::Snappy)
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(1 << 20))
}

fn pid_alive(pid: u32) -> bool {
    // Linux: a live process has /proc/<pid>. Elsewhere assume alive, so a
    // lock is never stolen from a live run.
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl RunDir {
    /// Takes the directory for this process: fails at once when a live run
    /// holds it, and takes over the lock of a dead one.
    fn lock(root: &Path) -> Result<()> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let path = root.join(LOCK);
        for _ in 0..2 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    match pid {
                        Some(pid) if pid != std::process::id() && pid_alive(pid) => {
                            return Err(Error::Input(format!(
                                "{}: a live run (pid {pid}) is writing here; wait for it to finish or write elsewhere with --out DIR",
                                root.display()
                            )))
                        }
                        _ => {
                            tracing::warn!("{}: taking over the stale lock of a dead run ({pid:?})", root.display());
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Input(format!("{}: could not take the run lock {LOCK}", root.display())))
    }

    /// Opens `root` for a new run: refuses a directory that already holds
    /// one rather than overwrite it.
    pub fn create(root: &Path) -> Result<RunDir> {
        Self::lock(root)?;
        let dir = RunDir { root: root.to_path_buf() };
        if root.join("pipeline.toml").exists() || TABLE_DIRS.iter().any(|d| root.join(d).exists()) {
            return Err(Error::Input(format!(
                "{}: already holds a run; pass --resume to continue it, --out DIR to write elsewhere, or remove it first",
                root.display()
            )));
        }
        for sub in TABLE_DIRS {
            fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
        }
        Ok(dir)
    }

    /// Opens an existing run for `--resume`.
    pub fn open(root: &Path) -> Result<RunDir> {
        if !root.join("pipeline.toml").is_file() {
            return Err(Error::Input(format!(
                "{}: no run to resume here (no pipeline.toml); drop --resume to start one",
                root.display()
            )));
        }
        Self::lock(root)?;
        for sub in TABLE_DIRS {
            fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
        }
        Ok(RunDir { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `samples/generation=K/part-0.parquet` and its siblings.
    pub fn partition(table: &str, generation: u32) -> PathBuf {
        PathBuf::from(table).join(format!("generation={generation}")).join("part-0.parquet")
    }

    pub fn metrics_file(generation: u32) -> PathBuf {
        PathBuf::from("metrics").join(format!("generation-{generation:07}.parquet"))
    }

    /// Writes every table of one generation; returns what was written.
    pub fn write_generation(&self, g: GenerationFiles) -> Result<Vec<FileEntry>> {
        let k = g.k;
        let mut jobs: Vec<(PathBuf, DataFrame)> = vec![(Self::partition("samples", k), g.samples.0)];
        if let Some(runs) = &g.training {
            jobs.push((
                Self::partition("training", k),
                frames::training_runs(k, runs).map_err(table_error("training"))?,
            ));
        }
        if let Some(models) = &g.models {
            jobs.push((Self::partition("models", k), frames::models(models).map_err(table_error("models"))?));
        }
        jobs.push((Self::metrics_file(k), frames::metrics(&g.metrics).map_err(table_error("metrics"))?));
        // In order, stopping at the first failure.
        let mut results: Vec<Result<FileEntry>> = Vec::with_capacity(jobs.len());
        for (rel, df) in jobs.iter_mut() {
            let r = self.write_parquet(rel, df, k);
            let failed = r.is_err();
            results.push(r);
            if failed {
                break;
            }
        }
        if results.iter().any(Result::is_err) {
            // Nothing of a failed generation stays under a final name.
            for e in results.iter().flatten() {
                let _ = fs::remove_file(self.root.join(&e.path));
            }
        }
        // The first error in file order, or every entry.
        results.into_iter().collect()
    }

    fn write_parquet(&self, rel: &Path, df: &mut DataFrame, k: u32) -> Result<FileEntry> {
        let rows = df.height() as u64;
        let samples = rel.starts_with("samples");
        let mut entry = self.write_atomic(rel, |f| {
            if samples && fault::is(Point::NoSpace, k) {
                return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (injected)"));
            }
            parquet_writer(f, rows as usize)
                .finish(df)
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if samples {
                fault::pause_if(Point::PauseWrite, k);
            }
            Ok(())
        })?;
        entry.rows = Some(rows);
        Ok(entry)
    }

    pub fn write_text(&self, rel: &Path, text: &[u8]) -> Result<FileEntry> {
        self.write_atomic(rel, |f| f.write_all(text))
    }

    fn write_atomic(
        &self,
        rel: &Path,
        write: impl FnOnce(&mut HashingWriter<BufWriter<File>>) -> std::io::Result<()>,
    ) -> Result<FileEntry> {
        let path = self.root.join(rel);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let result = File::create(&tmp).and_then(|f| {
            // Buffered: the Parquet writer emits many small pieces (page
            // headers, footer fields), one syscall each without a buffer.
            let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
            write(&mut w)?;
            let (f, hash, bytes) = w.finish();
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok((hash, bytes))
        });
        match result {
            Ok((blake3, bytes)) => {
                fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
                Ok(FileEntry { path: rel.to_string_lossy().into_owned(), blake3, bytes, rows: None })
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(Error::io(&path, e))
            }
        }
    }

    /// Every file under the table folders, relative to the root, sorted.
    pub fn table_files(&self) -> Result<Vec<PathBuf>> {
        table_files(&self.root)
    }

    /// Removes files no kept manifest names (a crashed run's partial
    /// generations and temporary files), before a resume rewrites them.
    pub fn remove_unlisted(&self, keep: &std::collections::BTreeSet<PathBuf>) -> Result<usize> {
        let mut removed = 0;
        for rel in self.table_files()? {
            if !keep.contains(&rel) {
                let p = self.root.join(&rel);
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Every file under a run's table folders, relative to `root`, sorted.
/// Takes no lock: reading is safe while a run writes.
pub fn table_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for sub in TABLE_DIRS {
        let mut stack = vec![root.join(sub)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(&d) else { continue };
            for e in entries {
                let p = e.map_err(|e| Error::io(&d, e))?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.to_path_buf());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.root.join(LOCK));
    }
}
