//! The `[filter]` table: a curation filter between generating and
//! training ([`crate::filter`]). Absent, nothing is filtered.

use super::reader::Section;
use crate::filter::{Action, AppliesTo, Filter, FilterKind};

/// The kinds the issue of curation names, and the ones this build runs.
const KINDS: &str = "detector";
const PLANNED: [&str; 3] = ["likelihood", "reward", "command"];

/// Keys of each kind, so a key given to the wrong kind is named as such.
const KIND_KEYS: [(&str, &[&str]); 4] = [
    ("detector", &["tpr", "fpr", "flagged-weight"]),
    ("likelihood", &["model", "keep", "min-score", "bias"]),
    ("reward", &["reward", "best-of", "keep", "min-score", "bias"]),
    ("command", &["command", "timeout", "keep", "min-score", "bias"]),
];

pub(super) fn build_filter(mut s: Section) -> Option<Filter> {
    let kind: Option<String> = s.req("kind", &format!("what judges the candidate rows: {KINDS}"));
    let applies: String = s.opt("applies-to").unwrap_or_else(|| "synthetic".to_string());
    let action: String = s.opt("action").unwrap_or_else(|| "drop".to_string());
    let applies_to = match applies.as_str() {
        "synthetic" => Some(AppliesTo::Synthetic),
        "all" => Some(AppliesTo::All),
        other => {
            s.problem(
                "applies-to",
                format!("unknown value {other:?}; use \"synthetic\" (rows a model made) or \"all\""),
            );
            None
        }
    };
    let action = match action.as_str() {
        "drop" => Some(Action::Drop),
        "resample" => Some(Action::Resample),
        other => {
            s.problem("action", format!("unknown action {other:?}; use \"drop\" or \"resample\""));
            None
        }
    };
    let Some(kind_name) = kind else {
        allow_all(&mut s);
        s.finish();
        return None;
    };
    // Keys that belong to another kind are named as such, once each.
    let own: &[&str] = KIND_KEYS.iter().find(|(k, _)| *k == kind_name).map_or(&[], |(_, keys)| keys);
    let mut foreign: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, keys) in KIND_KEYS.iter().filter(|(k, _)| *k != kind_name) {
        for key in keys.iter().filter(|key| s.has(key) && !own.contains(key)) {
            match foreign.iter_mut().find(|(f, _)| f == key) {
                Some((_, kinds)) => kinds.push(k),
                None => foreign.push((key, vec![k])),
            }
        }
    }
    for (key, kinds) in &foreign {
        s.problem(key, format!("is a key of kind {}, not of kind {kind_name:?}; remove it", kinds.join(" or ")));
        s.allow(key);
    }
    let kind = match kind_name.as_str() {
        "detector" => detector(&mut s, action),
        k if PLANNED.contains(&k) => {
            s.problem(
                "kind",
                format!("kind {k:?} is not in this build of collapse (its keys are reserved); use kind = \"{KINDS}\""),
            );
            allow_all(&mut s);
            None
        }
        other => {
            s.problem("kind", format!("unknown kind {other:?}; use {KINDS}"));
            allow_all(&mut s);
            None
        }
    };
    s.finish();
    Some(Filter { kind: kind?, applies_to: applies_to?, action: action? })
}

fn allow_all(s: &mut Section) {
    for (_, keys) in KIND_KEYS {
        for k in keys {
            s.allow(k);
        }
    }
}

fn detector(s: &mut Section, action: Option<Action>) -> Option<FilterKind> {
    let mut rate = |key: &str, why: &str, default: Option<f64>| -> Option<f64> {
        let v: f64 = match default {
            Some(d) => s.opt(key).unwrap_or(d),
            None => s.req(key, why)?,
        };
        if !(0.0..=1.0).contains(&v) {
            s.problem(key, format!("must be a probability in [0, 1], got {v}"));
            return None;
        }
        Some(v)
    };
    let tpr = rate("tpr", "the chance the detector flags a row some model made, in [0, 1]", None);
    let fpr = rate("fpr", "", Some(0.0));
    let flagged_weight = match action {
        Some(Action::Resample) => {
            let w: Option<f64> = s.req("flagged-weight", "a flagged row's resampling weight (unflagged rows weigh 1)");
            match w {
                Some(w) if w >= 0.0 && w.is_finite() => Some(w),
                Some(w) => {
                    s.problem("flagged-weight", format!("must be a finite number >= 0, got {w}"));
                    None
                }
                None => None,
            }
        }
        _ => {
            if s.has("flagged-weight") {
                s.problem(
                    "flagged-weight",
                    "weighs rows under action = \"resample\" only; remove it or set that action",
                );
                s.allow("flagged-weight");
            }
            Some(0.0)
        }
    };
    Some(FilterKind::Detector { tpr: tpr?, fpr: fpr?, flagged_weight: flagged_weight? })
}

/// The `[filter]` table as written to the run's pipeline.toml.
pub(super) fn filter_toml(f: &Filter) -> toml::Table {
    use toml::Value;
    let mut t = toml::Table::new();
    t.insert("kind".into(), Value::String(f.kind_name().into()));
    t.insert("applies-to".into(), Value::String(f.applies_name().into()));
    t.insert("action".into(), Value::String(f.action_name().into()));
    match f.kind {
        FilterKind::Detector { tpr, fpr, flagged_weight } => {
            t.insert("tpr".into(), Value::Float(tpr));
            t.insert("fpr".into(), Value::Float(fpr));
            if f.action == Action::Resample {
                t.insert("flagged-weight".into(), Value::Float(flagged_weight));
            }
        }
    }
    t
}
