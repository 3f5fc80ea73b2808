//! The keys of one TOML table as a model family's settings read them:
//! typed, each problem collected with its key rather than stopping at the
//! first. The pipeline's reader implements [`Keys`]; each family's settings
//! type implements [`Family`] in one file, with its keys, defaults, checks
//! and rendering side by side, so adding a key touches that file alone.

use std::path::Path;

use toml::{Table, Value};

/// Typed reads of a table's keys; a problem names its key.
pub trait Keys {
    /// The key's value if present; a value of the wrong type is a problem.
    fn opt<T: FromToml>(&mut self, key: &str) -> Option<T>;
    /// The key's value; absent, it is a problem that says `why` it is needed.
    fn req<T: FromToml>(&mut self, key: &str, why: &str) -> Option<T>;
    fn problem(&self, key: &str, message: &str);
}

/// A model family's settings: its `model.kind`, every key it reads, how it
/// reads them (defaults filled in, every value checked) and how it writes
/// them back, so that reading what it wrote gives the same settings.
pub trait Family: Sized {
    const KIND: &'static str;
    /// The keys besides `kind`.
    const KEYS: &'static [&'static str];
    /// Reads and checks the settings; `None` after reporting a problem.
    /// Relative paths start at `base` (the pipeline file's folder).
    fn read(keys: &mut impl Keys, base: &Path) -> Option<Self>;
    /// Every key with its value, defaults included (`kind` too).
    fn write(&self, table: &mut Table);
}

/// A whole number in `lo..=hi`, or the default; out of range is a problem.
pub fn int_in(keys: &mut impl Keys, key: &str, default: usize, lo: u64, hi: u64) -> Option<usize> {
    let v: u64 = keys.opt(key).unwrap_or(default as u64);
    if !(lo..=hi).contains(&v) {
        keys.problem(key, &format!("must be in [{lo}, {hi}], got {v}"));
        return None;
    }
    Some(v as usize)
}

/// A number that passes `ok`, or the default; `what` says what passes.
pub fn real_where(keys: &mut impl Keys, key: &str, default: f64, ok: fn(f64) -> bool, what: &str) -> Option<f64> {
    let v: f64 = keys.opt(key).unwrap_or(default);
    if !ok(v) {
        keys.problem(key, &format!("must be {what}, got {v}"));
        return None;
    }
    Some(v)
}

/// `base`/`p`, or `p` when it is absolute.
pub fn at_base(base: &Path, p: &str) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

pub fn int(v: usize) -> Value {
    Value::Integer(v as i64)
}

pub fn string(v: &str) -> Value {
    Value::String(v.to_string())
}

/// A path as written into a resolved pipeline: absolute, so the file is
/// found from the run directory.
pub fn absolute(p: &Path) -> Value {
    Value::String(std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string())
}

pub trait FromToml: Sized {
    const WHAT: &'static str;
    fn from_toml(v: &Value) -> Result<Self, ()>;
}

/// Any value, for keys that take more than one type.
impl FromToml for Value {
    const WHAT: &'static str = "a value";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        Ok(v.clone())
    }
}

impl FromToml for String {
    const WHAT: &'static str = "a string";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_str().map(str::to_string).ok_or(())
    }
}

impl FromToml for bool {
    const WHAT: &'static str = "true or false";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_bool().ok_or(())
    }
}

impl FromToml for u64 {
    const WHAT: &'static str = "a non-negative integer";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_integer().and_then(|i| u64::try_from(i).ok()).ok_or(())
    }
}

impl FromToml for f64 {
    const WHAT: &'static str = "a number";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        match v {
            Value::Float(f) => Ok(*f),
            Value::Integer(i) => Ok(*i as f64),
            _ => Err(()),
        }
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    const WHAT: &'static str = "a list";
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_array().ok_or(())?.iter().map(T::from_toml).collect()
    }
}
