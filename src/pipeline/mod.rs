//! Pipeline files: parse TOML, apply `--set` overrides, validate into a
//! [`Pipeline`] reporting every problem at once, and write the resolved form.
//!
//! Parsing is pure: text in, a validated spec out, the filesystem never
//! touched, so a run directory's own pipeline.toml parses wherever the run
//! was copied. Whether the files it names exist, and what their headers say,
//! is [`crate::resolve`]'s question, asked only by the verbs that read them.

mod filter;
mod images;
mod reader;
mod spec;
mod text;

use std::path::Path;

pub use spec::{
    DataSpec, FileFormat, ImageFormat, ImageSource, MixPolicy, ModelSpec, Pipeline, RowKind, Source, Spread, Variance,
};

use crate::error::Error;
use crate::keys::at_base;
use crate::linalg;
use crate::model;
use reader::{Problems, Section};

/// Reads, overrides and validates a pipeline file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Pipeline, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Input(format!("{}: cannot read: {e}", path.display())))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    // A run directory's own pipeline.toml keeps paths as written beside
    // the original file; run.json says where that was.
    let recorded =
        if path.file_name() == Some(std::ffi::OsStr::new("pipeline.toml")) { recorded_base(parent) } else { None };
    let base = recorded.as_deref().unwrap_or(parent);
    parse(&text, base, overrides).map_err(|problems| Error::Pipeline { file: path.to_path_buf(), problems })
}

/// Parses pipeline text; relative data paths resolve against `base`.
pub fn parse(text: &str, base: &Path, overrides: &[String]) -> Result<Pipeline, Vec<String>> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| vec![format!("not valid TOML: {e}")])?;
    let mut problems = Vec::new();
    for o in overrides {
        if let Err(p) = apply_override(&mut table, o) {
            problems.push(p);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if table.contains_key("sweep") {
        return Err(vec![
            "sweep: this file is a study (a grid of runs): run it with `collapse sweep FILE`; `collapse validate FILE` checks every cell".into(),
        ]);
    }
    let cell = Problems::new(Vec::new());
    let pipeline = build(&table, base, &cell);
    let mut problems = cell.into_inner();
    match pipeline {
        Some(p) if problems.is_empty() => {
            if let Some(n) = p.data.n {
                problems.extend(p.size_problems(n));
            }
            if problems.is_empty() {
                Ok(p)
            } else {
                Err(problems)
            }
        }
        _ => {
            if problems.is_empty() {
                problems.push("the pipeline is incomplete".to_string());
            }
            Err(problems)
        }
    }
}

/// The data file a pipeline names, read from its `[data]` table alone
/// (path at `base`, format, columns), however the rest of it parses: so a
/// pipeline with other problems still gets its columns checked.
pub fn data_file(
    text: &str,
    base: &Path,
    overrides: &[String],
) -> Option<(std::path::PathBuf, FileFormat, Vec<String>)> {
    let mut table: toml::Table = text.parse().ok()?;
    for o in overrides {
        apply_override(&mut table, o).ok()?;
    }
    let data = table.get("data")?.as_table()?;
    let format = match data.get("source")?.as_str()? {
        "parquet" => FileFormat::Parquet,
        "csv" if !data.contains_key("image") => FileFormat::Csv,
        _ => return None,
    };
    let path = at_base(base, data.get("path")?.as_str()?);
    let columns =
        data.get("columns")?.as_array()?.iter().map(|c| c.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?;
    Some((path, format, columns))
}

/// `--set mix.real-fraction=0.2`: the value is read as TOML, or as a plain
/// string when it is not valid TOML (so `--set data.source=zipf` works).
fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), String> {
    let (key, raw) =
        spec.split_once('=').ok_or_else(|| format!("--set {spec}: expected key=value, e.g. --set generate.n=500"))?;
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = cur.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur =
            entry.as_table_mut().ok_or_else(|| format!("--set {spec}: `{}` is not a table", parts[..=i].join(".")))?;
    }
    Ok(())
}

