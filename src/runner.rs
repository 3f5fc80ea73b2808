//! `collapse run`: executes a pipeline into a run directory, generation by
//! generation, every replicate in parallel.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::chain::{Chain, Context, StageOut};
use crate::data::frames::{MetricRow, ModelRow, SamplesTable};
use crate::data::load;
use crate::data::store::{Durability, GenerationFiles, RunDir};
use crate::error::{Error, Result};
use crate::fault;
use crate::metrics;
use crate::pipeline::{self, ImageFormat, ImageSource, MixPolicy, ModelSpec, Pipeline, Source};
use crate::progress::Tracker;
use crate::provenance::manifest::{hash_file, FileEntry, Manifest};
use crate::provenance::{self, Sealer};
use crate::rng::replicate_seed;
use crate::source::{Loaded, RealSource};
use crate::text::Corpus;
use crate::values::Block;

/// Images in each generation's PNG grid (`images/generation=K.png`).
const GRID_IMAGES: usize = 64;

/// The first replicate's first images of a generation as a PNG grid, for
/// image runs.
fn image_grid(blocks: &[&Block]) -> Option<Vec<u8>> {
    let b = blocks.iter().find(|b| b.split == crate::values::Split::Train)?;
    match &b.values {
        crate::values::Values::Images { h, w, pixels, .. } => {
            Some(crate::report::png::grid(pixels, *h, *w, 8, GRID_IMAGES))
        }
        _ => None,
    }
}

/// A text run's tokenizer, in the run directory (Hugging Face's format).
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A text run's pretrained base model (safetensors), when it has one.
pub const BASE_FILE: &str = "base.safetensors";

/// Most generations the writer takes at once.
const WRITE_BATCH: usize = 16;

/// Sampled values a generation may have for its closed-form chains to run
/// one after another on the calling thread.
const SERIAL_STAGE_ROWS: usize = 1 << 16;

/// What a finished run reports back.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub out: PathBuf,
    pub generations: u32,
    pub replicates: u32,
    pub rows: u64,
    /// (metric, median over replicates at generation 0, at the last generation).
    pub headline: Vec<(String, f64, f64)>,
    pub seconds: f64,
    /// `--resume` found every generation already sealed: nothing was run.
    pub already_complete: bool,
}

#[derive(Default)]
pub struct Options {
    /// Log a line every this many generations (0: never).
    pub log_every: u32,
    /// Continue the run in `out` from its last verified generation.
    pub resume: bool,
    /// Shown what the run has finished, as it goes (see [`crate::progress`]).
    pub progress: Option<crate::progress::Display>,
    /// When files are made durable (see [`crate::data::store`]).
    pub durability: Durability,
    /// Keep the start, resume and finish times in this file (a path from
    /// the run directory) instead of run.json: a study's cells do, so a
    /// study's run directories are the same bytes however they were run.
    pub times_file: Option<PathBuf>,
}

fn data_error(p: &Pipeline, message: String) -> Error {
    match &p.data.source {
        Source::File { path, .. } | Source::Images(ImageSource { path, .. }) => {
            Error::Data { file: path.clone(), message }
        }
        Source::Text(t) => Error::Data { file: t.path.clone(), message },
        _ => Error::Input(message),
    }
}

/// What a run draws D_0 from, once resolved.
struct Resolved {
    n: usize,
    loaded: Option<Loaded>,
    /// The source files as manifest inputs.
    sources: Vec<FileEntry>,
}

/// A source file as a manifest input: its path as the pipeline wrote it
/// (the blake3 and size identify it; where the checkout lies does not).
fn file_entry(p: &Pipeline, path: &Path, rows: Option<u64>) -> Result<FileEntry> {
    let (blake3, bytes) = hash_file(path).map_err(|e| Error::io(path, e))?;
    Ok(FileEntry { path: pipeline::written(path, &p.base), blake3, bytes, rows })
}

