//! The `collapse` command line: parse arguments, call the library, map
//! errors to exit codes (2: fix your input; 1: the run met a failure).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use collapse::data::query::{self, Format};
use collapse::data::store::Durability;
use collapse::progress::{self, Progress};
use collapse::provenance::audit::{Checked, Step};
use collapse::runner::{self, Options};

/// mimalloc keeps freed large blocks for reuse, where glibc hands every
/// block over 32 MB back to the kernel and the next one page-faults in
/// afresh: a VAE epoch allocates tens of such tensors per batch (the
/// paper's run spent 40% of its time in the kernel; BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Never hand freed memory back to the kernel (mimalloc's `purge_delay` =
/// -1): the same tensor sizes come back every batch, and a purged block
/// page-faults back in zeroed (12% of a VAE epoch).
fn keep_freed_memory() {
    // `mi_option_purge_delay` in the bundled mimalloc.h (v2 and v3), which
    // libmimalloc-sys does not name.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide integer option; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(name = "collapse", version, about = "Recursive-training (model collapse) experiments with provenance")]
struct Cli {
    /// Log progress and details (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline into a run directory (default runs/<name>).
    Run {
        pipeline: PathBuf,
        /// Write the run here instead of runs/<name>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a pipeline key, e.g. --set generate.n=500 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue an interrupted run from its last verified generation.
        #[arg(long)]
        resume: bool,
        /// Do not fsync each file before its generation is sealed: files go
        /// through the page cache. A crash of the process still loses
        /// nothing; what a power cut tears, `collapse audit` reports and
        /// --resume redraws from the seeds.
        #[arg(long)]
        no_fsync: bool,
    },
    /// Check a pipeline without running it; every problem is listed at once.
    Validate {
        pipeline: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Check a run's provenance: hashes, the manifest chain, lineage, mixing.
    Audit {
        run_dir: PathBuf,
        /// text: a summary, or at most 20 violations of each kind; json: everything.
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
        /// Also draw every synthetic row again from its model's stored
        /// parameters and the run's seed (Gaussian, GMM and categorical
        /// models), naming the rows that differ.
        #[arg(long)]
        replay: bool,
    },
    /// Export a run's lineage (OpenLineage RunEvents as JSON lines).
    Lineage {
        run_dir: PathBuf,
        #[arg(long, value_enum, default_value_t = LineageFormat::Openlineage)]
        format: LineageFormat,
    },
    /// Plot a run: metrics by generation, theory beside Gaussian runs, the
    /// distributions, the training mix and the audit, as SVG files under
    /// RUN_DIR/report/ and one self-contained HTML page.
    Report {
        run_dir: PathBuf,
        /// Write the HTML page here (a FILE, or DIR/ for DIR/index.html), the
        /// SVG files beside it; default RUN_DIR/report/index.html.
        #[arg(long, value_name = "FILE|DIR/")]
        out: Option<PathBuf>,
        /// A study: one panel per value of this swept key (e.g. mix.policy).
        #[arg(long, value_name = "KEY")]
        by: Option<String>,
    },
    /// Plot the same metrics from several runs on shared charts and print
    /// where each started and ended.
    Compare {
        #[arg(required = true, num_args = 1.., value_name = "RUN_DIR|STUDY_DIR")]
        runs: Vec<PathBuf>,
        /// Only this metric (repeatable); default: every metric all runs have.
        #[arg(long = "metric", value_name = "NAME")]
        metrics: Vec<String>,
        /// Folder for index.html and the SVG files.
        #[arg(long, value_name = "DIR", default_value = "compare")]
        out: PathBuf,
    },
    /// Run a study: a pipeline file with a [sweep] table (grid, zip, seeds,
    /// exclude), one run directory per cell under DIR/runs/.
    Sweep {
        study: PathBuf,
        /// The study directory; default studies/<name>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a key of every cell (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Cells run at once; default: one per core. Cells share one thread
        /// pool (a cell's replicates run on it too), so the machine is not
        /// oversubscribed whatever N.
        #[arg(long)]
        jobs: Option<usize>,
        /// Print the cells and exit.
        #[arg(long)]
        dry_run: bool,
        /// Allow more than 1000 cells.
        #[arg(long)]
        force: bool,
        /// As `run --no-fsync`.
        #[arg(long)]
        no_fsync: bool,
        /// Run only this task's share of the cells (with --task-count);
        /// default: from Slurm's or Kubernetes' variables, else all cells.
        #[arg(long, requires = "task_count")]
        task_index: Option<usize>,
        #[arg(long, requires = "task_index")]
        task_count: Option<usize>,
        /// Write DIR/sweep.sbatch, a Slurm job array running the study, or
        /// DIR/sweep-job.yaml, a Kubernetes Indexed Job.
        #[arg(long, value_enum)]
        emit: Option<Scheduler>,
        /// Write the script and submit it with sbatch; prints the job id.
        #[arg(long, value_enum, conflicts_with = "emit")]
        submit: Option<Scheduler>,
        /// Slurm: array tasks (default: one per cell), and at most W at once.
        #[arg(long)]
        tasks: Option<usize>,
        #[arg(long, value_name = "W")]
        max_running: Option<usize>,
        #[arg(long)]
        partition: Option<String>,
        #[arg(long)]
        time: Option<String>,
        #[arg(long)]
        cpus_per_task: Option<usize>,
        /// Kubernetes: the image with collapse on its PATH.
        #[arg(long, default_value = "collapse:latest")]
        image: String,
        /// Kubernetes: the PersistentVolumeClaim holding the study file and
        /// DIR (give both relative to its root).
        #[arg(long, default_value = "collapse-studies")]
        volume_claim: String,
    },
    /// Where a study (or a run) stands: one line per cell (done, running,
    /// failed, interrupted, pending; generations sealed; wall time), totals.
    Status {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
    },
    /// Reads a data file in a child process (see `probe_data`).
    #[command(hide = true, name = "__probe-data")]
    ProbeData { format: String, path: PathBuf, columns: Vec<String> },
    /// Run SQL over a run's tables: samples, training, training_runs, models, metrics.
    Query {
        run_dir: PathBuf,
        sql: String,
        #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
        /// Rows the table format shows (csv and json give every row).
        #[arg(long, default_value_t = query::TABLE_ROWS)]
        limit: usize,
        /// Write the result to FILE instead of stdout (needed for parquet).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scheduler {
    Slurm,
    K8s,
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditFormat {
    Text,
    Json,
}

/// Violations of one kind the text format shows before counting the rest.
const AUDIT_SHOWN: usize = 20;

#[derive(Clone, Copy, ValueEnum)]
enum LineageFormat {
    Openlineage,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Table,
    Csv,
    Json,
    /// An Arrow IPC stream (query only).
    Arrow,
    /// A Parquet file, with --out (query only).
    Parquet,
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, and never under NO_COLOR
        // (no-color.org: set to anything non-empty).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e.downcast_ref::<collapse::Error>().map_or(1, collapse::Error::exit_code);
            ExitCode::from(code as u8)
        }
    }
}

/// Progress on stderr: on a terminal an indicatif bar (generation,
/// replicates done, ETA); otherwise a plain line at every tenth of the
/// work and at least every 30 s, for logs of long runs.
fn progress_display(terminal: bool) -> progress::Display {
    if terminal {
        let bar = progress_bar();
        let phase = std::sync::Mutex::new(None);
        return Box::new(move |p: Progress| {
            if let Ok(mut last) = phase.lock() {
                let (prefix, _) = describe_progress(&p);
                bar.set_prefix(prefix);
                if *last == Some(progress::Phase::Base) && p.phase != progress::Phase::Base {
                    bar.println(format!("base model pretrained in {}", human_seconds(bar.elapsed().as_secs_f64())));
                    bar.reset();
                }
                *last = Some(p.phase);
            }
            bar.set_message(eta(&p));
            bar.set_position((p.fraction * 1000.0).round() as u64);
            if p.finished() && !bar.is_finished() {
                bar.finish_and_clear();
            }
        });
    }
    let pace = LinePace::default();
    Box::new(move |p: Progress| {
        if !pace.due(p.phase, p.fraction, p.finished()) {
            return;
        }
        let (prefix, detail) = describe_progress(&p);
        eprintln!("{prefix} ({:.0}%)  {detail}", (100.0 * p.fraction).floor());
    })
}

/// A bar of 1,000 steps: "{prefix} [=====>   ]  42%  {msg}".
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(1000);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:20}] {percent:>3}%  {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// When a plain progress line is due: as a part of the work (a phase, a
/// step) begins, at each tenth of it, at least every 30 s, and at the end.
struct LinePace<K> {
    last: std::sync::Mutex<(Option<K>, u32, std::time::Instant)>,
}

impl<K> Default for LinePace<K> {
    fn default() -> Self {
        LinePace { last: std::sync::Mutex::new((None, u32::MAX, std::time::Instant::now())) }
    }
}

impl<K: PartialEq> LinePace<K> {
    fn due(&self, part: K, fraction: f64, end: bool) -> bool {
        let Ok(mut last) = self.last.lock() else { return false };
        let tenth = (10.0 * fraction).floor() as u32;
        if last.0.as_ref() == Some(&part) && last.1 == tenth && last.2.elapsed().as_secs_f64() < 30.0 && !end {
            return false;
        }
        *last = (Some(part), tenth, std::time::Instant::now());
        true
    }
}

/// A line of a study's progress: on a terminal rewritten in place (ended
/// at the `last`), otherwise a line of its own.
fn cell_line(terminal: bool, line: &str, last: bool) {
    if terminal {
        let end = if last { "\n" } else { "" };
        eprint!("\r\x1b[2K{line}{end}");
    } else {
        eprintln!("{line}");
    }
}

/// An audit's progress on stderr: on a terminal a bar for the step under
/// way, cleared when the audit ends; otherwise a line when a step begins,
/// at each tenth of it and at least every 30 s.
struct AuditDisplay {
    bar: Option<indicatif::ProgressBar>,
    pace: LinePace<Step>,
}

impl AuditDisplay {
    fn new(terminal: bool) -> AuditDisplay {
        AuditDisplay { bar: terminal.then(progress_bar), pace: LinePace::default() }
    }

    fn show(&self, c: Checked) {
        let (what, unit) = match c.step {
            Step::Files => ("audit: files and hashes", "generations"),
            Step::Tables => ("audit: lineage over the tables", "table reads"),
            Step::TrainingSets => ("audit: training sets and mixing", "generations"),
            Step::Replay => ("audit: rows drawn again", "models' generations"),
        };
        let fraction = c.done as f64 / c.of.max(1) as f64;
        if let Some(bar) = &self.bar {
            bar.set_prefix(what);
            bar.set_message(format!("{}/{} {unit}", c.done, c.of));
            bar.set_position((fraction * 1000.0).round() as u64);
            return;
        }
        if self.pace.due(c.step, fraction, false) {
            eprintln!("{what} ({:.0}%)  {}/{} {unit}", (100.0 * fraction).floor(), c.done, c.of);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A study audit's progress on stderr after each cell: on a terminal one
/// line rewritten in place, otherwise a line per cell.
fn study_audit_progress(terminal: bool) -> impl Fn(usize, usize) + Sync {
    let start = std::time::Instant::now();
    move |done: usize, of: usize| {
        let line = format!("audit: {done}/{of} cells, {} elapsed", human_seconds(start.elapsed().as_secs_f64()));
        cell_line(terminal, &line, done == of);
    }
}

/// A study's progress on stderr after each cell: on a terminal one line
/// rewritten in place, otherwise a line per cell.
fn study_progress(terminal: bool) -> Box<dyn Fn(collapse::sweep::StudyProgress) + Sync> {
    Box::new(move |p: collapse::sweep::StudyProgress| {
        let eta = p.eta_s().map_or_else(|| "ETA -".to_string(), |s| format!("ETA {}", human_seconds(s)));
        let failed = if p.failed > 0 { format!(", {} failed", p.failed) } else { String::new() };
        let line =
            format!("study: {}/{} cells done{failed}, {} elapsed, {eta}", p.done, p.cells, human_seconds(p.seconds));
        cell_line(terminal, &line, p.done + p.failed == p.cells);
    })
}

fn status_text(cells: &[collapse::status::CellStatus], format: OutFormat) -> String {
    let wall = |c: &collapse::status::CellStatus| c.seconds.map_or_else(String::new, |s| s.to_string());
    match format {
        // `status` refuses arrow and parquet before it gets here.
        OutFormat::Json | OutFormat::Arrow | OutFormat::Parquet => {
            let v = serde_json::json!({ "cells": cells, "totals": collapse::status::totals(cells) });
            format!("{v:#}\n")
        }
        OutFormat::Csv => {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut out = String::from("cell,values,state,sealed,generations,seconds,detail\n");
            for c in cells {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    c.id,
                    quote(&c.values),
                    c.state.name(),
                    c.sealed,
                    c.generations + 1,
                    wall(c),
                    quote(c.detail.as_deref().unwrap_or(""))
                ));
            }
            out
        }
        OutFormat::Table => {
            let width = cells.iter().map(|c| c.values.len()).max().unwrap_or(0).max(6);
            let mut out = format!(
                "{:<16}  {:<width$}  {:<11}  {:>15}  {:>8}\n",
                "cell", "values", "state", "generations", "wall"
            );
            for c in cells {
                out.push_str(&format!(
                    "{:<16}  {:<width$}  {:<11}  {:>15}  {:>8}{}\n",
                    c.id,
                    c.values,
                    c.state.name(),
                    format!("{}/{}", c.sealed, c.generations + 1),
                    c.seconds.map_or_else(|| "-".to_string(), |s| human_seconds(s as f64)),
                    c.detail.as_ref().map_or_else(String::new, |d| format!("  {d}"))
                ));
            }
            out.push_str(&collapse::status::totals(cells));
            out.push('\n');
            out
        }
    }
}

fn eta(p: &Progress) -> String {
    p.eta_s().map_or_else(|| "ETA -".to_string(), |s| format!("ETA {}", human_seconds(s)))
}

/// What the display says: where the run is, and rows, time and ETA.
fn describe_progress(p: &Progress) -> (String, String) {
    let eta = eta(p);
    match p.phase {
        progress::Phase::Base => {
            let (done, epochs) = p.epoch.unwrap_or((0, 0));
            (format!("base model: epoch {done}/{epochs}"), format!("{} elapsed  {eta}", human_seconds(p.elapsed_s)))
        }
        progress::Phase::Generations => (
            format!("generation {}/{}, replicates {}/{}", p.generation, p.generations, p.replicates_done, p.replicates),
            format!("{} rows  {} elapsed  {eta}", p.rows, human_seconds(p.elapsed_s)),
        ),
    }
}

/// A pipeline file with a top-level [sweep] table: a study.
fn is_study_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("sweep"))
}

