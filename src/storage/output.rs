//! Atomic output: a run writes into a hidden folder beside OUT and renames it into
//! place only when everything succeeded, so a failed or interrupted run never
//! leaves an OUT that looks complete. An existing OUT is replaced only with `--force`.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

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
    /// The scratch folder's removal was handed to [`ScratchRemoval`].
    scratch_released: bool,
    force: bool,
    done: bool,
}

/// The scratch folder being removed on a thread of its own; dropping this waits
/// until it is gone, so no run ends with the folder still there.
///
/// The waiting thread does not just wait: the staged files (tens of thousands, in
/// one folder) are unlinked by both threads, a batch of names at a time, and the
/// last of the folder is removed once both are done. The run's last tenth of a
/// second was the helper alone unlinking while the main thread idled (perf, 17 000
/// attachments).
#[must_use = "dropping it waits for the removal"]
pub struct ScratchRemoval {
    helper: Option<std::thread::JoinHandle<()>>,
    work: std::sync::Arc<Unlinking>,
}

/// Names still to unlink in the staged-files folder, shared by the threads that
/// remove it; `None` once it has been read to the end (or could not be read).
struct Unlinking {
    dir: PathBuf,
    entries: std::sync::Mutex<Option<fs::ReadDir>>,
}

/// Names taken from the shared listing at once.
const UNLINK_BATCH: usize = 64;

impl Unlinking {
    /// Unlinks files of the folder until its listing is exhausted. Errors are left
    /// to the final `remove_dir_all`, which retries whatever is still there.
    fn run(&self) {
        let mut batch = Vec::with_capacity(UNLINK_BATCH);
        loop {
            {
                let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                let Some(listing) = entries.as_mut() else { return };
                batch.extend(listing.by_ref().take(UNLINK_BATCH).filter_map(|e| e.ok()).map(|e| e.path()));
                if batch.is_empty() {
                    *entries = None;
                    return;
                }
            }
            for path in batch.drain(..) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl Drop for ScratchRemoval {
    fn drop(&mut self) {
        self.work.run();
        if let Some(handle) = self.helper.take() {
            let _ = handle.join();
        }
        let _ = fs::remove_dir_all(&self.work.dir);
    }
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
        Ok(Staging { final_path: final_path.to_path_buf(), shape, temp_dir, work_dir, scratch_released: false, force, done: false })
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

    /// Starts removing the scratch folder, once the writer is done with it, on a
    /// thread of its own: unlinking tens of thousands of staged files took a
    /// twentieth of a Mattermost run, and moving the output into place and writing
    /// the report need not wait for it.
    /// `staged` is the folder of staged files inside it, the bulk of the removal.
    pub fn remove_scratch_in_background(&mut self, staged: &Path) -> ScratchRemoval {
        self.scratch_released = true;
        let work = std::sync::Arc::new(Unlinking { dir: self.work_dir.clone(), entries: std::sync::Mutex::new(fs::read_dir(staged).ok()) });
        let shared = std::sync::Arc::clone(&work);
        let helper = std::thread::Builder::new().name("hcconv-cleanup".into()).spawn(move || shared.run()).ok();
        ScratchRemoval { helper, work }
    }

    /// Removes the scratch folder unless [`Staging::remove_scratch_in_background`] does.
    fn remove_scratch(&self) {
        if !self.scratch_released {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }

    /// Moves the finished output into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.remove_scratch();
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
        self.remove_scratch();
        if !self.done {
            let _ = fs::remove_dir_all(&self.temp_dir);
        }
    }
}

/// Creates `dir` and its missing parents, but only below `root`, which must exist.
///
/// `fs::create_dir_all` would also recreate `root` itself. Every folder a run writes
/// into sits below one of its hidden folders, and after Ctrl-C removed those, a
/// thread that is still running must fail rather than bring one back (which would
/// leave a stray hidden folder behind the interrupted run).
pub fn create_dirs_below(root: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| io::Error::other(format!("{} is not inside {}", dir.display(), root.display())))?;
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::other(format!("{} is not a plain path below {}", dir.display(), root.display())));
    }
    create_missing(root, dir)
}

/// Like `create_dir_all`: one `mkdir` when the parent exists (the common case:
/// a new folder per attachment), walking up only on `NotFound`, but stopping at
/// `root` instead of creating it.
fn create_missing(root: &Path, dir: &Path) -> io::Result<()> {
    if dir == root {
        return if root.is_dir() { Ok(()) } else { Err(io::Error::new(io::ErrorKind::NotFound, format!("{} was removed", root.display()))) };
    }
    match fs::create_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    create_missing(root, dir.parent().unwrap_or(root))?;
    match fs::create_dir(dir) {
        Err(e) if !(e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir()) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod dir_tests {
    use super::create_dirs_below;

    #[test]
    fn creates_nested_folders_below_an_existing_root() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        create_dirs_below(tmp.path(), &dir).unwrap();
        assert!(dir.is_dir());
        create_dirs_below(tmp.path(), &dir).unwrap();
    }

    #[test]
    fn never_recreates_a_removed_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("hidden");
        let err = create_dirs_below(&root, &root.join("files/x")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(!root.exists());
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(create_dirs_below(&tmp.path().join("a"), &tmp.path().join("b")).is_err());
        assert!(create_dirs_below(tmp.path(), &tmp.path().join("a/../../b")).is_err());
    }
}
