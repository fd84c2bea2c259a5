//! Tar and folder walking with path safety, modelled on Python tarfile's "data" filter:
//! only regular files with relative, non-climbing paths are ever handed on; links,
//! devices, absolute and `..` paths are refused and reported, never followed.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::report::SkipReason;

use super::classify;

/// One thing found in the export.
pub enum EntryEvent<'a> {
    /// A regular file with a safe, normalised path relative to the export root.
    File {
        /// Normalised `/`-separated path, export root prefix removed.
        path: String,
        /// Size in bytes.
        size: u64,
        /// The content; read as much as needed, the rest is skipped.
        reader: &'a mut dyn Read,
    },
    /// An entry that was not handed on, with why.
    Refused(Refusal),
}

/// An entry that was refused.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The raw path as the archive names it.
    pub path: String,
    /// Why.
    pub reason: SkipReason,
    /// Detail for people.
    pub detail: String,
}

/// Top-level files of the hc-migrate layout; with [`TOP_LEVEL_FOLDERS`], used to find
/// the export root when an archive wraps everything in folders (`export/users.json`,
/// or `backup/hipchat-export/users.json` after an untar and re-pack on the server).
const TOP_LEVEL_FILES: &[&str] = &["users.json", "rooms.json", "emoticons.json", "autojoins.json", "preferences.json", "metadata.json"];
const TOP_LEVEL_FOLDERS: &[&str] = &["users", "rooms", "files"];

/// How many wrapping folders `parts` starts with: the components before the first
/// one that is a layout file (as the last component) or a layout folder (with more
/// below it); 0 when no component is.
fn wrapping_depth(parts: &[&str]) -> usize {
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .position(|(i, c)| (i == last && TOP_LEVEL_FILES.contains(c)) || (i < last && TOP_LEVEL_FOLDERS.contains(c)))
        .unwrap_or(0)
}

/// Normalises an archive path: drops `.` and empty components and any wrapping
/// folders; refuses absolute paths and `..`. Returns the reason on refusal.
pub fn normalise_entry_path(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') || raw.starts_with('\\') || raw.get(1..3) == Some(":\\") || raw.get(1..3) == Some(":/") {
        return Err("absolute path".into());
    }
    let parts: Vec<&str> = raw.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return Err("path climbs out with '..'".into());
    }
    if parts.iter().any(|c| c.contains('\0')) {
        return Err("NUL byte in path".into());
    }
    Ok(parts[wrapping_depth(&parts)..].join("/"))
}

/// The archive stream as tar's seekable reader. tar only seeks forward from
/// where it is, to step over what is left of an entry and its padding, and this
/// does it by reading into a buffer kept for the walk: tar's own way for a
/// stream zeroes a 32 KiB buffer on the stack for every entry, even to step over
/// a few bytes of padding (2 % of a run's instructions on an export of many
/// small files, callgrind). Any other seek is refused; stepping past the end is
/// the error tar gives for it.
struct ForwardSeek<R> {
    inner: R,
    /// Bytes read so far: the position tar keeps too.
    pos: u64,
    scratch: Vec<u8>,
}

impl<R: Read> Read for ForwardSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> std::io::Seek for ForwardSeek<R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let mut left = match to {
            std::io::SeekFrom::Current(n) if n >= 0 => n as u64,
            _ => return Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "the archive stream only steps forward")),
        };
        if left > 0 && self.scratch.is_empty() {
            self.scratch = vec![0; 32 * 1024];
        }
        while left > 0 {
            let n = left.min(self.scratch.len() as u64) as usize;
            let n = self.inner.read(&mut self.scratch[..n])?;
            if n == 0 {
                return Err(std::io::Error::other("unexpected EOF during skip"));
            }
            left -= n as u64;
            self.pos += n as u64;
        }
        Ok(self.pos)
    }
}

