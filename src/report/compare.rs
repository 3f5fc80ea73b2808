//! `collapse compare RUN... [--metric M]... [--out DIR]`: the same metric
//! from several runs on one chart (say replace vs accumulate vs keep-real),
//! and a table of where each run started and ended. A study directory
//! among them stands for its cells.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::chart::color;
use super::html::Block;
use super::summary::{mean_and_band, summarize};
use super::{file_id, generation_figure, metric_rank, Written};
use crate::data::plan;
use crate::data::report::{self as data, MetricPoint};
use crate::error::{Error, Result};

/// One row of the printed table.
pub struct Row {
    pub metric: String,
    pub run: String,
    pub first_generation: u32,
    pub first: f64,
    pub last_generation: u32,
    pub last: f64,
}

pub struct Comparison {
    pub written: Written,
    pub rows: Vec<Row>,
    /// What was not drawn and why: a named metric some run lacks, metrics
    /// not every run has.
    pub left_out: Vec<String>,
}

/// Short, distinct labels: the folder names, or the full paths when two
/// folders share a name.
fn labels(runs: &[PathBuf]) -> Vec<String> {
    let short: Vec<String> = runs
        .iter()
        .map(|r| r.file_name().map_or_else(|| r.display().to_string(), |n| n.to_string_lossy().into()))
        .collect();
    let distinct: BTreeSet<&String> = short.iter().collect();
    if distinct.len() == short.len() {
        short
    } else {
        runs.iter().map(|r| r.display().to_string()).collect()
    }
}

/// The runs named: a study directory stands for its cells that have run,
/// each labelled with its key values.
fn expand(given: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Option<String>>)> {
    let (mut runs, mut labels) = (Vec::new(), Vec::new());
    for g in given {
        if !plan::is_study(g) {
            runs.push(g.clone());
            labels.push(None);
            continue;
        }
        for c in plan::read(g)? {
            let run = c.run_dir(g);
            if !run.join("samples").is_dir() {
                continue;
            }
            let values: Vec<String> = c
                .values
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            let study = g.file_name().map_or_else(|| g.display().to_string(), |n| n.to_string_lossy().into());
            runs.push(run);
            labels.push(Some(format!("{study}: {}", values.join(", "))));
        }
    }
    Ok((runs, labels))
}

pub fn compare(given: &[PathBuf], wanted: &[String], out: &Path) -> Result<Comparison> {
    let (runs, given_labels) = expand(given)?;
    let runs = runs.as_slice();
    if runs.len() < 2 {
        return Err(Error::Input(
            "compare needs at least two run directories (a study directory counts as its cells that have run)".into(),
        ));
    }
    let mut all: Vec<BTreeMap<String, Vec<MetricPoint>>> = Vec::new();
    for r in runs {
        if !r.join("samples").is_dir() {
            return Err(Error::Input(format!(
                "{}: not a run directory (no samples/ inside); pass folders `collapse run` wrote",
                r.display()
            )));
        }
        all.push(data::metrics(r)?);
    }
    let names: Vec<String> =
        labels(runs).into_iter().zip(given_labels).map(|(short, given)| given.unwrap_or(short)).collect();
    let mut left_out = Vec::new();
    let metrics: Vec<String> = if wanted.is_empty() {
        // The metrics every run has.
        let mut common: Vec<String> =
            all[0].keys().filter(|m| all.iter().all(|a| a.contains_key(*m))).cloned().collect();
        common.sort_by_key(|m| metric_rank(m));
        let some: BTreeSet<&String> = all.iter().flat_map(|a| a.keys()).filter(|m| !common.contains(m)).collect();
        if !some.is_empty() {
            left_out.push(format!(
                "not drawn, since not every run has them: {}; --metric NAME draws one for the runs that have it",
                some.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        common
    } else {
        let known: BTreeSet<&String> = all.iter().flat_map(|a| a.keys()).collect();
        let unknown: Vec<&String> = wanted.iter().filter(|m| !known.contains(m)).collect();
        if !unknown.is_empty() {
            return Err(Error::Input(format!(
                "--metric {}: no such metric in these runs; they have: {}",
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        wanted.to_vec()
    };
    if metrics.is_empty() {
        return Err(Error::Input("these runs share no metric; name one with --metric".into()));
    }
    let mut figures = Vec::new();
    let mut rows = Vec::new();
    for m in &metrics {
        let mut series = Vec::new();
        let mut bands = Vec::new();
        let mut means = Vec::new();
        for (i, (run_metrics, label)) in all.iter().zip(&names).enumerate() {
            let Some(points) = run_metrics.get(m) else {
                left_out.push(format!("{label} has no {m}; left out of that chart"));
                continue;
            };
            let s = summarize(points, |v| v);
            if let (Some(&g0), Some(&v0), Some(&g1), Some(&v1)) =
                (s.generation.first(), s.mean.first(), s.generation.last(), s.mean.last())
            {
                rows.push(Row {
                    metric: m.clone(),
                    run: label.clone(),
                    first_generation: g0 as u32,
                    first: v0,
                    last_generation: g1 as u32,
                    last: v1,
                });
            }
            means.extend(s.mean.iter().copied());
            let (mean, band) = mean_and_band(&s, label, color(i));
            series.push(mean);
            bands.extend(band);
        }
        figures.push(generation_figure(
            file_id("compare", m),
            m.clone(),
            m,
            series,
            bands,
            means,
            "Mean over each run's replicates, shaded 10-90% where a run has 3 or more.",
        )?);
    }
    let table = Block::Table(
        ["metric", "run", "first generation", "mean there", "last generation", "mean there"].map(String::from).to_vec(),
        rows.iter()
            .map(|r| {
                vec![
                    r.metric.clone(),
                    r.run.clone(),
                    r.first_generation.to_string(),
                    format!("{:.6}", r.first),
                    r.last_generation.to_string(),
                    format!("{:.6}", r.last),
                ]
            })
            .collect(),
    );
    let runs_text = runs.iter().zip(&names).map(|(r, n)| format!("{n} = {}", r.display())).collect::<Vec<_>>();
    let blocks = vec![
        Block::Lines(runs_text),
        Block::Figures(figures),
        Block::Heading("First and last generation".into()),
        table,
    ];
    let written = super::write_figures_and_page(out, &out.join("index.html"), "collapse compare", &blocks)?;
    Ok(Comparison { written, rows, left_out })
}

/// The rows as an aligned text table.
pub fn render(rows: &[Row]) -> String {
    let head = ["metric", "run", "first gen", "mean", "last gen", "mean", "last/first"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.metric.clone(),
                r.run.clone(),
                r.first_generation.to_string(),
                format!("{:.6}", r.first),
                r.last_generation.to_string(),
                format!("{:.6}", r.last),
                if r.first != 0.0 { format!("{:.4}", r.last / r.first) } else { "-".into() },
            ]
        })
        .collect();
    let width: Vec<usize> =
        (0..7).map(|i| cells.iter().map(|c| c[i].len()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    let line = |c: Vec<&str>| {
        c.iter().enumerate().map(|(i, s)| format!("{s:>w$}", w = width[i])).collect::<Vec<_>>().join("  ") + "\n"
    };
    let mut out = line(head.to_vec());
    for c in &cells {
        out.push_str(&line(c.iter().map(String::as_str).collect()));
    }
    out
}
