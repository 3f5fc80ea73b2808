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
            serde_json::json!({
                "id": c.id,
                "values": values,
                "run": format!("runs/{}", c.id),
                "generations": c.pipeline.generations,
            })
        })
        .collect();
    let mut out = serde_json::to_vec_pretty(&serde_json::json!({ "format": 1, "cells": cells })).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Where a failed cell's record lies: `DIR/failures/<cell id>.json` (the
/// error, its exit code, where the log is); removed when the cell succeeds.
pub fn failure_path(out: &Path, id: &str) -> std::path::PathBuf {
    out.join("failures").join(format!("{id}.json"))
}

/// The log this process writes to: a Slurm array task's file, as the
/// script names it; elsewhere the sweep's own standard error.
fn log_location(out: &Path) -> String {
    match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(job), Ok(task)) => out.join("tasks").join(format!("slurm-{job}_{task}.log")).display().to_string(),
        _ => "the standard error of the collapse sweep that ran it".into(),
    }
}

fn record_failure(out: &Path, cell: &Cell, error: &str, code: i32) {
    let values: serde_json::Map<String, serde_json::Value> =
        cell.values.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default())).collect();
    let record = serde_json::json!({
        "id": cell.id,
        "values": values,
        "error": error,
        "exit_code": code,
        "log": log_location(out),
        "failed_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    });
    let path = failure_path(out, &cell.id);
    let written = std::fs::create_dir_all(out.join("failures"))
        .map_err(|e| Error::io(out, e))
        .and_then(|_| write_atomic(&path, &serde_json::to_vec_pretty(&record).unwrap_or_default()));
    if let Err(e) = written {
        tracing::warn!("cell {}: could not record its failure: {}", cell.id, e.chain());
    }
}

fn clear_failure(out: &Path, id: &str) {
    if std::fs::remove_file(failure_path(out, id)).is_ok() {
        // The folder goes with its last record, so a study that ends well
        // holds the same files however often its cells were retried.
        let _ = std::fs::remove_dir(out.join("failures"));
    }
}

/// What the study's progress display is told after each cell.
#[derive(Clone, Copy, Debug)]
pub struct StudyProgress {
    pub done: usize,
    pub failed: usize,
    pub cells: usize,
    pub seconds: f64,
}

impl StudyProgress {
    /// Seconds left at the pace so far, once a cell has finished.
    pub fn eta_s(&self) -> Option<f64> {
        let finished = self.done + self.failed;
        (finished > 0).then(|| self.seconds / finished as f64 * (self.cells - finished) as f64)
    }
}

/// Runs `cells` into `out` (see the module doc).
/// `plan` is every cell of the study (written to study.json); `cells` the
/// ones this task runs; `progress` is told after each cell.
pub fn run(
    study_file: &Path,
    plan: &[Cell],
    cells: &[Cell],
    out: &Path,
    jobs: usize,
    durability: Durability,
    progress: Option<&(dyn Fn(StudyProgress) + Sync)>,
) -> Result<Outcome> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let plan_path = out.join(crate::data::plan::PLAN);
    if crate::data::plan::is_study(out) {
        // Cells already planned here must still be in the plan: a changed
        // study would leave their runs orphaned. New cells may be added.
        let gone: Vec<String> = crate::data::plan::read(out)?
            .iter()
            .filter(|c| !plan.iter().any(|n| n.id == c.id))
            .map(|c| format!("{} ({})", c.id, c.describe()))
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
    let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let clock = std::time::Instant::now();
    let results: Mutex<Vec<Option<std::result::Result<bool, (String, i32)>>>> = Mutex::new(vec![None; cells.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, cells.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(i) else { break };
                let dir = out.join("runs").join(&cell.id);
                // The cell's times go beside the runs (DIR/times/), so every
                // run directory is the same bytes however the study ran.
                let times_file = Some(Path::new("../../times").join(format!("{}.json", cell.id)));
                let options = Options {
                    resume: dir.join("pipeline.toml").is_file(),
                    durability,
                    times_file,
                    ..Options::default()
                };
                let r = match runner::run(&cell.pipeline, &dir, &options) {
                    Ok(summary) => {
                        clear_failure(out, &cell.id);
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(summary.already_complete)
                    }
                    Err(e) => {
                        record_failure(out, cell, &e.chain(), e.exit_code());
                        failed.fetch_add(1, Ordering::SeqCst);
                        Err((e.chain(), e.exit_code()))
                    }
                };
                tracing::info!(cell = %cell.id, "cell finished");
                if let Some(show) = progress {
                    show(StudyProgress {
                        done: done.load(Ordering::SeqCst),
                        failed: failed.load(Ordering::SeqCst),
                        cells: cells.len(),
                        seconds: clock.elapsed().as_secs_f64(),
                    });
                }
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

/// Settings of a Kubernetes Indexed Job for a study.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    /// The container image with `collapse` on its PATH.
    pub image: String,
    /// The PersistentVolumeClaim holding the study file and the study
    /// directory, mounted at [`K8S_MOUNT`] and used as the working folder.
    pub volume_claim: String,
    pub cpus_per_task: Option<usize>,
    /// Pods at once (`parallelism`); default every task.
    pub max_running: Option<usize>,
}

/// Where the Job mounts its volume, and its working folder.
pub const K8S_MOUNT: &str = "/studies";

/// A Kubernetes name (RFC 1123 label): lowercase letters, digits and '-',
/// at most 63 characters, starting and ending alphanumeric.
fn k8s_name(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.truncate(63 - "collapse-".len());
    let s = s.trim_matches('-');
    format!("collapse-{}", if s.is_empty() { "study" } else { s })
}

/// A Kubernetes Indexed Job whose `tasks` pods each run `collapse sweep`
/// over their share: the pod's `JOB_COMPLETION_INDEX` is the task index,
/// `COLLAPSE_TASK_COUNT` the count. `study` and `out` are paths inside the
/// volume (relative to its root), as the pods see them.
pub fn k8s_job(study: &Path, out: &Path, overrides: &[String], tasks: usize, k: &Kubernetes, name: &str) -> String {
    // A JSON string is a YAML scalar, quoted and escaped.
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut args = vec!["sweep".to_string(), study.display().to_string(), "--out".into(), out.display().to_string()];
    for o in overrides {
        args.push("--set".into());
        args.push(o.clone());
    }
    let mut y = vec![
        "# A Kubernetes Indexed Job running a collapse study: each pod runs its".to_string(),
        "# share of the cells (JOB_COMPLETION_INDEX of COLLAPSE_TASK_COUNT) into one".into(),
        "# study directory on a shared volume. Apply: kubectl apply -f THIS_FILE".into(),
        "apiVersion: batch/v1".into(),
        "kind: Job".into(),
        "metadata:".into(),
        format!("  name: {}", q(&k8s_name(name))),
        "spec:".into(),
        "  completionMode: Indexed".into(),
        format!("  completions: {tasks}"),
        format!("  parallelism: {}", k.max_running.unwrap_or(tasks).clamp(1, tasks.max(1))),
        // A failed cell is recorded and retried by the next sweep; a pod
        // that dies (evicted, out of memory) is retried, twice per task.
        format!("  backoffLimit: {}", 2 * tasks),
        "  template:".into(),
        "    spec:".into(),
        "      restartPolicy: Never".into(),
        "      containers:".into(),
        "        - name: collapse".into(),
        format!("          image: {}", q(&k.image)),
        format!("          workingDir: {}", q(K8S_MOUNT)),
        "          command: [\"collapse\"]".into(),
        "          args:".into(),
    ];
    y.extend(args.iter().map(|a| format!("            - {}", q(a))));
    y.push("          env:".into());
    y.push("            - name: COLLAPSE_TASK_COUNT".into());
    y.push(format!("              value: {}", q(&tasks.to_string())));
    if let Some(c) = k.cpus_per_task {
        y.push("          resources:".into());
        y.push("            requests:".into());
        y.push(format!("              cpu: {}", q(&c.to_string())));
    }
    y.push("          volumeMounts:".into());
    y.push("            - name: studies".into());
    y.push(format!("              mountPath: {}", q(K8S_MOUNT)));
    y.push("      volumes:".into());
    y.push("        - name: studies".into());
    y.push("          persistentVolumeClaim:".into());
    y.push(format!("            claimName: {}", q(&k.volume_claim)));
    y.join("\n") + "\n"
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
