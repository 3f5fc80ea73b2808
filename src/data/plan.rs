//! A study directory's frozen plan, `study.json`, as the verbs that read a
//! study see it: one entry per cell, in plan order. `collapse sweep` writes
//! it ([`crate::sweep::plan_json`]); status, query, audit, report and
//! compare read it here.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The plan's file name in a study directory.
pub const PLAN: &str = "study.json";

/// One cell of the plan.
pub struct Planned {
    pub id: String,
    /// Its swept keys and their values (`seed` among them when seeds are
    /// swept).
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Its run directory, relative to the study directory (`runs/<id>`).
    pub run: String,
    pub generations: u32,
}

impl Planned {
    /// "key=value, ..." with values as JSON (strings quoted).
    pub fn describe(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }

    /// Its run directory in the study directory `dir`.
    pub fn run_dir(&self, dir: &Path) -> PathBuf {
        dir.join("runs").join(&self.id)
    }
}

/// Whether `dir` holds a study (a plan), not a single run.
pub fn is_study(dir: &Path) -> bool {
    dir.join(PLAN).is_file()
}

/// The cells of the study in `dir`, in plan order.
pub fn read(dir: &Path) -> Result<Vec<Planned>> {
    let path = dir.join(PLAN);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Data { file: path.clone(), message: format!("not a study plan: {e}") })?;
    let cells = v["cells"]
        .as_array()
        .ok_or_else(|| Error::Data { file: path, message: "not a study plan (no cells list)".into() })?;
    Ok(cells
        .iter()
        .map(|c| Planned {
            id: c["id"].as_str().unwrap_or("").to_string(),
            values: c["values"].as_object().cloned().unwrap_or_default(),
            run: c["run"].as_str().unwrap_or("").to_string(),
            generations: c["generations"].as_u64().unwrap_or(0) as u32,
        })
        .collect())
}
