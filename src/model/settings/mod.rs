//! What a pipeline's `[model]` table asks for: the family and its settings,
//! one file per family ([`crate::keys::Family`]: keys, defaults, checks and
//! rendering beside the settings type). Parsed by the pipeline module, read
//! by [`super::Model::fit`].

mod categorical;
mod command;
mod gaussian;
mod gmm;
mod kde;
mod ngram;
mod transformer;
mod vae;

use std::path::Path;

use toml::Table;

pub use categorical::CategoricalSettings;
pub use command::{CommandSettings, PLACEHOLDERS};
pub use gaussian::{GaussianSettings, Variance};
pub use gmm::GmmSettings;
pub use kde::{Bandwidth, KdeSettings};
pub use ngram::NgramSettings;
pub use transformer::TransformerSettings;
pub use vae::{Arch, VaeSettings};

use crate::keys::{Family, Keys};

#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    Gaussian(GaussianSettings),
    Categorical(CategoricalSettings),
    Gmm(GmmSettings),
    Kde(KdeSettings),
    Vae(VaeSettings),
    Ngram(NgramSettings),
    Transformer(TransformerSettings),
    Command(CommandSettings),
}

/// Every family's `kind`, in the order messages list them.
pub const KINDS: [&str; 8] = [
    GaussianSettings::KIND,
    CategoricalSettings::KIND,
    GmmSettings::KIND,
    KdeSettings::KIND,
    VaeSettings::KIND,
    NgramSettings::KIND,
    TransformerSettings::KIND,
    CommandSettings::KIND,
];

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Gaussian(_) => GaussianSettings::KIND,
            ModelSpec::Categorical(_) => CategoricalSettings::KIND,
            ModelSpec::Gmm(_) => GmmSettings::KIND,
            ModelSpec::Kde(_) => KdeSettings::KIND,
            ModelSpec::Vae(_) => VaeSettings::KIND,
            ModelSpec::Ngram(_) => NgramSettings::KIND,
            ModelSpec::Transformer(_) => TransformerSettings::KIND,
            ModelSpec::Command(_) => CommandSettings::KIND,
        }
    }

    /// The settings of family `kind` read from `keys`; `Err` when no family
    /// has that kind, `Ok(None)` after the family reported a problem.
    pub fn read(kind: &str, keys: &mut impl Keys, base: &Path) -> Result<Option<ModelSpec>, ()> {
        Ok(match kind {
            GaussianSettings::KIND => GaussianSettings::read(keys, base).map(ModelSpec::Gaussian),
            CategoricalSettings::KIND => CategoricalSettings::read(keys, base).map(ModelSpec::Categorical),
            GmmSettings::KIND => GmmSettings::read(keys, base).map(ModelSpec::Gmm),
            KdeSettings::KIND => KdeSettings::read(keys, base).map(ModelSpec::Kde),
            VaeSettings::KIND => VaeSettings::read(keys, base).map(ModelSpec::Vae),
            NgramSettings::KIND => NgramSettings::read(keys, base).map(ModelSpec::Ngram),
            TransformerSettings::KIND => TransformerSettings::read(keys, base).map(ModelSpec::Transformer),
            CommandSettings::KIND => CommandSettings::read(keys, base).map(ModelSpec::Command),
            _ => return Err(()),
        })
    }

    /// The `[model]` table, every default filled in.
    pub fn write(&self, table: &mut Table) {
        match self {
            ModelSpec::Gaussian(s) => s.write(table),
            ModelSpec::Categorical(s) => s.write(table),
            ModelSpec::Gmm(s) => s.write(table),
            ModelSpec::Kde(s) => s.write(table),
            ModelSpec::Vae(s) => s.write(table),
            ModelSpec::Ngram(s) => s.write(table),
            ModelSpec::Transformer(s) => s.write(table),
            ModelSpec::Command(s) => s.write(table),
        }
    }

    /// The keys of family `kind`, if there is one.
    pub fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
        Some(match kind {
            GaussianSettings::KIND => GaussianSettings::KEYS,
            CategoricalSettings::KIND => CategoricalSettings::KEYS,
            GmmSettings::KIND => GmmSettings::KEYS,
            KdeSettings::KIND => KdeSettings::KEYS,
            VaeSettings::KIND => VaeSettings::KEYS,
            NgramSettings::KIND => NgramSettings::KEYS,
            TransformerSettings::KIND => TransformerSettings::KEYS,
            CommandSettings::KIND => CommandSettings::KEYS,
            _ => return None,
        })
    }

    /// Every key of every family: none is reported unknown when the kind
    /// itself is, so the one problem is the kind.
    pub fn all_keys() -> impl Iterator<Item = &'static str> {
        KINDS.into_iter().filter_map(Self::keys_of).flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use toml::Value;

    use super::*;
    use crate::keys::FromToml;

    /// Keys over a plain table, remembering which were read.
    struct TableKeys {
        table: Table,
        read: Vec<String>,
        problems: RefCell<Vec<String>>,
    }

    impl Keys for TableKeys {
        fn opt<T: FromToml>(&mut self, key: &str) -> Option<T> {
            self.read.push(key.to_string());
            let v = self.table.get(key)?;
            T::from_toml(v).map_err(|()| self.problem(key, "wrong type")).ok()
        }
        fn req<T: FromToml>(&mut self, key: &str, why: &str) -> Option<T> {
            let v = self.opt(key);
            if v.is_none() {
                self.problem(key, why);
            }
            v
        }
        fn problem(&self, key: &str, message: &str) {
            self.problems.borrow_mut().push(format!("{key}: {message}"));
        }
    }

    fn read(table: Table) -> (Option<ModelSpec>, TableKeys) {
        let kind = table["kind"].as_str().unwrap().to_string();
        let mut keys = TableKeys { table, read: Vec::new(), problems: RefCell::new(Vec::new()) };
        let spec = ModelSpec::read(&kind, &mut keys, Path::new("/base")).expect("a known kind");
        (spec, keys)
    }

    /// Every family, from its fewest keys: what it writes reads back to the
    /// same settings, every key it writes or reads is in its KEYS, and it
    /// reads every key in its KEYS (so a key added in one place only fails).
    #[test]
    fn each_family_reads_what_it_writes_and_lists_its_keys() {
        let minimal: [(&str, &[(&str, Value)]); 8] = [
            ("gaussian", &[]),
            ("categorical", &[]),
            ("gmm", &[("components", Value::Integer(3))]),
            ("kde", &[("bandwidth", Value::Float(0.5))]),
            ("vae", &[]),
            ("ngram", &[("discount", Value::Float(0.7))]),
            ("transformer", &[("base-path", Value::String("base.txt".into())), ("min-tokens", Value::Integer(2))]),
            (
                "command",
                &[
                    ("command", Value::Array(vec![Value::String("stage".into()), Value::String("{out}".into())])),
                    ("timeout", Value::Float(5.0)),
                    ("workdir", Value::String("w".into())),
                    ("env", Value::Table([("A".to_string(), Value::String("1".into()))].into_iter().collect())),
                ],
            ),
        ];
        assert_eq!(minimal.map(|m| m.0), KINDS);
        for (kind, extra) in minimal {
            let mut table = Table::new();
            table.insert("kind".into(), Value::String(kind.into()));
            for (k, v) in extra {
                table.insert(k.to_string(), v.clone());
            }
            let (spec, keys) = read(table);
            assert!(keys.problems.borrow().is_empty(), "{kind}: {:?}", keys.problems.borrow());
            let spec = spec.unwrap_or_else(|| panic!("{kind}: no settings"));
            assert_eq!(spec.name(), kind);
            let known: Vec<&str> = match &spec {
                ModelSpec::Gaussian(_) => GaussianSettings::KEYS,
                ModelSpec::Categorical(_) => CategoricalSettings::KEYS,
                ModelSpec::Gmm(_) => GmmSettings::KEYS,
                ModelSpec::Kde(_) => KdeSettings::KEYS,
                ModelSpec::Vae(_) => VaeSettings::KEYS,
                ModelSpec::Ngram(_) => NgramSettings::KEYS,
                ModelSpec::Transformer(_) => TransformerSettings::KEYS,
                ModelSpec::Command(_) => CommandSettings::KEYS,
            }
            .to_vec();
            let mut read_keys = keys.read.clone();
            read_keys.sort();
            read_keys.dedup();
            let mut listed = known.clone();
            listed.sort();
            assert_eq!(read_keys, listed, "{kind}: the keys it reads are its KEYS");

            let mut written = Table::new();
            spec.write(&mut written);
            for k in written.keys().filter(|k| *k != "kind") {
                assert!(known.contains(&k.as_str()), "{kind}: writes {k}, which its KEYS lack");
            }
            let (again, keys) = read(written);
            assert!(keys.problems.borrow().is_empty(), "{kind}: {:?}", keys.problems.borrow());
            assert_eq!(again.as_ref(), Some(&spec), "{kind}: what it writes reads back the same");
        }
    }

    /// A bad value is one problem naming its key; an unknown kind is `Err`.
    #[test]
    fn problems_name_their_keys() {
        let mut table = Table::new();
        table.insert("kind".into(), Value::String("gmm".into()));
        table.insert("components".into(), Value::Integer(0));
        table.insert("tol".into(), Value::String("small".into()));
        let (spec, keys) = read(table);
        assert!(spec.is_none());
        let problems = keys.problems.borrow();
        assert!(problems.iter().any(|p| p.starts_with("components: must be in [1, 1000]")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("tol: wrong type")), "{problems:?}");
        let mut keys = TableKeys { table: Table::new(), read: Vec::new(), problems: RefCell::new(Vec::new()) };
        assert!(ModelSpec::read("lstm", &mut keys, Path::new(".")).is_err());
    }
}
