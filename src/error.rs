//! Errors that end a run, each tied to the exit status the command-line contract promises.
//!
//! Scripts branch on the exit status, so every fatal error is classified once, here,
//! instead of each module picking numbers.

use std::fmt;
use std::path::Path;

/// Which class of failure ended the run; decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Flags or arguments that do not fit together (exit 2).
    Usage,
    /// Wrong password, or an encrypted file that is not an hc-migrate archive (exit 3).
    Decrypt,
    /// The export is damaged, truncated, malformed or unreadable (exit 4).
    Input,
    /// The output cannot be written (exit 5).
    Output,
    /// Another hcconv is writing the same OUT (exit 6); nothing was touched.
    Busy,
    /// The import service took a file and reported it failed, with its errors
    /// (exit 7; `hcconv upload`).
    ImportFailed,
    /// The import service could not be used: it refused a request (4xx), stayed
    /// unreachable or answered 5xx past the retries, answered outside its documented
    /// shape, or was still processing a file at the time limit (exit 8; `hcconv
    /// upload`). Nothing is lost: the journal says where a rerun resumes.
    Service,
    /// The upload journal and the folder disagree, and a person must decide: a file
    /// changed since it was journaled, or a send was cut off before its answer was
    /// recorded and the import list cannot tell whether it arrived (exit 9; `hcconv
    /// upload`). The run stops before sending anything more.
    Journal,
    /// Anything else (exit 1).
    Other,
}

impl ErrorKind {
    /// The process exit status documented in the README and `--help`.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Decrypt => 3,
            ErrorKind::Input => 4,
            ErrorKind::Output => 5,
            ErrorKind::Busy => 6,
            ErrorKind::ImportFailed => 7,
            ErrorKind::Service => 8,
            ErrorKind::Journal => 9,
        }
    }
}

/// A fatal error: a kind for the exit status and a one-line message for people.
///
/// The message always names the file or entry involved; it never contains a password.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of `kind` with an already formatted message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// A damaged-input error (exit 4) about `what` (a file or archive entry).
    pub fn input(what: impl fmt::Display, problem: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Input, format!("{what}: {problem}"))
    }

    /// An output error (exit 5) about `path`.
    pub fn output(path: &Path, problem: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Output, format!("cannot write {}: {problem}", path.display()))
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches output-path context to I/O results (exit 5 on failure).
pub trait OutputContext<T> {
    /// Maps an I/O error to an [`ErrorKind::Output`] error naming `path`.
    fn output_ctx(self, path: &Path) -> Result<T>;
}

impl<T> OutputContext<T> for std::io::Result<T> {
    fn output_ctx(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::output(path, e))
    }
}
