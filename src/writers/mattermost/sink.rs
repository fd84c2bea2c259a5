//! Where the import goes: `OUT/import.jsonl` + `OUT/data/…`, or one zip with the
//! same layout (`import.jsonl` at the root, `data/` beside it).
//!
//! Lines are streamed to disk as they are made. Files are only noted while the
//! lines are written, in an on-disk sort by path (a map of them would grow with the
//! export), and copied at the end in path order, each once however many posts use
//! it: for a folder with [`FileStore::place`], for a zip streamed entry by entry
//! with fixed timestamps so two runs give the same bytes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, OutputContext, Result};
use crate::storage::files::FileStore;
use crate::model::FileRef;
use crate::storage::files::{fit_path, placement_error};
use crate::storage::write_behind::{run_behind_batched, PendingFiles, WriteBehind};
use crate::storage::zip_stream::ZipStream;
use crate::storage::spool::{put_u64, ExternalSort, FieldReader};

/// The JSONL file name inside the output (the one mmetl uses too).
pub const JSONL_NAME: &str = "import.jsonl";
/// The folder that every path in the JSONL is relative to.
pub const DATA_DIR: &str = "data";

/// The output being written: JSONL lines, and the files as they are noted (a
/// folder) or at [`Sink::finish`] (a zip, whose entries go in path order).
pub struct Sink {
    layout: Layout,
    jsonl_path: PathBuf,
    jsonl: WriteBehind,
    /// The export's files.
    store: Arc<FileStore>,
    /// Zip: files to copy, path → size, sorted on disk; a path may be noted often.
    files: ExternalSort<String>,
    /// Folder: copies queued on the write-behind thread, made while the JSONL is
    /// still being formatted.
    placed: PendingFiles<PathBuf>,
    /// Files hcconv writes itself, at the output's root: (name, contents).
    generated: Vec<(String, String)>,
    lines: u64,
}

/// Memory for sorting the noted files.
const FILES_SORT_BUDGET: usize = 256 * 1024;

/// Folder or zip.
enum Layout {
    /// `out` is the folder to fill.
    Folder(PathBuf),
    /// `out` is the zip file to create; the JSONL waits in a scratch file beside it,
    /// the zip's central directory in the run's scratch folder (the second path).
    Zip(PathBuf, PathBuf),
}

impl Sink {
    /// Starts a folder output in the existing empty folder `out`; `scratch` is a
    /// private folder for the list of files.
    pub fn folder(out: &Path, scratch: &Path, store: Arc<FileStore>) -> Result<Self> {
        let jsonl_path = out.join(JSONL_NAME);
        Self::start(Layout::Folder(out.to_path_buf()), jsonl_path, scratch, store)
    }