fn build(table: &toml::Table, base: &Path, problems: &Problems) -> Option<Pipeline> {
    let mut root = Section::root(table, problems);
    let name: Option<String> = root.req("name", "the run's name; output goes to runs/<name>");
    if let Some(n) = &name {
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || n.starts_with('.') {
            root.problem("name", format!("{n:?} must be letters, digits, '-', '_' or '.', since it names a directory"));
        }
    }
    let seed: u64 = root.opt("seed").unwrap_or(0);
    let generations: Option<u64> = root.req("generations", "how many models to fit in a chain");
    let replicates: u64 = root.opt("replicates").unwrap_or(1);
    if generations == Some(0) || generations.is_some_and(|g| g > 1_000_000) {
        root.problem("generations", "must be in [1, 1000000]");
    }
    if replicates == 0 || replicates > (1 << 24) {
        root.problem("replicates", format!("must be in [1, {}], got {replicates}", 1u64 << 24));
    }

    let data = match root.sub("data") {
        Some(s) => build_data(s, base),
        None => {
            if !root.has("data") {
                root.problem("data", "missing: a [data] table saying where D_0 comes from");
            }
            None
        }
    };
    let model = match root.sub("model") {
        Some(s) => build_model(s, base),
        None => {
            if !root.has("model") {
                root.problem("model", "missing: a [model] table with kind = \"gaussian\" or \"categorical\"");
            }
            None
        }
    };
    let generate_n = match root.sub("generate") {
        Some(mut s) => {
            let n: Option<u64> = s.req("n", "synthetic rows each model generates (M)");
            if n == Some(0) {
                s.problem("n", "must be at least 1");
            }
            s.finish();
            n
        }
        None => {
            if !root.has("generate") {
                root.problem("generate", "missing: a [generate] table with n = rows each model generates");
            }
            None
        }
    };
    let mix = match root.sub("mix") {
        Some(s) => build_mix(s),
        None => Some(MixPolicy::Replace),
    };
    // Absent: no filter. A [filter] that does not validate fails the
    // pipeline (its problems are recorded), never runs unfiltered.
    let filter = root.sub("filter").map(|s| filter::build_filter(s, base));
    let (tail_quantiles, rare_ngrams) = match root.sub("metrics") {
        Some(mut s) => {
            let q: Vec<f64> = s.opt("tail-quantiles").unwrap_or_else(default_tail_quantiles);
            if q.iter().any(|p| !(*p > 0.0 && *p < 1.0)) {
                s.problem("tail-quantiles", format!("every quantile must be in (0, 1), got {q:?}"));
            }
            let rare = text::rare_ngrams(&mut s);
            s.finish();
            (q, rare)
        }
        None => (default_tail_quantiles(), Default::default()),
    };
    root.finish();

    // Combinations across sections.
    if let (Some(d), Some(m)) = (&data, &model) {
        let discrete = matches!(d.source, Source::Zipf { .. });
        let images = matches!(d.source, Source::Images(_));
        let text = matches!(d.source, Source::Text(_));
        let text_model = matches!(m, ModelSpec::Ngram(_) | ModelSpec::Transformer(_));
        // The user's program takes whatever data the run has.
        let any_data = matches!(m, ModelSpec::Command(_));
        match (text_model, text && !any_data) {
            (true, false) => {
                problems.borrow_mut().push(format!("model.kind: {} needs text (data.source = \"text\")", m.name()))
            }
            (false, true) => problems
                .borrow_mut()
                .push(format!("model.kind: {} cannot model text; use kind = \"ngram\" or \"transformer\"", m.name())),
            _ => {}
        }
        // A conv VAE's image shape is checked where the shape is known:
        // in the file's header (crate::resolve).
        match (m, &d.source) {
            (ModelSpec::Vae(_), _) if !images && !text => problems.borrow_mut().push(
                "model.kind: vae needs images (data.source = \"idx\", or \"csv\" with data.image = [height, width])"
                    .to_string(),
            ),
            (m, _) if images && !matches!(m, ModelSpec::Vae(_) | ModelSpec::Command(_)) => {
                problems.borrow_mut().push(format!("model.kind: {} cannot model images; use kind = \"vae\"", m.name()))
            }
            _ => {}
        }
        match m {
            ModelSpec::Categorical(_) if !discrete && !images && !text => problems.borrow_mut().push(
                "model.kind: categorical needs discrete data (data.source = \"zipf\"); use kind = \"gaussian\" for vector data"
                    .to_string(),
            ),
            ModelSpec::Gaussian(_) | ModelSpec::Gmm(_) | ModelSpec::Kde(_) if discrete => {
                problems.borrow_mut().push(format!(
                    "model.kind: {} needs vector data; data.source = \"zipf\" gives tokens: use kind = \"categorical\"",
                    m.name()
                ))
            }
            _ => {}
        }
    }

    if let (Some(Some(f)), Some(m), Some(d)) = (&filter, &model, &data) {
        let rows = match (&d.source, spec::dim_of(&d.source)) {
            (Source::Images(_), _) => crate::values::RowKind::Images,
            (Source::Text(_), _) => crate::values::RowKind::Text,
            (_, Some(dim)) => crate::values::RowKind::Vectors(dim),
            (_, None) => crate::values::RowKind::Tokens,
        };
        problems.borrow_mut().extend(filter::combination_problems(f, m, rows, mix.as_ref()));
    }

    Some(Pipeline {
        name: name?,
        seed,
        generations: u32::try_from(generations?).ok()?,
        replicates: u32::try_from(replicates).ok()?,
        data: data?,
        model: model?,
        generate_n: usize::try_from(generate_n?).ok()?,
        mix: mix?,
        filter: match filter {
            Some(f) => Some(f?),
            None => None,
        },
        tail_quantiles,
        rare_ngrams,
        base: base.to_path_buf(),
    })
}

