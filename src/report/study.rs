//! `collapse report STUDY_DIR [--by KEY]`: each metric against generation,
//! one line per setting of the swept keys (the mean over replicates and
//! seeds, a 10-90% band), one panel per value of `--by`: the
//! Collapse-or-Thrive figures (hue = sample size, a panel per policy).

use std::collections::BTreeMap;
use std::path::Path;

use super::chart::color;
use super::html::Block;
use super::summary::{mean_and_band, summarize};
use super::{file_id, generation_figure, metric_rank, write, Written};
use crate::data::report::{self as data, MetricPoint};
use crate::error::{Error, Result};

type Values = serde_json::Map<String, serde_json::Value>;

/// "key=value, ..." of `values` over `keys`, strings unquoted.
fn show(values: &Values, keys: &[&String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            values.get(k.as_str()).map(|v| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        })
        .collect();
    if parts.is_empty() {
        "all cells".into()
    } else {
        parts.join(", ")
    }
}

pub fn study_report(dir: &Path, by: Option<&str>, out: Option<&Path>) -> Result<Written> {
    let cells: Vec<(String, Values)> = crate::data::plan::read(dir)?.into_iter().map(|c| (c.id, c.values)).collect();
    let mut keys: Vec<&String> = Vec::new();
    for (_, v) in &cells {
        for k in v.keys() {
            if k != "seed" && !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    if let Some(b) = by {
        if !keys.iter().any(|k| k.as_str() == b) {
            return Err(Error::Input(format!(
                "--by {b}: not a key this study sweeps; it sweeps {}",
                if keys.is_empty() {
                    "only seeds".to_string()
                } else {
                    keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    let line_keys: Vec<&String> = keys.iter().copied().filter(|k| Some(k.as_str()) != by).collect();
    let panel_keys: Vec<&String> = keys.iter().copied().filter(|k| Some(k.as_str()) == by).collect();

    let metrics = data::study_metrics(dir)?;
    let pending: Vec<&str> =
        cells.iter().filter(|(id, _)| !metrics.contains_key(id)).map(|(id, _)| id.as_str()).collect();
    if pending.len() == cells.len() {
        return Err(Error::Input(format!("{}: no cell has metrics yet; is the study running?", dir.display())));
    }

    // Lines (settings but the seed and the panel key) and panels, in plan
    // order; a line keeps its colour in every panel.
    let mut lines: Vec<String> = Vec::new();
    let mut panels: Vec<String> = Vec::new();
    // (panel, line) -> metric -> points pooled over the seeds' cells.
    let mut pooled: BTreeMap<(usize, usize), BTreeMap<&str, Vec<MetricPoint>>> = BTreeMap::new();
    for (id, values) in &cells {
        let Some(of_cell) = metrics.get(id) else { continue };
        let (line, panel) = (show(values, &line_keys), show(values, &panel_keys));
        let li = lines.iter().position(|l| *l == line).unwrap_or_else(|| {
            lines.push(line);
            lines.len() - 1
        });
        let pi = panels.iter().position(|p| *p == panel).unwrap_or_else(|| {
            panels.push(panel);
            panels.len() - 1
        });
        let entry = pooled.entry((pi, li)).or_default();
        for (m, points) in of_cell {
            entry.entry(m.as_str()).or_default().extend(points.iter().cloned());
        }
    }
    let mut names: Vec<&str> = metrics.values().flat_map(|m| m.keys().map(String::as_str)).collect();
    names.sort_by_key(|n| metric_rank(n));
    names.dedup();

    let mut blocks = vec![Block::Paragraph(format!(
        "Study {}: {} cells sweeping {}{}; one line per setting of {} (mean over replicates and seeds, shaded \
         10-90%){}.",
        dir.display(),
        cells.len(),
        if keys.is_empty() {
            "seeds only".to_string()
        } else {
            keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        },
        if cells.iter().any(|(_, v)| v.contains_key("seed")) { " and seeds" } else { "" },
        if line_keys.is_empty() {
            "the study".to_string()
        } else {
            line_keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        },
        by.map_or_else(String::new, |b| format!(", one panel per {b}"))
    ))];
    if !pending.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "{} cells have no metrics yet and are left out: {}.",
            pending.len(),
            pending.join(", ")
        )));
    }
    for name in names {
        blocks.push(Block::Heading(name.to_string()));
        let mut figures = Vec::new();
        for (pi, panel) in panels.iter().enumerate() {
            let (mut series, mut bands, mut means) = (Vec::new(), Vec::new(), Vec::new());
            for (li, line) in lines.iter().enumerate() {
                let Some(points) = pooled.get(&(pi, li)).and_then(|m| m.get(name)) else { continue };
                let s = summarize(points, |v| v);
                means.extend(s.mean.iter().copied());
                let (mean, band) = mean_and_band(&s, line, color(li));
                series.push(mean);
                bands.extend(band);
            }
            if series.is_empty() {
                continue;
            }
            let title = if by.is_some() { format!("{name}: {panel}") } else { name.to_string() };
            figures.push(generation_figure(
                file_id("study", &format!("{name}-{pi}")),
                title,
                name,
                series,
                bands,
                means,
                "Mean over the replicates and seeds of each line's cells, shaded 10-90%.",
            )?);
        }
        blocks.push(Block::Figures(figures));
    }
    blocks.push(Block::Heading("Cells".into()));
    let all_keys: Vec<&String> = keys.to_vec();
    blocks.push(Block::Table(
        ["cell", "values", "seed", "metrics"].map(String::from).to_vec(),
        cells
            .iter()
            .map(|(id, v)| {
                vec![
                    id.clone(),
                    show(v, &all_keys),
                    v.get("seed").map_or_else(String::new, |s| s.to_string()),
                    if metrics.contains_key(id) { "yes".into() } else { "not yet".into() },
                ]
            })
            .collect(),
    ));
    write(dir, out, &format!("collapse report: study {}", dir.display()), blocks)
}
