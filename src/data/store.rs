//! The run directory on disk. Every file is written under a temporary name
//! in its final folder, then renamed, so a reader never sees a half-written
//! file under a finished name. A lock file holds the directory for one live
//! run.
//!
//! Durability ([`Durability`]): by default every file is fsynced before
//! its rename, so a power cut loses no sealed generation. `--no-fsync`
//! leaves files to the page cache: a crashed or killed process still loses
//! nothing it wrote, and what a power cut tears the manifests' hashes
//! expose (`collapse audit`) and `--resume` redraws from the seeds.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::frames::{MetricRow, ModelRow, RowsTable, SamplesTable};
use super::pool::Pool;
use crate::error::{Error, Result};
use crate::fault::{self, Point};
use crate::hashing::{FileEntry, HashingWriter};

const LOCK: &str = ".collapse.lock";
/// The folders a run writes tables and manifests into.
pub const TABLE_DIRS: [&str; 6] = ["samples", "training", "models", "metrics", "manifests", FILTER_DIR];
/// The curation filter's table: written only by runs with a `[filter]`,
/// so its folder is made by the first file, not with the others.
pub const FILTER_DIR: &str = "filter";

/// When the run's files are made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync before rename: every sealed generation survives a power cut.
    #[default]
    Fsync,
    /// Through the page cache, as the kernel writes it back.
    PageCache,
}

pub struct RunDir {
    root: PathBuf,
    durability: Durability,
    /// Threads for `write_all`'s fsyncs, started on first use and kept:
    /// spawning them per generation cost more than the syncs on tmpfs.
    syncers: std::sync::OnceLock<Pool<File, std::io::Result<()>>>,
}

/// Concurrent fsyncs: they wait on the disk, not the CPU.
const SYNC_THREADS: usize = 8;

/// A written, hashed, not yet synced file under its temporary name.
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    entry: FileEntry,
    file: Option<File>,
}

/// One file to write: a table (with its generation, for fault injection)
/// or raw bytes.
enum Job {
    Samples(PathBuf, SamplesTable, u32),
    Table(PathBuf, RowsTable),
    Text(PathBuf, Vec<u8>),
}

/// One generation's tables, handed to the writer as a whole.
pub struct GenerationFiles {
    pub k: u32,
    pub samples: SamplesTable,
    /// Model k's training set per replicate; `None` at the last generation.
    pub training: Option<Vec<(u32, Vec<(u64, u64)>)>>,
    /// The filter's decisions on each model's candidates, when the run has
    /// a filter and the generation fits a model.
    pub filter: Option<Vec<crate::filter::FilterRows>>,
    pub models: Option<Vec<ModelRow>>,
    pub metrics: Vec<MetricRow>,
    /// Other files of the generation (weights, image grids): path, bytes.
    pub extra: Vec<(PathBuf, Vec<u8>)>,
}

/// A run directory's run.json, when it is there and readable.
pub fn run_json(root: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(root.join("run.json")).ok()?).ok()
}

/// This machine's name, for lock files on a filesystem several machines
/// share (a cluster's): a pid means nothing on another host.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Who holds a lock: its pid, and the host when it was written on one.
fn holder(path: &Path) -> Option<(Option<u32>, String)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
    Some((pid, lines.next().unwrap_or("").trim().to_string()))
}

/// Whether the holder may still be running: a live pid here, or any pid on
/// another host (which this machine cannot see, so it is never taken over).
fn holder_alive(pid: Option<u32>, on: &str) -> bool {
    match pid {
        Some(_) if !on.is_empty() && on != host() => true,
        Some(pid) => pid != std::process::id() && pid_alive(pid),
        None => false,
    }
}

