use std::path::PathBuf;

/// Every failure the library reports. [`Error::exit_code`] maps each to the
/// CLI's contract: 2 for input the user must change, 1 for a failure met
/// while running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: invalid pipeline\n{}", file.display(), bullet(problems))]
    Pipeline { file: PathBuf, problems: Vec<String> },

    /// Bad input that is not a pipeline key: arguments, data files, queries.
    #[error("{0}")]
    Input(String),

    #[error("{}: {message}", file.display())]
    Data { file: PathBuf, message: String },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{context}: {message}")]
    Table { context: String, message: String },
}

fn bullet(problems: &[String]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Pipeline { .. } | Error::Input(_) | Error::Data { .. } => 2,
            Error::Io { .. } | Error::Table { .. } => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
