//! The run directory on disk. Every file is written under a temporary name
//! in its final folder, synced, then renamed, so a reader never sees a
//! half-written file under a finished name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::frames::{self, MetricRow, ModelRow, SamplesTable};
use super::table_error;
use crate::error::{Error, Result};

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
fn parquet_writer<W: Write>(w: W) -> ParquetWriter<W> {
    ParquetWriter::new(w)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(1 << 20))
}

impl RunDir {
    /// Opens `root` for a new run: refuses a directory that already holds
    /// one rather than overwrite it.
    pub fn create(root: &Path) -> Result<RunDir> {
        if root.join("run.json").exists() || root.join("samples").exists() {
            return Err(Error::Input(format!(
                "{}: already holds a run; pass --out DIR to write elsewhere, or remove it first",
                root.display()
            )));
        }
        for sub in ["samples", "training", "models", "metrics"] {
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

    /// Writes every table of one generation.
    pub fn write_generation(&self, mut g: GenerationFiles) -> Result<()> {
        self.write_parquet(&Self::partition("samples", g.k), &mut g.samples.0)?;
        if let Some(runs) = &g.training {
            self.write_training(g.k, runs)?;
        }
        if let Some(models) = &g.models {
            self.write_models(g.k, models)?;
        }
        self.write_metrics(g.k, &g.metrics)
    }

    /// Model k's training set, as (replicate, runs of sample ids).
    fn write_training(&self, k: u32, runs: &[(u32, Vec<(u64, u64)>)]) -> Result<()> {
        let mut df = frames::training_runs(k, runs).map_err(table_error("training"))?;
        self.write_parquet(&Self::partition("training", k), &mut df)
    }

    fn write_models(&self, k: u32, rows: &[ModelRow]) -> Result<()> {
        let mut df = frames::models(rows).map_err(table_error("models"))?;
        self.write_parquet(&Self::partition("models", k), &mut df)
    }

    fn write_metrics(&self, k: u32, rows: &[MetricRow]) -> Result<()> {
        let mut df = frames::metrics(rows).map_err(table_error("metrics"))?;
        self.write_parquet(&Self::metrics_file(k), &mut df)
    }

    fn write_parquet(&self, rel: &Path, df: &mut DataFrame) -> Result<()> {
        self.write_atomic(rel, |f| {
            parquet_writer(f).finish(df).map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()))
        })
    }

    pub fn write_text(&self, rel: &Path, text: &str) -> Result<()> {
        self.write_atomic(rel, |f| f.write_all(text.as_bytes()))
    }

    fn write_atomic(&self, rel: &Path, write: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
        let path = self.root.join(rel);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let result = File::create(&tmp).and_then(|mut f| {
            write(&mut f)?;
            f.sync_all()
        });
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&path, e));
        }
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}
