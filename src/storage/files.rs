//! The export's files (attachments, avatars, emoticon images): where they are and how
//! a writer gets them.
//!
//! While the archive streams past, each file is either staged into a private folder
//! (conversion: writers need the bytes after the messages are sorted) or only
//! measured (inspect). An unpacked folder is used in place. Writers never see archive
//! paths on disk: they ask for a [`FileRef`] and get it copied or linked to a path
//! they choose inside their own output.

mod index;
mod slots;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::model::FileRef;
use crate::storage::output::create_dirs_below;
use crate::storage::write_behind::{try_run_behind, PendingFiles, WriteBehind};

use index::{Pending, Table};
pub use slots::SlotTable;

/// Archive files up to this size are staged in batches ([`SmallFiles`]). Larger
/// ones are written behind as they are read.
const SMALL_FILE_MAX: u64 = 16 * 1024;
/// Small files per batch at most.
const SMALL_BATCH_FILES: usize = 64;
/// Bytes per batch of small files at most.
const SMALL_BATCH_BYTES: usize = 256 * 1024;

/// Small files read but not yet written. Creating, writing and closing 17 000
/// small attachments was the reading thread's whole work for the first sixth of a
/// run (perf: `open` alone was 41 % of it) while the other core idled, and a
/// hand-off to the write-behind helper per file cost more than its write. A batch
/// goes to the helper as one job or, when the helper's queue is full, is written
/// on the reading thread, so both cores create files.
///
/// Copies of one path (an avatar in two slices of an export) must land in the
/// order they were read, the last one winning, however the writes are split
/// between threads: a file whose staged name may still be written by an earlier
/// job waits for it ([`FileStore::wait_for_earlier_copies`]). Names are compared
/// by [`StagedKey`], which is cheap enough to check on every file.
#[derive(Debug, Default)]
struct SmallFiles {
    /// Staged path, bytes, and the archive path (for errors).
    files: Vec<(PathBuf, Vec<u8>, String)>,
    keys: Vec<StagedKey>,
    bytes: usize,
}

/// The first 64 bits of a staged name's hash: equal for copies of one path, and
/// (rarely) for two paths, which then only wait for each other needlessly.
type StagedKey = u64;

/// Staging work that may still be under way: its label for errors (a staged file,
/// or the staging folder for a batch) and the keys of the names it writes.
#[derive(Debug)]
struct InFlight {
    label: PathBuf,
    keys: Vec<StagedKey>,
}

impl SmallFiles {
    fn push(&mut self, dest: PathBuf, key: StagedKey, bytes: Vec<u8>, entry: &str) {
        self.bytes += bytes.len();
        self.files.push((dest, bytes, entry.to_string()));
        self.keys.push(key);
    }

    fn is_full(&self) -> bool {
        self.files.len() >= SMALL_BATCH_FILES || self.bytes >= SMALL_BATCH_BYTES
    }

    /// The batch as one task (its error names the archive entry) with the keys it
    /// writes, leaving this empty.
    fn take_task(&mut self) -> Option<(crate::storage::write_behind::Task, Vec<StagedKey>)> {
        if self.files.is_empty() {
            return None;
        }
        self.bytes = 0;
        let files = std::mem::take(&mut self.files);
        let keys = std::mem::take(&mut self.keys);
        let task: crate::storage::write_behind::Task = Box::new(move || {
            for (dest, bytes, entry) in files {
                fs::write(&dest, bytes).map_err(|e| io::Error::new(e.kind(), format!("staging {entry} as {}: {e}", dest.display())))?;
            }
            Ok(())
        });
        Some((task, keys))
    }
}

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

/// The list of files: collected while the archive is read, then sealed into a
/// sorted table on disk (see [`index`]) that lookups read.
#[derive(Debug)]
enum Index {
    /// Paths so far (none yet: no sort started), and how many were added.
    Filling(Option<Pending>, u64),
    Sealed(Table),
}

