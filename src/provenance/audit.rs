//! `collapse audit RUN_DIR`: every file against its manifest, the hash
//! chain from generation 0 to the last, files no manifest names, lineage,
//! the make-up of every training set against the declared policy, and the
//! samples' schema. Collects every violation rather than stopping early.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::manifest::{hash_file, Manifest};
use crate::data::checks::{self, Composition};
use crate::data::store::{self, RunDir};
use crate::data::stored_models::Rescorable;
use crate::data::{filter_checks, ranges, replay, training_pass};
use crate::error::{Error, Result};
use crate::pipeline::{self, Pipeline};
use crate::rng::replicate_seed;

#[derive(Debug, Default)]
pub struct Report {
    pub generations: u32,
    pub manifests: usize,
    pub files: usize,
    pub sample_rows: u64,
    pub models: usize,
    pub violations: Vec<String>,
    /// What the audit could not check and why, without it being wrong: a
    /// source data file that is not on this machine (the run was moved),
    /// whose recorded hash stands.
    pub notes: Vec<String>,
    /// An unfinished run (run.json not complete): generations 0 ..
    /// `sealed` - 1 have manifests and were audited; the rest were not.
    pub incomplete: Option<u32>,
    /// With `--replay`: the models whose rows were drawn again, and the
    /// rows compared.
    pub replayed: Option<(u64, u64)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// "incomplete: generations 0-400 sealed of 1000" for an unfinished run.
    pub fn incomplete_line(&self) -> Option<String> {
        self.incomplete.map(|s| match s {
            0 => format!("incomplete: no generation sealed of {}", self.generations),
            s => format!("incomplete: generations 0-{} sealed of {}", s - 1, self.generations),
        })
    }

    /// The violations grouped by kind, kinds in the order they first
    /// appear.
    pub fn by_kind(&self) -> Vec<(String, Vec<&str>)> {
        let mut out: Vec<(String, Vec<&str>)> = Vec::new();
        for v in &self.violations {
            let k = kind(v);
            match out.iter_mut().find(|(name, _)| *name == k) {
                Some((_, list)) => list.push(v),
                None => out.push((k, vec![v])),
            }
        }
        out
    }

    /// The whole report as JSON (every violation, with its kind).
    pub fn to_json(&self, run: &Path) -> serde_json::Value {
        serde_json::json!({
            "run": run.display().to_string(),
            "ok": self.ok(),
            "generations": self.generations,
            "manifests": self.manifests,
            "files": self.files,
            "sample_rows": self.sample_rows,
            "models": self.models,
            "sealed_generations": self.incomplete.map_or(u64::from(self.generations) + 1, u64::from),
            "complete": self.incomplete.is_none(),
            "violations": self.violations.iter().map(|v| serde_json::json!({"kind": kind(v), "message": v})).collect::<Vec<_>>(),
            "notes": self.notes,
            "replayed": self.replayed.map(|(models, rows)| serde_json::json!({"models": models, "rows": rows})),
        })
    }
}

/// What a violation is about: its table or file family (`samples`,
/// `manifests`, `run.json`) or its check (`lineage`, `mixing`, `metrics`).
pub fn kind(violation: &str) -> String {
    let head = violation.split(": ").next().unwrap_or(violation);
    if head.starts_with("generation ") {
        return "manifests".into();
    }
    head.split('/').next().unwrap_or(head).to_string()
}

/// The u32 column that must equal a run file's generation (a samples file
/// has none: its folder name is its generation).
fn generation_column(rel: &str) -> Option<&'static str> {
    if rel.starts_with("metrics/") {
        Some("generation")
    } else if rel.starts_with("training/") || rel.starts_with("models/") || rel.starts_with("filter/") {
        Some("model_generation")
    } else {
        None
    }
}

/// Where a source file named in generation 0's manifest lies: as written,
/// from the folder of the pipeline file (run.json records it).
pub fn source_path(root: &Path, written: &str) -> PathBuf {
    let p = Path::new(written);
    match pipeline::recorded_base(root) {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}

/// What the audit is doing, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Each generation's manifest and the files it names, hashed.
    Files,
    /// The tables read together: lineage, samples as runs of ids, metrics.
    Tables,
    /// Each generation's training sets (and filter decisions) against
    /// samples.
    TrainingSets,
    /// `--replay`: each model's rows drawn again from its seed.
    Replay,
}