/// N for this run, and the file's rows and hash for a file source.
fn resolve_data(p: &Pipeline, tracker: &Tracker) -> Result<Resolved> {
    let (path, loaded) = match &p.data.source {
        Source::File { path, format, columns } => (path, Loaded::Rows(load::read_vectors(path, *format, columns)?)),
        Source::Images(img) => (
            &img.path,
            Loaded::Rows(match &img.format {
                ImageFormat::Idx { labels } => crate::data::idx::read(&img.path, labels.as_deref())?,
                ImageFormat::Csv(c) => c.read(&img.path)?,
            }),
        ),
        Source::Text(t) => (&t.path, Loaded::Corpus { corpus: Corpus::build(t, p.data.holdout, p.seed)?, base: None }),
        _ => return Ok(Resolved { n: p.data.n.unwrap_or(0), loaded: None, sources: Vec::new() }),
    };
    // A text run's test split is set apart before its rows are counted.
    let (total, holdout, test_path) = match (&loaded, &p.data.source) {
        (Loaded::Rows(rows), _) => (rows.len(), p.data.holdout, None),
        (Loaded::Corpus { corpus, .. }, Source::Text(t)) => (corpus.train.len(), 0, t.test_path.as_deref()),
        (Loaded::Corpus { corpus, .. }, _) => (corpus.train.len(), 0, None),
    };
    let mut sources = vec![file_entry(p, path, Some(total as u64))?];
    if let Some(t) = test_path {
        sources.push(file_entry(p, t, None)?);
    }
    let mut loaded = loaded;
    if let (Loaded::Corpus { corpus, base }, ModelSpec::Transformer(s)) = (&mut loaded, &p.model) {
        if let Some(base_path) = &s.base {
            *base = Some(std::sync::Arc::new(pretrain(p, s, base_path, &corpus.tokenizer, tracker)?));
            sources.push(file_entry(p, base_path, None)?);
        }
    }
    let n = match p.data.n {
        Some(n) => n,
        None if matches!(p.mix, MixPolicy::Fresh { .. }) => {
            return Err(Error::Input("data.n: policy fresh needs an explicit data.n for a file source, so the reserve of fresh rows is known".into()));
        }
        None => total.saturating_sub(holdout),
    };
    // Only fresh draws new real rows after generation 0; keep-real reuses D_0's.
    if let Some(short) = p.row_shortfall(total, n, holdout) {
        return Err(data_error(p, short));
    }
    let problems = p.size_problems(n);
    if !problems.is_empty() {
        return Err(Error::Pipeline { file: path.clone(), problems });
    }
    Ok(Resolved { n, loaded: Some(loaded), sources })
}