/// Index of the export's files plus access to their bytes.
///
/// Files are added while the archive streams past, then [`FileStore::seal`] sorts
/// the list into a table on disk; only then can files be looked up. Memory stays
/// small whatever the number of files, except for the few files made from JSON
/// (inline avatars, one per user at most), kept in memory.
#[derive(Debug)]
pub struct FileStore {
    backing: Backing,
    index: Index,
    /// Files made from bytes found in JSON, kept in the overlay folder: path → size
    /// and order made. They win over archive entries with the same path.
    made: BTreeMap<String, (u64, u64)>,
    /// Folder for the index's scratch files (a temporary one is made if none is set).
    scratch: Option<PathBuf>,
    temp: Option<tempfile::TempDir>,
    /// Memory for sorting the paths (tests make it tiny, to sort through run files).
    sort_budget: usize,
    /// Staged copies the write-behind thread may still be writing; `seal` waits.
    staging: PendingFiles<InFlight>,
    /// Small staged files not yet handed over.
    small: SmallFiles,
}

impl FileStore {
    fn with_backing(backing: Backing) -> Self {
        FileStore { backing, index: Index::Filling(None, 0), made: BTreeMap::new(), scratch: None, temp: None, sort_budget: index::SORT_BUDGET, staging: PendingFiles::default(), small: SmallFiles::default() }
    }

    /// A store that records sizes only.
    pub fn measured() -> Self {
        Self::with_backing(Backing::Measured)
    }

    /// A store that copies each file into `dir` as the archive streams past.
    pub fn staged(dir: &Path) -> Self {
        Self::with_backing(Backing::Staged(dir.to_path_buf()))
    }

    /// A store over an unpacked export folder; a staging store's folder is kept for
    /// files made from JSON, so the export folder itself is never written to.
    pub fn folder(root: &Path, previous: &FileStore) -> Self {
        let overlay = match &previous.backing {
            Backing::Staged(dir) => Some(dir.clone()),
            _ => None,
        };
        FileStore { scratch: previous.scratch.clone(), ..Self::with_backing(Backing::Folder(root.to_path_buf(), overlay)) }
    }

    /// Puts the index's scratch files (sort runs, the sorted table) into `dir`, a
    /// folder private to this run, instead of a temporary folder of their own.
    pub fn with_scratch(mut self, dir: &Path) -> Self {
        self.scratch = Some(dir.to_path_buf());
        self
    }

    /// True when the bytes can be read back (not a measuring store).
    pub fn has_contents(&self) -> bool {
        !matches!(self.backing, Backing::Measured)
    }

    fn scratch_dir(&mut self) -> Result<PathBuf> {
        if let Some(dir) = &self.scratch {
            return Ok(dir.clone());
        }
        if self.temp.is_none() {
            let dir = tempfile::Builder::new().prefix("hcconv-files-").tempdir().map_err(|e| Error::new(ErrorKind::Other, format!("cannot create a temporary folder: {e}")))?;
            self.temp = Some(dir);
        }
        Ok(self.temp.as_ref().expect("just made").path().to_path_buf())
    }

    /// Records a file the archive holds at `path` (already normalised and safe),
    /// staging its bytes when this store keeps contents.
    pub fn add(&mut self, path: &str, reader: &mut dyn Read, declared_size: u64) -> Result<()> {
        let size = match &self.backing {
            Backing::Staged(dir) => {
                let dir = dir.clone();
                let (name, key) = staged_name_and_key(path);
                let dest = dir.join(name);
                if declared_size <= SMALL_FILE_MAX {
                    let mut bytes = Vec::with_capacity(declared_size as usize);
                    reader.read_to_end(&mut bytes).map_err(|e| stage_error(path, &dest, e))?;
                    let size = bytes.len() as u64;
                    // An earlier copy in the batch itself is written before this one.
                    self.wait_for_earlier_copies(&dir, &[key], false)?;
                    self.small.push(dest, key, bytes, path);
                    if self.small.is_full() {
                        self.write_small_files(&dir)?;
                    }
                    size
                } else {
                    self.wait_for_earlier_copies(&dir, &[key], true)?;
                    let mut out = WriteBehind::new(File::create(&dest).output_ctx(&dest)?);
                    let size = io::copy(reader, &mut out).map_err(|e| stage_error(path, &dest, e))?;
                    let closing = out.close().output_ctx(&dest)?;
                    self.staging.push(InFlight { label: dest, keys: vec![key] }, closing).map_err(in_flight_error)?;
                    size
                }
            }
            Backing::Measured | Backing::Folder(..) => declared_size,
        };
        if matches!(self.index, Index::Filling(None, _)) {
            let dir = self.scratch_dir()?;
            self.index = Index::Filling(Some(Pending::new(&dir, "files", self.sort_budget)), 0);
        }
        let Index::Filling(Some(pending), added) = &mut self.index else {
            return Err(Error::new(ErrorKind::Other, format!("{path}: a file was added after the file index was sealed")));
        };
        pending.push((path.to_string(), *added), |out| {
            crate::storage::spool::put_u64(out, size);
            Ok(())
        })?;
        *added += 1;
        Ok(())
    }