/// Walks a tar stream.
pub fn walk_tar<R: Read>(reader: R, what: &str, max_entry_size: u64, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<()> {
    let mut archive = tar::Archive::new(ForwardSeek { inner: reader, pos: 0, scratch: Vec::new() });
    let entries = archive.entries_with_seek().map_err(|e| classify(what, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| classify(what, e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let refuse = |reason, detail: String| EntryEvent::Refused(Refusal { path: raw.clone(), reason, detail });
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            visit(refuse(SkipReason::LinkOrSpecialEntry, format!("link to '{target}' refused, not followed")))?;
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            visit(refuse(SkipReason::LinkOrSpecialEntry, format!("not a regular file (type {:?})", kind.as_byte() as char)))?;
            continue;
        }
        let path = match normalise_entry_path(&raw) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => continue,
            Err(why) => {
                visit(refuse(SkipReason::UnsafePath, why))?;
                continue;
            }
        };
        let size = entry.size();
        if size > max_entry_size {
            visit(refuse(SkipReason::TooLarge, format!("{size} bytes is over --max-entry-size {max_entry_size}")))?;
            continue;
        }
        visit(EntryEvent::File { path, size, reader: &mut entry })?;
    }
    Ok(())
}

/// Walks an unpacked export folder in sorted path order, never following symlinks:
/// in each folder its files by name, then its subfolders by name, depth first (the
/// order the hand-written walk had, so outputs stay byte-identical).
pub fn walk_folder(root: &Path, max_entry_size: u64, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<()> {
    let walk = walkdir::WalkDir::new(root).follow_links(false).min_depth(1).sort_by(|a, b| {
        let (a_dir, b_dir) = (a.file_type().is_dir(), b.file_type().is_dir());
        a_dir.cmp(&b_dir).then_with(|| a.file_name().cmp(b.file_name()))
    });
    for entry in walk {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(root).display().to_string();
            Error::input(at, format!("cannot list folder: {}", e.io_error().map_or_else(|| e.to_string(), ToString::to_string)))
        })?;
        let rel = relative_name(root, entry.path());
        let ft = entry.file_type();
        if ft.is_symlink() {
            visit(EntryEvent::Refused(Refusal { path: rel, reason: SkipReason::LinkOrSpecialEntry, detail: "symlink refused, not followed".into() }))?;
        } else if ft.is_file() {
            visit_folder_file(root, &rel, max_entry_size, visit)?;
        } else if !ft.is_dir() {
            visit(EntryEvent::Refused(Refusal { path: rel, reason: SkipReason::LinkOrSpecialEntry, detail: "not a regular file".into() }))?;
        }
    }
    Ok(())
}

/// `path` below `root` as `a/b/c` (names that are not UTF-8 converted lossily).
fn relative_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn visit_folder_file(root: &Path, rel: &str, max_entry_size: u64, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<()> {
    let full = root.join(rel);
    let path = match normalise_entry_path(rel) {
        Ok(p) => p,
        Err(why) => return visit(EntryEvent::Refused(Refusal { path: rel.into(), reason: SkipReason::UnsafePath, detail: why })),
    };
    let mut file = fs::File::open(&full).map_err(|e| Error::input(full.display(), format!("cannot open: {e}")))?;
    let size = file.metadata().map_err(|e| Error::input(full.display(), e))?.len();
    if size > max_entry_size {
        let detail = format!("{size} bytes is over --max-entry-size {max_entry_size}");
        return visit(EntryEvent::Refused(Refusal { path: rel.into(), reason: SkipReason::TooLarge, detail }));
    }
    visit(EntryEvent::File { path, size, reader: &mut file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    /// Entries read in part or not at all, in an archive walked through
    /// `ForwardSeek`, are stepped over exactly; stepping past the end is tar's
    /// own error, and seeking back is refused.
    #[test]
    fn the_stream_steps_forward_only() {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, len) in [("a.json", 70_000usize), ("b.bin", 3), ("c.bin", 0), ("d.bin", 40_000)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(len as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, name, &vec![b'x'; len][..]).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let mut seen = Vec::new();
        walk_tar(&bytes[..], "t.tar", u64::MAX, &mut |event| {
            if let EntryEvent::File { path, reader, .. } = event {
                // Read only the first entry's first bytes; the rest is stepped over.
                let mut head = [0u8; 2];
                let n = if path == "a.json" { reader.read(&mut head).unwrap() } else { 0 };
                seen.push((path, n));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [("a.json".to_string(), 2), ("b.bin".into(), 0), ("c.bin".into(), 0), ("d.bin".into(), 0)]);
        let mut stream = ForwardSeek { inner: &b"abcdef"[..], pos: 0, scratch: Vec::new() };
        assert_eq!(stream.seek(SeekFrom::Current(4)).unwrap(), 4);
        assert!(stream.seek(SeekFrom::Current(-1)).is_err() && stream.seek(SeekFrom::Start(0)).is_err());
        assert_eq!(stream.seek(SeekFrom::Current(5)).unwrap_err().to_string(), "unexpected EOF during skip");
    }

    #[test]
    fn normalises_and_refuses_paths() {
        assert_eq!(normalise_entry_path("./users.json").unwrap(), "users.json");
        assert_eq!(normalise_entry_path("export/rooms/1/history.json").unwrap(), "rooms/1/history.json");
        assert_eq!(normalise_entry_path("rooms//1/./history.json").unwrap(), "rooms/1/history.json");
        assert_eq!(normalise_entry_path("a/b/c").unwrap(), "a/b/c");
        assert_eq!(normalise_entry_path("backup/hipchat-export/users.json").unwrap(), "users.json");
        assert_eq!(normalise_entry_path("backup/hipchat-export/rooms/7/files/x/users.json").unwrap(), "rooms/7/files/x/users.json");
        assert_eq!(normalise_entry_path("rooms/7/files/x/users.json").unwrap(), "rooms/7/files/x/users.json");
        assert_eq!(normalise_entry_path("a/b/users").unwrap(), "a/b/users", "a layout folder name as the last part is a file");
        assert!(normalise_entry_path("/etc/passwd").is_err());
        assert!(normalise_entry_path("../../etc/cron.d/x").is_err());
        assert!(normalise_entry_path("rooms/1/../../../x").is_err());
        assert!(normalise_entry_path("C:\\x").is_err());
    }
}
