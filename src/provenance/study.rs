//! `collapse audit STUDY_DIR`: the study's plan against its run
//! directories, then every cell's run audited as `collapse audit` audits
//! one. Needs nothing outside the study directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::audit::{audit_with, Options, Report};
use crate::error::Result;

/// One cell of the plan and its run's audit.
pub struct CellAudit {
    pub id: String,
    /// "key=value, ..." as the plan has them.
    pub values: String,
    pub run: PathBuf,
    /// `None`: not started (pending), nothing to audit.
    pub report: Option<Report>,
}

pub struct StudyAudit {
    pub cells: Vec<CellAudit>,
    /// The plan against the run directories: a cell whose pipeline does not
    /// have the plan's values, a run directory no cell names.
    pub violations: Vec<String>,
}

impl StudyAudit {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.cells.iter().all(|c| c.report.as_ref().is_none_or(Report::ok))
    }

    pub fn to_json(&self) -> serde_json::Value {
        let cells: Vec<serde_json::Value> = self
            .cells
            .iter()
            .map(|c| {
                serde_json::json!({
                    "cell": c.id,
                    "values": c.values,
                    "audit": c.report.as_ref().map(|r| r.to_json(&c.run)),
                    "state": if c.report.is_some() { "audited" } else { "pending" },
                })
            })
            .collect();
        serde_json::json!({ "ok": self.ok(), "plan_violations": self.violations, "cells": cells })
    }
}

/// A dotted key's value in a TOML table, as JSON (`seed`, `mix.policy`).
fn lookup(table: &toml::Table, key: &str) -> Option<serde_json::Value> {
    let mut parts = key.split('.');
    let mut v = table.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    serde_json::to_value(v).ok()
}

fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub fn audit_study(dir: &Path) -> Result<StudyAudit> {
    audit_study_with(dir, Options::default(), &|_, _| {})
}

/// [`audit_study`], each cell audited with `options`, telling
/// `watch(done, of)` after each cell's audit.
pub fn audit_study_with(dir: &Path, options: Options, watch: &(dyn Fn(usize, usize) + Sync)) -> Result<StudyAudit> {
    let mut violations = Vec::new();
    let mut cells = Vec::new();
    let mut audited = Vec::new();
    for c in crate::data::plan::read(dir)? {
        let shown = c.describe();
        let (id, values) = (c.id, c.values);
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || c.run != format!("runs/{id}") {
            violations
                .push(format!("study.json: cell {id:?} ({shown}): not a cell id of 16 hex digits with run runs/<id>"));
            continue;
        }
        let run = dir.join("runs").join(&id);
        if !run.join("pipeline.toml").is_file() {
            cells.push(CellAudit { id, values: shown, run, report: None });
            continue;
        }
        match std::fs::read_to_string(run.join("pipeline.toml")).ok().and_then(|t| t.parse::<toml::Table>().ok()) {
            Some(table) => {
                for (k, want) in &values {
                    match lookup(&table, k) {
                        Some(got) if same(&got, want) => {}
                        got => violations.push(format!(
                            "runs/{id}/pipeline.toml: {k} is {}, but study.json plans {want} for this cell",
                            got.map_or_else(|| "not set".to_string(), |g| g.to_string())
                        )),
                    }
                }
            }
            None => violations.push(format!("runs/{id}/pipeline.toml: not readable TOML")),
        }
        audited.push(cells.len());
        cells.push(CellAudit { id, values: shown, run, report: None });
    }
    // The cells' audits side by side (an audit reads its files on one
    // thread), each report put back in its cell.
    let done = AtomicUsize::new(0);
    watch(0, audited.len());
    let reports: Vec<Report> = audited
        .par_iter()
        .map(|&i| {
            let c = &cells[i];
            let r = audit_with(&c.run, options, &|_| {}).unwrap_or_else(|e| Report {
                violations: vec![format!("runs/{}: cannot be audited: {}", c.id, e.chain())],
                ..Default::default()
            });
            watch(done.fetch_add(1, Ordering::Relaxed) + 1, audited.len());
            r
        })
        .collect();
    for (i, r) in audited.into_iter().zip(reports) {
        cells[i].report = Some(r);
    }
    // A run directory the plan does not name: a changed study's leftover
    // or a copy that does not belong.
    if let Ok(entries) = std::fs::read_dir(dir.join("runs")) {
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|name| !cells.iter().any(|c| c.id == *name))
            .collect();
        extra.sort();
        violations.extend(extra.into_iter().map(|name| format!("runs/{name}: not a cell of study.json")));
    }
    Ok(StudyAudit { cells, violations })
}
