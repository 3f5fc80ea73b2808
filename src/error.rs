use std::path::PathBuf;

/// A cause from another library (Polars, candle, plotters, the tokenizer),
/// kept whole so a reader of the error can walk to it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every failure the library reports, by kind. Each variant's message says
/// where it happened; its cause, if any, is its `source()`, so `{:#}` (as
/// `collapse` prints errors) reads "where: why". [`Error::exit_code`] maps
/// each kind to the CLI's contract in this one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline file whose keys are wrong: every problem at once.
    #[error("{}: invalid pipeline\n{}", file.display(), bullet(problems))]
    Pipeline { file: PathBuf, problems: Vec<String> },

    /// Bad input that is not a pipeline key or a data file: arguments, a
    /// query, a folder that is not a run.
    #[error("{0}")]
    Input(String),

    /// A data file the user named whose content is unusable.
    #[error("{}: {message}", file.display())]
    Data { file: PathBuf, message: String },

    /// Reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A table could not be built, read or written.
    #[error("{table}")]
    Table {
        table: String,
        #[source]
        source: Cause,
    },

    /// A model failed to fit, sample, score or save itself.
    #[error("the {family} model")]
    Model {
        family: &'static str,
        #[source]
        source: Cause,
    },

    /// The user's program of a command stage failed or wrote bad rows.
    #[error("generation {generation}, replicate {replicate}: the command `{command}` {message} (its log: {})", log.display())]
    Stage { generation: u32, replicate: u32, command: String, log: PathBuf, message: String },

    /// A curation filter left model k too few rows to fit.
    #[error("generation {generation}, replicate {replicate}: the filter ({filter}) {message}")]
    Filter { generation: u32, replicate: u32, filter: String, message: String },

    /// A report chart could not be drawn.
    #[error("chart {chart}")]
    Chart {
        chart: String,
        #[source]
        source: Cause,
    },

    /// The run's writer thread could not start, or stopped by panicking.
    #[error("the run's writer thread {what}")]
    Writer {
        what: &'static str,
        #[source]
        source: Option<std::io::Error>,
    },

    /// `collapse audit` found the run directory inconsistent.
    #[error("{}: audit found {violations} violations", run.display())]
    Audit { run: PathBuf, violations: usize },
}

fn bullet(problems: &[String]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl Error {
    /// 2 for input the user must change, 1 for a failure met while running.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Pipeline { .. } | Error::Input(_) | Error::Data { .. } => 2,
            Error::Io { .. }
            | Error::Table { .. }
            | Error::Model { .. }
            | Error::Stage { .. }
            | Error::Filter { .. }
            | Error::Chart { .. }
            | Error::Writer { .. }
            | Error::Audit { .. } => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A table error with its cause.
    pub fn table(table: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Table { table: table.into(), source: source.into() }
    }

    /// A model error with its cause.
    pub fn model(family: &'static str, source: impl Into<Cause>) -> Self {
        Error::Model { family, source: source.into() }
    }

    /// The message and every cause under it, "outer: inner: ...", for
    /// places that fold an error into a line of text (a validation problem).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The cause is kept as `source()`, not repeated in the message, so the
    /// printed chain says each thing once; exit codes follow the kind.
    #[test]
    fn causes_are_sources_and_codes_follow_kinds() {
        let io = Error::io("/x/y", std::io::Error::new(std::io::ErrorKind::NotFound, "not there"));
        assert_eq!(io.to_string(), "/x/y");
        assert_eq!(io.chain(), "/x/y: not there");
        assert_eq!(format!("{:#}", anyhow::Error::from(io)), "/x/y: not there");
        let m = Error::model("vae", "shape mismatch");
        assert_eq!(m.chain(), "the vae model: shape mismatch");
        assert_eq!(m.exit_code(), 1);
        assert_eq!(Error::Input("bad".into()).exit_code(), 2);
        assert_eq!(Error::Audit { run: "r".into(), violations: 3 }.exit_code(), 1);
    }
}
