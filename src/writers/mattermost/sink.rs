//! Where the import goes: `OUT/import.jsonl` + `OUT/data/…`, or one zip with the
//! same layout (`import.jsonl` at the root, `data/` beside it).
//!
//! Lines are streamed to disk as they are made. Files are only noted while the
//! lines are written (a map bounded by the export's files, so one file used by
//! several posts is stored once) and copied at the end: for a folder with
//! [`FileStore::place`], for a zip streamed entry by entry with fixed timestamps
//! so two runs give the same bytes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::{Error, OutputContext, Result};
use crate::files::FileStore;
use crate::model::FileRef;

/// The JSONL file name inside the output (the one mmetl uses too).
pub const JSONL_NAME: &str = "import.jsonl";
/// The folder that every path in the JSONL is relative to.
pub const DATA_DIR: &str = "data";

/// The output being written: JSONL lines now, files at [`Sink::finish`].
pub struct Sink {
    layout: Layout,
    jsonl_path: PathBuf,
    jsonl: BufWriter<File>,
    files: BTreeMap<String, FileRef>,
    lines: u64,
}

/// Folder or zip.
enum Layout {
    /// `out` is the folder to fill.
    Folder(PathBuf),
    /// `out` is the zip file to create; the JSONL waits in a scratch file beside it.
    Zip(PathBuf),
}

impl Sink {
    /// Starts a folder output in the existing empty folder `out`.
    pub fn folder(out: &Path) -> Result<Self> {
        let jsonl_path = out.join(JSONL_NAME);
        Self::start(Layout::Folder(out.to_path_buf()), jsonl_path)
    }

    /// Starts a zip output at the file path `out`; the JSONL is staged beside it
    /// (in the run's hidden staging folder) until the zip is assembled.
    pub fn zip(out: &Path) -> Result<Self> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let jsonl_path = parent.join(format!(".{JSONL_NAME}.partial"));
        Self::start(Layout::Zip(out.to_path_buf()), jsonl_path)
    }

    fn start(layout: Layout, jsonl_path: PathBuf) -> Result<Self> {
        let file = File::create(&jsonl_path).output_ctx(&jsonl_path)?;
        Ok(Sink { layout, jsonl_path, jsonl: BufWriter::with_capacity(256 * 1024, file), files: BTreeMap::new(), lines: 0 })
    }

    /// Writes one line `{"type": kind, kind: value}`, the value serialised in place
    /// (the same bytes a `#[serde(flatten)]` wrapper gives, without its per-line map).
    pub fn line<T: Serialize>(&mut self, kind: &str, value: &T) -> Result<()> {
        let fail = |e: serde_json::Error| Error::output(&self.jsonl_path, e);
        self.jsonl.write_all(b"{\"type\":").output_ctx(&self.jsonl_path)?;
        serde_json::to_writer(&mut self.jsonl, kind).map_err(fail)?;
        self.jsonl.write_all(b",").output_ctx(&self.jsonl_path)?;
        serde_json::to_writer(&mut self.jsonl, kind).map_err(fail)?;
        self.jsonl.write_all(b":").output_ctx(&self.jsonl_path)?;
        serde_json::to_writer(&mut self.jsonl, value).map_err(fail)?;
        self.jsonl.write_all(b"}\n").output_ctx(&self.jsonl_path)?;
        self.lines += 1;
        Ok(())
    }

    /// Writes any serialisable value as one line (the version line has its own shape).
    pub fn raw_line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.jsonl, value).map_err(|e| Error::output(&self.jsonl_path, e))?;
        self.jsonl.write_all(b"\n").output_ctx(&self.jsonl_path)?;
        self.lines += 1;
        Ok(())
    }

    /// Notes that `file` must be in the output and returns its path relative to
    /// `data/` (the export's own path, which is unique and already normalised).
    pub fn add_file(&mut self, file: &FileRef) -> String {
        self.files.entry(file.path.clone()).or_insert_with(|| file.clone());
        file.path.clone()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the JSONL and copies every noted file into place.
    pub fn finish(mut self, store: &FileStore) -> Result<()> {
        self.jsonl.flush().output_ctx(&self.jsonl_path)?;
        match &self.layout {
            Layout::Folder(out) => {
                for (rel, file) in &self.files {
                    store.place(file, &out.join(DATA_DIR).join(rel))?;
                }
                Ok(())
            }
            Layout::Zip(out) => {
                write_zip(out, &self.jsonl_path, &self.files, store)?;
                fs::remove_file(&self.jsonl_path).output_ctx(&self.jsonl_path)
            }
        }
    }
}

/// Fixed entry time: the zip format's epoch, so the bytes never depend on the clock.
fn entry_options(method: CompressionMethod, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
        .large_file(size >= u64::from(u32::MAX))
}

/// The zip: `import.jsonl` first (deflated), then `data/…` in path order, stored
/// as they are (attachments and images are usually compressed already).
fn write_zip(out: &Path, jsonl: &Path, files: &BTreeMap<String, FileRef>, store: &FileStore) -> Result<()> {
    let file = File::create(out).output_ctx(out)?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let zip_err = |e: zip::result::ZipError| Error::output(out, e);
    let jsonl_size = fs::metadata(jsonl).output_ctx(jsonl)?.len();
    zip.start_file(JSONL_NAME, entry_options(CompressionMethod::Deflated, jsonl_size)).map_err(zip_err)?;
    let mut input = File::open(jsonl).output_ctx(jsonl)?;
    io::copy(&mut input, &mut zip).output_ctx(out)?;
    for (rel, file_ref) in files {
        zip.start_file(format!("{DATA_DIR}/{rel}"), entry_options(CompressionMethod::Stored, file_ref.size)).map_err(zip_err)?;
        let mut input = store.open(file_ref)?;
        io::copy(&mut input, &mut zip).output_ctx(out)?;
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    inner.flush().output_ctx(out)?;
    Ok(())
}