    /// Ends adding archive files: sorts the list into its table on disk. Lookups
    /// work from here on; calling it again does nothing.
    pub fn seal(&mut self) -> Result<()> {
        if let Backing::Staged(dir) = &self.backing {
            let dir = dir.clone();
            self.write_small_files(&dir)?;
        }
        self.staging.wait_all().map_err(in_flight_error)?;
        let table = match std::mem::replace(&mut self.index, Index::Filling(None, 0)) {
            Index::Sealed(table) => table,
            Index::Filling(None, _) => Table::empty(),
            Index::Filling(Some(pending), _) => {
                let path = self.scratch_dir()?.join("files.index");
                Table::build(pending.finish()?, &path)?
            }
        };
        self.index = Index::Sealed(table);
        Ok(())
    }

    /// Hands the batch of small files to the write-behind helper, or writes it
    /// here when the helper is busy. `dir` labels a failure the helper reports.
    fn write_small_files(&mut self, dir: &Path) -> Result<()> {
        let Some((task, keys)) = self.small.take_task() else { return Ok(()) };
        match try_run_behind(task).output_ctx(dir)? {
            Ok(closing) => self.staging.push(InFlight { label: dir.to_path_buf(), keys }, closing).map_err(in_flight_error),
            Err(task) => {
                // Written here, it may overtake queued jobs: not past an earlier copy.
                self.wait_for_earlier_copies(dir, &keys, false)?;
                task().output_ctx(dir)
            }
        }
    }

    /// Waits until no earlier copy of any of `keys` can still be written: when one
    /// is queued (or, with `batch_too`, waits in the unsent batch), everything
    /// queued so far is sent and waited for. Copies of one path are rare, so this
    /// almost never waits.
    fn wait_for_earlier_copies(&mut self, dir: &Path, keys: &[StagedKey], batch_too: bool) -> Result<()> {
        let in_batch = batch_too && self.small.keys.iter().any(|k| keys.contains(k));
        if in_batch || self.staging.any_pending(|f| f.keys.iter().any(|k| keys.contains(k))).map_err(in_flight_error)? {
            if let Some((task, batch_keys)) = self.small.take_task() {
                let closing = crate::storage::write_behind::run_behind(task).output_ctx(dir)?;
                self.staging.push(InFlight { label: dir.to_path_buf(), keys: batch_keys }, closing).map_err(in_flight_error)?;
            }
            self.staging.wait_all().map_err(in_flight_error)?;
        }
        Ok(())
    }

    fn table(&self) -> Result<&Table> {
        match &self.index {
            Index::Sealed(table) => Ok(table),
            Index::Filling(..) => Err(Error::new(ErrorKind::Other, "the file index was read before the archive was (FileStore::seal)")),
        }
    }

