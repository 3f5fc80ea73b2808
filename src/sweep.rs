//! `collapse sweep`: a study's cells run into one study directory, on this
//! machine, up to `jobs` at once. Each cell is an ordinary run directory
//! (`DIR/runs/<cell id>/`); `DIR/study.json` is the frozen plan. Running
//! the same study again continues it: complete cells are skipped, the rest
//! resume or start; a failed cell does not stop the others.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::data::store::{write_atomic, Durability};
use crate::error::{Error, Result};
use crate::runner::{self, Options};
use crate::study::{self, Cell};

/// How a sweep went, cell by cell (ids in plan order).
#[derive(Debug, Default)]
pub struct Outcome {
    pub ran: Vec<String>,
    pub already_complete: Vec<String>,
    /// (cell id, its key values, the error, its exit code).
    pub failed: Vec<(String, String, String, i32)>,
}

/// The cells of the study file `path`, every one resolved against this
/// machine's files.
pub fn plan(path: &Path, overrides: &[String], force: bool) -> Result<Vec<Cell>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cells = study::plan(&text, base, overrides, force)
        .map_err(|problems| Error::Pipeline { file: path.to_path_buf(), problems })?;
    let mut problems = Vec::new();
    for c in &mut cells {
        let found = crate::resolve::environment(&mut c.pipeline);
        problems.extend(found.into_iter().map(|p| format!("cell {}: {p}", c.describe())));
    }
    if problems.is_empty() {
        Ok(cells)
    } else {
        Err(Error::Pipeline { file: path.to_path_buf(), problems })
    }
}

/// `study.json`: the plan, with no timestamps, so it is the same bytes
/// whoever ran the study and however.
pub fn plan_json(cells: &[Cell]) -> Vec<u8> {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            let values: serde_json::Map<String, serde_json::Value> = c
                .values
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
                .collect();
            serde_json::json!({ "id": c.id, "values": values, "run": format!("runs/{}", c.id) })
        })
        .collect();
    let mut out = serde_json::to_vec_pretty(&serde_json::json!({ "format": 1, "cells": cells })).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Runs `cells` into `out` (see the module doc).
/// `plan` is every cell of the study (written to study.json); `cells` the
/// ones this task runs.
pub fn run(
    study_file: &Path,
    plan: &[Cell],
    cells: &[Cell],
    out: &Path,
    jobs: usize,
    durability: Durability,
) -> Result<Outcome> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let plan_path = out.join("study.json");
    if let Ok(before) = std::fs::read(&plan_path) {
        // Cells already planned here must still be in the plan: a changed
        // study would leave their runs orphaned. New cells may be added.
        let before: serde_json::Value = serde_json::from_slice(&before)
            .map_err(|e| Error::Data { file: plan_path.clone(), message: format!("not a study plan: {e}") })?;
        let gone: Vec<String> = before["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !plan.iter().any(|n| c["id"] == n.id.as_str()))
            .map(|c| format!("{} ({})", c["id"].as_str().unwrap_or("?"), c["values"]))
            .collect();
        if !gone.is_empty() {
            return Err(Error::Input(format!(
                "{}: holds a study whose cells this file no longer has: {}; write the changed study elsewhere with --out DIR",
                out.display(),
                gone.join(", ")
            )));
        }
    }
    let bytes = std::fs::read(study_file).map_err(|e| Error::io(study_file, e))?;
    write_atomic(&out.join("study.toml"), &bytes)?;
    write_atomic(&plan_path, &plan_json(plan))?;

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<std::result::Result<bool, (String, i32)>>>> = Mutex::new(vec![None; cells.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, cells.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(i) else { break };
                let dir = out.join("runs").join(&cell.id);
                let options = Options { resume: dir.join("pipeline.toml").is_file(), durability, ..Options::default() };
                let r = match runner::run(&cell.pipeline, &dir, &options) {
                    Ok(summary) => Ok(summary.already_complete),
                    Err(e) => Err((e.chain(), e.exit_code())),
                };
                tracing::info!(cell = %cell.id, "cell finished");
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut outcome = Outcome::default();
    for (cell, r) in cells.iter().zip(results) {
        match r {
            Some(Ok(true)) => outcome.already_complete.push(cell.id.clone()),
            Some(Ok(false)) => outcome.ran.push(cell.id.clone()),
            Some(Err((error, code))) => outcome.failed.push((cell.id.clone(), cell.describe(), error, code)),
            None => outcome.failed.push((cell.id.clone(), cell.describe(), "did not run".into(), 1)),
        }
    }
    Ok(outcome)
}

/// Settings of a Slurm job array for a study.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    /// Most array tasks running at once (`%W`).
    pub max_running: Option<usize>,
}

/// An sbatch script running the study as a job array of `tasks` tasks,
/// each `collapse sweep` over its share (Slurm's variables pick it).
/// Paths are absolute, so the script runs from any folder of the cluster.
pub fn slurm_script(
    exe: &Path,
    study: &Path,
    out: &Path,
    overrides: &[String],
    tasks: usize,
    s: &Slurm,
    name: &str,
) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let quote = |t: &str| format!("'{}'", t.replace('\'', "'\\''"));
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=collapse-{name}"),
        format!(
            "#SBATCH --array=0-{}{}",
            tasks.saturating_sub(1),
            s.max_running.map(|w| format!("%{w}")).unwrap_or_default()
        ),
        format!("#SBATCH --output={}/tasks/slurm-%A_%a.log", abs(out)),
    ];
    if let Some(p) = &s.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &s.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if let Some(c) = s.cpus_per_task {
        lines.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    let mut cmd = vec![quote(&abs(exe)), "sweep".into(), quote(&abs(study)), "--out".into(), quote(&abs(out))];
    for o in overrides {
        cmd.push("--set".into());
        cmd.push(quote(o));
    }
    lines.push(String::new());
    lines.push("# Each array task runs its share of the cells (SLURM_ARRAY_TASK_* pick it).".into());
    lines.push(format!("exec {}", cmd.join(" ")));
    lines.join("\n") + "\n"
}

/// This task's share of the cells: those at positions `index`, `index +
/// count`, ... of the plan. Every cell lands in exactly one task, whatever
/// the count, and the bytes of each cell's run do not depend on which.
pub fn shard(cells: Vec<Cell>, index: usize, count: usize) -> Result<Vec<Cell>> {
    if count == 0 || index >= count {
        return Err(Error::Input(format!(
            "--task-index {index} with --task-count {count}: the index must be below the count (0 .. {})",
            count.saturating_sub(1)
        )));
    }
    Ok(cells.into_iter().enumerate().filter(|(i, _)| i % count == index).map(|(_, c)| c).collect())
}

/// The task index and count a scheduler gives this process: Slurm's array
/// (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`),
/// or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with the count in
/// `COLLAPSE_TASK_COUNT`).
pub fn scheduler_task() -> Option<(usize, usize)> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok());
    if let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
        return Some((id.checked_sub(var("SLURM_ARRAY_TASK_MIN").unwrap_or(0))?, count));
    }
    Some((var("JOB_COMPLETION_INDEX")?, var("COLLAPSE_TASK_COUNT")?))
}
