//! A scratch folder in the system's temporary folder (`inspect`'s spool), owned by
//! its run through a lock file beside it (`hcconv-inspect-XXXXXX.lock` for the folder
//! `hcconv-inspect-XXXXXX`), so what a run killed outright (SIGKILL, the OOM killer)
//! leaves there is removed by the next run, and a live run's is never touched.
//!
//! Several runs may share the temporary folder at once, so each has a lock of its
//! own (unlike OUT's, which admits one run). The lock file comes first and goes
//! last: a folder without one is no run's of this kind, and is left alone.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::storage::run_lock::{self, RunLock, Sweep};

const LOCK_SUFFIX: &str = ".lock";

/// A scratch folder and the lock that makes it this run's. Dropping it removes the
/// folder, then the lock file.
#[derive(Debug)]
pub struct TempScratch {
    dir: PathBuf,
    // Fields drop after `Drop::drop`, which removes the folder: the lock goes last.
    lock: RunLock,
}

/// Removes the scratch folders named `prefix…` in the temporary folder of this
/// user's runs that are no longer running.
pub fn sweep(prefix: &str) -> Sweep {
    sweep_in(&std::env::temp_dir(), prefix)
}

impl TempScratch {
    /// Makes this run's scratch folder `prefix…` in the temporary folder.
    pub fn create(prefix: &str) -> io::Result<TempScratch> {
        Self::create_in(&std::env::temp_dir(), prefix)
    }

    fn create_in(tmp: &Path, prefix: &str) -> io::Result<TempScratch> {
        loop {
            let (file, lock_path) = tempfile::Builder::new().prefix(prefix).suffix(LOCK_SUFFIX).tempfile_in(tmp)?.keep().map_err(|e| e.error)?;
            let Some(mut lock) = RunLock::hold_new(file, &lock_path)? else { continue };
            let dir = folder_of(&lock_path);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                // A folder of that name without its lock file: not ours, take another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            lock.claim(&dir)?;
            return Ok(TempScratch { dir, lock });
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The lock file, for an interrupt handler to remove after the folder.
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }
}

impl Drop for TempScratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The folder a lock file `….lock` stands for.
fn folder_of(lock_path: &Path) -> PathBuf {
    let name = lock_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    lock_path.with_file_name(name.strip_suffix(LOCK_SUFFIX).unwrap_or(&name))
}

/// Removes the folders of dead runs: each lock file `prefix….lock` of this user that
/// no live run holds goes, with its folder.
fn sweep_in(tmp: &Path, prefix: &str) -> Sweep {
    let Ok(entries) = fs::read_dir(tmp) else { return Vec::new() };
    let me = rustix::process::geteuid().as_raw();
    let mut locks: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(prefix) && n.ends_with(LOCK_SUFFIX)))
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.uid() == me))
        .map(|e| e.path())
        .collect();
    locks.sort();
    let mut swept = Vec::new();
    for lock_path in locks {
        let Ok(Some((lock, owner))) = RunLock::take_stale(&lock_path) else { continue };
        let dir = folder_of(&lock_path);
        if fs::symlink_metadata(&dir).is_ok() {
            swept.push(run_lock::remove_leftover(&dir, owner).map_err(|e| format!("cannot remove {}, left by an hcconv run that is no longer running: {e}", dir.display())));
        }
        drop(lock);
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::run_lock::Swept;

    #[test]
    fn a_dead_runs_scratch_goes_and_a_live_ones_stays() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(sweep_in(tmp.path(), "hcconv-test-").is_empty());
        let live = TempScratch::create_in(tmp.path(), "hcconv-test-").unwrap();
        fs::write(live.path().join("spool"), vec![7u8; 3000]).unwrap();
        // A dead run's: its lock file is there, nobody holds it.
        let dead = tmp.path().join("hcconv-test-AbC123");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("spool"), vec![1u8; 2500]).unwrap();
        fs::write(tmp.path().join("hcconv-test-AbC123.lock"), "").unwrap();
        // No lock file: not known to be a run's; left alone.
        fs::create_dir(tmp.path().join("hcconv-test-old999")).unwrap();
        let swept: Vec<Swept> = sweep_in(tmp.path(), "hcconv-test-").into_iter().map(Result::unwrap).collect();
        let second = TempScratch::create_in(tmp.path(), "hcconv-test-").unwrap();
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert_eq!((swept[0].path.as_path(), swept[0].bytes), (dead.as_path(), 2500));
        assert!(!dead.exists() && !tmp.path().join("hcconv-test-AbC123.lock").exists());
        assert!(live.path().join("spool").is_file(), "the live run's scratch is untouched");
        assert!(tmp.path().join("hcconv-test-old999").is_dir());
        let (first_dir, first_lock) = (live.path().to_path_buf(), live.lock_path().to_path_buf());
        drop(live);
        drop(second);
        assert!(!first_dir.exists() && !first_lock.exists(), "a run's scratch and lock go with it");
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("hcconv-test-old999")]);
    }
}