    /// Records a file made from bytes found inside JSON (an inline avatar).
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let staged_in = match &self.backing {
            Backing::Staged(dir) | Backing::Folder(_, Some(dir)) => Some(dir),
            Backing::Folder(_, None) | Backing::Measured => None,
        };
        if let Some(dir) = staged_in {
            let dir = dir.clone();
            let (name, key) = staged_name_and_key(path);
            // It wins over an archive copy of the same path, so none may land after it.
            self.wait_for_earlier_copies(&dir, &[key], true)?;
            let dest = dir.join(name);
            fs::write(&dest, bytes).output_ctx(&dest)?;
        }
        let order = self.made.get(path).map_or(self.made.len() as u64, |(_, order)| *order);
        self.made.insert(path.to_string(), (bytes.len() as u64, order));
        Ok(())
    }

    /// The file at `path`, if the export has it.
    pub fn get(&self, path: &str) -> Result<Option<FileRef>> {
        if let Some((size, _)) = self.made.get(path) {
            return Ok(Some(FileRef { path: path.to_string(), size: *size }));
        }
        Ok(self.table()?.get(path)?.map(|(_, size)| FileRef { path: path.to_string(), size }))
    }

    /// The first of `candidates` the export has.
    pub fn find(&self, candidates: &[String]) -> Result<Option<FileRef>> {
        for c in candidates {
            if let Some(hit) = self.get(c)? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// Every file whose path starts with `prefix`, in path order.
    pub fn under(&self, prefix: &str) -> Result<Vec<FileRef>> {
        let mut files: BTreeMap<String, u64> = self.table()?.under(prefix)?.into_iter().collect();
        let made = self.made.range(prefix.to_string()..).take_while(|(p, _)| p.starts_with(prefix));
        files.extend(made.map(|(p, (size, _))| (p.clone(), *size)));
        Ok(files.into_iter().map(|(path, size)| FileRef { path, size }).collect())
    }

    /// Number of files and their total bytes.
    pub fn totals(&self) -> Result<(u64, u64)> {
        let table = self.table()?;
        let (mut count, mut bytes) = (table.len(), table.bytes());
        for (path, (size, _)) in &self.made {
            match table.get(path)? {
                Some((_, replaced)) => bytes = bytes - replaced + size,
                None => (count, bytes) = (count + 1, bytes + size),
            }
        }
        Ok((count, bytes))
    }

    /// A number for `file`, unique among this store's files and below
    /// [`FileStore::slot_count`], for per-file state kept on disk ([`SlotTable`]).
    pub fn slot(&self, file: &FileRef) -> Result<Option<u64>> {
        let table = self.table()?;
        if let Some((_, order)) = self.made.get(&file.path) {
            return Ok(Some(table.len() + order));
        }
        Ok(table.get(&file.path)?.map(|(rank, _)| rank))
    }

    /// How many slots [`FileStore::slot`] hands out (0 before sealing).
    pub fn slot_count(&self) -> u64 {
        self.table().map_or(0, |t| t.len()) + self.made.len() as u64
    }

    /// Where the bytes of `file` are on disk; `None` for a measuring store.
    pub fn disk_path(&self, file: &FileRef) -> Option<PathBuf> {
        match &self.backing {
            Backing::Measured | Backing::Folder(_, None) if self.made.contains_key(&file.path) => None,
            Backing::Measured => None,
            Backing::Folder(_, Some(overlay)) if self.made.contains_key(&file.path) => Some(overlay.join(staged_name(&file.path))),
            Backing::Staged(dir) => Some(dir.join(staged_name(&file.path))),
            Backing::Folder(dir, _) => Some(dir.join(&file.path)),
        }
    }

    /// Opens `file` for reading.
    pub fn open(&self, file: &FileRef) -> Result<File> {
        let path = self.disk_path(file).ok_or_else(|| Error::input(&file.path, "file contents were not kept"))?;
        File::open(&path).map_err(|e| Error::input(path.display(), format!("cannot read: {e}")))
    }

    /// Puts a copy of `file` at `root/rel` (a hard link when staged on the same disk,
    /// else a copy), creating folders below `root`, which must exist. Never follows
    /// or creates symlinks.
    pub fn place(&self, file: &FileRef, root: &Path, rel: &Path) -> Result<()> {
        let placement = self.placement(file, root, rel)?;
        match placement.apply_once() {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::output(&placement.dest, "already exists")),
            Err(e) => Err(placement_error(&placement.dest, e)),
        }
    }

    /// What [`FileStore::place`] does, as a value that can run on another thread.
    pub fn placement(&self, file: &FileRef, root: &Path, rel: &Path) -> Result<Placement> {
        let src = self.disk_path(file).ok_or_else(|| Error::input(&file.path, "file contents were not kept"))?;
        Ok(Placement { src, root: root.to_path_buf(), dest: root.join(rel), link: matches!(self.backing, Backing::Staged(_)) })
    }
}