/// What an audit does beyond its default checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Draw every synthetic row again from its model's stored parameters
    /// and the run's seed (models their params make again: Gaussian, GMM,
    /// categorical), and name the rows that differ. It costs about what
    /// sampling cost the run.
    pub replay: bool,
}

/// Where the audit stands: `done` of `of` in its step (generations; the
/// tables are one piece of work).
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    pub step: Step,
    pub done: usize,
    pub of: usize,
}

pub type Watch<'a> = &'a (dyn Fn(Checked) + Sync);

pub fn audit(root: &Path) -> Result<Report> {
    audit_with(root, Options::default(), &|_| {})
}

/// [`audit`] with `options`, telling `watch` where it stands.
pub fn audit_with(root: &Path, options: Options, watch: Watch<'_>) -> Result<Report> {
    let pipeline_path = root.join("pipeline.toml");
    if !pipeline_path.is_file() {
        return Err(Error::Input(format!(
            "{}: not a run directory (no pipeline.toml); pass the folder `collapse run` wrote",
            root.display()
        )));
    }
    let text = std::fs::read(&pipeline_path).map_err(|e| Error::io(&pipeline_path, e))?;
    let p = pipeline::parse(&String::from_utf8_lossy(&text), root, &[])
        .map_err(|problems| Error::Pipeline { file: pipeline_path.clone(), problems })?;
    let identity = super::Identity::of(&text);
    let mut report = Report { generations: p.generations, ..Report::default() };
    let run_json = store::run_json(root);
    let complete = run_json.as_ref().is_some_and(|j| j["status"] == "complete");
    // An unfinished run is audited as what it is: the generations its
    // manifests sealed, in a row from 0 (`sealed` of them); what comes after
    // is unsealed work that --resume redoes, not a violation.
    let mut sealed: Option<u32> = None;
    let notes = &mut report.notes;
    let v = &mut report.violations;

    // 1. The hash chain and every file it names.
    let mut listed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    let mut previous: Option<String> = None;
    let tell = |step, done, of| watch(Checked { step, done, of });
    for k in 0..=p.generations {
        tell(Step::Files, k as usize, p.generations as usize + 1);
        let (m, hash) = match Manifest::read(root, k) {
            Ok(x) => x,
            Err(_) if !complete => {
                sealed = Some(k);
                break;
            }
            Err(e) => {
                v.push(format!(
                    "generation {k}: no readable manifest ({}); an unfinished run resumes with --resume",
                    e.chain()
                ));
                previous = None;
                continue;
            }
        };
        report.manifests += 1;
        if m.run != p.name || m.seed != p.seed {
            v.push(format!(
                "{}: names run {} with seed {}, but pipeline.toml says run {} with seed {}",
                Manifest::path(k).display(),
                m.run,
                m.seed,
                p.name,
                p.seed
            ));
        }
        listed.insert(Manifest::path(k));
        let mpath = Manifest::path(k).display().to_string();
        if m.generation != k {
            v.push(format!("{mpath}: says generation {}, expected {k}", m.generation));
        }
        if k > 0 && m.previous_manifest_blake3 != previous {
            v.push(format!(
                "{mpath}: chain broken: previous_manifest_blake3 is {} but manifest {} hashes to {}",
                m.previous_manifest_blake3.as_deref().unwrap_or("missing"),
                k - 1,
                previous.as_deref().unwrap_or("nothing (it is missing)")
            ));
        }
        if !identity.matches(&m) {
            v.push(format!(
                "{mpath}: config_blake3 does not match pipeline.toml (the pipeline was edited after the run)"
            ));
        }
        for input in &m.inputs {
            match recorded.get(&input.path) {
                Some(h) if *h != input.blake3 => v.push(format!(
                    "{mpath}: input {} has blake3 {} but its own manifest says {h}",
                    input.path, input.blake3
                )),
                Some(_) => {}
                None if k == 0 || Path::new(&input.path).is_absolute() => {
                    match hash_file(&source_path(root, &input.path)) {
                        Ok((h, _)) if h == input.blake3 => {}
                        Ok(_) => v.push(format!("{mpath}: source data {} changed since the run read it", input.path)),
                        // A run copied to another machine leaves its source
                        // behind; the manifest's hash of it is the record.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => notes.push(format!(
                            "source data {} is not on this machine; its recorded blake3 {} was not re-checked",
                            input.path, input.blake3
                        )),
                        Err(e) => v.push(format!("{mpath}: source data {} cannot be read: {e}", input.path)),
                    }
                }
                None => v.push(format!("{mpath}: input {} is not an output of any earlier generation", input.path)),
            }
        }
        for out in &m.outputs {
            let rel = PathBuf::from(&out.path);
            listed.insert(rel.clone());
            recorded.insert(out.path.clone(), out.blake3.clone());
            let file = root.join(&rel);
            match hash_file(&file) {
                Err(e) => v.push(format!("{}: generation {k}: missing or unreadable ({e})", out.path)),
                Ok((h, bytes)) => {
                    if h != out.blake3 || bytes != out.bytes {
                        v.push(format!(
                            "{}: generation {k}: blake3 {}… does not match the manifest's {}… (the file was changed or replaced)",
                            out.path,
                            &h[..12],
                            &out.blake3[..12.min(out.blake3.len())]
                        ));
                    }
                    // Weights and image grids: the hash above is their check.
                    if !out.path.ends_with(".parquet") {
                        continue;
                    }
                    match checks::file_facts(&file, generation_column(&out.path)) {
                        Err(e) => v.push(format!("{}: generation {k}: not a readable Parquet file: {e}", out.path)),
                        Ok(f) => {
                            if out.rows.is_some_and(|r| r != f.rows) {
                                v.push(format!(
                                    "{}: generation {k}: {} rows, the manifest says {}",
                                    out.path,
                                    f.rows,
                                    out.rows.unwrap_or_default()
                                ));
                            }
                            if let Some((lo, hi)) = f.range.filter(|&(lo, hi)| lo != k || hi != k) {
                                v.push(format!(
                                    "{}: holds rows of generations {lo} to {hi}, expected only {k}",
                                    out.path
                                ));
                            }
                            if out.path.starts_with("samples/") {
                                report.sample_rows += f.rows;
                                for s in checks::samples_schema(&file, p.row_kind()) {
                                    v.push(format!("{}: {s}", out.path));
                                }
                            }
                        }
                    }
                }
            }
        }
        let expected: Vec<PathBuf> = std::iter::once(RunDir::partition("samples", k))
            .chain((k < p.generations).then(|| RunDir::partition("training", k)))
            .chain((k < p.generations).then(|| RunDir::partition("models", k)))
            .chain((k > 0 && k < p.generations && p.filter.is_some()).then(|| RunDir::partition(store::FILTER_DIR, k)))
            .chain(std::iter::once(RunDir::metrics_file(k)))
            .collect();
        for e in expected {
            if !m.outputs.iter().any(|o| Path::new(&o.path) == e) {
                v.push(format!("{mpath}: does not list {}", e.display()));
            }
        }
        previous = Some(hash);
    }
    tell(Step::Files, p.generations as usize + 1, p.generations as usize + 1);
    if !complete && sealed.is_none() {
        sealed = Some(p.generations + 1);
    }
    report.incomplete = sealed;
    match run_json.as_ref().and_then(|j| j["last_manifest_blake3"].as_str().map(str::to_string)) {
        _ if sealed.is_some() => {}
        Some(h) if Some(&h) == previous.as_ref() => {}
        Some(h) => v.push(format!(
            "run.json: last_manifest_blake3 {h} is not the hash of the last manifest ({})",
            previous.as_deref().unwrap_or("there is none")
        )),
        None => v.push("run.json: missing or without last_manifest_blake3 (the run did not finish)".to_string()),
    }
    if let Some(j) = &run_json {
        v.extend(run_json_fields(j, &p, report.sample_rows));
    }

    // 2. Files no manifest names.
    let dir_files = store::table_files(root)?;
    report.files = dir_files.len();
    let mut unsealed = 0;
    for f in &dir_files {
        if !listed.contains(f) {
            match (sealed, store::file_generation(f)) {
                (Some(s), Some(g)) if g >= s => unsealed += 1,
                _ => v.push(format!("{}: no manifest names this file", f.display())),
            }
        }
    }
    if unsealed > 0 {
        notes.push(format!(
            "{unsealed} files of unsealed generations were not checked; --resume removes and rewrites them"
        ));
    }

    // Weights files the models table names carry the hash their manifest
    // recorded.
    match checks::model_files(root, sealed) {
        Ok(files) => {
            for (file, hash) in files {
                match recorded.get(&file) {
                    Some(h) if *h == hash => {}
                    Some(_) => v.push(format!("models: {file}: the table's blake3 disagrees with the manifest")),
                    None => v.push(format!("models: {file} is named by the models table but no manifest lists it")),
                }
            }
        }
        Err(e) => v.push(format!("models: the table cannot be read: {}", e.chain())),
    }

    // 3. Lineage and 4. mixing, over the tables as `collapse query` sees them:
    // row by row where a check reads samples alone, over id ranges where it
    // joins training sets to samples. (Read side by side, rayon::join, these
    // three took the same time: the lineage query keeps both cores busy.)
    tell(Step::Tables, 0, 3);
    let lineage = checks::lineage(root, sealed);
    tell(Step::Tables, 1, 3);
    // Samples as runs of ids, read once for the filter's and the range checks.
    let runs = ranges::SampleRuns::read(root, sealed);
    tell(Step::Tables, 2, 3);
    // The metrics the checks below hold to the tables, in one pass.
    let mut wanted = vec!["train_rows", "train_real_fraction"];
    if p.filter.is_some() {
        wanted.extend(filter_metric_names());
    }
    let metric_values = checks::metric_values(root, &wanted, sealed);
    tell(Step::Tables, 3, 3);
    match lineage {
        Ok(found) => v.extend(found.into_iter().map(|s| format!("lineage: {s}"))),
        Err(e) => v.push(format!("lineage: the tables cannot be read together: {}", e.chain())),
    }
    let resamples = p.filter.as_ref().is_some_and(|f| f.action == crate::filter::Action::Resample);
    let found = match &runs {
        Ok(runs) => {
            let ranges = ranges::RangeCheck::new(root, sealed, resamples, runs);
            let filter = p.filter.as_ref().map(|f| {
                let models_to = sealed.map_or(p.generations, |s| s.min(p.generations));
                filter_checks::FilterCheck::new(root, sealed, runs, f, p.seed, p.replicates, models_to, rescorable(&p))
            });
            tell(Step::TrainingSets, 0, p.generations as usize);
            training_pass::check(root, sealed, ranges, filter, &mut |done, of| tell(Step::TrainingSets, done, of))
        }
        Err(e) => training_pass::Found { ranges: Err(e.chain()), filter: None },
    };
    let filtered = match found.filter {
        Some(Ok(found)) => {
            v.extend(found.violations.iter().cloned());
            for metric in filter_metric_names() {
                let Some(values) = metric_values.as_ref().ok().and_then(|m| m.get(metric)) else { continue };
                for (&(r, k), want) in &found.metrics {
                    let expected = want.iter().find(|(name, _)| *name == metric).map(|x| x.1);
                    let got = values.get(&(r, k)).copied();
                    let same = match (got, expected) {
                        (Some(g), Some(e)) => (g - e).abs() <= 1e-12,
                        (None, None) => true,
                        _ => false,
                    };
                    if !same {
                        v.push(format!(
                            "metrics: {metric} of replicate {r} model {k} is {}, the filter table says {}",
                            got.map_or("missing".to_string(), |g| g.to_string()),
                            expected.map_or("nothing (no such rows)".to_string(), |e| e.to_string())
                        ));
                    }
                }
            }
            Some(found.candidates)
        }
        Some(Err(e)) => {
            v.push(format!("filter: the tables cannot be read together: {e}"));
            None
        }
        None => None,
    };
    match found.ranges {
        Ok(found) => {
            v.extend(found.violations.iter().map(|s| format!("lineage: {s}")));
            report.models = found.compositions.len();
            // A filtered model's candidates are what the policy picked; its
            // training set is what the filter kept of them.
            // Where the filter's checks could not finish, the candidates
            // are unknown, and the thinned training sets would each read
            // as a policy broken: the filter's violation says why instead.
            let picked: Option<Vec<Composition>> = match (&filtered, &p.filter) {
                (Some(candidates), _) => Some(
                    found
                        .compositions
                        .iter()
                        .map(|c| match candidates.get(&(c.replicate, c.model_generation)) {
                            Some(cand) if c.model_generation > 0 => cand.clone(),
                            _ => c.clone(),
                        })
                        .collect(),
                ),
                (None, None) => Some(found.compositions.clone()),
                (None, Some(_)) => None,
            };
            if let Some(picked) = picked {
                v.extend(mixing(&p, &picked, &found.sizes, sealed));
            }
            let train = |m: &str| metric_values.as_ref().ok().and_then(|v| v.get(m));
            if let (Some(rows), Some(frac)) = (train("train_rows"), train("train_real_fraction")) {
                for c in &found.compositions {
                    let key = (c.replicate, c.model_generation);
                    let real = (c.real_gen0 + c.real_own) as f64;
                    if rows.get(&key) != Some(&(c.rows as f64))
                        || frac.get(&key).is_none_or(|f| (f - real / c.rows as f64).abs() > 1e-12)
                    {
                        v.push(format!(
                            "metrics: train_rows / train_real_fraction of replicate {} model {} disagree with its training rows",
                            c.replicate, c.model_generation
                        ));
                    }
                }
            }
        }
        Err(e) => v.push(format!("mixing: the tables cannot be read together: {e}")),
    }
    if options.replay {
        match rescorable(&p) {
            Some(kind) => {
                let run = replay::Run {
                    seed: p.seed,
                    kind,
                    rows_per_model: p.generated_rows(),
                };
                let replayed = replay::replay(root, sealed, &run, &|done, of| tell(Step::Replay, done, of))?;
                report.violations.extend(replayed.found);
                report.replayed = Some((replayed.models, replayed.rows));
            }
            None => report.notes.push(format!(
                "--replay: a {} model's rows need its weights or its training rows to draw again; they were not replayed",
                p.model_name()
            )),
        }
    }
    Ok(report)
}