fn default_tail_quantiles() -> Vec<f64> {
    vec![0.001, 0.01, 0.99, 0.999]
}

fn build_data(mut s: Section, base: &Path) -> Option<DataSpec> {
    let source: Option<String> =
        s.req("source", "where D_0 comes from: gaussian, gmm, zipf, parquet, csv, idx or text");
    let holdout: u64 = s.opt("holdout").unwrap_or(0);
    let n: Option<u64> = s.opt("n");
    if n == Some(0) {
        s.problem("n", "must be at least 1");
    }
    let source = match source.as_deref() {
        Some("gaussian") => {
            s.set_context("for source = \"gaussian\"");
            if n.is_none() {
                s.problem("n", "missing: real training rows per replicate (a non-negative integer)");
            }
            gaussian_source(&mut s)
        }
        Some("gmm") => {
            s.set_context("for source = \"gmm\"");
            if n.is_none() {
                s.problem("n", "missing: real training rows per replicate (a non-negative integer)");
            }
            gmm_source(&mut s)
        }
        Some("zipf") => {
            s.set_context("for source = \"zipf\"");
            if n.is_none() {
                s.problem("n", "missing: real training rows per replicate (a non-negative integer)");
            }
            let symbols: Option<u64> = s.req("symbols", "how many symbols K the Zipf law spreads over");
            let exponent: f64 = s.opt("exponent").unwrap_or(1.0);
            if symbols.is_some_and(|k| !(2..=1 << 24).contains(&k)) {
                s.problem("symbols", format!("must be in [2, {}]", 1 << 24));
            }
            if !(exponent >= 0.0 && exponent.is_finite()) {
                s.problem("exponent", format!("must be a finite number >= 0, got {exponent}"));
            }
            symbols.map(|k| Source::Zipf { symbols: k as u32, exponent })
        }
        Some("csv") if s.has("image") => {
            s.set_context("for source = \"csv\" with image = [height, width]");
            images::csv_source(&mut s, base)
        }
        Some(fmt @ ("parquet" | "csv")) => {
            s.set_context(format!("for source = \"{fmt}\""));
            let path: Option<String> = s.req("path", "the data file, relative to the pipeline file");
            let columns: Option<Vec<String>> = s.req("columns", "the numeric columns that become x0, x1, ...");
            if let Some(c) = &columns {
                if c.is_empty() {
                    s.problem("columns", "name at least one numeric column");
                }
                let mut seen = std::collections::BTreeSet::new();
                for name in c {
                    if !seen.insert(name) {
                        s.problem("columns", format!("column {name:?} is named twice"));
                    }
                }
            }
            let path = path.map(|p| at_base(base, &p));
            let format = if fmt == "csv" { FileFormat::Csv } else { FileFormat::Parquet };
            match (path, columns) {
                (Some(path), Some(columns)) => Some(Source::File { path, format, columns }),
                _ => None,
            }
        }
        Some("idx") => {
            s.set_context("for source = \"idx\"");
            images::idx_source(&mut s, base)
        }
        Some("text") => {
            s.set_context("for source = \"text\"");
            text::text_source(&mut s, base)
        }
        Some(other) => {
            s.problem(
                "source",
                format!("unknown source {other:?}; use gaussian, gmm, zipf, parquet, csv, idx or text"),
            );
            // Keys of the unknown source are not reported as unknown too.
            for k in [
                "mean",
                "std",
                "cov",
                "weights",
                "means",
                "stds",
                "covs",
                "symbols",
                "exponent",
                "path",
                "columns",
                "labels",
                "image",
                "pixel-max",
                "labelled",
                "header",
            ]
            .into_iter()
            .chain(text::TEXT_KEYS)
            {
                s.allow(k);
            }
            None
        }
        None => None,
    };
    s.finish();
    Some(DataSpec { n: n.map(|n| n as usize), holdout: holdout as usize, source: source? })
}