/// The longest file or folder name Linux filesystems take (NAME_MAX: ext4, XFS,
/// btrfs, tmpfs). A tar entry may carry a longer one; copied as it is, it stopped a
/// whole conversion with "File name too long".
pub const MAX_NAME_BYTES: usize = 255;

/// The bytes of a long name's hash kept in its cut form, in hex.
const NAME_HASH_HEX: usize = 16;

/// `path` (relative, `/`-separated) as the output stores it: each part longer than
/// [`MAX_NAME_BYTES`] is cut to fit, keeping its start and a short extension, with
/// a hash of the whole part added, so two long names that start alike stay apart
/// and a name always gets the same cut. Paths that fit (nearly all) come back as
/// they are.
pub fn fit_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.split('/').all(|part| part.len() <= MAX_NAME_BYTES) {
        return path.into();
    }
    path.split('/').map(fit_name).collect::<Vec<_>>().join("/").into()
}

/// One part of [`fit_path`].
fn fit_name(part: &str) -> String {
    if part.len() <= MAX_NAME_BYTES {
        return part.to_string();
    }
    let extension = part.rfind('.').map(|at| &part[at..]).filter(|e| (2..=16).contains(&e.len())).unwrap_or("");
    // The SHA-256 in hex that staged copies are named by, shortened.
    let hash = &staged_name(part)[..NAME_HASH_HEX];
    let mut keep = MAX_NAME_BYTES - extension.len() - 1 - NAME_HASH_HEX;
    while !part.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}~{hash}{extension}", &part[..keep])
}

/// The name a staged copy of the export file at `path` gets: the SHA-256 of the path
/// in hex, all in one folder. Mirroring the export's folders cost a `mkdir` per
/// attachment while reading (exports give each file a folder of its own) and as many
/// `rmdir`s when the run ends, about 5 % of a run; the hash is unique for every
/// path an export can hold, and the same path (a later slice's copy, a file made
/// from JSON) still lands on the same name, so the last copy wins as before.
fn staged_name(path: &str) -> String {
    staged_name_and_key(path).0
}

/// [`staged_name`] and its [`StagedKey`], from one hash.
fn staged_name_and_key(path: &str) -> (String, StagedKey) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.as_bytes());
    let mut name = String::with_capacity(64);
    for b in digest.iter() {
        name.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        name.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble"));
    }
    let key = StagedKey::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    (name, key)
}

/// A staging write that failed, named by its label.
fn in_flight_error((staged, e): (InFlight, io::Error)) -> Error {
    Error::output(&staged.label, e)
}

/// A copy of one export file to make in the output (see [`FileStore::place`]).
#[derive(Debug)]
pub struct Placement {
    src: PathBuf,
    root: PathBuf,
    /// Where the copy goes.
    pub dest: PathBuf,
    /// Try a hard link first (the source is a staged copy of our own).
    link: bool,
}

