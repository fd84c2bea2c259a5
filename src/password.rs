//! Where the archive password comes from, in the documented order:
//! `--password-file`, then `HCCONV_PASSWORD`, then a prompt without echo when stdin
//! is a terminal; `--password` is accepted but visible to other users in `ps`.
//! The password is never printed, logged or put into an error message.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};

/// The environment variable scripts use to pass the password.
pub const ENV_VAR: &str = "HCCONV_PASSWORD";

/// The user's password choices, resolved lazily (only an encrypted export needs one).
#[derive(Clone, Default)]
pub struct PasswordSource {
    /// `--password-file FILE`.
    pub file: Option<PathBuf>,
    /// `--password` (discouraged).
    pub literal: Option<String>,
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordSource").field("file", &self.file).field("literal", &self.literal.as_ref().map(|_| "<hidden>")).finish()
    }
}

impl PasswordSource {
    /// Returns the password bytes, asking only when nothing else gave one.
    pub fn resolve(&self) -> Result<Vec<u8>> {
        if let Some(path) = &self.file {
            let raw = std::fs::read(path).map_err(|e| Error::usage(format!("--password-file {}: cannot read: {e}", path.display())))?;
            return Ok(first_line(&raw).to_vec());
        }
        if let Some(p) = &self.literal {
            return Ok(p.as_bytes().to_vec());
        }
        if let Some(p) = std::env::var_os(ENV_VAR) {
            return Ok(p.into_encoded_bytes());
        }
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            let p = rpassword::prompt_password("Archive password: ").map_err(|e| Error::new(ErrorKind::Other, format!("cannot read the password from the terminal: {e}")))?;
            return Ok(p.into_bytes());
        }
        Err(Error::usage(format!(
            "the export is encrypted and no password was given: use --password-file FILE or set {ENV_VAR} (stdin is not a terminal, so hcconv cannot ask)"
        )))
    }
}

/// The first line of a password file, without its line ending (`\n` or `\r\n`),
/// as `openssl -pass file:` reads it.
fn first_line(raw: &[u8]) -> &[u8] {
    let line = raw.split(|b| *b == b'\n').next().unwrap_or(raw);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn password_file_first_line_only() {
        assert_eq!(first_line(b"s3cret\n"), b"s3cret");
        assert_eq!(first_line(b"s3cret\r\nmore"), b"s3cret");
        assert_eq!(first_line(b"with space "), b"with space ");
        assert_eq!(first_line(b""), b"");
    }
}