fn gaussian_source(s: &mut Section) -> Option<Source> {
    let mean: Option<Vec<f64>> = s.req("mean", "the mean vector, e.g. mean = [0.0]");
    let std: Option<Vec<f64>> = s.opt("std");
    let cov: Option<Vec<Vec<f64>>> = s.opt("cov");
    let mean = mean?;
    let d = mean.len();
    if d == 0 {
        s.problem("mean", "must have at least one entry");
        return None;
    }
    if mean.iter().any(|m| !m.is_finite()) {
        s.problem("mean", "every entry must be finite");
    }
    let spread = match (std, cov) {
        (Some(_), Some(_)) => {
            s.problem("cov", "give either std or cov, not both");
            return None;
        }
        (None, None) => {
            if !s.has("std") && !s.has("cov") {
                s.problem("std", "missing: std = [...] (one per dimension) or cov = [[...], ...]");
            }
            return None;
        }
        (Some(std), None) => {
            if std.len() != d {
                s.problem("std", format!("has {} entries but mean has {d}", std.len()));
                return None;
            }
            if std.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
                s.problem("std", "every entry must be a finite number > 0");
                return None;
            }
            Spread::Std(std)
        }
        (None, Some(cov)) => {
            if let Err(e) = check_cov(&cov, d) {
                s.problem("cov", e);
                return None;
            }
            Spread::Cov(cov)
        }
    };
    Some(Source::Gaussian { mean, spread })
}

/// A symmetric positive-definite d x d matrix, or the problem with it.
fn check_cov(cov: &[Vec<f64>], d: usize) -> Result<(), String> {
    if cov.len() != d || cov.iter().any(|r| r.len() != d) {
        return Err(format!("must be {d} x {d} to match the mean"));
    }
    let flat: Vec<f64> = cov.iter().flatten().copied().collect();
    let symmetric = (0..d)
        .all(|i| (0..d).all(|j| (flat[i * d + j] - flat[j * d + i]).abs() <= 1e-12 * (1.0 + flat[i * d + j].abs())));
    if !symmetric {
        return Err("must be symmetric".into());
    }
    if linalg::cholesky(&flat, d).is_none() {
        return Err("must be positive definite".into());
    }
    Ok(())
}

/// A list of lists of numbers, or where `flat_ok` a flat list of numbers
/// read as one-entry rows.
fn rows(s: &Section, key: &str, v: &toml::Value, flat_ok: bool) -> Option<Vec<Vec<f64>>> {
    use reader::FromToml;
    if let Ok(r) = Vec::<Vec<f64>>::from_toml(v) {
        return Some(r);
    }
    match Vec::<f64>::from_toml(v) {
        Ok(flat) if flat_ok => Some(flat.into_iter().map(|x| vec![x]).collect()),
        _ => {
            s.wrong_type::<Vec<Vec<f64>>>(key, v);
            None
        }
    }
}

