//! Files for the administrator to host, and the links that point at them.
//!
//! The import API carries URLs, not bytes (FORMATS.md 3.3), so attachments and
//! avatars are copied to `OUT/files/<path in the export>` (stable, unique, and the
//! same path a person finds in the Hipchat export) and linked as
//! `<--files-base-url>/<that path>`. A file used by several messages is copied once.
//! The copies are made on the write-behind thread while the comments are still
//! being formatted (4 % of a run when they were made inline).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, OutputContext, Result};
use crate::storage::files::{fit_path, placement_error, FileStore};
use crate::model::FileRef;
use crate::storage::write_behind::{run_behind_batched, PendingFiles};

/// The folder inside OUT that holds the copies.
pub const FILES_DIR: &str = "files";

/// A checked `--files-base-url`: http(s), a host, no query or fragment, no trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Checks `raw`; anything links cannot safely be appended to is a usage error.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |why: &str| Error::usage(format!("--files-base-url {raw:?}: {why} (expected e.g. https://files.example.com/hipchat)"));
        let lower = raw.to_ascii_lowercase();
        let rest = ["https://", "http://"].iter().find_map(|s| lower.strip_prefix(s).map(|_| &raw[s.len()..])).ok_or_else(|| bad("must start with https:// or http://"))?;
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) || raw.contains(['?', '#']) {
            return Err(bad("must not contain spaces, a query (?) or a fragment (#)"));
        }
        Ok(BaseUrl(raw.trim_end_matches('/').to_string()))
    }

    /// True for https, the only scheme the API recommends for avatars.
    pub fn is_https(&self) -> bool {
        self.0.to_ascii_lowercase().starts_with("https://")
    }

    /// The link to `path` (relative to OUT/files/), each segment percent-encoded.
    pub fn join(&self, path: &str) -> String {
        format!("{}/{}", self.0, encode_path(path))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Copies export files into OUT/files/ and hands out their links.
///
/// Whether a file was copied already is asked of the output folder itself (each file
/// has its own path there), not of a set of paths that would grow with the export;
/// the write-behind thread asks it right before copying, and takes the copies in
/// the order they were asked for, so each file is copied by its first link.
pub struct FileCopier {
    files: Arc<FileStore>,
    /// The output folder; files go to `files/` below it.
    out: PathBuf,
    base: Option<BaseUrl>,
    /// Links handed out.
    linked: u64,
    /// Files actually copied, counted by the write-behind thread.
    copied: Arc<AtomicU64>,
    /// Copies queued on the write-behind thread.
    placed: PendingFiles<PathBuf>,
}

impl FileCopier {
    /// Copies go under `out/files/`; links use `base` (relative `files/…` without it).
    pub fn new(out: &Path, files: Arc<FileStore>, base: Option<BaseUrl>) -> Self {
        FileCopier { files, out: out.to_path_buf(), base, linked: 0, copied: Arc::default(), placed: PendingFiles::default() }
    }

    /// The checked base URL, if any.
    pub fn base(&self) -> Option<&BaseUrl> {
        self.base.as_ref()
    }

    /// Whether the bytes of `file` can be read (a folder export's inline avatar cannot).
    pub fn available(&self, file: &FileRef) -> bool {
        self.files.disk_path(file).is_some_and(|p| p.is_file())
    }

    /// Queues a copy of `file` (made once, however often it is linked) and returns
    /// its link. A failed copy stops the run at a later link or at [`FileCopier::finish`].
    pub fn link(&mut self, file: &FileRef) -> Result<String> {
        // A name too long for a filesystem is cut to fit, here and in the link.
        let path = fit_path(&file.path);
        let placement = self.files.placement(file, &self.out, &Path::new(FILES_DIR).join(&*path))?;
        let dest = placement.dest.clone();
        let copied = Arc::clone(&self.copied);
        let task = Box::new(move || {
            if placement.apply_once()? {
                copied.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        let closing = run_behind_batched(task).output_ctx(&dest)?;
        self.placed.push(dest, closing).map_err(|(dest, e)| placement_error(&dest, e))?;
        self.linked += 1;
        Ok(match &self.base {
            Some(base) => base.join(&path),
            None => format!("{FILES_DIR}/{path}"),
        })
    }

    /// Number of links handed out so far.
    pub fn linked(&self) -> u64 {
        self.linked
    }

    /// Waits for every copy; returns how many distinct files were copied.
    pub fn finish(&mut self) -> Result<u64> {
        self.placed.wait_all().map_err(|(dest, e)| placement_error(&dest, e))?;
        Ok(self.copied.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let b = BaseUrl::parse("https://files.example.com/hc/").unwrap();
        assert!(b.is_https());
        assert_eq!(b.join("rooms/1/files/ab cd/ü.png"), "https://files.example.com/hc/rooms/1/files/ab%20cd/%C3%BC.png");
        assert!(!BaseUrl::parse("HTTP://x.org").unwrap().is_https());
        for bad in ["ftp://x.org", "files.example.com", "https://", "https:///path", "https://x.org/?a=1", "https://x.org/a b"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
