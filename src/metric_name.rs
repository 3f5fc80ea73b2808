//! Metric names, interned.
//!
//! A closed-form run writes millions of metric rows under a dozen names.
//! A String per row cost 7% of the main thread; a shared `Arc<str>` per
//! row still cost two atomic operations on one cache line that the metrics
//! thread (cloning) and the writer (dropping) both hold, at once, for
//! every row. An interned name is a plain pointer: copied, never freed.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// A metric's name (`mean`, `tail_mass_below_q0.01`...). Every distinct
/// name is stored once for the life of the process; a run has a few
/// dozen, so the store stays small however many runs a process makes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricName(&'static str);

static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

impl MetricName {
    pub fn new(name: &str) -> MetricName {
        // A poisoned lock still holds a valid set: names are only added.
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = names.get(name) {
            return MetricName(found);
        }
        let stored: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(stored);
        MetricName(stored)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for MetricName {
    type Target = str;

    fn deref(&self) -> &str {
        self.0
    }
}

impl From<&str> for MetricName {
    fn from(name: &str) -> MetricName {
        MetricName::new(name)
    }
}

impl From<String> for MetricName {
    fn from(name: String) -> MetricName {
        MetricName::new(&name)
    }
}

impl std::fmt::Debug for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same text gives the same stored name, whichever way it comes.
    #[test]
    fn equal_names_share_one_string() {
        let a = MetricName::new("tail_mass_below_q0.01");
        let b: MetricName = format!("tail_mass_below_q{}", 0.01).into();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_ne!(a, MetricName::from("tail_mass_above_q0.99"));
        assert_eq!(&*a, "tail_mass_below_q0.01");
        assert_eq!(a.to_string(), "tail_mass_below_q0.01");
    }
}