fn gmm_source(s: &mut Section) -> Option<Source> {
    let weights: Option<Vec<f64>> = s.req("weights", "the components' weights, summing to 1, e.g. [0.5, 0.5]");
    let means: Option<toml::Value> = s.req("means", "one mean vector per component, e.g. [[-2.0, 0.0], [2.0, 0.0]]");
    // 1-D components may be written flat: means = [-2.0, 2.0], stds = [1.0, 0.5].
    let means = means.and_then(|m| rows(s, "means", &m, true));
    let one_d = means.as_ref().is_some_and(|m| m.iter().all(|r| r.len() == 1));
    let stds: Option<toml::Value> = s.opt("stds");
    let stds = stds.and_then(|v| rows(s, "stds", &v, one_d));
    let covs: Option<Vec<Vec<Vec<f64>>>> = s.opt("covs");
    let (weights, means) = (weights?, means?);
    let k = weights.len();
    let mut ok = true;
    if k == 0 {
        s.problem("weights", "name at least one component");
        return None;
    }
    if weights.iter().any(|w| !(*w > 0.0 && w.is_finite())) {
        s.problem("weights", "every weight must be a finite number > 0");
        ok = false;
    } else if (weights.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
        s.problem("weights", format!("must sum to 1, got {}", weights.iter().sum::<f64>()));
        ok = false;
    }
    if means.len() != k {
        s.problem("means", format!("has {} vectors but weights has {k} entries", means.len()));
        return None;
    }
    let d = means[0].len();
    if d == 0 || means.iter().any(|m| m.len() != d) {
        s.problem("means", "every mean must have the same number (>= 1) of entries");
        return None;
    }
    if means.iter().flatten().any(|m| !m.is_finite()) {
        s.problem("means", "every entry must be finite");
        ok = false;
    }
    let covs = match (stds, covs) {
        (Some(_), Some(_)) => {
            s.problem("covs", "give either stds or covs, not both");
            return None;
        }
        (None, None) => {
            if !s.has("stds") && !s.has("covs") {
                s.problem(
                    "stds",
                    "missing: stds = [[...], ...] (per component, one per dimension) or covs = [[[...]]]",
                );
            }
            return None;
        }
        (Some(stds), None) => {
            if stds.len() != k || stds.iter().any(|r| r.len() != d) {
                s.problem("stds", format!("must be {k} vectors of {d} entries, one per component"));
                return None;
            }
            if stds.iter().flatten().any(|v| !(*v > 0.0 && v.is_finite())) {
                s.problem("stds", "every entry must be a finite number > 0");
                return None;
            }
            stds.iter()
                .map(|sd| (0..d).map(|i| (0..d).map(|j| if i == j { sd[i] * sd[i] } else { 0.0 }).collect()).collect())
                .collect()
        }
        (None, Some(covs)) => {
            if covs.len() != k {
                s.problem("covs", format!("has {} matrices but weights has {k} entries", covs.len()));
                return None;
            }
            for (j, c) in covs.iter().enumerate() {
                if let Err(e) = check_cov(c, d) {
                    s.problem("covs", format!("component {j}: {e}"));
                    ok = false;
                }
            }
            covs
        }
    };
    ok.then_some(Source::Gmm { weights, means, covs })
}

fn build_model(mut s: Section, base: &Path) -> Option<ModelSpec> {
    let (last, rest) = model::settings::KINDS.split_last().unwrap_or((&"", &[]));
    let kinds = format!("{} or {last}", rest.join(", "));
    let kind: Option<String> = s.req("kind", &kinds);
    let model = match kind.as_deref() {
        Some(kind) => {
            s.set_context(format!("for kind = \"{kind}\""));
            match ModelSpec::read(kind, &mut s, base) {
                Ok(model) => model,
                Err(()) => {
                    s.problem("kind", format!("unknown model {kind:?}; use {kinds}"));
                    None
                }
            }
        }
        None => None,
    };
    // A family read every key it knows, whatever its problems; with no
    // known kind, no key is reported unknown (the one problem is the kind).
    if kind.as_deref().and_then(ModelSpec::keys_of).is_none() {
        for k in ModelSpec::all_keys() {
            s.allow(k);
        }
    }
    s.finish();
    model
}

