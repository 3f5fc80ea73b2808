//! The `[filter]` table: a curation filter between generating and
//! training ([`crate::filter`]). Absent, nothing is filtered.

use std::path::Path;

use super::reader::Section;
use crate::filter::{Action, AppliesTo, Cut, Filter, FilterKind, Scorer};
use crate::keys::Family;
use crate::model::CommandSettings;
use crate::values::RowKind;

const KINDS: &str = "detector, likelihood, reward or command";

/// Keys of each kind, so a key given to the wrong kind is named as such.
const KIND_KEYS: [(&str, &[&str]); 4] = [
    ("detector", &["tpr", "fpr", "flagged-weight"]),
    ("likelihood", &["model", "keep", "min-score", "bias"]),
    ("reward", &["reward", "best-of", "keep", "min-score", "bias"]),
    ("command", &["command", "timeout", "env", "workdir", "parallel", "keep", "min-score", "bias"]),
];

pub(super) fn build_filter(mut s: Section, base: &Path) -> Option<Filter> {
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
        "likelihood" => {
            let model: String = s.opt("model").unwrap_or_else(|| "current".to_string());
            let model = match model.as_str() {
                "current" => Some(Scorer::Current),
                "first" => Some(Scorer::First),
                other => {
                    s.problem(
                        "model",
                        format!("unknown model {other:?}; use \"current\" (the model that made the newest rows) or \"first\" (model 0)"),
                    );
                    None
                }
            };
            let (cut, bias) = cut_and_bias(&mut s, action);
            match (model, cut, bias) {
                (Some(model), Some(cut), Some(bias)) => Some(FilterKind::Likelihood { model, cut, bias }),
                _ => None,
            }
        }
        "reward" => {
            let reward: Option<String> =
                s.req("reward", "an SQL expression over the data columns, e.g. reward = \"-(x0 - 2) * (x0 - 2)\"");
            let best_of: u64 = s.opt("best-of").unwrap_or(1);
            let best_of = match u32::try_from(best_of) {
                Ok(b) if (1..=1000).contains(&b) => Some(b),
                _ => {
                    s.problem(
                        "best-of",
                        format!("must be an integer in [1, 1000] (candidates per kept row), got {best_of}"),
                    );
                    None
                }
            };
            let (cut, bias) = cut_and_bias(&mut s, action);
            match (reward, best_of, cut, bias) {
                (Some(reward), Some(best_of), Some(cut), Some(bias)) => {
                    Some(FilterKind::Reward { reward, best_of, cut, bias })
                }
                _ => None,
            }
        }
        "command" => {
            let program = CommandSettings::read(&mut s, base);
            let (cut, bias) = cut_and_bias(&mut s, action);
            match (program, cut, bias) {
                (Some(program), Some(cut), Some(bias)) => Some(FilterKind::Command { program, cut, bias }),
                _ => None,
            }
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

/// `keep` or `min-score` (at most one), and `bias` (resample only).
fn cut_and_bias(s: &mut Section, action: Option<Action>) -> (Option<Option<Cut>>, Option<f64>) {
    let keep: Option<f64> = s.opt("keep");
    let min: Option<f64> = s.opt("min-score");
    let cut = match (keep, min) {
        (Some(_), Some(_)) => {
            s.problem("min-score", "give keep (a fraction) or min-score (a threshold), not both");
            None
        }
        (Some(q), None) if !(q > 0.0 && q <= 1.0) => {
            s.problem("keep", format!("must be a fraction in (0, 1], got {q}"));
            None
        }
        (Some(q), None) => Some(Some(Cut::Keep(q))),
        (None, Some(t)) if t.is_nan() => {
            s.problem("min-score", "must be a number");
            None
        }
        (None, Some(t)) => Some(Some(Cut::MinScore(t))),
        (None, None) => Some(None),
    };
    let bias = match action {
        Some(Action::Resample) => {
            let b: f64 = s.opt("bias").unwrap_or(1.0);
            if b.is_finite() {
                Some(b)
            } else {
                s.problem("bias", format!("must be a finite number, got {b}"));
                None
            }
        }
        _ => {
            if s.has("bias") {
                s.problem("bias", "weighs rows under action = \"resample\" only; remove it or set that action");
                s.allow("bias");
            }
            Some(1.0)
        }
    };
    (cut, bias)
}

/// Problems of a filter that depend on the model and the data: a
/// likelihood filter needs a model with one, a reward names the data's
/// columns.
pub(super) fn combination_problems(
    f: &Filter,
    model: &super::ModelSpec,
    rows: RowKind,
    mix: Option<&super::MixPolicy>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let (true, Some(m)) = (f.best_of() > 1, mix) {
        if m.keeps_all() {
            out.push(format!(
                "filter.best-of: policy {} trains on every earlier generation, whose rows would enter uncurated; use replace, keep-real, fresh or augment with best-of",
                m.name()
            ));
        }
    }
    match &f.kind {
        FilterKind::Likelihood { .. } if matches!(model, super::ModelSpec::Command(_)) => out.push(
            "filter.kind: likelihood needs a model that scores rows; model.kind = \"command\" has none (the kinds with one: gaussian, categorical, gmm, kde, vae, ngram, transformer); use a reward or a detector".to_string(),
        ),
        FilterKind::Reward { reward, .. } => {
            let columns: Vec<String> = match rows {
                RowKind::Vectors(d) => (0..d).map(|j| format!("x{j}")).collect(),
                RowKind::Tokens => vec!["token".into()],
                RowKind::Images => vec!["label".into(), "height".into(), "width".into()],
                RowKind::Text => vec!["text".into(), "n_tokens".into()],
            };
            if let Some(p) = crate::data::reward::check(reward, &columns) {
                out.push(format!("filter.reward: {p}"));
            }
        }
        _ => {}
    }
    out
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
    let cut_and_bias = |t: &mut toml::Table, cut: &Option<Cut>, bias: f64| {
        match cut {
            Some(Cut::Keep(q)) => t.insert("keep".into(), Value::Float(*q)),
            Some(Cut::MinScore(m)) => t.insert("min-score".into(), Value::Float(*m)),
            None => None,
        };
        if f.action == Action::Resample {
            t.insert("bias".into(), Value::Float(bias));
        }
    };
    match &f.kind {
        FilterKind::Detector { tpr, fpr, flagged_weight } => {
            t.insert("tpr".into(), Value::Float(*tpr));
            t.insert("fpr".into(), Value::Float(*fpr));
            if f.action == Action::Resample {
                t.insert("flagged-weight".into(), Value::Float(*flagged_weight));
            }
        }
        FilterKind::Likelihood { model, cut, bias } => {
            let m = if *model == Scorer::First { "first" } else { "current" };
            t.insert("model".into(), Value::String(m.into()));
            cut_and_bias(&mut t, cut, *bias);
        }
        FilterKind::Reward { reward, best_of, cut, bias } => {
            t.insert("reward".into(), Value::String(reward.clone()));
            t.insert("best-of".into(), Value::Integer(i64::from(*best_of)));
            cut_and_bias(&mut t, cut, *bias);
        }
        FilterKind::Command { program, cut, bias } => {
            program.write(&mut t);
            cut_and_bias(&mut t, cut, *bias);
        }
    }
    t
}
