//! `kind = "command"`: the user's own program as the model. For each
//! replicate and generation it reads T_k as Parquet and writes D_{k+1} as
//! Parquet (the contract is in the README, "Your own model"); `collapse`
//! runs it, checks what it wrote and tags the rows with provenance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::keys::{at_base, int, string, Family, Keys};

/// The placeholders a command line may hold, substituted per stage.
pub const PLACEHOLDERS: [&str; 7] =
    ["{train}", "{out}", "{context}", "{seed}", "{n}", "{model_dir}", "{prev_model_dir}"];

#[derive(Clone, Debug, PartialEq)]
pub struct CommandSettings {
    /// The argv: the program, then its arguments (no shell).
    pub command: Vec<String>,
    /// Seconds a stage may run before it is killed; `None`: no limit.
    pub timeout: Option<f64>,
    /// Extra environment variables, besides the `COLLAPSE_*` ones.
    pub env: BTreeMap<String, String>,
    /// The folder the program runs in (relative paths in the command start
    /// there); `None`: the pipeline file's folder.
    pub workdir: Option<PathBuf>,
    /// Replicates whose programs run at once.
    pub parallel: usize,
}

impl CommandSettings {
    /// The folder the program runs in: `workdir`, else `base` (the
    /// pipeline file's folder).
    pub fn workdir_at(&self, base: &Path) -> PathBuf {
        match &self.workdir {
            Some(w) => w.clone(),
            None if base.as_os_str().is_empty() => PathBuf::from("."),
            None => base.to_path_buf(),
        }
    }

    /// The program, found as the OS will find it: a path (with a '/') from
    /// the working folder, else on PATH; why not, when it is not there.
    pub fn find_program(&self, base: &Path) -> Result<PathBuf, String> {
        let prog = &self.command[0];
        let executable = |f: &Path| {
            use std::os::unix::fs::PermissionsExt;
            f.is_file() && std::fs::metadata(f).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        };
        if prog.contains('/') {
            let f = at_base(&self.workdir_at(base), prog);
            return if executable(&f) {
                Ok(f)
            } else if f.is_file() {
                Err(format!("{} is not executable (chmod +x it, or name its interpreter first)", f.display()))
            } else {
                Err(format!("{} does not exist (relative paths start at the working folder)", f.display()))
            };
        }
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|d| d.join(prog))
            .find(|f| executable(f))
            .ok_or_else(|| format!("{prog} is not on PATH"))
    }
}

impl Family for CommandSettings {
    const KIND: &'static str = "command";
    const KEYS: &'static [&'static str] = &["command", "timeout", "env", "workdir", "parallel"];

    fn read(keys: &mut impl Keys, base: &Path) -> Option<Self> {
        let command: Option<Vec<String>> = keys.req(
            "command",
            "the program and its arguments, e.g. command = [\"python3\", \"stage.py\", \"{train}\", \"{out}\"]",
        );
        let mut ok = true;
        if let Some(c) = &command {
            if c.is_empty() || c[0].trim().is_empty() {
                keys.problem(
                    "command",
                    "is empty; name the program first, e.g. [\"python3\", \"stage.py\", \"{train}\", \"{out}\"]",
                );
                ok = false;
            } else if !c.iter().any(|a| a.contains("{out}")) {
                keys.problem(
                    "command",
                    "never passes {out}, where the program must write its rows; add \"{out}\" (or read COLLAPSE_OUT and say so with \"{out}\" anyway)",
                );
                ok = false;
            }
        }
        let timeout: Option<f64> = keys.opt("timeout");
        if let Some(t) = timeout {
            if !(t > 0.0 && t.is_finite()) {
                keys.problem("timeout", &format!("must be a number of seconds > 0, got {t}"));
                ok = false;
            }
        }
        let env_table: Option<Value> = keys.opt("env");
        let mut env = BTreeMap::new();
        match env_table {
            None => {}
            Some(Value::Table(t)) => {
                for (k, v) in t {
                    match v {
                        Value::String(s) => {
                            env.insert(k, s);
                        }
                        other => {
                            keys.problem(
                                "env",
                                &format!(
                                    "{k}: expected a string, got {other}; e.g. env = {{ OMP_NUM_THREADS = \"1\" }}"
                                ),
                            );
                            ok = false;
                        }
                    }
                }
            }
            Some(other) => {
                keys.problem(
                    "env",
                    &format!("expected a table of strings, e.g. env = {{ OMP_NUM_THREADS = \"1\" }}, got {other}"),
                );
                ok = false;
            }
        }
        let workdir = keys.opt::<String>("workdir").map(|w| at_base(base, &w));
        let parallel = crate::keys::int_in(keys, "parallel", 1, 1, 4096);
        if !ok {
            return None;
        }
        Some(CommandSettings { command: command?, timeout, env, workdir, parallel: parallel? })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        table.insert("command".into(), Value::Array(self.command.iter().map(|a| string(a)).collect()));
        if let Some(t) = self.timeout {
            table.insert("timeout".into(), Value::Float(t));
        }
        if !self.env.is_empty() {
            table.insert("env".into(), Value::Table(self.env.iter().map(|(k, v)| (k.clone(), string(v))).collect()));
        }
        if let Some(w) = &self.workdir {
            table.insert("workdir".into(), string(&w.display().to_string()));
        }
        table.insert("parallel".into(), int(self.parallel));
    }
}
