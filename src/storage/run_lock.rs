//! Which run owns a set of hidden folders: a lock file held with the OS's advisory
//! lock (`flock`) for as long as the run lives, holding a record of the run (pid,
//! host, boot id, start time, the paths it claims).
//!
//! The OS lock decides: the kernel drops it when its process ends, however it ends
//! (SIGKILL, the OOM killer, a closed SSH session), so a lock file that nobody holds
//! was left by a dead run, and what that run left can go. The record names the owner
//! in messages, tells a fresh record from an old one still in the file, and decides
//! alone only where the file system has no `flock` (then: the same boot and a live
//! pid mean a live run; another host cannot be checked and counts as live).
//!
//! A lock file is unlinked by its holder, while it holds it. A run that opened the
//! file before that and gets the lock after finds it unlinked and opens the path
//! again, so two runs never both believe they hold the lock of one path.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// How long a run that finds the lock held waits for the holder's record. The
/// holder writes it right after taking the lock; the wait only matters when the
/// two start at the same instant on a loaded machine.
const RECORD_WAIT: Duration = Duration::from_secs(10);

/// A record larger than this is not one of ours (read no further).
const MAX_RECORD: u64 = 64 * 1024;

/// The run holding (or that held) a lock file, as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Host name (`uname -n`): a pid says nothing about another machine's processes.
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id` (empty where there is none): after a reboot
    /// every pid of the record's boot is dead, whatever runs under that number now.
    pub boot_id: String,
    /// When the run started (RFC 3339, UTC), for people.
    pub started: String,
    /// Absolute paths the run writes besides OUT (its hidden folders, its report), so
    /// a sweep can say whose a leftover was and a refused run leaves them alone.
    #[serde(default)]
    pub claims: Vec<String>,
}

/// The machine this process runs on, as records name it.
struct Machine {
    host: String,
    boot_id: String,
}

fn this_machine() -> &'static Machine {
    static MACHINE: OnceLock<Machine> = OnceLock::new();
    MACHINE.get_or_init(|| Machine {
        host: rustix::system::uname().nodename().to_string_lossy().into_owned(),
        boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default(),
    })
}

impl Owner {
    /// Whether the run may still be alive, judged from the record alone (where the OS
    /// lock cannot be asked, and to tell a holder's fresh record from a dead run's
    /// still in the file).
    pub fn may_be_alive(&self) -> bool {
        let here = this_machine();
        if self.host != here.host {
            return true;
        }
        if !self.boot_id.is_empty() && !here.boot_id.is_empty() && self.boot_id != here.boot_id {
            return false;
        }
        pid_alive(self.pid)
    }

    /// Whether the record is of another machine (its pid then means nothing here).
    pub fn is_elsewhere(&self) -> bool {
        self.host != this_machine().host
    }

    /// Whether the run claimed `path`: the same absolute path, or the same file by
    /// another way there.
    pub fn claims(&self, path: &Path) -> bool {
        let path = absolute(path);
        let same_file = |claim: &Path| match (fs::metadata(claim), fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        self.claims.iter().any(|c| Path::new(c) == path || same_file(Path::new(c)))
    }
}

/// Whether a process `pid` exists on this machine (`kill(pid, 0)`; EPERM means it
/// exists but is another user's).
fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != Errno::SRCH,
    }
}

/// `path` made absolute without resolving links (records compare paths as written).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The outcome of [`RunLock::acquire`].
pub enum Attempt {
    /// This run holds the lock; `previous` is the dead run's record found in the file.
    Taken { lock: RunLock, previous: Option<Owner> },
    /// A live run holds it (its record, if it could be read in time).
    Held(Option<Owner>),
}

/// What `flock` said.
enum Locked {
    Yes,
    ByAnother,
    /// The file system has no `flock` (some network and FUSE file systems).
    Unsupported,
}

/// A lock file this run holds. Dropping it unlinks the file, then releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    started: String,
    claims: Vec<String>,
    /// Held with the OS lock (false on a file system without `flock`).
    exclusive: bool,
}

impl RunLock {
    /// Takes the lock file at `path`, creating it, or says who holds it.
    pub fn acquire(path: &Path) -> io::Result<Attempt> {
        let deadline = Instant::now() + RECORD_WAIT;
        loop {
            let file = open_lock_file(path, true)?;
            match try_lock(&file)? {
                Locked::Yes if !still_linked(&file, path)? => continue,
                Locked::Yes => {
                    let previous = read_record(&file);
                    return Ok(Attempt::Taken { lock: RunLock::hold(file, path, true)?, previous });
                }
                Locked::Unsupported => {
                    // No OS lock: the record alone decides, and two runs starting at
                    // the same instant may both go on (the file system's limit).
                    let previous = read_record(&file);
                    if let Some(owner) = previous.as_ref().filter(|o| o.may_be_alive()) {
                        return Ok(Attempt::Held(Some(owner.clone())));
                    }
                    return Ok(Attempt::Taken { lock: RunLock::hold(file, path, false)?, previous });
                }
                Locked::ByAnother => {
                    // Until the holder writes its record, the file is empty or holds
                    // a dead run's.
                    let owner = read_record(&file).filter(Owner::may_be_alive);
                    if owner.is_some() || Instant::now() >= deadline {
                        return Ok(Attempt::Held(owner));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Takes the lock file `file`, just created at `path` by this run with a name of
    /// its own; `None` if a sweep got to it first (it is then about to be unlinked:
    /// make another).
    pub fn hold_new(file: File, path: &Path) -> io::Result<Option<RunLock>> {
        match try_lock(&file)? {
            Locked::Yes if !still_linked(&file, path)? => Ok(None),
            Locked::Yes => RunLock::hold(file, path, true).map(Some),
            Locked::Unsupported => RunLock::hold(file, path, false).map(Some),
            Locked::ByAnother => Ok(None),
        }
    }

    /// Takes the existing lock file at `path` if its run is dead: the lock and the
    /// dead run's record. `None` if its run is alive, or the file is gone.
    pub fn take_stale(path: &Path) -> io::Result<Option<(RunLock, Option<Owner>)>> {
        let file = match open_lock_file(path, false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let previous = read_record(&file);
        let (stale, exclusive) = match try_lock(&file)? {
            Locked::Yes => (still_linked(&file, path)?, true),
            Locked::ByAnother => (false, true),
            // Without an OS lock, only a record that says so makes a run dead: an
            // empty file may be a run's that is about to write it.
            Locked::Unsupported => (previous.as_ref().is_some_and(|o| !o.may_be_alive()), false),
        };
        if !stale {
            return Ok(None);
        }
        Ok(Some((RunLock { file, path: path.to_path_buf(), started: String::new(), claims: Vec::new(), exclusive }, previous)))
    }

    fn hold(file: File, path: &Path, exclusive: bool) -> io::Result<RunLock> {
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let lock = RunLock { file, path: path.to_path_buf(), started, claims: Vec::new(), exclusive };
        lock.write_record()?;
        Ok(lock)
    }

    /// Whether the OS lock is held: no other live run can hold this lock file.
    /// Without it (a file system with no `flock`), another run may have read the
    /// same dead record at the same instant and gone on too.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Adds `path` to what this run claims, and rewrites the record.
    pub fn claim(&mut self, path: &Path) -> io::Result<()> {
        self.claims.push(absolute(path).to_string_lossy().into_owned());
        self.write_record()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the record over the old one, then cuts what is left of that: a reader
    /// in between sees text that does not parse (and waits), never an empty file.
    fn write_record(&self) -> io::Result<()> {
        let here = this_machine();
        let owner = Owner { pid: std::process::id(), host: here.host.clone(), boot_id: here.boot_id.clone(), started: self.started.clone(), claims: self.claims.clone() };
        let mut text = serde_json::to_string(&owner).map_err(io::Error::other)?;
        text.push('\n');
        self.file.write_all_at(text.as_bytes(), 0)?;
        self.file.set_len(text.len() as u64)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if still_linked(&self.file, &self.path).unwrap_or(false) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Opens a lock file for reading and writing, never through a symlink (a link
/// planted at the lock's name must not get a record written into its target).
fn open_lock_file(path: &Path, create: bool) -> io::Result<File> {
    let mut flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if create {
        flags |= OFlags::CREATE;
    }
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o644))?;
    Ok(File::from(fd))
}

fn try_lock(file: &File) -> io::Result<Locked> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Locked::Yes),
        Err(e) if e == Errno::WOULDBLOCK => Ok(Locked::ByAnother),
        Err(e) if [Errno::NOLCK, Errno::OPNOTSUPP, Errno::NOSYS, Errno::INVAL].contains(&e) => Ok(Locked::Unsupported),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` still names the file `file` has open (its holder unlinks a lock
/// file before it lets go of it).
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The record in `file`, if there is a whole one.
fn read_record(file: &File) -> Option<Owner> {
    let mut text = String::new();
    let mut reader = file.try_clone().ok()?;
    std::io::Seek::rewind(&mut reader).ok()?;
    reader.take(MAX_RECORD).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a run removed of dead runs' leftovers, one entry each: what it freed, or
/// why it could not be removed.
pub type Sweep = Vec<Result<Swept, String>>;

/// A dead run's leftover that a run removed.
#[derive(Debug)]
pub struct Swept {
    /// The folder (or file) removed.
    pub path: PathBuf,
    /// What its files held.
    pub bytes: u64,
    /// The run that left it, where its record names it.
    pub owner: Option<Owner>,
}

impl Swept {
    /// The line for stderr and the report's warnings.
    pub fn message(&self) -> String {
        let whose = match &self.owner {
            Some(o) => format!("an hcconv run that is no longer running (pid {}, started {})", o.pid, o.started),
            None => "an hcconv run that is no longer running".to_string(),
        };
        format!("removed {}, left by {whose}: {} freed", self.path.display(), human_bytes(self.bytes))
    }
}

/// Removes `path` (a folder, or anything else as a plain entry, links not followed)
/// and says how much it held.
pub fn remove_leftover(path: &Path, owner: Option<Owner>) -> io::Result<Swept> {
    let meta = fs::symlink_metadata(path)?;
    let bytes = if meta.is_dir() { size_of_folder(path) } else { meta.len() };
    if meta.is_dir() {
        fs::remove_dir_all(path)?;
    } else {
        fs::remove_file(path)?;
    }
    Ok(Swept { path: path.to_path_buf(), bytes, owner })
}

/// The bytes of the files under `dir` (links not followed, unreadable parts left out).
fn size_of_folder(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir).follow_links(false).follow_root_links(false).into_iter().filter_map(|e| e.ok()).filter(|e| e.file_type().is_file()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}

/// `n` bytes for people: "512 bytes", "12.3 MB" (SI units, as `du --si`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32, boot_id: &str) -> Owner {
        let here = this_machine();
        Owner { pid, host: here.host.clone(), boot_id: boot_id.to_string(), started: "2020-01-01T00:00:00Z".into(), claims: Vec::new() }
    }

    /// A pid that existed a moment ago and is gone.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_record_alone_tells_the_dead_from_the_live() {
        let boot = this_machine().boot_id.clone();
        let parent = std::os::unix::process::parent_id();
        assert!(owner(parent, &boot).may_be_alive(), "a live pid on this boot");
        assert!(!owner(dead_pid(), &boot).may_be_alive(), "a dead pid on this boot");
        if !boot.is_empty() {
            assert!(!owner(parent, "another-boot").may_be_alive(), "any pid of another boot is dead");
        }
        let elsewhere = Owner { host: format!("{}-elsewhere", this_machine().host), ..owner(dead_pid(), "x") };
        assert!(elsewhere.may_be_alive() && elsewhere.is_elsewhere(), "another host cannot be checked: live");
    }

    #[test]
    fn one_holder_at_a_time_and_the_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let Attempt::Taken { mut lock, previous: None } = RunLock::acquire(&path).unwrap() else { panic!("a new lock file is free") };
        lock.claim(&dir.path().join("partial")).unwrap();
        // A second open file description of this process counts as another run.
        let Attempt::Held(Some(holder)) = RunLock::acquire(&path).unwrap() else { panic!("held") };
        assert_eq!(holder.pid, std::process::id());
        assert!(holder.claims(&dir.path().join("partial")), "{holder:?}");
        assert!(RunLock::take_stale(&path).unwrap().is_none(), "a held lock is not stale");
        drop(lock);
        assert!(!path.exists(), "the holder unlinks its lock file");
        let Attempt::Taken { .. } = RunLock::acquire(&path).unwrap() else { panic!("free again") };
    }

    #[test]
    fn a_lock_file_nobody_holds_is_stale_whatever_its_record_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // The record of a live process (this test's parent) that holds no lock: its
        // pid was reused, or it is no hcconv.
        let record = serde_json::to_string(&owner(std::os::unix::process::parent_id(), &this_machine().boot_id)).unwrap();
        fs::write(&path, &record).unwrap();
        let (lock, previous) = RunLock::take_stale(&path).unwrap().expect("stale");
        assert_eq!(previous.unwrap().pid, std::os::unix::process::parent_id());
        drop(lock);
        assert!(!path.exists());
        assert!(RunLock::take_stale(&path).unwrap().is_none(), "gone: nothing to take");
    }

    #[test]
    fn a_lock_file_link_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("x.lock")).unwrap();
        assert!(RunLock::acquire(&dir.path().join("x.lock")).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(125_340_000), "125.3 MB");
        assert_eq!(human_bytes(999_960_000), "1.0 GB");
        assert_eq!(human_bytes(12_000_000_000_000), "12.0 TB");
    }
}