/// The run's model kind where its `models` rows alone make it again.
fn rescorable(p: &Pipeline) -> Option<Rescorable> {
    use crate::pipeline::ModelSpec;
    let d = p.dim().unwrap_or(1);
    match p.model {
        ModelSpec::Gaussian(_) => Some(Rescorable::Gaussian(d)),
        ModelSpec::Gmm(_) => Some(Rescorable::Gmm(d)),
        ModelSpec::Categorical(_) => Some(Rescorable::Categorical),
        _ => None,
    }
}

/// The fields of run.json that pipeline.toml, the manifests and the files
/// confirm, each against them: a mismatch names the field and both values.
/// The rest are records only (start, resume and finish times, version, git
/// revision, device): see the README.
fn run_json_fields(j: &serde_json::Value, p: &Pipeline, sample_rows: u64) -> Vec<String> {
    let mut v = Vec::new();
    let mut check = |field: &str, got: &serde_json::Value, want: serde_json::Value, from: &str| {
        if *got != want {
            v.push(format!("run.json: {field} is {got}, but {from} says {want}"));
        }
    };
    check("tool", &j["tool"], "collapse".into(), "the format");
    check("name", &j["name"], p.name.clone().into(), "pipeline.toml");
    check("seed", &j["seed"], p.seed.into(), "pipeline.toml");
    check("generations", &j["generations"], p.generations.into(), "pipeline.toml");
    check("replicates", &j["replicates"], p.replicates.into(), "pipeline.toml");
    if j["status"] == "complete" {
        check("sample_rows", &j["sample_rows"], sample_rows.into(), "the samples files");
    } else if !matches!(j["status"].as_str(), Some("running" | "failed")) {
        v.push(format!("run.json: status is {}, not one of complete, running, failed", j["status"]));
    }
    let seeds: Vec<u64> = (0..p.replicates).map(|r| replicate_seed(p.seed, r)).collect();
    if j["replicate_seeds"] != serde_json::json!(seeds) {
        let listed = j["replicate_seeds"].as_array().cloned().unwrap_or_default();
        v.push(match (0..seeds.len()).find(|&r| listed.get(r).and_then(|x| x.as_u64()) != Some(seeds[r])) {
            Some(r) => format!(
                "run.json: replicate_seeds[{r}] is {}, but the master seed {} derives {}",
                listed.get(r).map_or_else(|| "missing".to_string(), |x| x.to_string()),
                p.seed,
                seeds[r]
            ),
            None => format!(
                "run.json: replicate_seeds has {} seeds, but the run has {} replicates",
                listed.len(),
                p.replicates
            ),
        });
    }
    v
}