impl Placement {
    /// Makes the copy unless the destination already holds it (writers place an
    /// export file at one path however often it is used); true when it made it.
    /// The link's own "already exists" says so: a lookup before each placement
    /// was one more system call per attachment.
    pub fn apply_once(&self) -> io::Result<bool> {
        if let Some(parent) = self.dest.parent() {
            create_dirs_below(&self.root, parent)?;
        }
        let outcome = match self.link {
            true => fs::hard_link(&self.src, &self.dest).or_else(|_| self.copy()),
            false => self.copy(),
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn copy(&self) -> io::Result<()> {
        let mut input = File::open(&self.src).map_err(|e| io::Error::new(e.kind(), SourceUnreadable { path: self.src.clone(), error: e }))?;
        let mut out = fs::OpenOptions::new().write(true).create_new(true).open(&self.dest)?;
        io::copy(&mut input, &mut out)?;
        Ok(())
    }
}

/// The source of a placement could not be read: the input's fault (an unpacked
/// export folder), not the output's. Travels inside an `io::Error` so a placement
/// run on the write-behind thread keeps the distinction.
#[derive(Debug)]
struct SourceUnreadable {
    path: PathBuf,
    error: io::Error,
}

impl std::fmt::Display for SourceUnreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for SourceUnreadable {}

/// The error of a failed [`Placement::apply`]: reading the source is an input
/// error naming it, anything else an output error naming `dest`.
pub fn placement_error(dest: &Path, e: io::Error) -> Error {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<SourceUnreadable>()) {
        Some(unreadable) => Error::input(unreadable.path.display(), format!("cannot read: {}", unreadable.error)),
        None => Error::output(dest, e),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_to_fit_apart_and_the_same_each_time() {
        assert_eq!(fit_path("rooms/1/files/k/a.txt"), "rooms/1/files/k/a.txt");
        let long = format!("rooms/2/files/k/{}.txt", "é".repeat(150));
        let fitted = fit_path(&long);
        let name = fitted.rsplit('/').next().unwrap();
        assert!(name.len() <= MAX_NAME_BYTES && name.len() > MAX_NAME_BYTES - 2, "{name}");
        assert!(name.starts_with("éé") && name.ends_with(".txt") && name.contains('~'), "{name}");
        assert!(fitted.starts_with("rooms/2/files/k/"));
        assert_eq!(fit_path(&long), fitted);
        let other = format!("rooms/2/files/k/{}x.txt", "é".repeat(150));
        assert_ne!(fit_path(&other), fitted);
        let plain = "a".repeat(300);
        assert_eq!(fit_path(&plain).len(), MAX_NAME_BYTES);
    }
    use proptest::prelude::*;

    /// A placement is made once: placing again is "already exists" for
    /// [`FileStore::place`] and a quiet no for [`Placement::apply_once`], and a
    /// symlink at the destination is never written through.
    #[test]
    fn a_file_is_placed_once_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (stage, out, elsewhere) = (dir.path().join("stage"), dir.path().join("out"), dir.path().join("elsewhere"));
        for d in [&stage, &out, &elsewhere] {
            fs::create_dir(d).unwrap();
        }
        let mut store = FileStore::staged(&stage).with_scratch(dir.path());
        store.add("rooms/1/files/k/a.txt", &mut &b"hello"[..], 5).unwrap();
        store.seal().unwrap();
        let file = store.get("rooms/1/files/k/a.txt").unwrap().unwrap();

        store.place(&file, &out, Path::new("data/k/a.txt")).unwrap();
        assert_eq!(fs::read(out.join("data/k/a.txt")).unwrap(), b"hello");
        let again = store.place(&file, &out, Path::new("data/k/a.txt")).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        let placement = store.placement(&file, &out, Path::new("data/k/a.txt")).unwrap();
        assert!(!placement.apply_once().unwrap(), "made before");
        let fresh = store.placement(&file, &out, Path::new("data/k/b.txt")).unwrap();
        assert!(fresh.apply_once().unwrap());
        assert_eq!(fs::read(out.join("data/k/b.txt")).unwrap(), b"hello");

        std::os::unix::fs::symlink(elsewhere.join("target.txt"), out.join("data/k/link.txt")).unwrap();
        let through = store.place(&file, &out, Path::new("data/k/link.txt")).unwrap_err().to_string();
        assert!(through.contains("already exists"), "{through}");
        assert!(!elsewhere.join("target.txt").exists(), "nothing written through the link");
    }

    /// A staging store in a temporary folder, and an output folder beside it.
    fn staging_store() -> (tempfile::TempDir, PathBuf, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let (stage, out) = (dir.path().join("stage"), dir.path().join("out"));
        for d in [&stage, &out] {
            fs::create_dir(d).unwrap();
        }
        let store = FileStore::staged(&stage).with_scratch(dir.path());
        (dir, out, store)
    }

    /// Small files go in batches (written behind, or here when the helper is busy),
    /// large ones as they are read: after the seal every one is there, whole, and a
    /// batch that cannot be written is an error that names the file.
    #[test]
    fn staged_files_of_every_size_are_all_there_after_the_seal() {
        let (dir, out, mut store) = staging_store();
        let sizes: Vec<usize> = (0..300).map(|i| [0, 1, 700, 3000, SMALL_FILE_MAX as usize, SMALL_FILE_MAX as usize + 1, 90_000][i % 7]).collect();
        let content = |i: usize, n: usize| (0..n).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>();
        for (i, n) in sizes.iter().enumerate() {
            store.add(&format!("rooms/1/files/k{i}/f.bin"), &mut &content(i, *n)[..], *n as u64).unwrap();
        }
        store.seal().unwrap();
        for (i, n) in sizes.iter().enumerate() {
            let file = store.get(&format!("rooms/1/files/k{i}/f.bin")).unwrap().unwrap();
            assert_eq!(file.size, *n as u64);
            let rel = format!("f{i}.bin");
            store.place(&file, &out, Path::new(&rel)).unwrap();
            assert_eq!(fs::read(out.join(&rel)).unwrap(), content(i, *n), "file {i}");
        }

        let mut broken = FileStore::staged(&dir.path().join("gone")).with_scratch(dir.path());
        broken.add("rooms/1/files/k/small.txt", &mut &b"tiny"[..], 4).unwrap();
        let e = broken.seal().unwrap_err().to_string();
        assert!(e.contains("small.txt"), "{e}");
    }

    /// Copies of one path (an avatar in two slices) land in the order they were
    /// read, whichever thread writes them and whatever their sizes: the last wins,
    /// on disk as in the index.
    #[test]
    fn the_last_copy_of_a_path_wins_on_disk() {
        let (_dir, out, mut store) = staging_store();
        let big = |c: u8| vec![c; SMALL_FILE_MAX as usize + 5000];
        let copies: [(&str, Vec<Vec<u8>>); 5] = [
            ("small-small", vec![b"first".to_vec(), b"second!".to_vec()]),
            ("large-small", vec![big(b'L'), b"small wins".to_vec()]),
            ("small-large", vec![b"small first".to_vec(), big(b'M')]),
            ("large-large", vec![big(b'A'), vec![b'B'; 20_000]]),
            ("many", vec![b"1".to_vec(), big(b'2'), b"3".to_vec(), b"four".to_vec()]),
        ];
        // A large copy right behind a small one still waiting in its batch.
        store.add("users/1/adjacent.png", &mut &b"small"[..], 5).unwrap();
        store.add("users/1/adjacent.png", &mut &big(b'Z')[..], big(b'Z').len() as u64).unwrap();
        let mut filler = 0;
        let rounds = copies.iter().map(|(_, c)| c.len()).max().unwrap();
        for round in 0..rounds {
            for (name, versions) in &copies {
                if let Some(bytes) = versions.get(round) {
                    store.add(&format!("users/1/{name}.png"), &mut &bytes[..], bytes.len() as u64).unwrap();
                }
                // Fillers between copies, enough to fill batches and the helper's queue.
                for _ in 0..(filler % 3) * 70 {
                    store.add(&format!("rooms/1/files/f{filler}/x.txt"), &mut &b"filler"[..], 6).unwrap();
                    filler += 1;
                }
                filler += 1;
            }
        }
        store.seal().unwrap();
        let adjacent = ("adjacent", vec![big(b'Z')]);
        for (name, versions) in copies.iter().chain([&adjacent]) {
            let last = versions.last().unwrap();
            let file = store.get(&format!("users/1/{name}.png")).unwrap().unwrap();
            assert_eq!(file.size, last.len() as u64, "{name}");
            store.place(&file, &out, Path::new(&format!("{name}.png"))).unwrap();
            assert!(fs::read(out.join(format!("{name}.png"))).unwrap() == *last, "{name}: an earlier copy won");
        }
    }

    /// A measuring store holding `files` (later entries win, as in an archive).
    fn store(files: &[(String, u64)], budget: usize) -> FileStore {
        let mut s = FileStore::measured();
        s.sort_budget = budget;
        for (path, size) in files {
            s.add(path, &mut io::empty(), *size).unwrap();
        }
        s.seal().unwrap();
        s
    }

    fn path() -> impl Strategy<Value = String> {
        let part = proptest::sample::select(vec!["rooms", "users", "files", "a", "a-b", "ab", "1", "2", "x.png", "x_thumb.png", "é"]);
        proptest::collection::vec(part, 1..5).prop_map(|parts| parts.join("/"))
    }

    proptest! {
        /// The on-disk index answers exactly like the map it replaces: lookups,
        /// prefix listings, totals, and a dense, unique slot per file; whether the
        /// paths were sorted in memory or through run files.
        #[test]
        fn answers_like_a_map(files in proptest::collection::vec((path(), 0u64..1000), 0..300), probes in proptest::collection::vec(path(), 0..20), budget in prop_oneof![Just(index::SORT_BUDGET), 64usize..2000]) {
            let s = store(&files, budget);
            let model: BTreeMap<String, u64> = files.iter().cloned().collect();
            prop_assert_eq!(s.totals().unwrap(), (model.len() as u64, model.values().sum()));
            let mut slots = std::collections::BTreeSet::new();
            for (p, size) in &model {
                let hit = s.get(p).unwrap();
                prop_assert_eq!(hit.as_ref().map(|f| f.size), Some(*size));
                let slot = s.slot(&hit.unwrap()).unwrap().unwrap();
                prop_assert!(slot < s.slot_count());
                prop_assert!(slots.insert(slot), "slot {} given twice", slot);
            }
            for probe in probes.iter().chain(model.keys()) {
                prop_assert_eq!(s.get(probe).unwrap().map(|f| f.size), model.get(probe).copied());
                for prefix in [format!("{probe}/"), probe.clone(), probe.chars().take(probe.chars().count() / 2).collect()] {
                    let listed: Vec<(String, u64)> = s.under(&prefix).unwrap().into_iter().map(|f| (f.path, f.size)).collect();
                    let expected: Vec<(String, u64)> = model.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).map(|(p, s)| (p.clone(), *s)).collect();
                    prop_assert_eq!(listed, expected);
                }
            }
        }
    }

