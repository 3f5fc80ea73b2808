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

pub trait FromToml: Sized {
    /// What one value is, for messages: "a number", "a list of numbers".
    fn what() -> String;
    /// Several of them: "numbers", "lists of numbers".
    fn plural() -> String;
    /// An example of the accepted form, for messages.
    fn example() -> String;
    fn from_toml(v: &Value) -> Result<Self, ()>;
}

/// Any value, for keys that take more than one type.
impl FromToml for Value {
    fn what() -> String {
        "a value".into()
    }
    fn plural() -> String {
        "values".into()
    }
    fn example() -> String {
        "1.0".into()
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        Ok(v.clone())
    }
}

impl FromToml for String {
    fn what() -> String {
        "a string".into()
    }
    fn plural() -> String {
        "strings".into()
    }
    fn example() -> String {
        "\"text\"".into()
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_str().map(str::to_string).ok_or(())
    }
}

impl FromToml for bool {
    fn what() -> String {
        "true or false".into()
    }
    fn plural() -> String {
        "true/false values".into()
    }
    fn example() -> String {
        "true".into()
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_bool().ok_or(())
    }
}

impl FromToml for u64 {
    fn what() -> String {
        "a non-negative integer".into()
    }
    fn plural() -> String {
        "non-negative integers".into()
    }
    fn example() -> String {
        "3".into()
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_integer().and_then(|i| u64::try_from(i).ok()).ok_or(())
    }
}

impl FromToml for f64 {
    fn what() -> String {
        "a number".into()
    }
    fn plural() -> String {
        "numbers".into()
    }
    fn example() -> String {
        "0.5".into()
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        match v {
            Value::Float(f) => Ok(*f),
            Value::Integer(i) => Ok(*i as f64),
            _ => Err(()),
        }
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    fn what() -> String {
        format!("a list of {}", T::plural())
    }
    fn plural() -> String {
        format!("lists of {}", T::plural())
    }
    fn example() -> String {
        format!("[{}, {}]", T::example(), T::example())
    }
    fn from_toml(v: &Value) -> Result<Self, ()> {
        v.as_array().ok_or(())?.iter().map(T::from_toml).collect()
    }
}
