//! `kind = "kde"`: a Gaussian kernel density estimate; the kernel is the
//! data's covariance times a bandwidth factor squared (scipy's
//! `gaussian_kde`).

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{string, Family, Keys};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bandwidth {
    Scott,
    Silverman,
    Factor(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KdeSettings {
    pub bandwidth: Bandwidth,
}

impl Family for KdeSettings {
    const KIND: &'static str = "kde";
    const KEYS: &'static [&'static str] = &["bandwidth"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let raw: Option<Value> = keys.opt("bandwidth");
        let bandwidth = match raw {
            None => Bandwidth::Scott,
            Some(Value::String(b)) if b == "scott" => Bandwidth::Scott,
            Some(Value::String(b)) if b == "silverman" => Bandwidth::Silverman,
            Some(v) => match v.as_float().or_else(|| v.as_integer().map(|i| i as f64)) {
                Some(f) if f > 0.0 && f.is_finite() => Bandwidth::Factor(f),
                _ => {
                    keys.problem(
                        "bandwidth",
                        &format!(
                            "expected \"scott\", \"silverman\" or a number > 0 (the factor on the data's covariance), got {v}"
                        ),
                    );
                    return None;
                }
            },
        };
        Some(KdeSettings { bandwidth })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        let b = match self.bandwidth {
            Bandwidth::Scott => string("scott"),
            Bandwidth::Silverman => string("silverman"),
            Bandwidth::Factor(f) => Value::Float(f),
        };
        table.insert("bandwidth".into(), b);
    }
}