fn build_mix(mut s: Section) -> Option<MixPolicy> {
    let policy: String = s.opt("policy").unwrap_or_else(|| "replace".to_string());
    s.set_context(format!("for policy = \"{policy}\""));
    let fraction = |s: &mut Section| -> Option<f64> {
        let f: f64 =
            s.req("real-fraction", &format!("policy {policy} keeps this share of real rows, a number in [0, 1]"))?;
        if !(0.0..=1.0).contains(&f) {
            s.problem("real-fraction", format!("must be in [0, 1], got {f}"));
            return None;
        }
        Some(f)
    };
    let out = match policy.as_str() {
        "replace" => Some(MixPolicy::Replace),
        "accumulate" => Some(MixPolicy::Accumulate),
        "accumulate-subsample" => Some(MixPolicy::AccumulateSubsample),
        "keep-real" => fraction(&mut s).map(|real_fraction| MixPolicy::KeepReal { real_fraction }),
        "fresh" => fraction(&mut s).map(|real_fraction| MixPolicy::Fresh { real_fraction }),
        "augment" => {
            let l: Option<f64> = s.req("lambda", "policy augment adds lambda * N rows of D_k to D_0, a number >= 0");
            match l {
                Some(l) if l >= 0.0 && l.is_finite() => Some(MixPolicy::Augment { lambda: l }),
                Some(l) => {
                    s.problem("lambda", format!("must be a finite number >= 0, got {l}"));
                    None
                }
                None => None,
            }
        }
        other => {
            s.problem(
                "policy",
                format!("unknown policy {other:?}; use replace, keep-real, accumulate, accumulate-subsample, augment or fresh"),
            );
            s.allow("real-fraction");
            s.allow("lambda");
            None
        }
    };
    s.finish();
    out
}

/// The resolved pipeline as TOML, every default filled in; parsing it gives
/// the same [`Pipeline`] back.
pub fn to_toml(p: &Pipeline) -> String {
    toml::to_string(&table(p)).unwrap_or_default()
}

fn table(p: &Pipeline) -> toml::Table {
    use toml::{Table, Value};
    fn floats(v: &[f64]) -> Value {
        Value::Array(v.iter().map(|x| Value::Float(*x)).collect())
    }
    let mut root = Table::new();
    root.insert("name".into(), Value::String(p.name.clone()));
    root.insert("seed".into(), Value::Integer(p.seed as i64));
    root.insert("generations".into(), Value::Integer(i64::from(p.generations)));
    root.insert("replicates".into(), Value::Integer(i64::from(p.replicates)));

    let mut data = Table::new();
    if let Some(n) = p.data.n {
        data.insert("n".into(), Value::Integer(n as i64));
    }
    data.insert("holdout".into(), Value::Integer(p.data.holdout as i64));
    match &p.data.source {
        Source::Gaussian { mean, spread } => {
            data.insert("source".into(), Value::String("gaussian".into()));
            data.insert("mean".into(), floats(mean));
            match spread {
                Spread::Std(s) => data.insert("std".into(), floats(s)),
                Spread::Cov(c) => data.insert("cov".into(), Value::Array(c.iter().map(|r| floats(r)).collect())),
            };
        }
        Source::Gmm { weights, means, covs } => {
            data.insert("source".into(), Value::String("gmm".into()));
            data.insert("weights".into(), floats(weights));
            data.insert("means".into(), Value::Array(means.iter().map(|m| floats(m)).collect()));
            data.insert(
                "covs".into(),
                Value::Array(covs.iter().map(|c| Value::Array(c.iter().map(|r| floats(r)).collect())).collect()),
            );
        }
        Source::Zipf { symbols, exponent } => {
            data.insert("source".into(), Value::String("zipf".into()));
            data.insert("symbols".into(), Value::Integer(i64::from(*symbols)));
            data.insert("exponent".into(), Value::Float(*exponent));
        }
        Source::File { path, format, columns } => {
            let f = if *format == FileFormat::Csv { "csv" } else { "parquet" };
            data.insert("source".into(), Value::String(f.into()));
            data.insert("path".into(), Value::String(path.display().to_string()));
            data.insert("columns".into(), Value::Array(columns.iter().map(|c| Value::String(c.clone())).collect()));
        }
        Source::Images(img) => images::source_toml(&mut data, img),
        Source::Text(t) => text::source_toml(&mut data, t),
    }
    root.insert("data".into(), Value::Table(data));

    let mut model = Table::new();
    p.model.write(&mut model);
    root.insert("model".into(), Value::Table(model));

    let mut generate = Table::new();
    generate.insert("n".into(), Value::Integer(p.generate_n as i64));
    root.insert("generate".into(), Value::Table(generate));

    let mut mix = Table::new();
    mix.insert("policy".into(), Value::String(p.mix.name().into()));
    match p.mix {
        MixPolicy::KeepReal { real_fraction } | MixPolicy::Fresh { real_fraction } => {
            mix.insert("real-fraction".into(), Value::Float(real_fraction));
        }
        MixPolicy::Augment { lambda } => {
            mix.insert("lambda".into(), Value::Float(lambda));
        }
        _ => {}
    }
    root.insert("mix".into(), Value::Table(mix));
    if let Some(f) = &p.filter {
        root.insert("filter".into(), Value::Table(filter::filter_toml(f)));
    }

    let mut metrics = Table::new();
    metrics.insert("tail-quantiles".into(), floats(&p.tail_quantiles));
    if p.text() {
        metrics.insert("rare-ngram-order".into(), Value::Integer(p.rare_ngrams.order as i64));
        metrics.insert("rare-max-count".into(), Value::Integer(p.rare_ngrams.max_count as i64));
    }
    root.insert("metrics".into(), Value::Table(metrics));
    as_written(&mut root, &p.base);
    root
}

