//! A command stage: the user's program as generation k's model (README,
//! "Your own model"). T_k goes to the program as Parquet with a stage.json
//! of facts, the program runs (argv, no shell; its output to a log; killed
//! at the timeout), and its rows come back checked. Its scratch folder is
//! `RUN/.stages/generation=K/replicate=R/`; what it leaves in `{model_dir}`
//! and its log are handed back as the generation's files to be hashed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::data::stage_io::{self, TrainingRows};
use crate::error::{Error, Result};
use crate::hashing::hash_file;
use crate::model::CommandSettings;
use crate::pipeline::Pipeline;

/// How many programs may run at once (`model.parallel`).
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots { free: Mutex::new(n.max(1)), freed: Condvar::new() }
    }

    fn take(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// The scratch folder of one stage.
pub fn scratch(root: &Path, k: u32, replicate: u32) -> PathBuf {
    root.join(".stages").join(format!("generation={k}")).join(format!("replicate={replicate}"))
}

/// Where a stage's model files are kept, sealed, in the run directory.
pub fn artifacts(k: u32, replicate: u32) -> PathBuf {
    PathBuf::from("artifacts").join(format!("generation={k}")).join(format!("replicate={replicate}"))
}

/// Where a stage's log is kept, sealed, in the run directory.
pub fn log_path(k: u32, replicate: u32) -> PathBuf {
    PathBuf::from("logs").join(format!("generation={k}")).join(format!("replicate={replicate}.log"))
}

/// What a stage gave back.
pub struct Output {
    /// D_{k+1} (a text run's rows not yet tokenized: `ids` empty).
    pub values: crate::values::Values,
    /// The models table's params: the command, its program's blake3, the
    /// exit code and the program's model.json when it wrote one.
    pub params: String,
    /// Files for the run directory: the log and the model files.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// The facts of one stage.
pub struct Stage<'a> {
    pub root: &'a Path,
    pub k: u32,
    pub replicate: u32,
    pub seed: u64,
    pub rows: TrainingRows<'a>,
    /// What the program must write.
    pub shape: stage_io::Shape,
    /// A text run's tokenizer (Hugging Face's JSON), for programs that
    /// want the run's own tokens.
    pub tokenizer: Option<String>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Runs generation `k`'s program for one replicate (see the module doc).
pub fn run(s: &CommandSettings, p: &Pipeline, slots: &Slots, stage: Stage) -> Result<Output> {
    let Stage { root, k, replicate, seed, rows, shape, tokenizer } = stage;
    let dir = scratch(root, k, replicate);
    let _ = std::fs::remove_dir_all(&dir);
    let model_dir = dir.join("model");
    std::fs::create_dir_all(&model_dir).map_err(|e| Error::io(&model_dir, e))?;
    let (train, out, context, log) =
        (dir.join("train.parquet"), dir.join("out.parquet"), dir.join("stage.json"), dir.join("stage.log"));
    stage_io::write_training(&train, &rows)?;
    let tokenizer_file = match tokenizer {
        Some(json) => {
            let f = dir.join("tokenizer.json");
            std::fs::write(&f, json).map_err(|e| Error::io(&f, e))?;
            Some(f)
        }
        None => None,
    };
    // The previous model's files: still in scratch while this run goes on,
    // sealed in the run directory after a resume.
    let prev = k.checked_sub(1).map(|j| {
        let live = scratch(root, j, replicate).join("model");
        if live.is_dir() {
            live
        } else {
            root.join(artifacts(j, replicate))
        }
    });
    let abs = |q: &Path| absolute(q).display().to_string();
    let facts = serde_json::json!({
        "run": p.name,
        "replicate": replicate,
        "generation": k,
        "seed": seed,
        "n": p.generate_n,
        "train_rows": rows.sample_id.len(),
        "columns": shape.columns().iter().map(|(c, t)| serde_json::json!({ "name": c, "type": t })).collect::<Vec<_>>(),
        "train": abs(&train),
        "out": abs(&out),
        "model_dir": abs(&model_dir),
        "prev_model_dir": prev.as_deref().map(abs),
        "tokenizer": tokenizer_file.as_deref().map(abs),
    });
    std::fs::write(&context, serde_json::to_vec_pretty(&facts).unwrap_or_default())
        .map_err(|e| Error::io(&context, e))?;
    let argv = fill(
        &s.command,
        &[
            ("{train}", abs(&train)),
            ("{out}", abs(&out)),
            ("{context}", abs(&context)),
            ("{seed}", seed.to_string()),
            ("{n}", p.generate_n.to_string()),
            ("{model_dir}", abs(&model_dir)),
            ("{prev_model_dir}", prev.as_deref().map(abs).unwrap_or_default()),
        ],
    );
    let shown = argv.join(" ");
    let where_ = |message: String| Error::Stage {
        generation: k,
        replicate,
        command: shown.clone(),
        log: root.join(log_path(k, replicate)),
        message,
    };
    let mut cmd = program(s, p, &argv, k, replicate, seed, &abs(&out), &abs(&context));
    cmd.env("COLLAPSE_TRAIN", abs(&train))
        .env("COLLAPSE_N", p.generate_n.to_string())
        .env("COLLAPSE_MODEL_DIR", abs(&model_dir))
        .env("COLLAPSE_PREV_MODEL_DIR", prev.as_deref().map(abs).unwrap_or_default())
        .env("COLLAPSE_TOKENIZER", tokenizer_file.as_deref().map(abs).unwrap_or_default())
        .envs(&s.env);
    let sealed_log = log_path(k, replicate);
    let (status, text) = execute(cmd, &log, s.timeout, slots, k, replicate, &where_, &root.join(&sealed_log))?;
    let values = stage_io::read_output(&out, shape, p.generate_n).map_err(|what| {
        let _ = write_log_copy(&root.join(&sealed_log), &text);
        where_(what)
    })?;
    let mut files = vec![(sealed_log, text.into_bytes())];
    let mut model_json = None;
    for f in walk(&model_dir) {
        let rel = f.strip_prefix(&model_dir).unwrap_or(&f).to_path_buf();
        let bytes = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
        if rel == Path::new("model.json") {
            model_json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        }
        files.push((artifacts(k, replicate).join(rel), bytes));
    }
    // The files the command names (the program when it is a path, the
    // script an interpreter runs), by their blake3: what the model was.
    let dir_of = s.workdir_at(&p.base);
    let named: std::collections::BTreeMap<&str, String> = s
        .command
        .iter()
        .filter(|a| !a.contains('{') && (a.contains('/') || a.contains('.')))
        .filter_map(|a| {
            let f = crate::keys::at_base(&dir_of, a);
            f.is_file().then(|| hash_file(&f).ok().map(|(h, _)| (a.as_str(), h))).flatten()
        })
        .collect();
    let params = serde_json::json!({
        "command": s.command,
        "files_blake3": named,
        "exit_code": status.code(),
        "model": model_json,
    });
    Ok(Output { values, params: params.to_string(), files })
}

/// Where a command filter's log is kept, sealed, in the run directory.
pub fn filter_log_path(k: u32, replicate: u32) -> PathBuf {
    PathBuf::from("logs").join("filter").join(format!("generation={k}")).join(format!("replicate={replicate}.log"))
}

/// Runs a command filter's program over model k's candidates for one
/// replicate: the candidates to Parquet (sample_id, replicate, the data
/// columns), the program run like a command stage's (argv, log, timeout),
/// its `sample_id, score` read back. Returns the scores in candidate order
/// and the log to seal.
#[allow(clippy::too_many_arguments)]
pub fn run_filter(
    s: &CommandSettings,
    p: &Pipeline,
    slots: &Slots,
    root: &Path,
    k: u32,
    replicate: u32,
    seed: u64,
    ids: &[u64],
    values: &crate::values::Values,
) -> Result<(Vec<f64>, (PathBuf, Vec<u8>))> {
    let dir =
        root.join(".stages").join("filter").join(format!("generation={k}")).join(format!("replicate={replicate}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (candidates, out, context, log) =
        (dir.join("candidates.parquet"), dir.join("scores.parquet"), dir.join("filter.json"), dir.join("filter.log"));
    stage_io::write_candidates(&candidates, ids, replicate, values)?;
    let abs = |q: &Path| absolute(q).display().to_string();
    let facts = serde_json::json!({
        "run": p.name,
        "replicate": replicate,
        "generation": k,
        "seed": seed,
        "candidates_rows": ids.len(),
        "candidates": abs(&candidates),
        "out": abs(&out),
    });
    std::fs::write(&context, serde_json::to_vec_pretty(&facts).unwrap_or_default())
        .map_err(|e| Error::io(&context, e))?;
    let argv = fill(
        &s.command,
        &[
            ("{candidates}", abs(&candidates)),
            ("{out}", abs(&out)),
            ("{context}", abs(&context)),
            ("{seed}", seed.to_string()),
        ],
    );
    let shown = argv.join(" ");
    let sealed_log = filter_log_path(k, replicate);
    let where_ = |message: String| Error::Stage {
        generation: k,
        replicate,
        command: format!("{shown} (the filter)"),
        log: root.join(&sealed_log),
        message,
    };
    let mut cmd = program(s, p, &argv, k, replicate, seed, &abs(&out), &abs(&context));
    cmd.env("COLLAPSE_CANDIDATES", abs(&candidates)).envs(&s.env);
    let (_, text) = execute(cmd, &log, s.timeout, slots, k, replicate, &where_, &root.join(&sealed_log))?;
    let scores = stage_io::read_scores(&out, ids).map_err(|what| {
        let _ = write_log_copy(&root.join(&sealed_log), &text);
        where_(what)
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((scores, (sealed_log, text.into_bytes())))
}

/// A command line with its placeholders (`{out}`, ...) replaced.
fn fill(command: &[String], values: &[(&str, String)]) -> Vec<String> {
    command.iter().map(|a| values.iter().fold(a.clone(), |a, (k, v)| a.replace(k, v))).collect()
}

/// A user's program as a command: argv in its working folder, with the
/// `COLLAPSE_*` variables every program gets (callers add their own, then
/// the user's `env`, which wins).
#[allow(clippy::too_many_arguments)]
fn program(
    s: &CommandSettings,
    p: &Pipeline,
    argv: &[String],
    k: u32,
    replicate: u32,
    seed: u64,
    out: &str,
    context: &str,
) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(s.workdir_at(&p.base))
        .env("COLLAPSE_OUT", out)
        .env("COLLAPSE_CONTEXT", context)
        .env("COLLAPSE_SEED", seed.to_string())
        .env("COLLAPSE_GENERATION", k.to_string())
        .env("COLLAPSE_REPLICATE", replicate.to_string());
    cmd
}

/// Runs a user's program (argv, no shell, stdin closed) in one of `slots`:
/// its stdout and stderr into `log` as they come, killed after `timeout`
/// seconds. A program that fails or cannot run is an error (`where_`
/// words it) whose log is copied to `sealed_log`, where the message says
/// it is; otherwise its exit status and log text.
#[allow(clippy::too_many_arguments)]
fn execute(
    mut cmd: Command,
    log: &Path,
    timeout: Option<f64>,
    slots: &Slots,
    k: u32,
    replicate: u32,
    where_: &dyn Fn(String) -> Error,
    sealed_log: &Path,
) -> Result<(std::process::ExitStatus, String)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let log_file = std::sync::Arc::new(Mutex::new(std::fs::File::create(log).map_err(|e| Error::io(log, e))?));
    let status = (|| -> Result<std::process::ExitStatus> {
        let _slot = slots.take();
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| where_(format!("could not be started: {e}")))?;
        // Both streams into the log as they come, and to `-v`'s log lines.
        let pipes: Vec<Box<dyn std::io::Read + Send>> = [
            child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Not joined after a kill: a grandchild may still hold the pipe.
        let copiers: Vec<_> = pipes
            .into_iter()
            .map(|pipe| {
                let log_file = log_file.clone();
                std::thread::spawn(move || copy_lines(pipe, &log_file, k, replicate))
            })
            .collect();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    for c in copiers {
                        let _ = c.join();
                    }
                    break Ok(status);
                }
                Ok(None) => {}
                Err(e) => return Err(where_(format!("could not be waited for: {e}"))),
            }
            if timeout.is_some_and(|t| started.elapsed().as_secs_f64() > t) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(where_(format!("timed out after {} s and was killed", timeout.unwrap_or(0.0))));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = write_log_copy(sealed_log, &read_log(log));
            return Err(e);
        }
    };
    let text = read_log(log);
    if !status.success() {
        let _ = write_log_copy(sealed_log, &text);
        let how = match status.code() {
            Some(c) => format!("exited with code {c}"),
            None => "was killed by a signal".to_string(),
        };
        let tail: Vec<&str> = text.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(where_(format!("{how}; its last lines: {}", tail.join(" | "))));
    }
    Ok((status, text))
}

/// Copies a program's stream into its log line by line (bytes as they
/// are), each line also a `tracing` event (`collapse -v` shows them).
fn copy_lines(pipe: Box<dyn std::io::Read + Send>, log: &Mutex<std::fs::File>, k: u32, replicate: u32) {
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::new(pipe);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        if let Ok(mut f) = log.lock() {
            let _ = f.write_all(&line);
        }
        tracing::info!(generation = k, replicate, "{}", String::from_utf8_lossy(&line).trim_end());
        line.clear();
    }
}

fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// A failed stage's log, where the error message says it is (not sealed:
/// the generation failed).
fn write_log_copy(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Every file under `dir`, sorted (the order files are sealed in).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
