//! The import files of a `--to qiscus` folder, in upload order, each checked
//! before anything is sent: a bad file found after hundreds were imported would
//! leave the migration half done.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::writers::qiscus::MAX_FILE_BYTES;

/// The kinds of import file, in the order they must be imported: rooms refer to
/// users, comments to users and rooms.
pub const KINDS: [&str; 3] = ["users", "rooms", "comments"];

/// One import file as found in the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportFile {
    /// File name in the folder, e.g. `rooms-0002.json` (also the name uploaded).
    pub name: String,
    /// `users`, `rooms` or `comments`: the API's `type`.
    pub kind: &'static str,
    /// The number in the name.
    pub number: u32,
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Rows in its JSON array (what a finished import's `total_rows` must say).
    pub rows: u64,
}

impl ImportFile {
    /// Reads the file again for sending and checks it is still what was checked
    /// at the start; the bytes returned are the bytes to send.
    pub fn read_unchanged(&self) -> Result<Vec<u8>> {
        let bytes = std::fs::read(&self.path).map_err(|e| Error::input(self.path.display(), format!("cannot read: {e}")))?;
        if bytes.len() as u64 != self.size || sha256_hex(&bytes) != self.sha256 {
            return Err(Error::new(ErrorKind::Journal, format!("{}: changed while the upload was running; nothing more was sent", self.path.display())));
        }
        Ok(bytes)
    }
}

/// Every import file in `dir`, in upload order (all users files, then rooms, then
/// comments, each by number), read and checked: names numbered from 1 without
/// gaps, at most the API's 4,000,000 bytes, a JSON array. `on_file` is told how
/// many files have been checked.
pub fn scan(dir: &Path, mut on_file: impl FnMut(usize, usize)) -> Result<Vec<ImportFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::input(dir.display(), format!("cannot read the folder: {e}")))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::input(dir.display(), format!("cannot read the folder: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((kind, number)) = parse_name(&name, dir)? {
            found.push((kind_rank(kind), number, kind, name));
        }
    }
    found.sort();
    check_numbering(&found, dir)?;
    if found.is_empty() {
        return Err(Error::input(dir.display(), "no users-NNNN.json, rooms-NNNN.json or comments-NNNN.json in it: not a folder written by hcconv --to qiscus"));
    }
    let total = found.len();
    found
        .into_iter()
        .enumerate()
        .map(|(i, (_, number, kind, name))| {
            let file = check_file(dir, kind, number, name);
            on_file(i + 1, total);
            file
        })
        .collect()
}

/// `Some((kind, number))` for an import file's name, `None` for other files; an
/// error for a name that looks like one but is malformed (`users-01a.json`).
fn parse_name(name: &str, dir: &Path) -> Result<Option<(&'static str, u32)>> {
    let Some(stem) = name.strip_suffix(".json") else {
        return Ok(None);
    };
    let Some((kind, digits)) = KINDS.iter().find_map(|k| stem.strip_prefix(k).and_then(|rest| rest.strip_prefix('-')).map(|d| (*k, d))) else {
        return Ok(None);
    };
    match digits.parse::<u32>() {
        Ok(n) if n > 0 && digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Some((kind, n))),
        _ => Err(Error::input(dir.join(name).display(), format!("not a name hcconv writes ({kind}-NNNN.json, numbered from 0001)"))),
    }
}

fn kind_rank(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).expect("a known kind")
}