fn human_seconds(s: f64) -> String {
    match s {
        s if s < 60.0 => format!("{s:.1}s"),
        s if s < 3600.0 => format!("{}m{:02}s", (s / 60.0).floor(), (s % 60.0).floor()),
        s => format!("{}h{:02}m", (s / 3600.0).floor(), ((s % 3600.0) / 60.0).floor()),
    }
}

/// Writes command output; a closed pipe (`| head`) ends quietly.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The program `name` on PATH, if any.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file())
}

/// Reads a pipeline's data file once in a child process before this one
/// touches it. Fuzzing showed a damaged Parquet file can make the decoder
/// ask for an absurd allocation, which aborts the process outright (no
/// panic to catch); in a child that becomes a clear error naming the file.
/// Returns the file's usable rows, which the child counted.
fn probe_data(p: &collapse::pipeline::Pipeline) -> anyhow::Result<Option<usize>> {
    use collapse::pipeline::{FileFormat, Source};
    let Source::File { path, format, columns } = &p.data.source else { return Ok(None) };
    let fmt = if *format == FileFormat::Csv { "csv" } else { "parquet" };
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("__probe-data")
        .arg(fmt)
        .arg(path)
        .args(columns)
        .output()?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok()),
        Some(2) => {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg.trim().trim_start_matches("error: ");
            Err(collapse::Error::Data {
                file: path.clone(),
                message: msg.trim_start_matches(&format!("{}: ", path.display())).to_string(),
            }
            .into())
        }
        _ => Err(collapse::Error::Data {
            file: path.clone(),
            message: format!("the {fmt} reader crashed on this file ({}); it is damaged or not {fmt}", out.status),
        }
        .into()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ProbeData { format, path, columns } => {
            let format = if format == "csv" {
                collapse::pipeline::FileFormat::Csv
            } else {
                collapse::pipeline::FileFormat::Parquet
            };
            let rows = collapse::data::load::read_vectors(&path, format, &columns)?;
            println!("{}", rows.len());
        }
        Command::Validate { pipeline, set } if is_study_file(&pipeline) => {
            // Every cell resolved and checked, as `sweep` does before it runs.
            let cells = collapse::sweep::plan(&pipeline, &set, true)?;
            let mut problems = Vec::new();
            for c in &cells {
                let checked = collapse::resolve::check_columns(&c.pipeline)
                    .and_then(|_| collapse::resolve::check_rows(&c.pipeline));
                if let Err(e) = checked {
                    problems.push(format!("cell {}: {}", c.describe(), e.chain()));
                }
            }
            if !problems.is_empty() {
                return Err(collapse::Error::Pipeline { file: pipeline.clone(), problems }.into());
            }
            if !cli.quiet {
                println!(
                    "{}: ok (a study of {} cells; collapse sweep --dry-run lists them)",
                    pipeline.display(),
                    cells.len()
                );
            }
        }
        Command::Validate { pipeline, set } => {
            let p = collapse::resolve::load(&pipeline, &set)?;
            let rows = probe_data(&p)?;
            collapse::resolve::check_columns(&p)?;
            // The child read the file already: its count, not a second read.
            if let Some(total) = rows {
                collapse::resolve::rows_enough(&p, total)?;
            }
            if !cli.quiet {
                println!(
                    "{}: ok ({} generations x {} replicates, model {}, policy {})",
                    pipeline.display(),
                    p.generations,
                    p.replicates,
                    p.model_name(),
                    p.mix.name()
                );
            }
        }
        Command::Run { pipeline, out, set, resume, no_fsync } => {
            let p = collapse::resolve::load(&pipeline, &set)?;
            probe_data(&p)?;
            collapse::resolve::check_columns(&p)?;
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&p.name));
            let log_every = if cli.quiet { 0 } else { (p.generations / 10).max(1) };
            if !cli.quiet && cli.verbose == 0 && std::io::stderr().is_terminal() {
                eprintln!(
                    "running {} ({} generations x {} replicates) into {}",
                    pipeline.display(),
                    p.generations,
                    p.replicates,
                    out.display()
                );
            }
            let show = !cli.quiet && cli.verbose == 0;
            let progress = show.then(|| progress_display(std::io::stderr().is_terminal()));
            let durability = if no_fsync { Durability::PageCache } else { Durability::Fsync };
            let options = Options {
                log_every: if cli.verbose > 0 { log_every } else { 0 },
                resume,
                progress,
                durability,
                times_file: None,
            };
            let s = runner::run(&p, &out, &options)?;
            if s.already_complete {
                if !cli.quiet {
                    println!(
                        "{}: already complete: {} generations x {} replicates, every one sealed; nothing to do",
                        s.out.display(),
                        s.generations,
                        s.replicates
                    );
                }
            } else if !cli.quiet {
                println!(
                    "wrote {} ({} sample rows, {} generations x {} replicates) in {:.2}s",
                    s.out.display(),
                    s.rows,
                    s.generations,
                    s.replicates,
                    s.seconds
                );
                let mut parts = Vec::new();
                let mut first = None;
                for (m, a, b) in &s.headline {
                    if collapse::metrics::is_headline(m) {
                        parts.push(format!("{m} {a:.4} -> {b:.4}"));
                        first.get_or_insert(m.as_str());
                    }
                }
                println!("generation 0 -> {} (median over replicates): {}", s.generations, parts.join(", "));
                println!("see it: collapse report {}", s.out.display());
                println!(
                    "explore: collapse query {} \"SELECT generation, avg(value) FROM metrics WHERE metric = '{}' GROUP BY generation ORDER BY generation\"",
                    s.out.display(),
                    first.unwrap_or("train_rows")
                );
            }
        }
        Command::Sweep {
            study,
            out,
            set,
            jobs,
            dry_run,
            force,
            no_fsync,
            task_index,
            task_count,
            emit: emit_for,
            submit,
            tasks,
            max_running,
            partition,
            time,
            cpus_per_task,
            image,
            volume_claim,
        } => {
            let plan = collapse::sweep::plan(&study, &set, force)?;
            if let Some(Scheduler::K8s) = emit_for.or(submit) {
                if submit.is_some() {
                    return Err(collapse::Error::Input(
                        "--submit k8s: collapse does not talk to a Kubernetes cluster; write the Job with --emit k8s and apply it with kubectl apply -f DIR/sweep-job.yaml".into(),
                    )
                    .into());
                }
                let name = plan.first().map_or_else(|| "study".to_string(), |c| c.pipeline.name.clone());
                let out = out.unwrap_or_else(|| PathBuf::from("studies").join(&name));
                let count = tasks.unwrap_or(plan.len()).clamp(1, plan.len().max(1));
                let k = collapse::sweep::Kubernetes { image, volume_claim, cpus_per_task, max_running };
                let yaml = collapse::sweep::k8s_job(&study, &out, &set, count, &k, &name);
                std::fs::create_dir_all(&out)?;
                let path = out.join("sweep-job.yaml");
                std::fs::write(&path, yaml)?;
                println!(
                    "{}: a Kubernetes Indexed Job of {count} tasks; apply it with kubectl apply -f",
                    path.display()
                );
                return Ok(());
            }
            if let Some(Scheduler::Slurm) = emit_for.or(submit) {
                let name = plan.first().map_or_else(|| "study".to_string(), |c| c.pipeline.name.clone());
                let out = out.unwrap_or_else(|| PathBuf::from("studies").join(&name));
                let sbatch = which("sbatch");
                if submit.is_some() && sbatch.is_none() {
                    return Err(collapse::Error::Input(
                        "--submit slurm: no sbatch on PATH; install Slurm's client (Debian: slurm-client) or write the script with --emit slurm and submit it where Slurm is".into(),
                    )
                    .into());
                }
                let settings = collapse::sweep::Slurm { partition, time, cpus_per_task, max_running };
                let count = tasks.unwrap_or(plan.len()).clamp(1, plan.len().max(1));
                let script = collapse::sweep::slurm_script(
                    &std::env::current_exe()?,
                    &study,
                    &out,
                    &set,
                    count,
                    &settings,
                    &name,
                );
                std::fs::create_dir_all(out.join("tasks"))?;
                let path = out.join("sweep.sbatch");
                std::fs::write(&path, script)?;
                if let Some(sbatch) = sbatch {
                    if submit.is_some() {
                        let o = std::process::Command::new(sbatch).arg("--parsable").arg(&path).output()?;
                        if !o.status.success() {
                            return Err(anyhow::anyhow!(
                                "sbatch {}: {}",
                                path.display(),
                                String::from_utf8_lossy(&o.stderr).trim()
                            ));
                        }
                        println!(
                            "submitted job {} ({count} array tasks): {}",
                            String::from_utf8_lossy(&o.stdout).trim(),
                            path.display()
                        );
                        return Ok(());
                    }
                }
                println!("{}: a Slurm job array of {count} tasks; submit it with sbatch", path.display());
                return Ok(());
            }
            let task = task_index.zip(task_count).or_else(collapse::sweep::scheduler_task);
            let cells = match task {
                Some((index, count)) => collapse::sweep::shard(plan.clone(), index, count)?,
                None => plan.clone(),
            };
            if dry_run {
                let mut text = format!("{} cells\ncell             | values\n", cells.len());
                for c in &cells {
                    text.push_str(&format!("{} | {}\n", c.id, c.describe()));
                }
                emit(&text)?;
                return Ok(());
            }
            let name = plan.first().map_or_else(|| "study".to_string(), |c| c.pipeline.name.clone());
            let out = out.unwrap_or_else(|| PathBuf::from("studies").join(name));
            let durability = if no_fsync { Durability::PageCache } else { Durability::Fsync };
            let show = !cli.quiet && cli.verbose == 0;
            let progress = show.then(|| study_progress(std::io::stderr().is_terminal()));
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let o = collapse::sweep::run(&study, &plan, &cells, &out, jobs, durability, progress.as_deref())?;
            if !cli.quiet {
                println!(
                    "{}: {} cells: {} ran, {} already complete, {} failed",
                    out.display(),
                    cells.len(),
                    o.ran.len(),
                    o.already_complete.len(),
                    o.failed.len()
                );
            }
            if !o.failed.is_empty() {
                for (id, values, error, code) in &o.failed {
                    eprintln!("cell {id} ({values}) failed (exit {code}): {error}");
                }
                return Err(anyhow::anyhow!(
                    "{} of {} cells failed; run the same sweep again to retry them",
                    o.failed.len(),
                    cells.len()
                ));
            }
        }
        Command::Status { format: OutFormat::Arrow | OutFormat::Parquet, .. } => {
            return Err(collapse::Error::Input(
                "status: --format is table, csv or json (arrow and parquet are for query)".into(),
            )
            .into());
        }
        Command::Status { dir, format } => {
            let cells = collapse::status::status(&dir)?;
            emit(&status_text(&cells, format))?;
        }
        Command::Audit { run_dir, format, replay } if collapse::data::plan::is_study(&run_dir) => {
            let options = collapse::provenance::audit::Options { replay };
            let s = if cli.quiet {
                collapse::provenance::study::audit_study_with(&run_dir, options, &|_, _| {})?
            } else {
                let show = study_audit_progress(std::io::stderr().is_terminal());
                collapse::provenance::study::audit_study_with(&run_dir, options, &show)?
            };
            if let AuditFormat::Json = format {
                emit(&format!("{:#}\n", s.to_json()))?;
            } else {
                let mut text = String::new();
                let (mut ok, mut bad, mut pending, mut incomplete) = (0, 0, 0, 0);
                for c in &s.cells {
                    let Some(r) = &c.report else {
                        pending += 1;
                        text.push_str(&format!("{} ({}): pending, not started\n", c.id, c.values));
                        continue;
                    };
                    for n in &r.notes {
                        eprintln!("note: {}: {n}", c.id);
                    }
                    incomplete += usize::from(r.incomplete.is_some());
                    let state = r.incomplete_line().map_or_else(String::new, |l| format!(" ({l})"));
                    if r.ok() {
                        ok += 1;
                        let replayed = r.replayed.map_or_else(String::new, |(_, rows)| format!(", {rows} replayed"));
                        text.push_str(&format!(
                            "{} ({}): ok{state}: {} manifests, {} files, {} sample rows{replayed}\n",
                            c.id, c.values, r.manifests, r.files, r.sample_rows
                        ));
                    } else {
                        bad += 1;
                        text.push_str(&format!("{} ({}): {} violations{state}\n", c.id, c.values, r.violations.len()));
                        for v in r.violations.iter().take(AUDIT_SHOWN) {
                            text.push_str(&format!("  {v}\n"));
                        }
                        if r.violations.len() > AUDIT_SHOWN {
                            text.push_str(&format!(
                                "  and {} more; collapse audit {} lists them\n",
                                r.violations.len() - AUDIT_SHOWN,
                                c.run.display()
                            ));
                        }
                    }
                }
                for v in &s.violations {
                    text.push_str(&format!("plan: {v}\n"));
                }
                text.push_str(&format!(
                    "{}: {} cells: {ok} ok ({incomplete} of them unfinished), {bad} with violations, {pending} pending; plan: {}\n",
                    run_dir.display(),
                    s.cells.len(),
                    if s.violations.is_empty() { "ok".to_string() } else { format!("{} violations", s.violations.len()) }
                ));
                if !cli.quiet || !s.ok() {
                    emit(&text)?;
                }
            }
            if !s.ok() {
                let violations = s.violations.len()
                    + s.cells.iter().filter_map(|c| c.report.as_ref()).map(|r| r.violations.len()).sum::<usize>();
                return Err(collapse::Error::Audit { run: run_dir.clone(), violations }.into());
            }
        }
        Command::Audit { run_dir, format, replay } => {
            let options = collapse::provenance::audit::Options { replay };
            let r = if cli.quiet {
                collapse::provenance::audit::audit_with(&run_dir, options, &|_| {})?
            } else {
                let display = AuditDisplay::new(std::io::stderr().is_terminal());
                let r = collapse::provenance::audit::audit_with(&run_dir, options, &|c| display.show(c));
                display.finish();
                r?
            };
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            if let (AuditFormat::Text, Some(line)) = (format, r.incomplete_line()) {
                println!("{}: {line}; an unfinished run: only its sealed generations were audited", run_dir.display());
            }
            if let AuditFormat::Json = format {
                emit(&format!("{:#}\n", r.to_json(&run_dir)))?;
                if !r.ok() {
                    return Err(collapse::Error::Audit { run: run_dir.clone(), violations: r.violations.len() }.into());
                }
            } else if r.ok() {
                if !cli.quiet {
                    println!(
                        "{}: ok: {} manifests chain from generation 0 to {}; {} files and {} sample rows match their hashes; lineage and mixing of {} models hold",
                        run_dir.display(),
                        r.manifests,
                        r.manifests.saturating_sub(1),
                        r.files,
                        r.sample_rows,
                        r.models
                    );
                    if let Some((models, rows)) = r.replayed {
                        println!("replayed: {rows} synthetic rows of {models} models are the draws their models make from the run's seed");
                    }
                }
            } else {
                let mut text = String::new();
                for (kind, list) in r.by_kind() {
                    for v in list.iter().take(AUDIT_SHOWN) {
                        text.push_str(v);
                        text.push('\n');
                    }
                    if list.len() > AUDIT_SHOWN {
                        text.push_str(&format!(
                            "  and {} more of this kind ({kind}); --format json lists every one\n",
                            list.len() - AUDIT_SHOWN
                        ));
                    }
                }
                emit(&text)?;
                return Err(collapse::Error::Audit { run: run_dir.clone(), violations: r.violations.len() }.into());
            }
        }
        Command::Lineage { run_dir, format: LineageFormat::Openlineage } => {
            let events = collapse::provenance::lineage::openlineage(&run_dir)?;
            // Lineage of a run whose files do not hold is lineage of
            // something else: say so, and still export what the manifests say.
            match collapse::provenance::audit::audit(&run_dir) {
                Ok(r) if !r.ok() => eprintln!(
                    "warning: {} fails its audit ({} violations; collapse audit {} names them): these events describe its manifests, not files that match them",
                    run_dir.display(),
                    r.violations.len(),
                    run_dir.display()
                ),
                Ok(_) => {}
                Err(e) => eprintln!("warning: {} could not be audited: {e:#}", run_dir.display()),
            }
            emit(&events)?;
        }
        Command::Query { run_dir, sql, format, out, .. } if matches!(format, OutFormat::Arrow | OutFormat::Parquet) => {
            let parquet = matches!(format, OutFormat::Parquet);
            let bytes =
                match (&out, parquet) {
                    (None, true) => {
                        return Err(collapse::Error::Input(
                            "--format parquet writes a file: name it with --out FILE".into(),
                        )
                        .into())
                    }
                    (None, false) if std::io::stdout().is_terminal() => return Err(collapse::Error::Input(
                        "--format arrow writes a binary stream: pipe it (| python3 ...) or name a file with --out FILE"
                            .into(),
                    )
                    .into()),
                    _ => query::export(&run_dir, &sql, parquet)?,
                };
            match out {
                Some(file) => collapse::data::store::write_atomic(&file, &bytes)?,
                None => {
                    use std::io::Write;
                    let mut stdout = std::io::stdout().lock();
                    if let Err(e) = stdout.write_all(&bytes).and_then(|_| stdout.flush()) {
                        if e.kind() != std::io::ErrorKind::BrokenPipe {
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        Command::Query { run_dir, sql, format, limit, out } => {
            let format = match format {
                OutFormat::Table => Format::Table,
                OutFormat::Csv => Format::Csv,
                _ => Format::Json,
            };
            if let Some(note) = query::expansion_note(&run_dir, &sql)? {
                eprintln!("note: {note}");
            }
            let r = query::render(&run_dir, &sql, format, limit)?;
            match out {
                Some(file) => collapse::data::store::write_atomic(&file, r.text.as_bytes())?,
                None => emit(&r.text)?,
            }
            for n in &r.notes {
                eprintln!("note: {n}");
            }
        }
        Command::Report { run_dir, out, by } => {
            let w = if collapse::data::plan::is_study(&run_dir) {
                collapse::report::study::study_report(&run_dir, by.as_deref(), out.as_deref())?
            } else if let Some(b) = by {
                return Err(collapse::Error::Input(format!(
                    "--by {b}: {} is a run, not a study; --by picks a swept key of a study directory",
                    run_dir.display()
                ))
                .into());
            } else {
                collapse::report::report(&run_dir, out.as_deref())?
            };
            if !cli.quiet {
                emit(&format!("{}: report with {} figures (SVG beside it)\n", w.html.display(), w.figures.len()))?;
            }
        }
        Command::Compare { runs, metrics, out } => {
            let c = collapse::report::compare::compare(&runs, &metrics, &out)?;
            for note in &c.left_out {
                eprintln!("note: {note}");
            }
            emit(&collapse::report::compare::render(&c.rows))?;
            if !cli.quiet {
                emit(&format!("{}: {} charts\n", c.written.html.display(), c.written.figures.len()))?;
            }
        }
    }
    Ok(())
}
