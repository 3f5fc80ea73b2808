//! Resolving a parsed pipeline against the machine it is about to run on:
//! the files it names exist, a folder in the MNIST layout becomes its files,
//! image headers give the shape a conv VAE checks, a data file has the
//! columns named. Only `run` and `validate` ask this; the read-only verbs
//! parse a run directory's pipeline.toml and never look outside it.

use std::path::{Path, PathBuf};

use crate::data::{idx, load};
use crate::error::{Error, Result};
use crate::model::Arch;
use crate::pipeline::{self, ImageFormat, ImageSource, ModelSpec, Pipeline, Source};

/// Reads, overrides and validates a pipeline file, then resolves it here:
/// what `collapse run` needs before it writes anything.
pub fn load(path: &Path, overrides: &[String]) -> Result<Pipeline> {
    let mut p = match pipeline::load(path, overrides) {
        Ok(p) => p,
        Err(Error::Pipeline { file, mut problems }) => {
            problems.extend(columns_anyway(path, overrides));
            return Err(Error::Pipeline { file, problems });
        }
        Err(e) => return Err(e),
    };
    let problems = environment(&mut p);
    if problems.is_empty() {
        Ok(p)
    } else {
        Err(Error::Pipeline { file: path.to_path_buf(), problems })
    }
}

/// The data file's columns, checked while other keys have problems, so
/// `validate` lists those too, all at once.
fn columns_anyway(path: &Path, overrides: &[String]) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let base = path.parent().unwrap_or(Path::new("."));
    match pipeline::data_file(&text, base, overrides) {
        Some((file, format, columns)) if file.is_file() => match load::check_columns(&file, format, &columns) {
            Err(Error::Data { file, message }) => vec![format!("data.columns: {}: {message}", file.display())],
            Err(e) => vec![format!("data.path: {}", e.chain())],
            Ok(()) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// [`load`], and the data file's columns read and checked: everything
/// `collapse validate` promises short of running.
pub fn validate(path: &Path, overrides: &[String]) -> Result<Pipeline> {
    let p = load(path, overrides)?;
    check_columns(&p)?;
    check_rows(&p)?;
    Ok(p)
}

/// A file source with data.n: it has the usable rows the run will draw
/// (D_0, the held-out rows, the fresh reserve), counted as the run counts.
pub fn check_rows(p: &Pipeline) -> Result<()> {
    match &p.data.source {
        Source::File { path, format, columns } => rows_enough(p, load::read_vectors(path, *format, columns)?.len()),
        _ => Ok(()),
    }
}

/// A file source of `total` usable rows is long enough for data.n, the
/// held-out rows and the fresh reserve (without data.n it takes what there is).
pub fn rows_enough(p: &Pipeline, total: usize) -> Result<()> {
    if let (Source::File { path, .. }, Some(n)) = (&p.data.source, p.data.n) {
        if let Some(short) = p.row_shortfall(total, n, p.data.holdout) {
            return Err(Error::Data { file: path.clone(), message: short });
        }
    }
    Ok(())
}

/// A file source's columns: present, numeric.
pub fn check_columns(p: &Pipeline) -> Result<()> {
    match &p.data.source {
        Source::File { path, format, columns } => load::check_columns(path, *format, columns),
        _ => Ok(()),
    }
}

fn missing(key: &str, path: &Path) -> String {
    format!(
        "{key}: {} does not exist or is not a file (relative paths start at the pipeline file's folder)",
        path.display()
    )
}

/// Checks the files `p` names and fills in what only they know; every
/// problem, each naming its key.
pub fn environment(p: &mut Pipeline) -> Vec<String> {
    let mut problems = Vec::new();
    if let ModelSpec::Command(s) = &p.model {
        let dir = s.workdir_at(&p.base);
        if !dir.is_dir() {
            problems.push(format!("model.workdir: {} is not a folder", dir.display()));
        } else if let Err(why) = s.find_program(&p.base) {
            problems.push(format!("model.command: the program {why}"));
        }
    }
    if let Some(crate::filter::FilterKind::Command { program, .. }) = p.filter.as_ref().map(|f| &f.kind) {
        let dir = program.workdir_at(&p.base);
        if !dir.is_dir() {
            problems.push(format!("filter.workdir: {} is not a folder", dir.display()));
        } else if let Err(why) = program.find_program(&p.base) {
            problems.push(format!("filter.command: the program {why}"));
        }
    }
    match &mut p.data.source {
        Source::File { path, .. } if !path.is_file() => problems.push(missing("data.path", path)),
        Source::Images(img) => {
            if let Some((height, width)) = images(img, &mut problems) {
                if let ModelSpec::Vae(v) = &p.model {
                    if v.arch == Arch::Conv && (height % 4 != 0 || width % 4 != 0) {
                        problems.push(format!(
                            "model.arch: \"conv\" halves the image twice, so height and width must be multiples of 4, \
                             but the images are {height}x{width}; use arch = \"mlp\""
                        ));
                    }
                }
            }
        }
        Source::Text(t) => {
            if !t.path.is_file() {
                problems.push(missing("data.path", &t.path));
            }
            if let Some(test) = t.test_path.as_ref().filter(|t| !t.is_file()) {
                problems.push(missing("data.test-path", test));
            }
        }
        _ => {}
    }
    if let ModelSpec::Transformer(s) = &p.model {
        if let Some(base) = s.base.as_ref().filter(|b| !b.is_file()) {
            problems.push(missing("model.base-path", base));
        }
    }
    problems
}

/// An image source's files found and its first header (or, for CSV, every
/// line) read: the (height, width) of its images.
fn images(img: &mut ImageSource, problems: &mut Vec<String>) -> Option<(usize, usize)> {
    match &mut img.format {
        ImageFormat::Idx { labels } => {
            // A folder is the layout of MNIST, Fashion-MNIST and Debian's
            // dataset-fashion-mnist: the training files by their standard names.
            if img.path.is_dir() {
                let dir = img.path.clone();
                match find(&dir, "train-images-idx3-ubyte") {
                    Some(f) => img.path = f,
                    None => {
                        problems.push(format!(
                            "data.path: {} holds no train-images-idx3-ubyte[.gz]; name the images file",
                            dir.display()
                        ));
                        return None;
                    }
                }
                if labels.is_none() {
                    *labels = find(&dir, "train-labels-idx1-ubyte");
                }
            }
            if let Some(l) = labels.as_ref().filter(|l| !l.is_file()) {
                problems.push(format!("data.labels: {} does not exist or is not a file", l.display()));
            }
            if !img.path.is_file() {
                let hint = if img.path.to_string_lossy().contains("fashion") {
                    "; Debian's package dataset-fashion-mnist installs it to /usr/share/datasets/fashion-mnist, \
                     or point data.path at a folder holding train-images-idx3-ubyte.gz"
                } else {
                    " (relative paths start at the pipeline file's folder)"
                };
                problems.push(format!("data.path: {} does not exist or is not a file{hint}", img.path.display()));
                return None;
            }
            match idx::shape(&img.path) {
                Ok((_, height, width)) => Some((height, width)),
                Err(e) => {
                    problems.push(format!("data.path: {}", e.chain()));
                    None
                }
            }
        }
        ImageFormat::Csv(csv) => {
            if !img.path.is_file() {
                problems.push(missing("data.path", &img.path));
                return None;
            }
            // Read once here, so a malformed line is a validation error.
            match csv.read(&img.path) {
                Ok(_) => Some((csv.height, csv.width)),
                Err(e) => {
                    problems.push(format!("data.path: {}", e.chain()));
                    None
                }
            }
        }
    }
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}