/// Each kind's files are 1, 2, 3…: a gap is a missing file, and uploading
/// around it would lose its rows (and break what later files refer to).
fn check_numbering(found: &[(usize, u32, &'static str, String)], dir: &Path) -> Result<()> {
    for kind in KINDS {
        for (expected, (_, number, _, name)) in (1u32..).zip(found.iter().filter(|f| f.2 == kind)) {
            if *number != expected {
                return Err(Error::input(dir.display(), format!("{kind}-{expected:04}.json is missing (the next {kind} file is {name}): the folder is incomplete")));
            }
        }
    }
    Ok(())
}

fn check_file(dir: &Path, kind: &'static str, number: u32, name: String) -> Result<ImportFile> {
    let path = dir.join(&name);
    let bytes = std::fs::read(&path).map_err(|e| Error::input(path.display(), format!("cannot read: {e}")))?;
    let size = bytes.len() as u64;
    if size > MAX_FILE_BYTES {
        return Err(Error::input(path.display(), format!("{size} bytes, over the import API's limit of {MAX_FILE_BYTES} bytes per file")));
    }
    let rows = count_rows(&bytes).map_err(|e| Error::input(path.display(), format!("not a JSON array of rows: {e}")))?;
    Ok(ImportFile { name, kind, number, sha256: sha256_hex(&bytes), path, size, rows })
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The number of elements of the JSON array `bytes` holds.
fn count_rows(bytes: &[u8]) -> serde_json::Result<u64> {
    struct Rows(u64);
    impl<'de> serde::Deserialize<'de> for Rows {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Counter;
            impl<'de> serde::de::Visitor<'de> for Counter {
                type Value = Rows;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an array")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
                    let mut n = 0;
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        n += 1;
                    }
                    Ok(Rows(n))
                }
            }
            d.deserialize_seq(Counter)
        }
    }
    serde_json::from_slice::<Rows>(bytes).map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    #[test]
    fn files_come_in_upload_order_whatever_the_numbers_width() {
        let dir = folder(&[
            ("comments-10000.json", "[]"),
            ("comments-0002.json", "[{}]"),
            ("comments-0001.json", "[{}]"),
            ("rooms-0001.json", "[{}]"),
            ("users-0002.json", "[{},{}]"),
            ("users-0001.json", "[{}]"),
            ("report.json", "{}"),
            ("upload-journal.json", "{}"),
        ]);
        // comments-0003 … 9999 are missing: a gap.
        let err = scan(dir.path(), |_, _| {}).unwrap_err();
        assert!(err.message().contains("comments-0003.json is missing (the next comments file is comments-10000.json)"), "{err}");
        std::fs::remove_file(dir.path().join("comments-10000.json")).unwrap();
        let files = scan(dir.path(), |_, _| {}).unwrap();
        let names: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.rows)).collect();
        assert_eq!(names, [("users-0001.json", 1), ("users-0002.json", 2), ("rooms-0001.json", 1), ("comments-0001.json", 1), ("comments-0002.json", 1)]);
        assert_eq!(files[0].sha256, sha256_hex(b"[{}]"));
    }

    #[test]
    fn bad_folders_and_files_are_named() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("notes.txt", "x")], "not a folder written by hcconv --to qiscus"),
            (&[("users-01.json", "[]")], "users-01.json: not a name hcconv writes"),
            (&[("users-0001.json", "[{},")], "users-0001.json: not a JSON array of rows"),
            (&[("rooms-0001.json", "{}")], "rooms-0001.json: not a JSON array of rows"),
        ];
        for (files, expected) in cases {
            let dir = folder(files);
            let err = scan(dir.path(), |_, _| {}).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input);
            assert!(err.message().contains(expected), "{err} lacks {expected}");
        }
        let big = folder(&[]);
        std::fs::write(big.path().join("users-0001.json"), vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(scan(big.path(), |_, _| {}).unwrap_err().message().contains("over the import API's limit of 4000000 bytes"));
    }

    #[test]
    fn a_file_changed_after_the_check_is_refused() {
        let dir = folder(&[("users-0001.json", "[{}]")]);
        let file = scan(dir.path(), |_, _| {}).unwrap().remove(0);
        assert_eq!(file.read_unchanged().unwrap(), b"[{}]");
        std::fs::write(&file.path, "[{\"a\":1}]").unwrap();
        assert_eq!(file.read_unchanged().unwrap_err().kind(), ErrorKind::Journal);
    }
}