    #[test]
    fn made_files_win_and_get_slots_of_their_own() {
        let mut s = store(&[("users/1/avatars/a.png".into(), 5), ("users/1/avatars/inline-avatar.png".into(), 7)], index::SORT_BUDGET);
        s.add_bytes("users/1/avatars/inline-avatar.png", b"abc").unwrap();
        s.add_bytes("users/2/avatars/inline-avatar.png", b"abcd").unwrap();
        assert_eq!(s.get("users/1/avatars/inline-avatar.png").unwrap().map(|f| f.size), Some(3));
        assert_eq!(s.under("users/").unwrap().iter().map(|f| (f.path.as_str(), f.size)).collect::<Vec<_>>(), vec![("users/1/avatars/a.png", 5), ("users/1/avatars/inline-avatar.png", 3), ("users/2/avatars/inline-avatar.png", 4)]);
        assert_eq!(s.totals().unwrap(), (3, 5 + 3 + 4));
        let slots: Vec<u64> = ["users/1/avatars/a.png", "users/1/avatars/inline-avatar.png", "users/2/avatars/inline-avatar.png"].iter().map(|p| s.slot(&s.get(p).unwrap().unwrap()).unwrap().unwrap()).collect();
        assert_eq!(slots, vec![0, 2, 3]);
        assert_eq!(s.slot_count(), 4);
    }

    #[test]
    fn lookups_wait_for_the_seal_and_adding_ends_with_it() {
        let mut s = FileStore::measured();
        s.add("files/a", &mut io::empty(), 1).unwrap();
        assert!(s.get("files/a").is_err());
        s.seal().unwrap();
        assert!(s.get("files/a").unwrap().is_some());
        assert!(s.add("files/b", &mut io::empty(), 1).is_err());
        let empty = store(&[], index::SORT_BUDGET);
        assert_eq!((empty.get("x").unwrap(), empty.under("").unwrap().len(), empty.totals().unwrap()), (None, 0, (0, 0)));
    }
}
