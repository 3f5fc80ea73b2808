//! `kind = "gmm"`: a Gaussian mixture fitted by EM, scikit-learn's
//! `GaussianMixture` settings and defaults.

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{int, string, Family, Keys};
use crate::model::gmm::CovarianceType;

/// EM settings, checked by the pipeline validator: components >= 1,
/// n_init >= 1, max_iter >= 1, tol >= 0, reg_covar > 0.
#[derive(Clone, Debug, PartialEq)]
pub struct GmmSettings {
    pub components: usize,
    pub covariance: CovarianceType,
    pub n_init: usize,
    pub tol: f64,
    pub max_iter: usize,
    pub reg_covar: f64,
}

impl Family for GmmSettings {
    const KIND: &'static str = "gmm";
    const KEYS: &'static [&'static str] = &["components", "covariance", "n-init", "tol", "max-iter", "reg-covar"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let components: Option<u64> = keys.req("components", "how many Gaussians the mixture has");
        let cov: String = keys.opt("covariance").unwrap_or_else(|| "full".to_string());
        let n_init: u64 = keys.opt("n-init").unwrap_or(1);
        let tol: f64 = keys.opt("tol").unwrap_or(1e-3);
        let max_iter: u64 = keys.opt("max-iter").unwrap_or(100);
        let reg_covar: f64 = keys.opt("reg-covar").unwrap_or(1e-6);
        let mut ok = true;
        let covariance = match cov.as_str() {
            "full" => CovarianceType::Full,
            "diag" => CovarianceType::Diag,
            "spherical" => CovarianceType::Spherical,
            other => {
                keys.problem(
                    "covariance",
                    &format!("unknown value {other:?}; use \"full\", \"diag\" or \"spherical\""),
                );
                ok = false;
                CovarianceType::Full
            }
        };
        if components.is_some_and(|k| !(1..=1000).contains(&k)) {
            keys.problem("components", "must be in [1, 1000]");
            ok = false;
        }
        if !(1..=1000).contains(&n_init) {
            keys.problem("n-init", &format!("must be in [1, 1000], got {n_init}"));
            ok = false;
        }
        if !(1..=1_000_000).contains(&max_iter) {
            keys.problem("max-iter", &format!("must be in [1, 1000000], got {max_iter}"));
            ok = false;
        }
        if !(tol >= 0.0 && tol.is_finite()) {
            keys.problem("tol", &format!("must be a finite number >= 0, got {tol}"));
            ok = false;
        }
        if !(reg_covar > 0.0 && reg_covar.is_finite()) {
            keys.problem(
                "reg-covar",
                &format!(
                    "must be a finite number > 0 (it keeps a collapsing component's covariance invertible), got {reg_covar}"
                ),
            );
            ok = false;
        }
        let components = components? as usize;
        ok.then_some(GmmSettings {
            components,
            covariance,
            n_init: n_init as usize,
            tol,
            max_iter: max_iter as usize,
            reg_covar,
        })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        table.insert("components".into(), int(self.components));
        table.insert("covariance".into(), string(self.covariance.name()));
        table.insert("n-init".into(), int(self.n_init));
        table.insert("tol".into(), Value::Float(self.tol));
        table.insert("max-iter".into(), int(self.max_iter));
        table.insert("reg-covar".into(), Value::Float(self.reg_covar));
    }
}
