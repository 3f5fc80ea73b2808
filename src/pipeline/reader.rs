//! A typed reader over a parsed TOML table that collects every problem at
//! once, each with its key path, instead of stopping at the first (serde's
//! `deny_unknown_fields` stops at one). Keys a section never asked for are
//! reported as unknown when it is finished.

use std::cell::RefCell;
use std::collections::BTreeSet;

use toml::{Table, Value};

pub use crate::keys::{FromToml, Keys};

pub type Problems = RefCell<Vec<String>>;

pub struct Section<'a> {
    path: String,
    table: &'a Table,
    used: BTreeSet<String>,
    problems: &'a Problems,
    /// Said with an unknown key, e.g. `for data.source = "zipf"`.
    context: String,
}

impl<'a> Section<'a> {
    pub fn root(table: &'a Table, problems: &'a Problems) -> Self {
        Section { path: String::new(), table, used: BTreeSet::new(), problems, context: String::new() }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    pub fn problem(&self, key: &str, message: impl std::fmt::Display) {
        self.problems.borrow_mut().push(format!("{}: {}", self.key_path(key), message));
    }

    pub fn set_context(&mut self, context: impl Into<String>) {
        self.context = context.into();
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Marks a key as known without reading it (read by another path).
    pub fn allow(&mut self, key: &str) {
        self.used.insert(key.to_string());
    }

    /// The problem of `value` at `key` not being a `T`.
    pub fn wrong_type<T: FromToml>(&self, key: &str, value: &Value) {
        // A list's expected shape is shown, since "a list" alone does not
        // say what its elements should be.
        let what = T::what();
        let example =
            if what.starts_with("a list") { format!(" (e.g. {key} = {})", T::example()) } else { String::new() };
        self.problem(key, format!("expected {what}{example}, got {}", describe(value)));
    }

    pub fn opt<T: FromToml>(&mut self, key: &str) -> Option<T> {
        self.used.insert(key.to_string());
        let value = self.table.get(key)?;
        match T::from_toml(value) {
            Ok(v) => Some(v),
            Err(()) => {
                self.wrong_type::<T>(key, value);
                None
            }
        }
    }

    pub fn req<T: FromToml>(&mut self, key: &str, why: &str) -> Option<T> {
        if !self.table.contains_key(key) {
            self.used.insert(key.to_string());
            self.problem(key, format!("missing: {why} ({})", T::what()));
            return None;
        }
        self.opt(key)
    }

    /// A sub-table; `None` (with a problem recorded if it is not a table)
    /// when absent.
    pub fn sub(&mut self, key: &str) -> Option<Section<'a>> {
        self.used.insert(key.to_string());
        match self.table.get(key)? {
            Value::Table(t) => Some(Section {
                path: self.key_path(key),
                table: t,
                used: BTreeSet::new(),
                problems: self.problems,
                context: String::new(),
            }),
            other => {
                self.problem(key, format!("expected a table [{}], got {}", self.key_path(key), describe(other)));
                None
            }
        }
    }

    /// Reports every key that was present but never asked for.
    pub fn finish(self) {
        for key in self.table.keys() {
            if self.used.contains(key) {
                continue;
            }
            let known: Vec<&str> = self.used.iter().map(String::as_str).collect();
            let hint = closest(key, &known).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
            let ctx = if self.context.is_empty() { String::new() } else { format!(" {}", self.context) };
            self.problem(key, format!("unknown key{ctx} (known here: {}){hint}", known.join(", ")));
        }
    }
}

impl Keys for Section<'_> {
    fn opt<T: FromToml>(&mut self, key: &str) -> Option<T> {
        Section::opt(self, key)
    }

    fn req<T: FromToml>(&mut self, key: &str, why: &str) -> Option<T> {
        Section::req(self, key, why)
    }

    fn problem(&self, key: &str, message: &str) {
        Section::problem(self, key, message)
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(items) => match items.first() {
            None => "an empty list".to_string(),
            Some(first) => {
                let kind = match first {
                    Value::String(_) => "strings",
                    Value::Integer(_) | Value::Float(_) => "numbers",
                    Value::Boolean(_) => "true/false values",
                    Value::Datetime(_) => "dates",
                    Value::Array(_) => "lists",
                    Value::Table(_) => "tables",
                };
                format!("a list of {kind} ({v})")
            }
        },
        Value::Table(_) => "a table".to_string(),
    }
}

/// The known key within edit distance 2 of a misspelt one.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known.iter().map(|k| (edit_distance(key, k), *k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("genrations", "generations"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