/// The keys that name files; relative ones start at the pipeline's folder.
const PATH_KEYS: [(&str, &str); 6] = [
    ("data", "path"),
    ("data", "test-path"),
    ("data", "labels"),
    ("model", "base-path"),
    ("model", "workdir"),
    ("filter", "workdir"),
];

/// Paths back in the form they were written (relative to the pipeline's
/// folder), so the same pipeline run from two checkouts resolves to the same
/// bytes. A path found elsewhere (an absolute one) stays absolute.
fn as_written(root: &mut toml::Table, base: &Path) {
    for (table, key) in PATH_KEYS {
        if let Some(toml::Value::String(s)) = root.get_mut(table).and_then(|t| t.get_mut(key)) {
            *s = written(Path::new(s.as_str()), base);
        }
    }
}

/// `path` (resolved at `base`) as it was written: relative to `base`, or
/// absolute when it lies elsewhere.
pub fn written(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !base.as_os_str().is_empty() && rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) if !base.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// The text the manifests hash (`config_blake3`): the resolved pipeline
/// without its `generations` line. A run's length is its chain's length
/// (and pipeline.toml's record), so a finished run can be extended with
/// `--resume --set generations=N` and keep every sealed manifest.
pub fn identity_toml(p: &Pipeline) -> String {
    identity_of(&to_toml(p)).unwrap_or_default()
}

/// [`identity_toml`] of a resolved pipeline's text (a run's pipeline.toml);
/// `None` when it is not TOML.
pub fn identity_of(text: &str) -> Option<String> {
    let mut root: toml::Table = text.parse().ok()?;
    root.remove("generations");
    toml::to_string(&root).ok()
}

/// The folder a run directory's own pipeline.toml resolves data paths
/// against: the one its pipeline file was in, which run.json records.
pub fn recorded_base(run_dir: &Path) -> Option<std::path::PathBuf> {
    crate::data::store::run_json(run_dir)?["pipeline_dir"].as_str().map(std::path::PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
seed = 3
generations = 5
[data]
source = "gaussian"
n = 10
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = 10
"#;

    #[test]
    fn resolved_toml_round_trips() {
        let p = parse(GOOD, Path::new("."), &[]).unwrap();
        let again = parse(&to_toml(&p), Path::new("."), &[]).unwrap();
        assert_eq!(p, again);
        assert_eq!(p.mix, MixPolicy::Replace);
        assert_eq!(p.model, ModelSpec::Gaussian(model::GaussianSettings { variance: Variance::Unbiased }));
    }

    #[test]
    fn overrides_set_nested_keys_and_strings() {
        let p = parse(GOOD, Path::new("."), &["mix.policy=keep-real".into(), "mix.real-fraction=0.25".into()]).unwrap();
        assert_eq!(p.mix, MixPolicy::KeepReal { real_fraction: 0.25 });
        let e = parse(GOOD, Path::new("."), &["generate".into()]).unwrap_err();
        assert!(e[0].contains("expected key=value"), "{e:?}");
    }
}