/// The run holding `root`'s lock, when one may be live: "pid 123" or
/// "pid 123 on node7". For `collapse status`.
pub fn live_holder(root: &Path) -> Option<String> {
    let (pid, on) = holder(&root.join(LOCK))?;
    let pid = pid?;
    (holder_alive(Some(pid), &on) || pid == std::process::id()).then(|| {
        if on.is_empty() || on == host() {
            format!("pid {pid}")
        } else {
            format!("pid {pid} on {on}")
        }
    })
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
                    writeln!(f, "{}\n{}", std::process::id(), host()).map_err(|e| Error::io(&path, e))?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let (pid, on) = holder(&path).unwrap_or((None, String::new()));
                    match pid {
                        Some(pid) if holder_alive(Some(pid), &on) && !on.is_empty() && on != host() => {
                            return Err(Error::Input(format!(
                                "{}: a run (pid {pid} on {on}) holds it; if that run is dead, remove {} and start again",
                                root.display(),
                                path.display()
                            )))
                        }
                        Some(pid) if holder_alive(Some(pid), &on) => {
                            return Err(Error::Input(format!(
                                "{}: a live run (pid {pid}) is writing here; wait for it to finish or write elsewhere with --out DIR",
                                root.display()
                            )))
                        }
                        _ => {
                            let whose = pid.map_or_else(|| "an unreadable lock".to_string(), |p| format!("pid {p}"));
                            tracing::warn!("{}: taking over the stale lock of a dead run ({whose})", root.display());
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
    pub fn create(root: &Path, durability: Durability) -> Result<RunDir> {
        Self::lock(root)?;
        let dir = RunDir { root: root.to_path_buf(), durability, syncers: std::sync::OnceLock::new() };
        if root.join("pipeline.toml").exists() || TABLE_DIRS.iter().any(|d| root.join(d).exists()) {
            return Err(Error::Input(format!(
                "{}: already holds a run; pass --resume to continue it, --out DIR to write elsewhere, or remove it first",
                root.display()
            )));
        }
        for sub in TABLE_DIRS.iter().filter(|d| **d != FILTER_DIR) {
            fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
        }
        Ok(dir)
    }

    /// Opens an existing run for `--resume`.
    pub fn open(root: &Path, durability: Durability) -> Result<RunDir> {
        if !root.join("pipeline.toml").is_file() {
            return Err(Error::Input(format!(
                "{}: no run to resume here (no pipeline.toml); drop --resume to start one",
                root.display()
            )));
        }
        Self::lock(root)?;
        for sub in TABLE_DIRS.iter().filter(|d| **d != FILTER_DIR) {
            fs::create_dir_all(root.join(sub)).map_err(|e| Error::io(root.join(sub), e))?;
        }
        Ok(RunDir { root: root.to_path_buf(), durability, syncers: std::sync::OnceLock::new() })
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

    /// Writes every table of several generations at once; returns, in
    /// order, what each generation wrote. Every file lands synced under its
    /// final name or not at all (`write_all`). A generation with a failed file keeps none of its files, nor do
    /// the generations after it; the earlier ones are returned for sealing,
    /// followed by the first error.
    pub fn write_generations(&self, gens: Vec<GenerationFiles>) -> (Vec<Vec<FileEntry>>, Option<Error>) {
        let n = gens.len();
        let mut jobs: Vec<(usize, Job)> = Vec::new();
        for (i, g) in gens.into_iter().enumerate() {
            jobs.extend(Self::jobs(g).into_iter().map(|j| (i, j)));
        }
        let owners: Vec<usize> = jobs.iter().map(|(i, _)| *i).collect();
        let results = self.write_all(jobs.into_iter().map(|(_, j)| j).collect());
        let mut per_gen: Vec<Result<Vec<FileEntry>>> = (0..n).map(|_| Ok(Vec::new())).collect();
        for (owner, r) in owners.into_iter().zip(results) {
            match (&mut per_gen[owner], r) {
                (Ok(entries), Ok(e)) => entries.push(e),
                (slot @ Ok(_), Err(e)) => {
                    // Keep the entries written so far out of the way below.
                    if let Ok(done) = std::mem::replace(slot, Err(e)) {
                        self.remove_entries(&done);
                    }
                }
                (Err(_), Ok(e)) => self.remove_entries(&[e]),
                (Err(_), Err(_)) => {}
            }
        }
        let mut kept = Vec::new();
        let mut error = None;
        for r in per_gen {
            match (r, &error) {
                (Ok(entries), None) => kept.push(entries),
                (Ok(entries), Some(_)) => self.remove_entries(&entries),
                (Err(e), None) => error = Some(e),
                (Err(_), Some(_)) => {}
            }
        }
        (kept, error)
    }

    fn remove_entries(&self, entries: &[FileEntry]) {
        for e in entries {
            let _ = fs::remove_file(self.root.join(&e.path));
        }
    }

    /// One generation's files, in the order its manifest lists them.
    fn jobs(g: GenerationFiles) -> Vec<Job> {
        let k = g.k;
        let mut jobs = vec![Job::Samples(Self::partition("samples", k), g.samples, k)];
        if let Some(runs) = g.training {
            jobs.push(Job::Table(Self::partition("training", k), RowsTable::Training(k, runs)));
        }
        if let Some(decisions) = g.filter {
            jobs.push(Job::Table(Self::partition(FILTER_DIR, k), RowsTable::Filter(k, decisions)));
        }
        if let Some(models) = g.models {
            jobs.push(Job::Table(Self::partition("models", k), RowsTable::Models(models)));
        }
        jobs.push(Job::Table(Self::metrics_file(k), RowsTable::Metrics(g.metrics)));
        jobs.extend(g.extra.into_iter().map(|(rel, bytes)| Job::Text(rel, bytes)));
        jobs
    }

    /// Writes raw files (see `write_all`); results in the given order.
    pub fn write_texts(&self, files: Vec<(PathBuf, Vec<u8>)>) -> Vec<Result<FileEntry>> {
        self.write_all(files.into_iter().map(|(rel, bytes)| Job::Text(rel, bytes)).collect())
    }

    /// Writes independent files; results in job order. Bytes are encoded
    /// and written here, one file after another; with `Durability::Fsync`
    /// the fsyncs, which on a real disk cost more than the bytes, run at
    /// once on the sync threads (concurrent fsyncs share journal commits);
    /// then each file is renamed.
    fn write_all(&self, jobs: Vec<Job>) -> Vec<Result<FileEntry>> {
        let mut staged: Vec<Result<Staged>> = jobs.into_iter().map(|j| stage_job(&self.root, j)).collect();
        let files: Vec<File> = staged.iter_mut().filter_map(|s| s.as_mut().ok().and_then(|s| s.file.take())).collect();
        let mut synced = match self.durability {
            Durability::PageCache => files.into_iter().map(|_| Some(Ok(()))).collect::<Vec<_>>().into_iter(),
            Durability::Fsync => {
                let pool =
                    self.syncers.get_or_init(|| Pool::new(SYNC_THREADS, "collapse-sync", |f: File| f.sync_all()));
                pool.map(files).into_iter()
            }
        };
        staged
            .into_iter()
            .map(|s| {
                let s = s?;
                let r = synced.next().flatten().unwrap_or_else(|| Err(std::io::Error::other("a sync thread panicked")));
                match r.and_then(|()| fs::rename(&s.tmp, &s.path)) {
                    Ok(()) => Ok(s.entry),
                    Err(e) => {
                        let _ = fs::remove_file(&s.tmp);
                        Err(Error::io(&s.path, e))
                    }
                }
            })
            .collect()
    }

    pub fn write_text(&self, rel: &Path, text: &[u8]) -> Result<FileEntry> {
        let mut one = self.write_texts(vec![(rel.to_path_buf(), text.to_vec())]);
        one.pop().unwrap_or_else(|| Err(Error::io(rel, std::io::Error::other("nothing written"))))
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

fn stage_job(root: &Path, job: Job) -> Result<Staged> {
    match job {
        Job::Samples(rel, table, k) => stage_samples(root, &rel, table, k),
        Job::Table(rel, table) => {
            let mut staged =
                stage(root, &rel, |f| table.write(f).map(|_| ()).map_err(|e| std::io::Error::other(e.to_string())))?;
            staged.entry.rows = Some(table.rows() as u64);
            Ok(staged)
        }
        Job::Text(rel, bytes) => stage(root, &rel, |f| f.write_all(&bytes)),
    }
}

fn stage_samples(root: &Path, rel: &Path, mut table: SamplesTable, k: u32) -> Result<Staged> {
    let rows = table.rows() as u64;
    let mut staged = stage(root, rel, |f| {
        if fault::is(Point::NoSpace, k) {
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (injected)"));
        }
        super::parquet_out::write_samples(f, &mut table.df, &table.ids)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        fault::pause_if(Point::PauseWrite, k);
        Ok(())
    })?;
    staged.entry.rows = Some(rows);
    Ok(staged)
}

/// Writes `rel` under a temporary name in its folder and hashes it; the
/// caller syncs and renames.
fn stage(
    root: &Path,
    rel: &Path,
    write: impl FnOnce(&mut BufWriter<HashingWriter<File>>) -> std::io::Result<()>,
) -> Result<Staged> {
    let path = root.join(rel);
    let dir = path.parent().unwrap_or(root);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    // The folder is made when the file cannot be: most files go to a folder
    // that exists (metrics/, manifests/), where a stat first was a wasted
    // syscall; a new partition's first file pays a failed lookup instead
    // of the stat (a failing mkdir would cost more on ext4).
    let created = match File::create(&tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            File::create(&tmp)
        }
        other => other,
    };
    let result = created.and_then(|f| {
        // Buffered: the Parquet writer emits many small pieces (page
        // headers, footer fields), one syscall each without a buffer. The
        // hash sits behind the buffer, so blake3 sees large pieces and
        // hashes many of its 1 KiB chunks at once.
        let mut w = BufWriter::with_capacity(1 << 20, HashingWriter::new(f));
        write(&mut w)?;
        let (f, hash, bytes) = w.into_inner().map_err(|e| e.into_error())?.finish();
        Ok((f, hash, bytes))
    });
    match result {
        Ok((file, blake3, bytes)) => {
            let entry = FileEntry { path: rel.to_string_lossy().into_owned(), blake3, bytes, rows: None };
            Ok(Staged { tmp, path, entry, file: Some(file) })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io(&path, e))
        }
    }
}

/// A file outside a run's tables (a report page, a study's plan) written
/// whole or not at all: to a temporary name of this process's, then
/// renamed, so readers and other processes writing the same bytes never
/// see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path)).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// The generation a run file belongs to, from its path:
/// `table/generation=K/...`, `metrics/generation-KKKKKKK.parquet`,
/// `manifests/generation=K.json`, `images/generation=K.png`.
pub fn file_generation(rel: &Path) -> Option<u32> {
    rel.components().find_map(|c| {
        let s = c.as_os_str().to_str()?;
        let rest = s.strip_prefix("generation=").or_else(|| s.strip_prefix("generation-"))?;
        rest.split('.').next()?.parse().ok()
    })
}

/// (K, path) of a table's Parquet files, one per generation K
/// (`table/generation=K/part-0.parquet`, `metrics/generation-K.parquet`),
/// in generation order. `sealed`: only generations below it.
pub fn partitions(root: &Path, table: &str, sealed: Option<u32>) -> Result<Vec<(u32, PathBuf)>> {
    let mut files: Vec<(u32, PathBuf)> = table_files(root)?
        .into_iter()
        .filter(|p| p.starts_with(table) && p.extension().is_some_and(|e| e == "parquet"))
        .filter_map(|p| Some((file_generation(&p)?, root.join(p))))
        .filter(|(k, _)| sealed.is_none_or(|s| *k < s))
        .collect();
    files.sort();
    Ok(files)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Block, Origin, Split, Values};

    fn generation(k: u32) -> GenerationFiles {
        let block = Block {
            first_id: 10 * k as u64,
            replicate: 0,
            generation: k,
            origin: Origin::Real,
            model_generation: None,
            split: Split::Train,
            values: Values::Vectors { d: 1, data: vec![1.0, 2.0, 3.0] },
        };
        let metrics = vec![MetricRow { replicate: 0, generation: k, metric: "mean".into(), value: 2.0 }];
        GenerationFiles {
            k,
            samples: SamplesTable::new(&[&block]).unwrap(),
            training: None,
            filter: None,
            models: None,
            metrics,
            extra: Vec::new(),
        }
    }

    #[test]
    fn a_failed_generation_in_a_batch_leaves_it_and_later_ones_unwritten() {
        let root = std::env::temp_dir().join(format!("collapse-store-batch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = RunDir::create(&root, Durability::default()).unwrap();
        // A file where generation 1's folder must go: its samples cannot be written.
        fs::create_dir_all(root.join("samples")).unwrap();
        fs::write(root.join("samples/generation=1"), b"in the way").unwrap();
        let (kept, error) = dir.write_generations(vec![generation(0), generation(1), generation(2)]);
        assert_eq!(kept.len(), 1, "only generation 0 comes back for sealing");
        assert_eq!(kept[0].len(), 2, "samples and metrics of generation 0");
        let error = error.expect("generation 1 fails").to_string();
        assert!(error.contains("samples/generation=1"), "{error}");
        let left = dir.table_files().unwrap();
        let expected: Vec<PathBuf> = kept[0].iter().map(|e| PathBuf::from(&e.path)).collect();
        let mut left_tables: Vec<PathBuf> =
            left.into_iter().filter(|p| !p.starts_with("samples/generation=1")).collect();
        left_tables.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(left_tables, expected, "generation 2 was written in the same batch and removed");
        drop(dir);
        let _ = fs::remove_dir_all(&root);
    }

    /// A lock written on another host (a cluster's shared filesystem) is
    /// never taken over: its pid cannot be checked from here.
    #[test]
    fn a_lock_from_another_host_is_respected() {
        let root = std::env::temp_dir().join(format!("collapse-store-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join(LOCK), "4000000\nsome-other-node\n").unwrap();
        assert_eq!(live_holder(&root).as_deref(), Some("pid 4000000 on some-other-node"));
        let e = RunDir::lock(&root).unwrap_err().to_string();
        assert!(e.contains("pid 4000000 on some-other-node") && e.contains("remove"), "{e}");
        // The same pid written here, dead: stale, taken over.
        fs::write(root.join(LOCK), format!("4000000\n{}\n", host())).unwrap();
        assert_eq!(live_holder(&root), None);
        RunDir::lock(&root).unwrap();
        assert!(fs::read_to_string(root.join(LOCK)).unwrap().starts_with(&format!("{}\n", std::process::id())));
        fs::remove_dir_all(&root).unwrap();
    }
}
