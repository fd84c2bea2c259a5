//! Atomic output: a run writes into a hidden folder beside OUT and renames it into
//! place only when everything succeeded, so a failed or interrupted run never
//! leaves an OUT that looks complete. An existing OUT is replaced only with `--force`.
//!
//! One run at a time writes an OUT: it holds OUT's lock file ([`OutputLock`]) from
//! before its hidden folders exist until they are gone. Whatever hidden folders of
//! OUT a run finds while it holds the lock are a dead run's (SIGKILL, a power cut):
//! it removes them and says so.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::storage::run_lock::{self, Attempt, Owner, RunLock, Sweep};

/// The kinds of hidden folder a run makes beside OUT: `.{OUT}.hcconv-{kind}-XXXXXX`.
const HIDDEN_KINDS: [&str; 2] = ["partial", "work"];

/// The random part tempfile gives a name (`XXXXXX`).
const RANDOM_LEN: usize = 6;

/// What an interrupt handler adds to a hidden folder's name before it removes it
/// (no thread of the run can then write into it by its old path).
pub const INTERRUPTED_SUFFIX: &str = ".interrupted";

/// The right to write OUT: the lock file `.{OUT}.hcconv-lock` beside it, held from
/// before the run's hidden folders exist until they are gone.
#[derive(Debug)]
pub struct OutputLock {
    lock: RunLock,
    /// The dead run's record found in the lock file, until the sweep.
    previous: Option<Owner>,
    final_path: PathBuf,
    parent: PathBuf,
    /// OUT's file name, as the hidden names carry it.
    name: OsString,
}

/// The outcome of [`OutputLock::take`].
pub enum Claim {
    /// This run may write OUT; what dead runs left beside it is still there (see
    /// [`OutputLock::sweep`]).
    Mine(OutputLock),
    /// Another live run is writing OUT; nothing was touched.
    Busy(Busy),
}

/// Another run holds OUT's lock.
#[derive(Debug)]
pub struct Busy {
    final_path: PathBuf,
    owner: Option<Owner>,
}

impl Busy {
    /// The error that ends this run (exit 6), naming the other run's pid.
    pub fn error(&self) -> Error {
        let who = match &self.owner {
            Some(o) if o.is_elsewhere() => format!("another hcconv (pid {} on {})", o.pid, o.host),
            Some(o) => format!("another hcconv (pid {})", o.pid),
            None => "another hcconv".to_string(),
        };
        Error::new(ErrorKind::Busy, format!("{who} is writing {}", self.final_path.display()))
    }

    /// Whether the other run writes `path` too (its `--report` file): this run must
    /// not write over it.
    pub fn claims(&self, path: &Path) -> bool {
        self.owner.as_ref().is_some_and(|o| o.claims(path))
    }
}

impl OutputLock {
    /// Takes OUT's lock. `report` (the `--report` file) is claimed with it, so a
    /// refused run leaves it alone.
    pub fn take(final_path: &Path, report: Option<&Path>) -> Result<Claim> {
        let parent = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::output(final_path, format!("the folder {} does not exist", parent.display())));
        }
        let name = final_path.file_name().map(OsStr::to_os_string).unwrap_or_else(|| "out".into());
        let lock_path = parent.join(hidden_name(&name, "lock"));
        let (lock, previous) = match RunLock::acquire(&lock_path).output_ctx(&lock_path)? {
            Attempt::Held(owner) => return Ok(Claim::Busy(Busy { final_path: final_path.to_path_buf(), owner })),
            Attempt::Taken { lock, previous } => (lock, previous),
        };
        let mut lock = OutputLock { lock, previous, final_path: final_path.to_path_buf(), parent, name };
        if let Some(report) = report {
            lock.lock.claim(report).output_ctx(lock.lock.path())?;
        }
        Ok(Claim::Mine(lock))
    }

    /// The lock file, for an interrupt handler to remove.
    pub fn path(&self) -> &Path {
        self.lock.path()
    }

    /// Removes the hidden folders of OUT that dead runs left. With the OS lock held,
    /// no live run has one: all go, the dead run whose record is still in the lock
    /// file named for those it claimed, older leftovers (an hcconv without the lock,
    /// a run killed before it wrote its claims) unnamed. Without the OS lock, a run
    /// started at the same instant may be making its own: only the dead run's claims go.
    /// One entry a leftover, or why it could not be removed.
    pub fn sweep(&mut self) -> Result<Sweep> {
        let previous = self.previous.take();
        let previous = previous.as_ref();
        let mut leftovers: Vec<(PathBuf, Option<Owner>)> = fs::read_dir(&self.parent)
            .output_ctx(&self.parent)?
            .filter_map(|e| e.ok())
            .filter(|e| is_hidden_folder_of(&e.file_name(), &self.name))
            .map(|e| self.final_path.with_file_name(e.file_name()))
            .map(|path| {
                let owner = previous.filter(|o| o.claims(&path.with_file_name(base_name(&path)))).cloned();
                (path, owner)
            })
            .filter(|(_, owner)| self.lock.is_exclusive() || owner.is_some())
            .collect();
        leftovers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(leftovers
            .into_iter()
            .map(|(path, owner)| run_lock::remove_leftover(&path, owner).map_err(|e| format!("cannot remove {}, left by an hcconv run that is no longer running: {e}", path.display())))
            .collect())
    }
}

