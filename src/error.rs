//! Typed errors with hints, and the exit codes every command maps to.

use std::fmt;
use std::path::{Path, PathBuf};

/// How the process ends; the numbers are part of the tool's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success, or a plan with no changes.
    Success = 0,
    /// Any error: bad input, failed checks, failed AWS calls.
    Failure = 1,
    /// A plan with changes, under `--detailed-exitcode`.
    Changes = 2,
    /// The command line itself is wrong (EX_USAGE): never confused with "changes present".
    Usage = 64,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A line and column in a file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A problem in a user's file, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// Dotted key path inside the file, e.g. `storage.data_bucket_name`.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            position: None,
            key: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.key = (!key.is_empty()).then_some(key);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(position) = self.position {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(key) = &self.key {
            write!(f, " (at `{key}`)")?;
        }
        Ok(())
    }
}

/// Every error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(InputError),
    #[error("{report}")]
    Template {
        report: String,
        hint: Option<String>,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{count} problem(s) found in environment `{environment}`")]
    Invalid { environment: String, count: usize },
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// What the user can do about it, shown under the message.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input(error) => error.hint.as_deref(),
            Error::Template { hint, .. } | Error::Usage { hint, .. } => hint.as_deref(),
            Error::Io { .. } => None,
            Error::Invalid { .. } => {
                Some("fix the problems listed above, then run the command again")
            }
        }
    }
}

impl From<InputError> for Error {
    fn from(error: InputError) -> Self {
        Error::Input(error)
    }
}

/// The closest candidate to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let keys = ["instance_type", "instance_count", "name"];
        assert_eq!(did_you_mean("instnace_type", keys), Some("instance_type"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn input_error_names_file_line_and_key() {
        let error = InputError::new(Path::new("environments/prod.yaml"), "unknown key `x`")
            .at(Some(Position {
                line: 14,
                column: 5,
            }))
            .key("storage.x");
        assert_eq!(
            error.to_string(),
            "environments/prod.yaml:14:5: unknown key `x` (at `storage.x`)"
        );
    }
}
