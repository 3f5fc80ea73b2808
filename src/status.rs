//! `collapse status DIR`: where a study (or one run) stands, cell by cell,
//! read from the files alone (study.json, each run's run.json, manifests and
//! lock, the failure records), so it works while tasks run elsewhere.

use std::path::Path;

use crate::data::{plan, store};
use crate::error::{Error, Result};
use crate::provenance::manifest::Manifest;
use crate::sweep::failure_path;

/// One cell's state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Every generation sealed.
    Done,
    /// A live run holds its lock.
    Running,
    /// Its last attempt failed (the record says why).
    Failed,
    /// Started, then stopped without finishing or failing (killed): the
    /// next sweep resumes it.
    Interrupted,
    /// Not started.
    Pending,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CellStatus {
    pub id: String,
    /// The cell's swept keys and values, "key=value, ...".
    pub values: String,
    pub state: State,
    pub sealed: u32,
    /// Generations 0 ..= this are the run's (so `generations + 1` manifests).
    pub generations: u32,
    /// Wall time: start to finish, or to now while it runs.
    pub seconds: Option<u64>,
    /// The failure's error, exit code and log, or the live lock's holder.
    pub detail: Option<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Manifests 0, 1, ... present in a row (not verified: `audit` does that).
fn sealed(run: &Path) -> u32 {
    (0..).take_while(|&k| run.join(Manifest::path(k)).is_file()).count() as u32
}

fn cell(study: &Path, id: &str, values: String, run: &Path, generations: u32) -> CellStatus {
    let json = store::run_json(run);
    let failure: Option<serde_json::Value> =
        std::fs::read(failure_path(study, id)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let times = crate::provenance::times_from(run, json.as_ref());
    let (started, finished) = (times.started, times.finished);
    let status = json.as_ref().and_then(|j| j["status"].as_str().map(str::to_string));
    let holder = store::live_holder(run);
    let (state, detail) = if let Some(h) = holder {
        (State::Running, Some(format!("held by {h}")))
    } else if status.as_deref() == Some("complete") {
        (State::Done, None)
    } else if let Some(f) = &failure {
        let detail = format!(
            "exit {}: {} (log: {})",
            f["exit_code"].as_i64().unwrap_or(1),
            f["error"].as_str().unwrap_or("no error text"),
            f["log"].as_str().unwrap_or("unknown")
        );
        (State::Failed, Some(detail))
    } else if status.as_deref() == Some("failed") {
        let error = json.as_ref().and_then(|j| j["error"].as_str().map(str::to_string));
        (State::Failed, error)
    } else if json.is_some() {
        (State::Interrupted, None)
    } else {
        (State::Pending, None)
    };
    let seconds = match (&state, started, finished) {
        (State::Done, Some(s), Some(f)) => Some(f.saturating_sub(s)),
        (State::Running, Some(s), _) => Some(now().saturating_sub(s)),
        _ => None,
    };
    let generations = json.as_ref().and_then(|j| j["generations"].as_u64()).map_or(generations, |g| g as u32);
    CellStatus { id: id.to_string(), values, state, sealed: sealed(run), generations, seconds, detail }
}

/// Every cell of the study in `dir` (or the run in `dir`, as one cell).
pub fn status(dir: &Path) -> Result<Vec<CellStatus>> {
    if plan::is_study(dir) {
        return Ok(plan::read(dir)?
            .iter()
            .map(|c| cell(dir, &c.id, c.describe(), &c.run_dir(dir), c.generations))
            .collect());
    }
    if dir.join("pipeline.toml").is_file() {
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        return Ok(vec![cell(dir, &name, String::new(), dir, 0)]);
    }
    Err(Error::Input(format!(
        "{}: neither a study directory (no study.json) nor a run directory (no pipeline.toml)",
        dir.display()
    )))
}

/// "12 cells: 8 done, 1 running, 1 failed, 0 interrupted, 2 pending".
pub fn totals(cells: &[CellStatus]) -> String {
    let count = |s: State| cells.iter().filter(|c| c.state == s).count();
    format!(
        "{} cells: {} done, {} running, {} failed, {} interrupted, {} pending",
        cells.len(),
        count(State::Done),
        count(State::Running),
        count(State::Failed),
        count(State::Interrupted),
        count(State::Pending)
    )
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Done => "done",
            State::Running => "running",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
            State::Pending => "pending",
        }
    }
}