/// The metrics a filtered run writes per model from 1 on.
fn filter_metric_names() -> [&'static str; 4] {
    ["filter_kept", "filter_kept_real_fraction", "filter_tpr", "filter_fpr"]
}

/// Every model's training set against the declared policy, exactly.
fn mixing(
    p: &Pipeline,
    comp: &[Composition],
    sizes: &BTreeMap<(u32, u32), (u64, u64)>,
    sealed: Option<u32>,
) -> Vec<String> {
    // Generations 0 ..= `samples_to` hold samples; models 0 .. `models_to`.
    let samples_to = sealed.map_or(p.generations, |s| s.saturating_sub(1));
    let models_to = sealed.map_or(p.generations, |s| s.min(p.generations));
    let mut v = Vec::new();
    let n = p.data.n.unwrap_or(0) as u64;
    let by_model: BTreeMap<(u32, u32), &Composition> =
        comp.iter().map(|c| ((c.replicate, c.model_generation), c)).collect();
    for r in 0..p.replicates {
        // Real rows enter after generation 0 only as fresh data.
        for k in 1..=samples_to {
            let fresh = sizes.get(&(r, k)).map_or(0, |s| s.0);
            let want = p.mix.fresh_rows(n as usize, k, p.generations) as u64;
            if fresh != want {
                v.push(format!(
                    "mixing: replicate {r} generation {k} holds {fresh} real rows; policy {} adds {want} there",
                    p.mix.name()
                ));
            }
        }
        let d0 = sizes.get(&(r, 0)).map_or(0, |s| s.0);
        let mut earlier = 0;
        for k in 0..models_to {
            let Some(c) = by_model.get(&(r, k)) else {
                v.push(format!("mixing: replicate {r} model {k} has no training rows"));
                continue;
            };
            let dk = sizes.get(&(r, k)).map_or(0, |s| s.1);
            // The policy's expectation, held against what the tables show.
            let mut want = p.mix.makeup(k, n, d0, dk, earlier);
            // Best-of: a policy that takes some of D_k takes whole groups
            // of candidates, K rows for each row it would take.
            let best_of = u64::from(p.filter.as_ref().map_or(1, |f| f.best_of()));
            if let (true, Some(take)) = (k > 0 && best_of > 1, p.mix.synthetic_rows(n as usize)) {
                let take = take as u64;
                want.synthetic_dk = want.synthetic_dk.map(|s| s * best_of);
                want.rows = want.rows.map(|r| r + take * (best_of - 1));
            }
            let got = [c.rows, c.real_gen0, c.real_own, c.synthetic_own, c.synthetic_earlier];
            let names = [
                "rows",
                "real rows of D_0",
                "fresh real rows",
                "synthetic rows of D_k",
                "synthetic rows of earlier generations",
            ];
            let wants = [want.rows, want.real_d0, want.real_fresh, want.synthetic_dk, want.synthetic_earlier];
            for i in 0..5 {
                if let Some(w) = wants[i] {
                    if got[i] != w {
                        v.push(format!(
                            "mixing: replicate {r} model {k}: policy {} expects {w} {}, the training table has {}",
                            p.mix.name(),
                            names[i],
                            got[i]
                        ));
                    }
                }
            }
            if c.distinct != c.rows {
                v.push(format!(
                    "mixing: replicate {r} model {k}: {} training rows are duplicates",
                    c.rows - c.distinct
                ));
            }
            earlier += dk;
        }
    }
    v
}
