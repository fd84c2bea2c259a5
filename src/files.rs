//! The export's files (attachments, avatars, emoticon images): where they are and how
//! a writer gets them.
//!
//! While the archive streams past, each file is either staged into a private folder
//! (conversion: writers need the bytes after the messages are sorted) or only
//! measured (inspect). An unpacked folder is used in place. Writers never see archive
//! paths on disk: they ask for a [`FileRef`] and get it copied or linked to a path
//! they choose inside their own output.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, OutputContext, Result};
use crate::model::FileRef;

/// Where file contents live.
#[derive(Clone, Debug)]
enum Backing {
    /// Only sizes are known (inspect).
    Measured,
    /// Copied out of the archive into this private folder.
    Staged(PathBuf),
    /// The export is this unpacked folder; files made from JSON (inline avatars)
    /// go to the second folder, never into the export.
    Folder(PathBuf, Option<PathBuf>),
}

/// Index of the export's files plus access to their bytes.
#[derive(Clone, Debug)]
pub struct FileStore {
    backing: Backing,
    index: BTreeMap<String, u64>,
    /// Paths of files made from bytes found in JSON, kept in the overlay folder.
    made: std::collections::BTreeSet<String>,
}

impl FileStore {
    /// A store that records sizes only.
    pub fn measured() -> Self {
        FileStore { backing: Backing::Measured, index: BTreeMap::new(), made: Default::default() }
    }

    /// A store that copies each file into `dir` as the archive streams past.
    pub fn staged(dir: &Path) -> Self {
        FileStore { backing: Backing::Staged(dir.to_path_buf()), index: BTreeMap::new(), made: Default::default() }
    }

    /// A store over an unpacked export folder; a staging store's folder is kept for
    /// files made from JSON, so the export folder itself is never written to.
    pub fn folder(root: &Path, previous: &FileStore) -> Self {
        let overlay = match &previous.backing {
            Backing::Staged(dir) => Some(dir.clone()),
            _ => None,
        };
        FileStore { backing: Backing::Folder(root.to_path_buf(), overlay), index: BTreeMap::new(), made: Default::default() }
    }

    /// True when the bytes can be read back (not a measuring store).
    pub fn has_contents(&self) -> bool {
        !matches!(self.backing, Backing::Measured)
    }

    /// Records a file the archive holds at `path` (already normalised and safe),
    /// staging its bytes when this store keeps contents.
    pub fn add(&mut self, path: &str, reader: &mut dyn Read, declared_size: u64) -> Result<()> {
        let size = match &self.backing {
            Backing::Staged(dir) => {
                let dest = dir.join(path);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).output_ctx(parent)?;
                }
                let mut out = File::create(&dest).output_ctx(&dest)?;
                io::copy(reader, &mut out).map_err(|e| stage_error(path, &dest, e))?
            }
            Backing::Measured | Backing::Folder(..) => declared_size,
        };
        self.index.insert(path.to_string(), size);
        Ok(())
    }

    /// Records a file made from bytes found inside JSON (an inline avatar).
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let dest = match &self.backing {
            Backing::Staged(dir) | Backing::Folder(_, Some(dir)) => Some(dir.join(path)),
            Backing::Folder(_, None) | Backing::Measured => None,
        };
        self.made.insert(path.to_string());
        if let Some(dest) = dest {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).output_ctx(parent)?;
            }
            fs::write(&dest, bytes).output_ctx(&dest)?;
        }
        self.index.insert(path.to_string(), bytes.len() as u64);
        Ok(())
    }

    /// The file at `path`, if the export has it.
    pub fn get(&self, path: &str) -> Option<FileRef> {
        self.index.get(path).map(|size| FileRef { path: path.to_string(), size: *size })
    }

    /// The first of `candidates` the export has.
    pub fn find(&self, candidates: &[String]) -> Option<FileRef> {
        candidates.iter().find_map(|c| self.get(c))
    }

    /// Every file whose path starts with `prefix`, in path order.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = FileRef> + 'a {
        self.index
            .range(prefix.to_string()..)
            .take_while(move |(p, _)| p.starts_with(prefix))
            .map(|(p, s)| FileRef { path: p.clone(), size: *s })
    }

    /// Number of files and their total bytes.
    pub fn totals(&self) -> (u64, u64) {
        (self.index.len() as u64, self.index.values().sum())
    }

    /// Where the bytes of `file` are on disk; `None` for a measuring store.
    pub fn disk_path(&self, file: &FileRef) -> Option<PathBuf> {
        match &self.backing {
            Backing::Measured | Backing::Folder(_, None) if self.made.contains(&file.path) => None,
            Backing::Measured => None,
            Backing::Folder(_, Some(overlay)) if self.made.contains(&file.path) => Some(overlay.join(&file.path)),
            Backing::Staged(dir) | Backing::Folder(dir, _) => Some(dir.join(&file.path)),
        }
    }

    /// Opens `file` for reading.
    pub fn open(&self, file: &FileRef) -> Result<File> {
        let path = self.disk_path(file).ok_or_else(|| Error::input(&file.path, "file contents were not kept"))?;
        File::open(&path).map_err(|e| Error::input(path.display(), format!("cannot read: {e}")))
    }

    /// Puts a copy of `file` at `dest` (a hard link when staged on the same disk,
    /// else a copy), creating parent folders. Never follows or creates symlinks.
    pub fn place(&self, file: &FileRef, dest: &Path) -> Result<()> {
        let src = self.disk_path(file).ok_or_else(|| Error::input(&file.path, "file contents were not kept"))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).output_ctx(parent)?;
        }
        if fs::symlink_metadata(dest).is_ok() {
            return Err(Error::output(dest, "already exists"));
        }
        if matches!(self.backing, Backing::Staged(_)) && fs::hard_link(&src, dest).is_ok() {
            return Ok(());
        }
        let mut input = File::open(&src).map_err(|e| Error::input(src.display(), format!("cannot read: {e}")))?;
        let mut out = File::create(dest).output_ctx(dest)?;
        io::copy(&mut input, &mut out).output_ctx(dest)?;
        Ok(())
    }
}

/// A failed staging copy is the archive's fault when reading failed, the disk's otherwise.
fn stage_error(entry: &str, dest: &Path, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<crate::archive::crypto::DecryptError>()) || e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::InvalidInput {
        crate::archive::classify(entry, e)
    } else {
        Error::output(dest, e)
    }
}
