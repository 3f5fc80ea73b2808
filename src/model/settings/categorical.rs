//! `kind = "categorical"`: symbol frequencies (MLE), with optional
//! additive smoothing.

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{string, Family, Keys};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoricalSettings {
    /// Added to every symbol's count (0: the MLE, under which a symbol once
    /// unseen never returns).
    pub smoothing: f64,
}

impl Family for CategoricalSettings {
    const KIND: &'static str = "categorical";
    const KEYS: &'static [&'static str] = &["smoothing"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let smoothing: f64 = keys.opt("smoothing").unwrap_or(0.0);
        if !(smoothing >= 0.0 && smoothing.is_finite()) {
            keys.problem("smoothing", &format!("must be a finite number >= 0, got {smoothing}"));
        }
        Some(CategoricalSettings { smoothing })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        table.insert("smoothing".into(), Value::Float(self.smoothing));
    }
}
