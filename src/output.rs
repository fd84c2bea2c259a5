//! Atomic output: a run writes into a hidden folder beside OUT and renames it into
//! place only when everything succeeded, so a failed or interrupted run never
//! leaves an OUT that looks complete. An existing OUT is replaced only with `--force`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, OutputContext, Result};

/// What the final output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputShape {
    /// A folder (Mattermost's unpacked layout, Pixtoome, Qiscus).
    Folder,
    /// A single file (Mattermost's `--zip`).
    File,
}

/// The in-progress output of one run.
#[derive(Debug)]
pub struct Staging {
    final_path: PathBuf,
    shape: OutputShape,
    /// Hidden folder beside OUT holding the output while it is written.
    temp_dir: PathBuf,
    /// Hidden folder beside OUT for scratch data (spool, staged files).
    work_dir: PathBuf,
    force: bool,
    done: bool,
}

impl Staging {
    /// Prepares to write `final_path`. Fails (exit 5) if it exists and `force` is off,
    /// or if it is a symlink (never followed, even with `force`).
    pub fn new(final_path: &Path, shape: OutputShape, force: bool) -> Result<Self> {
        if let Ok(meta) = fs::symlink_metadata(final_path) {
            if meta.file_type().is_symlink() {
                return Err(Error::output(final_path, "is a symlink; refusing to write through it"));
            }
            if !force {
                return Err(Error::output(final_path, "already exists; pass --force to replace it"));
            }
        }
        let parent = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::output(final_path, format!("the folder {} does not exist", parent.display())));
        }
        let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let make = |tag: &str| -> Result<PathBuf> {
            let dir = tempfile::Builder::new().prefix(&format!(".{name}.hcconv-{tag}-")).tempdir_in(&parent).output_ctx(&parent)?;
            Ok(dir.keep())
        };
        let temp_dir = make("partial")?;
        let work_dir = make("work")?;
        Ok(Staging { final_path: final_path.to_path_buf(), shape, temp_dir, work_dir, force, done: false })
    }

    /// Where the writer puts its output: a folder, or for [`OutputShape::File`] the
    /// file path inside the hidden folder.
    pub fn path(&self) -> PathBuf {
        match self.shape {
            OutputShape::Folder => self.temp_dir.clone(),
            OutputShape::File => self.temp_dir.join("output"),
        }
    }

    /// Scratch folder, removed at the end whatever happens.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The final path.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Moves the finished output into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        let _ = fs::remove_dir_all(&self.work_dir);
        if self.force && fs::symlink_metadata(&self.final_path).is_ok() {
            let meta = fs::symlink_metadata(&self.final_path).output_ctx(&self.final_path)?;
            if meta.is_dir() {
                fs::remove_dir_all(&self.final_path).output_ctx(&self.final_path)?;
            } else {
                fs::remove_file(&self.final_path).output_ctx(&self.final_path)?;
            }
        }
        fs::rename(self.path(), &self.final_path).output_ctx(&self.final_path)?;
        self.done = true;
        let _ = fs::remove_dir_all(&self.temp_dir);
        Ok(self.final_path.clone())
    }

    /// The two hidden folders, for an interrupt handler to remove.
    pub fn hidden_dirs(&self) -> [PathBuf; 2] {
        [self.temp_dir.clone(), self.work_dir.clone()]
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.work_dir);
        if !self.done {
            let _ = fs::remove_dir_all(&self.temp_dir);
        }
    }
}
