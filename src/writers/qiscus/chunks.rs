//! JSON-array files that never exceed the import API's size limit.
//!
//! Qiscus takes one JSON array per upload and refuses files over 4 MB, so every kind
//! (users, rooms, comments) is written as `KIND-0001.json`, `KIND-0002.json`, …, each
//! a complete array. A row is serialised first and only then placed: it goes into the
//! current file if the file still fits the limit with it and the closing bracket,
//! else into a new file, so no row is ever split and no file is ever over the limit.
//! Rows are written one per line, which keeps files diffable and easy to check.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::storage::write_behind::{PendingFiles, WriteBehind};

const OPEN: &[u8] = b"[\n";
const SEPARATOR: &[u8] = b",\n";
const CLOSE: &[u8] = b"\n]\n";

/// What one finished file holds, for the report and the runbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// File name inside OUT, e.g. `comments-0001.json`.
    pub name: String,
    /// Rows in the array.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// The open file being filled.
struct OpenFile {
    out: WriteBehind,
    path: PathBuf,
    name: String,
    bytes: u64,
    rows: u64,
}

/// Writes rows of one kind into numbered JSON-array files of at most `max_bytes`.
pub struct ChunkedArrays {
    dir: PathBuf,
    kind: &'static str,
    max_bytes: u64,
    current: Option<OpenFile>,
    /// Files finished so far, in upload order.
    pub finished: Vec<FileSummary>,
    /// Finished files the write-behind thread may still be writing.
    written: PendingFiles<PathBuf>,
    /// The row being serialised.
    row: Vec<u8>,
}

impl ChunkedArrays {
    /// Files named `KIND-NNNN.json` in `dir`; nothing is created before the first row,
    /// so a kind with no rows leaves no (empty, unuploadable) file behind.
    pub fn new(dir: &Path, kind: &'static str, max_bytes: u64) -> Self {
        ChunkedArrays { dir: dir.to_path_buf(), kind, max_bytes, current: None, finished: Vec::new(), written: PendingFiles::default(), row: Vec::new() }
    }

    /// Adds one row, starting a new file when the current one would go over the limit.
    pub fn push<T: Serialize>(&mut self, row: &T) -> Result<()> {
        self.push_json(|out| serde_json::to_writer(out, row).map_err(std::io::Error::from))
    }

    /// [`ChunkedArrays::push`] for a row that writes its own JSON into the buffer
    /// it is given (the comments: millions of rows). One buffer is reused for
    /// every row (a fresh `to_vec` per row was an allocation, its regrowth and a
    /// free for each of millions of comments).
    pub fn push_json(&mut self, write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<()> {
        let mut bytes = std::mem::take(&mut self.row);
        bytes.clear();
        write(&mut bytes).map_err(|e| Error::new(ErrorKind::Other, format!("cannot serialise a {} row: {e}", self.kind)))?;
        let result = self.append_row(&bytes);
        self.row = bytes;
        result
    }

    fn append_row(&mut self, bytes: &[u8]) -> Result<()> {
        let alone = (OPEN.len() + bytes.len() + CLOSE.len()) as u64;
        if alone > self.max_bytes {
            return Err(Error::new(
                ErrorKind::Other,
                format!("a {} row is {alone} bytes as a file of its own, over the {}-byte limit per import file; it cannot be imported", self.kind, self.max_bytes),
            ));
        }
        if let Some(open) = &self.current
            && open.bytes + (SEPARATOR.len() + bytes.len() + CLOSE.len()) as u64 > self.max_bytes
        {
            self.close_current()?;
        }
        let open = match self.current.as_mut() {
            Some(open) => {
                write_all(open, SEPARATOR)?;
                open
            }
            None => {
                let next = self.open_next()?;
                self.current.insert(next)
            }
        };
        write_all(open, bytes)?;
        open.rows += 1;
        Ok(())
    }

    /// Closes the last file and returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<FileSummary>> {
        self.close_current()?;
        self.written.wait_all().map_err(|(path, e)| Error::output(&path, e))?;
        Ok(self.finished)
    }

    fn open_next(&mut self) -> Result<OpenFile> {
        let name = format!("{}-{:04}.json", self.kind, self.finished.len() + 1);
        let path = self.dir.join(&name);
        let file = File::create(&path).output_ctx(&path)?;
        let mut open = OpenFile { out: WriteBehind::new(file), path, name, bytes: 0, rows: 0 };
        write_all(&mut open, OPEN)?;
        Ok(open)
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(mut open) = self.current.take() {
            write_all(&mut open, CLOSE)?;
            let closing = open.out.close().output_ctx(&open.path)?;
            self.written.push(open.path, closing).map_err(|(path, e)| Error::output(&path, e))?;
            self.finished.push(FileSummary { name: open.name, rows: open.rows, bytes: open.bytes });
        }
        Ok(())
    }
}

fn write_all(open: &mut OpenFile, bytes: &[u8]) -> Result<()> {
    open.out.write_all(bytes).output_ctx(&open.path)?;
    open.bytes += bytes.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn read(dir: &Path, name: &str) -> (Vec<Value>, u64) {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        (serde_json::from_slice(&bytes).unwrap(), bytes.len() as u64)
    }

    #[test]
    fn rolls_over_without_splitting_rows_or_passing_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkedArrays::new(dir.path(), "comments", 60);
        for i in 0..10 {
            w.push(&json!({"n": i, "pad": "xxxxxxxx"})).unwrap();
        }
        let files = w.finish().unwrap();
        assert!(files.len() > 1, "{files:?}");
        let mut seen = Vec::new();
        for (i, f) in files.iter().enumerate() {
            assert_eq!(f.name, format!("comments-{:04}.json", i + 1));
            let (rows, size) = read(dir.path(), &f.name);
            assert!(size <= 60, "{} is {size} bytes", f.name);
            assert_eq!(size, f.bytes);
            assert_eq!(rows.len() as u64, f.rows);
            seen.extend(rows.into_iter().map(|r| r["n"].as_u64().unwrap()));
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn exactly_full_file_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let row = json!({"a": 1});
        let exact = (OPEN.len() + serde_json::to_vec(&row).unwrap().len() + CLOSE.len()) as u64;
        let mut w = ChunkedArrays::new(dir.path(), "users", exact);
        w.push(&row).unwrap();
        w.push(&row).unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.iter().map(|f| (f.rows, f.bytes)).collect::<Vec<_>>(), vec![(1, exact), (1, exact)]);
    }

    #[test]
    fn row_larger_than_limit_is_an_error_and_no_rows_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkedArrays::new(dir.path(), "rooms", 10);
        assert!(w.push(&json!({"long": "0123456789"})).is_err());
        assert!(ChunkedArrays::new(dir.path(), "users", 10).finish().unwrap().is_empty());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
