//! `kind = "gaussian"`: a full-covariance Gaussian, fitted by maximum
//! likelihood (`variance = "mle"`, the paper's) or with the unbiased
//! (n - 1) covariance.

use std::path::Path;

use toml::Table;

use crate::keys::{string, Family, Keys};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variance {
    Mle,
    Unbiased,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaussianSettings {
    pub variance: Variance,
}

impl Family for GaussianSettings {
    const KIND: &'static str = "gaussian";
    const KEYS: &'static [&'static str] = &["variance"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let v: String = keys.opt("variance").unwrap_or_else(|| "unbiased".to_string());
        let variance = match v.as_str() {
            "unbiased" => Variance::Unbiased,
            "mle" => Variance::Mle,
            other => {
                keys.problem("variance", &format!("unknown value {other:?}; use \"unbiased\" or \"mle\""));
                return None;
            }
        };
        Some(GaussianSettings { variance })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        let v = if self.variance == Variance::Mle { "mle" } else { "unbiased" };
        table.insert("variance".into(), string(v));
    }
}
