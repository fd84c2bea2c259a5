//! Where the archive password comes from, in the documented order:
//! `--password-file`, then `HCCONV_PASSWORD`, then a prompt without echo when stdin
//! is a terminal; `--password` is accepted but visible to other users in `ps`.
//! The password is never printed, logged or put into an error message.
//!
//! `hcconv upload`'s service secret ([`ServiceSecretSource`]) comes the same way,
//! except that it has no flag of its own to carry the value: a file, an
//! environment variable, or the prompt.

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
            return read_first_line(path, "--password-file");
        }
        if let Some(p) = &self.literal {
            return Ok(p.as_bytes().to_vec());
        }
        if let Some(p) = std::env::var_os(ENV_VAR) {
            return Ok(p.into_encoded_bytes());
        }
        if let Some(p) = prompt_hidden("Archive password: ")? {
            return Ok(p.into_bytes());
        }
        Err(Error::usage(format!(
            "the export is encrypted and no password was given: use --password-file FILE or set {ENV_VAR} (stdin is not a terminal, so hcconv cannot ask)"
        )))
    }
}

/// Where the import service's secret comes from (`hcconv upload`), first found:
/// the file, the environment variable named by `env_var` (else `default_env_var`),
/// then a prompt without echo when stdin is a terminal. There is deliberately no
/// flag that takes the secret itself: `ps` shows a command line to every user.
#[derive(Clone, Debug)]
pub struct ServiceSecretSource {
    /// The file flag and its value, e.g. (`--sdk-secret-file`, path).
    pub file: Option<(&'static str, PathBuf)>,
    /// The variable the user named (its name, not its value).
    pub env_var: Option<String>,
    /// The variable read when none is named.
    pub default_env_var: &'static str,
    /// What the prompt asks for, e.g. "Qiscus SDK secret".
    pub what: &'static str,
}

impl ServiceSecretSource {
    /// The secret, without surrounding white space. It must be printable ASCII
    /// without spaces (it travels as an HTTP header value); an error never quotes it.
    pub fn resolve(&self) -> Result<String> {
        let (raw, from) = if let Some((flag, path)) = &self.file {
            (read_first_line(path, flag)?, format!("{flag} {}", path.display()))
        } else if let Some(name) = &self.env_var {
            let value = std::env::var_os(name).ok_or_else(|| Error::usage(format!("the environment variable {name} (named by --sdk-secret-env) is not set")))?;
            (value.into_encoded_bytes(), format!("${name}"))
        } else if let Some(value) = std::env::var_os(self.default_env_var) {
            (value.into_encoded_bytes(), format!("${}", self.default_env_var))
        } else if let Some(typed) = prompt_hidden(&format!("{}: ", self.what))? {
            (typed.into_bytes(), "the prompt".to_string())
        } else {
            return Err(Error::usage(format!(
                "no {} given: use --sdk-secret-file FILE or set {} (stdin is not a terminal, so hcconv cannot ask)",
                self.what, self.default_env_var
            )));
        };
        let secret = raw.trim_ascii();
        if secret.is_empty() {
            return Err(Error::usage(format!("the {} from {from} is empty", self.what)));
        }
        if !secret.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::usage(format!("the {} from {from} has characters an HTTP header cannot carry (spaces, control characters or non-ASCII)", self.what)));
        }
        Ok(String::from_utf8(secret.to_vec()).expect("printable ASCII is UTF-8"))
    }
}

/// The first line of the file a secret flag names (a usage error if unreadable).
fn read_first_line(path: &std::path::Path, flag: &str) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::usage(format!("{flag} {}: cannot read: {e}", path.display())))?;
    Ok(first_line(&raw).to_vec())
}

/// Asks on the terminal without echo; `None` when stdin or stderr is not a
/// terminal (a script, CI), where nobody could answer.
fn prompt_hidden(prompt: &str) -> Result<Option<String>> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(None);
    }
    let typed = rpassword::prompt_password(prompt).map_err(|e| Error::new(ErrorKind::Other, format!("cannot read from the terminal: {e}")))?;
    Ok(Some(typed))
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