/// `.{name}.hcconv-{kind}`: the lock file's name, and the start of the hidden folders'.
fn hidden_name(name: &OsStr, kind: &str) -> OsString {
    let mut hidden = OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".hcconv-{kind}"));
    hidden
}

/// The name of a hidden folder without the suffix an interrupt handler adds.
fn base_name(path: &Path) -> &OsStr {
    let name = path.file_name().unwrap_or_default();
    OsStr::from_bytes(name.as_bytes().strip_suffix(INTERRUPTED_SUFFIX.as_bytes()).unwrap_or(name.as_bytes()))
}

/// Whether `entry` is one of the hidden folders a run writing OUT `name` makes:
/// `.{name}.hcconv-partial-XXXXXX` or `-work-XXXXXX`, maybe with
/// [`INTERRUPTED_SUFFIX`]. Exactly: another OUT's names never match.
fn is_hidden_folder_of(entry: &OsStr, name: &OsStr) -> bool {
    let entry = base_name(Path::new(entry)).as_bytes();
    HIDDEN_KINDS.iter().any(|kind| {
        let mut start = hidden_name(name, kind);
        start.push("-");
        entry.strip_prefix(start.as_bytes()).is_some_and(|random| random.len() == RANDOM_LEN && random.iter().all(u8::is_ascii_alphanumeric))
    })
}

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
    /// Prepares to write the OUT of `lock`, claiming the hidden folders in its record.
    /// Fails (exit 5) if OUT exists and `force` is off, or if it is a symlink (never
    /// followed, even with `force`).
    pub fn new(lock: &mut OutputLock, shape: OutputShape, force: bool) -> Result<Self> {
        let final_path = lock.final_path.clone();
        if let Ok(meta) = fs::symlink_metadata(&final_path) {
            if meta.file_type().is_symlink() {
                return Err(Error::output(&final_path, "is a symlink; refusing to write through it"));
            }
            if !force {
                return Err(Error::output(&final_path, "already exists; pass --force to replace it"));
            }
        }
        let parent = lock.parent.clone();
        let mut make = |kind: &str| -> Result<PathBuf> {
            let mut prefix = hidden_name(&lock.name, kind);
            prefix.push("-");
            let dir = tempfile::Builder::new().prefix(&prefix).rand_bytes(RANDOM_LEN).tempdir_in(&parent).output_ctx(&parent)?;
            let dir = dir.keep();
            if let Err(e) = lock.lock.claim(&dir) {
                let _ = fs::remove_dir(&dir);
                return Err(Error::output(lock.lock.path(), e));
            }
            Ok(dir)
        };
        let temp_dir = make(HIDDEN_KINDS[0])?;
        let work_dir = match make(HIDDEN_KINDS[1]) {
            Ok(dir) => dir,
            Err(e) => {
                let _ = fs::remove_dir_all(&temp_dir);
                return Err(e);
            }
        };
        Ok(Staging { final_path, shape, temp_dir, work_dir, scratch_released: false, force, done: false })
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
    use super::{create_dirs_below, is_hidden_folder_of};
    use std::ffi::OsStr;

    #[test]
    fn hidden_folders_are_told_by_their_exact_names() {
        let of_out = |entry: &str| is_hidden_folder_of(OsStr::new(entry), OsStr::new("out"));
        for entry in [".out.hcconv-partial-Ab3dE9", ".out.hcconv-work-x7Yz01", ".out.hcconv-work-x7Yz01.interrupted"] {
            assert!(of_out(entry), "{entry}");
        }
        // Another OUT's, the lock file, names tempfile never makes, OUT itself.
        for entry in [".out.zip.hcconv-partial-Ab3dE9", ".out.hcconv-partial-Ab3dE9.hcconv-work-x7Yz01", ".out.hcconv-lock", ".out.hcconv-partial-Ab3d", ".out.hcconv-partial-Ab3d.9", ".out.hcconv-spool-Ab3dE9", "out", ".other.hcconv-work-x7Yz01"] {
            assert!(!of_out(entry), "{entry}");
        }
        assert!(is_hidden_folder_of(OsStr::new(".out.zip.hcconv-partial-Ab3dE9"), OsStr::new("out.zip")));
    }

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