    /// Starts a zip output at the file path `out`; the JSONL is staged beside it
    /// (in the run's hidden staging folder) until the zip is assembled.
    pub fn zip(out: &Path, scratch: &Path, store: Arc<FileStore>) -> Result<Self> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let jsonl_path = parent.join(format!(".{JSONL_NAME}.partial"));
        Self::start(Layout::Zip(out.to_path_buf(), scratch.to_path_buf()), jsonl_path, scratch, store)
    }

    fn start(layout: Layout, jsonl_path: PathBuf, scratch: &Path, store: Arc<FileStore>) -> Result<Self> {
        let file = File::create(&jsonl_path).output_ctx(&jsonl_path)?;
        let files = ExternalSort::new(scratch, "mattermost-files", FILES_SORT_BUDGET);
        Ok(Sink { layout, jsonl_path, jsonl: WriteBehind::new(file), store, files, placed: PendingFiles::default(), generated: Vec::new(), lines: 0 })
    }

    /// Writes one line `{"type": kind, kind: value}`, the value serialised in place
    /// (the same bytes a `#[serde(flatten)]` wrapper gives, without its per-line map).
    pub fn line<T: Serialize>(&mut self, kind: &str, value: &T) -> Result<()> {
        self.line_with(kind, |w| serde_json::to_writer(w, value).map_err(io::Error::from))
    }

    /// [`Sink::line`] for a value that writes its own JSON (the posts).
    pub fn line_with(&mut self, kind: &str, write_value: impl FnOnce(&mut WriteBehind) -> io::Result<()>) -> Result<()> {
        let w = &mut self.jsonl;
        let written = (|| {
            w.write_all(b"{\"type\":")?;
            serde_json::to_writer(&mut *w, kind)?;
            w.write_all(b",")?;
            serde_json::to_writer(&mut *w, kind)?;
            w.write_all(b":")?;
            write_value(w)?;
            w.write_all(b"}\n")
        })();
        written.output_ctx(&self.jsonl_path)?;
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
    /// `data/` (the export's own path, which is unique and already normalised, with
    /// any name too long for a filesystem cut to fit: [`fit_path`]).
    pub fn add_file(&mut self, file: &FileRef) -> Result<String> {
        let path = fit_path(&file.path).into_owned();
        match &self.layout {
            Layout::Folder(out) => {
                let placement = self.store.placement(file, out, &Path::new(DATA_DIR).join(&path))?;
                let dest = placement.dest.clone();
                // Queued in order on one thread, so a path noted again finds the
                // copy the first note made (the same export file: paths are unique).
                let task = Box::new(move || placement.apply_once().map(|_| ()));
                let closing = run_behind_batched(task).output_ctx(&dest)?;
                self.placed.push(dest, closing).map_err(|(dest, e)| placement_error(&dest, e))?;
            }
            Layout::Zip(..) => self.files.push(file.path.clone(), |out| {
                put_u64(out, file.size);
                Ok(())
            })?,
        }
        Ok(path)
    }

    /// Puts a file hcconv made (a script) at the output's root, beside the JSONL.
    pub fn add_generated(&mut self, name: &str, contents: String) -> Result<()> {
        if let Layout::Folder(out) = &self.layout {
            let path = out.join(name);
            fs::write(&path, &contents).output_ctx(&path)?;
        }
        self.generated.push((name.to_string(), contents));
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the JSONL and has every noted file in place.
    pub fn finish(mut self) -> Result<()> {
        self.jsonl.flush().output_ctx(&self.jsonl_path)?;
        match &self.layout {
            Layout::Folder(_) => self.placed.wait_all().map_err(|(dest, e)| placement_error(&dest, e)),
            Layout::Zip(out, scratch) => {
                let mut files = NotedFiles { sorted: self.files.finish()?, last: None };
                write_zip(out, &self.jsonl_path, &self.generated, &mut files, &self.store, scratch)?;
                fs::remove_file(&self.jsonl_path).output_ctx(&self.jsonl_path)
            }
        }
    }
}

/// The noted files in path order, each once.
struct NotedFiles {
    sorted: crate::storage::spool::Sorted<String>,
    last: Option<String>,
}

impl NotedFiles {
    fn next(&mut self) -> Result<Option<FileRef>> {
        while let Some((path, body)) = self.sorted.next_record()? {
            if self.last.as_ref() == Some(&path) {
                continue;
            }
            let mut r = FieldReader::new(body);
            let size = r.u64()?;
            r.end()?;
            self.last = Some(path.clone());
            return Ok(Some(FileRef { path, size }));
        }
        Ok(None)
    }
}

/// The zip: `import.jsonl` first (deflated), the files hcconv made (deflated), then
/// `data/…` in path order, stored as they are (attachments and images are usually
/// compressed already). Written by [`ZipStream`], whose central directory waits on
/// disk, not in memory.
fn write_zip(out: &Path, jsonl: &Path, generated: &[(String, String)], files: &mut NotedFiles, store: &FileStore, scratch: &Path) -> Result<()> {
    let file = File::create(out).output_ctx(out)?;
    let mut zip = ZipStream::new(file, scratch).output_ctx(out)?;
    let jsonl_size = fs::metadata(jsonl).output_ctx(jsonl)?.len();
    let mut input = File::open(jsonl).output_ctx(jsonl)?;
    zip.add_deflating(JSONL_NAME, jsonl_size, &mut input).output_ctx(out)?;
    for (name, contents) in generated {
        zip.add_deflating(name, contents.len() as u64, &mut contents.as_bytes()).output_ctx(out)?;
    }
    while let Some(file_ref) = files.next()? {
        let mut input = store.open(&file_ref)?;
        zip.add_stored(&format!("{DATA_DIR}/{}", fit_path(&file_ref.path)), file_ref.size, &mut input).output_ctx(out)?;
    }
    zip.finish().output_ctx(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(stage: &Path, scratch: &Path, files: &[&str]) -> FileStore {
        let mut store = FileStore::staged(stage).with_scratch(scratch);
        for f in files {
            store.add(f, &mut f.as_bytes(), 0).unwrap();
        }
        store.seal().unwrap();
        store
    }

    /// Files noted in any order and any number of times are copied once each, and
    /// enter the zip in path order after the JSONL.
    #[test]
    fn noted_files_are_copied_once_in_path_order() {
        let (stage, scratch, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let names = ["rooms/2/files/b/x.png", "rooms/1/files/a-b/y.txt", "rooms/1/files/a/z.txt"];
        let store = store(stage.path(), scratch.path(), &names);
        let notes = [names[0], names[1], names[0], names[2], names[1]];
        let zip_path = out.path().join("out.zip");
        let store = Arc::new(store);
        let mut zip_sink = Sink::zip(&zip_path, scratch.path(), Arc::clone(&store)).unwrap();
        let folder = out.path().join("folder");
        fs::create_dir(&folder).unwrap();
        let mut folder_sink = Sink::folder(&folder, scratch.path(), Arc::clone(&store)).unwrap();
        for n in notes {
            let f = store.get(n).unwrap().unwrap();
            assert_eq!(zip_sink.add_file(&f).unwrap(), n);
            folder_sink.add_file(&f).unwrap();
        }
        zip_sink.finish().unwrap();
        folder_sink.finish().unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&zip_path).unwrap()).unwrap();
        let entries: Vec<String> = (0..zip.len()).map(|i| zip.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(entries, vec![JSONL_NAME, "data/rooms/1/files/a-b/y.txt", "data/rooms/1/files/a/z.txt", "data/rooms/2/files/b/x.png"]);
        for n in names {
            assert_eq!(fs::read_to_string(folder.join(DATA_DIR).join(n)).unwrap(), n);
        }
    }
}
