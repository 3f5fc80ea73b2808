//! `kind = "ngram"`: an interpolated Kneser-Ney n-gram model of text.

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{int, string, Family, Keys};
use crate::model::ngram::MAX_ORDER;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NgramSettings {
    pub order: usize,
    /// One discount for every order; `None` estimates D_m = n1 / (n1 + 2 n2)
    /// per order from the counts of counts (Ney et al. 1994).
    pub discount: Option<f64>,
    /// Longest generated row, in tokens, `</s>` not counted.
    pub max_tokens: usize,
}

impl Family for NgramSettings {
    const KIND: &'static str = "ngram";
    const KEYS: &'static [&'static str] = &["order", "discount", "max-tokens"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let order: u64 = keys.opt("order").unwrap_or(3);
        let discount: Option<f64> = keys.opt("discount");
        let max_tokens: u64 = keys.opt("max-tokens").unwrap_or(256);
        let mut ok = true;
        if !(1..=MAX_ORDER as u64).contains(&order) {
            keys.problem("order", &format!("must be in [1, {MAX_ORDER}], got {order}"));
            ok = false;
        }
        if let Some(d) = discount {
            if !(d > 0.0 && d < 1.0) {
                keys.problem(
                    "discount",
                    &format!("must be in (0, 1) (leave it out to estimate it per order), got {d}"),
                );
                ok = false;
            }
        }
        if !(1..=1_000_000).contains(&max_tokens) {
            keys.problem("max-tokens", &format!("must be in [1, 1000000], got {max_tokens}"));
            ok = false;
        }
        ok.then_some(NgramSettings { order: order as usize, discount, max_tokens: max_tokens as usize })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        table.insert("order".into(), int(self.order));
        if let Some(d) = self.discount {
            table.insert("discount".into(), Value::Float(d));
        }
        table.insert("max-tokens".into(), int(self.max_tokens));
    }
}