/// The base model of the paper's structure: pretrained once, on its own
/// corpus, with the run's tokenizer, for every replicate to fine-tune.
fn pretrain(
    p: &Pipeline,
    s: &crate::model::TransformerSettings,
    path: &Path,
    tokenizer: &crate::text::TextTokenizer,
    tracker: &Tracker,
) -> Result<crate::model::Transformer> {
    let lines = crate::text::corpus::read_lines(path)?;
    let data_error = |e: String| Error::Data { file: path.to_path_buf(), message: e };
    let ids = tokenizer.encode_all(&lines).map_err(|e| data_error(e.to_string()))?;
    tracing::info!(rows = ids.len(), epochs = s.base_epochs, "pretraining the base model");
    let settings = crate::model::TransformerSettings { epochs: s.base_epochs, ..s.clone() };
    let mut rng = crate::rng::Rng::stream(p.seed, 0, 0, crate::rng::Purpose::Base);
    tracker.start();
    let on_batch = |t| tracker.base(t);
    crate::model::Transformer::fine_tune(None, &ids, tokenizer.vocab_size() as u32, &settings, &mut rng, &on_batch)
        .map_err(|e| Error::model("base transformer", e))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn run_json(p: &Pipeline, status: &str, times: &Times, rows: u64, last_manifest: Option<&str>) -> Vec<u8> {
    let seeds: Vec<u64> = (0..p.replicates).map(|r| replicate_seed(p.seed, r)).collect();
    let mut v = serde_json::json!({
        "tool": "collapse",
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("COLLAPSE_GIT_REVISION"),
        "name": p.name,
        "seed": p.seed,
        "replicate_seeds": seeds,
        "generations": p.generations,
        "replicates": p.replicates,
        "started_unix": times.started,
        "resumed_unix": times.resumed,
        "finished_unix": times.finished,
        "status": status,
        "sample_rows": rows,
        // Where relative data paths start (the pipeline file's folder): a
        // record, so the run's own pipeline.toml still finds its data.
        "pipeline_dir": std::path::absolute(if p.base.as_os_str().is_empty() { Path::new(".") } else { &p.base })
            .unwrap_or_else(|_| p.base.clone())
            .display()
            .to_string(),
        "last_manifest_blake3": last_manifest,
        // Only networks use a device; GPU results are not bit-identical to CPU ones.
        "device": p.network().then(crate::model::device::name),
    });
    if let (Some(file), Some(map)) = (&times.file, v.as_object_mut()) {
        for k in ["started_unix", "resumed_unix", "finished_unix"] {
            map.remove(k);
        }
        map.insert("times_file".into(), serde_json::json!(file.display().to_string()));
    }
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// How many generations the run in `out` was declared with, when this
/// pipeline may continue it: the same pipeline, or the same with more
/// generations (an extension). Any other change is refused, naming each key
/// that differs with both values.
fn continuation(out: &Path, on_disk: &str, config: &str, generations: u32) -> Result<u32> {
    let parse = |t: &str| t.parse::<toml::Table>().ok().map(|t| flatten(&t));
    let (Some(ran), Some(now)) = (parse(on_disk), parse(config)) else {
        return Err(Error::Input(format!(
            "{}: pipeline.toml is not readable TOML; it cannot be resumed",
            out.display()
        )));
    };
    let mut differ = Vec::new();
    for key in ran.keys().chain(now.keys().filter(|k| !ran.contains_key(*k))) {
        if key == "generations" {
            continue;
        }
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(not set)".into());
        if ran.get(key) != now.get(key) {
            differ.push(format!("{key}: the run has {}, this pipeline has {}", show(ran.get(key)), show(now.get(key))));
        }
    }
    let had = ran.get("generations").and_then(|g| g.parse::<u32>().ok()).unwrap_or(generations);
    if generations < had {
        differ.push(format!(
            "generations: the run has {had}, this pipeline has {generations}; a run can be extended, not shortened"
        ));
    }
    if differ.is_empty() {
        return Ok(had);
    }
    Err(Error::Pipeline {
        file: out.join("pipeline.toml"),
        problems: std::iter::once(
            "this pipeline differs from the run's; only generations may grow (--set generations=N). Resume with the run's own file: collapse run DIR/pipeline.toml --out DIR --resume".to_string(),
        )
        .chain(differ)
        .collect(),
    })
}

/// Every leaf of a TOML table by dotted key, its value as TOML text.
fn flatten(t: &toml::Table) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut std::collections::BTreeMap<String, String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                v => {
                    out.insert(key, v.to_string());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", t, &mut out);
    out
}

/// When the run happened; only run.json records it, so every other file
/// of a resumed run is byte-identical to an uninterrupted one.
struct Times {
    started: u64,
    resumed: Vec<u64>,
    finished: Option<u64>,
    /// Where they are kept instead of run.json ([`Options::times_file`]).
    file: Option<PathBuf>,
}

impl Times {
    fn new(file: Option<PathBuf>) -> Times {
        Times { started: unix_now(), resumed: Vec::new(), finished: None, file }
    }

    fn read(root: &Path, file: Option<PathBuf>) -> Option<Times> {
        let t = provenance::times(root);
        Some(Times { started: t.started?, resumed: t.resumed, finished: None, file })
    }

    /// Writes them to their own file, when they have one.
    fn keep(&self, root: &Path) -> Result<()> {
        let Some(rel) = &self.file else { return Ok(()) };
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let v = serde_json::json!({
            "started_unix": self.started,
            "resumed_unix": self.resumed,
            "finished_unix": self.finished,
        });
        crate::data::store::write_atomic(&path, &serde_json::to_vec_pretty(&v).unwrap_or_default())
    }
}

pub fn run(p: &Pipeline, out: &Path, options: &Options) -> Result<RunSummary> {
    let clock = Instant::now();
    let tracker = Tracker::new(options.progress.as_deref(), p.generations, p.replicates);
    let Resolved { n, loaded, sources } = resolve_data(p, &tracker)?;
    let mut resolved = p.clone();
    resolved.data.n = Some(n);
    let config = pipeline::to_toml(&resolved);
    let config_blake3 = blake3::hash(pipeline::identity_toml(&resolved).as_bytes()).to_hex().to_string();
    let mut sealer = Sealer::new(&p.name, config_blake3.clone(), p.seed, p.replicates, sources);

    let (dir, verified, mut times) = if options.resume {
        let dir = RunDir::open(out, options.durability)?;
        let on_disk = std::fs::read(out.join("pipeline.toml")).unwrap_or_default();
        let ran = continuation(out, &String::from_utf8_lossy(&on_disk), &config, p.generations)?;
        // The same identity as this pipeline's: only generations may differ.
        let identities = provenance::Identity::of(&on_disk);
        let mut chain = provenance::verified_prefix(out, &identities, ran.min(p.generations));
        if ran < p.generations {
            // Extending: generation `ran` was the last; it is redone with
            // its model, training set and (under fresh) its fresh rows.
            chain.truncate(ran as usize);
            dir.write_text(Path::new("pipeline.toml"), config.as_bytes())?;
            tracing::info!(from = ran, to = p.generations, "extending a run");
        }
        let finished = crate::data::store::run_json(out).is_some_and(|v| v["status"] == "complete");
        if finished && chain.len() as u64 == u64::from(p.generations) + 1 {
            // Every generation sealed: touch nothing (a report in the run
            // directory stays; run.json keeps its times).
            return Ok(RunSummary {
                out: out.to_path_buf(),
                generations: p.generations,
                replicates: p.replicates,
                rows: 0,
                headline: Vec::new(),
                seconds: clock.elapsed().as_secs_f64(),
                already_complete: true,
            });
        }
        let mut keep = std::collections::BTreeSet::new();
        for (m, hash) in chain.iter().cloned() {
            keep.insert(Manifest::path(m.generation));
            keep.extend(m.outputs.iter().map(|e| PathBuf::from(&e.path)));
            sealer.accept(m, hash);
        }
        let removed = dir.remove_unlisted(&keep)?;
        tracing::info!(verified = chain.len(), removed, "resuming after the last verified generation");
        let mut times =
            Times::read(out, options.times_file.clone()).unwrap_or_else(|| Times::new(options.times_file.clone()));
        times.resumed.push(unix_now());
        (dir, chain.len() as u32, times)
    } else {
        let dir = RunDir::create(out, options.durability)?;
        dir.write_text(Path::new("pipeline.toml"), config.as_bytes())?;
        (dir, 0, Times::new(options.times_file.clone()))
    };
    times.keep(out)?;
    dir.write_text(Path::new("run.json"), &run_json(p, "running", &times, 0, sealer.last()))?;

    let source = RealSource::new(p, loaded);
    tracker.start();
    // Programs (a command model's, a command filter's) share the slots.
    let filter_parallel = match p.filter.as_ref().map(|f| &f.kind) {
        Some(crate::filter::FilterKind::Command { program, .. }) => program.parallel,
        _ => 1,
    };
    let slots = crate::stage::Slots::new(match &p.model {
        ModelSpec::Command(s) => s.parallel.max(filter_parallel),
        _ => filter_parallel,
    });
    let ctx = Context {
        pipeline: p,
        source: &source,
        n,
        progress: &tracker,
        names: Default::default(),
        root: out,
        slots: &slots,
    };
    let mut chains: Vec<Chain> = (0..p.replicates).into_par_iter().map(|r| Chain::start(&ctx, r)).collect();
    let dim = p.dim();
    let mut reference = None;
    let mut rows_written = 0u64;
    let mut first_means = Vec::new();
    let mut last_means = Vec::new();

    // Parquet encoding, fsync and sealing run on a writer thread while the
    // next generation is computed; the bounded channel caps memory at a few
    // million rows in flight. Files are independent, so their bytes do not
    // depend on this overlap; manifests are sealed in generation order.
    let sealed = std::thread::scope(|scope| -> Result<Sealer> {
        // Up to ~4M rows in flight (2 to 64 generations): enough to ride
        // out a slow fsync without holding much memory.
        let per_generation = (p.replicates as usize * (n + p.generate_n)).max(1);
        let in_flight = ((1usize << 22) / per_generation).clamp(2, 64);
        let (tx, rx) = std::sync::mpsc::sync_channel::<(GenerationFiles, Vec<u32>)>(in_flight);
        let dir = &dir;
        let writer = std::thread::Builder::new()
            .name("collapse-writer".into())
            .spawn_scoped(scope, move || -> Result<Sealer> {
                // Whatever has queued up is written as one batch: on a real
                // disk the per-file syscalls, not the bytes, limit the writer.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < WRITE_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let (gens, reads): (Vec<GenerationFiles>, Vec<Vec<u32>>) = batch.into_iter().unzip();
                    let ks: Vec<u32> = gens.iter().map(|g| g.k).collect();
                    let (written, error) = dir.write_generations(gens);
                    let sealed: Vec<_> =
                        ks.iter().zip(written).zip(reads).map(|((&k, outputs), reads)| (k, outputs, reads)).collect();
                    let done: Vec<u32> = sealed.iter().map(|(k, _, _)| *k).collect();
                    sealer.seal_all(dir, sealed)?;
                    if let Some(e) = error {
                        return Err(e);
                    }
                    for k in done {
                        fault::pause_if(fault::Point::PauseBetween, k);
                    }
                }
                Ok(sealer)
            })
            .map_err(|e| Error::Writer { what: "could not start", source: Some(e) })?;
        // A closed-form model's stage over a small generation is a few
        // microseconds a chain: waking worker threads for it costs more
        // than it saves, and they take cores from the writer.
        let serial_stages = matches!(p.model, ModelSpec::Gaussian(_) | ModelSpec::Categorical(_))
            && p.replicates as usize * p.generate_n * p.dim().unwrap_or(1) <= SERIAL_STAGE_ROWS;
        for k in 0..=p.generations {
            tracker.generation(k);
            // A reward filter's scores of every chain's newest rows, in one
            // query (one per chain cost most of a best-of run).
            if let (Some(crate::filter::FilterKind::Reward { reward, .. }), true) =
                (p.filter.as_ref().map(|f| &f.kind), k > 0 && k < p.generations)
            {
                let newest: Vec<&crate::values::Values> =
                    chains.iter().filter_map(|c| c.newest()).map(|b| &b.values).collect();
                if newest.len() == chains.len() {
                    let scores = crate::data::reward::scores_many(reward, &newest)?;
                    for (c, s) in chains.iter_mut().zip(scores) {
                        if let Some(first) = c.newest().map(|b| b.first_id) {
                            c.keep_rewards(first, s);
                        }
                    }
                }
            }
            let stage = |c: &mut Chain| {
                let out = c.stage(&ctx, k);
                tracker.replicate_done(c.replicate);
                out
            };
            let mut outs: Vec<StageOut> = if serial_stages {
                chains.iter_mut().map(stage).collect::<Result<_>>()?
            } else {
                chains.par_iter_mut().map(stage).collect::<Result<_>>()?
            };
            let blocks: Vec<&Block> = outs.iter().flat_map(|o| o.blocks.iter()).collect();
            rows_written += blocks.iter().map(|b| b.values.len() as u64).sum::<u64>();
            // A resumed run recomputes verified generations (every draw is
            // seeded) without writing them; only their summary is needed.
            let replay = k < verified;
            if replay && k != 0 && k != p.generations {
                continue;
            }
            let samples = SamplesTable::new(&blocks)?;
            // Image and text metrics come from the chains; the table
            // metrics are for vectors and tokens.
            let data_rows = if p.images() || p.text() {
                Vec::new()
            } else {
                if k == 0 {
                    reference = Some(metrics::reference(&samples, dim, &p.tail_quantiles)?);
                }
                let reference = reference.as_ref().expect("set at generation 0");
                metrics::data_metrics(&samples, k, dim, reference, &p.tail_quantiles)?
            };
            let metric_rows = merge_metrics(data_rows, &outs, k);
            if k == 0 {
                first_means = medians_by_metric(&metric_rows);
            }
            if k == p.generations {
                last_means = medians_by_metric(&metric_rows);
            }
            if replay {
                continue;
            }
            let fitted = k < p.generations;
            let mut extra = Vec::new();
            if let Some(grid) = image_grid(&blocks) {
                extra.push((PathBuf::from("images").join(format!("generation={k}.png")), grid));
            }
            if let (0, Some(t)) = (k, source.tokenizer()) {
                // Sealed with generation 0, which is the first to use it.
                extra.push((PathBuf::from(TOKENIZER_FILE), t.json().as_bytes().to_vec()));
            }
            if let (0, Some(b)) = (k, source.base()) {
                let weights = b.to_safetensors().map_err(|e| Error::model("base transformer", e))?;
                extra.push((PathBuf::from(BASE_FILE), weights));
            }
            for o in outs.iter_mut() {
                extra.append(&mut o.files);
            }
            let models = fitted.then(|| {
                outs.iter_mut()
                    .filter_map(|o| {
                        let file = o.weights.take().map(|w| {
                            let path = PathBuf::from("models")
                                .join(format!("generation={k}"))
                                .join(format!("replicate={}.safetensors", o.replicate));
                            let entry = (path.display().to_string(), blake3::hash(&w).to_hex().to_string());
                            extra.push((path, w));
                            entry
                        });
                        o.model.take().map(|(kind, params)| ModelRow {
                            replicate: o.replicate,
                            model_generation: k,
                            kind,
                            params,
                            file,
                        })
                    })
                    .collect()
            });
            // T_0 is never filtered (nothing generated yet): no file.
            let filter = (fitted && k > 0 && p.filter.is_some()).then(|| {
                outs.iter_mut()
                    .filter_map(|o| {
                        let (ids, decisions) = o.filter.take()?;
                        Some(crate::filter::FilterRows { replicate: o.replicate, ids, decisions })
                    })
                    .collect()
            });
            let training = fitted.then(|| outs.into_iter().map(|o| (o.replicate, o.training)).collect());
            let files = GenerationFiles { k, samples, training, filter, models, metrics: metric_rows, extra };
            if tx.send((files, p.mix.reads(k))).is_err() {
                // The writer stopped on an error; it is reported below.
                break;
            }
            tracker.generation_done(rows_written);
            if options.log_every > 0 && (k % options.log_every == 0 || k == p.generations) {
                tracing::info!(
                    generation = k,
                    of = p.generations,
                    rows = rows_written,
                    elapsed_s = clock.elapsed().as_secs_f64(),
                    "generation computed"
                );
            }
        }
        drop(tx);
        writer.join().map_err(|_| Error::Writer { what: "panicked", source: None })?
    });
    let sealer = match sealed {
        Ok(s) => s,
        Err(e) => {
            // Best effort: say why in run.json; the sealed generations stay.
            let mut failed = run_json(p, "failed", &times, rows_written, None);
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&failed) {
                v["error"] = serde_json::json!(e.chain());
                failed = serde_json::to_vec_pretty(&v).unwrap_or(failed);
            }
            let _ = dir.write_text(Path::new("run.json"), &failed);
            return Err(e);
        }
    };

    // The command stages' scratch folders; every file they handed back is
    // sealed.
    let _ = std::fs::remove_dir_all(out.join(".stages"));
    times.finished = Some(unix_now());
    times.keep(out)?;
    dir.write_text(Path::new("run.json"), &run_json(p, "complete", &times, rows_written, sealer.last()))?;
    let headline = first_means
        .iter()
        .filter_map(|(m, a)| last_means.iter().find(|(n, _)| n == m).map(|(_, b)| (m.clone(), *a, *b)))
        .collect();
    Ok(RunSummary {
        out: dir.root().to_path_buf(),
        generations: p.generations,
        replicates: p.replicates,
        rows: rows_written,
        headline,
        seconds: clock.elapsed().as_secs_f64(),
        already_complete: false,
    })
}

/// Per replicate: the data metrics, then the chain's own, in a fixed order.
fn merge_metrics(data_rows: Vec<MetricRow>, outs: &[StageOut], k: u32) -> Vec<MetricRow> {
    let mut rows = Vec::with_capacity(data_rows.len() + outs.len() * 4);
    let mut data = data_rows.into_iter().peekable();
    for o in outs {
        while let Some(r) = data.next_if(|r| r.replicate == o.replicate) {
            rows.push(r);
        }
        rows.extend(o.metrics.iter().map(|(m, v)| MetricRow {
            replicate: o.replicate,
            generation: k,
            metric: *m,
            value: *v,
        }));
    }
    rows.extend(data);
    rows
}

/// Median over replicates of each metric, in first-seen order: the typical
/// chain, which a mean hides when a few chains wander far.
fn medians_by_metric(rows: &[MetricRow]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(m, _)| **m == *r.metric) {
            Some(e) => e.1.push(r.value),
            None => out.push((r.metric.to_string(), vec![r.value])),
        }
    }
    out.into_iter()
        .map(|(m, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let med = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
            (m, med)
        })
        .collect()
}
