//! The upload journal: what was sent, as which import, and how it ended, so that
//! an interrupted run resumes where it stopped and never sends a finished file
//! again.
//!
//! It is rewritten after every step (a temporary file beside it, synced, then
//! renamed over it), so a run killed at any moment leaves either the old journal
//! or the new one, never half of one. A file goes through these states:
//!
//! - `sending`: written *before* the upload starts. A journal left in this state
//!   means the run stopped before the answer was recorded: Qiscus may or may not
//!   have the file. The next run looks for it in the import list rather than
//!   sending it again blindly (see `super::Uploader::settle_unsure`).
//! - `started`: the API answered with the import's `unique_id`; the import is
//!   being processed. The next run polls that id; it never sends the file again.
//! - `finished`: the import finished with every row; the file is done for good.
//! - `failed`: the import ended otherwise; its `errors` are kept, and the next run
//!   stops on it until someone decides (`--resend`).
//!
//! A journal belongs to one app (`app_id`): finished files mean nothing to another.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, OutputContext, Result};

use super::folder::ImportFile;

/// The journal's name in the folder when `--journal` is not given.
pub const DEFAULT_NAME: &str = "upload-journal.json";
/// The format tag, checked on reading.
const FORMAT: &str = "hcconv qiscus upload journal 1";

/// Where a file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The upload may have started; no answer was recorded.
    Sending,
    /// Uploaded; the import is being processed.
    Started,
    /// Imported, every row.
    Finished,
    /// The import ended in failure (or without every row).
    Failed,
}

/// One file's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// File name in the folder.
    pub file: String,
    /// The API's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes when it was journaled.
    pub size: u64,
    /// SHA-256 when it was journaled.
    pub sha256: String,
    /// Rows in the file.
    pub rows: u64,
    /// Where it stands.
    pub state: State,
    /// The import's id, once the API gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// The API's last `status` for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The API's `total_rows` when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<u64>,
    /// The API's `errors` when it ended (or what went wrong, for a short count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
    /// `original_filename` and `size` as the API gave them back: proof that the
    /// import list names uploads as they were sent (what looking one up relies on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_as: Option<(String, u64)>,
    /// How the id was learnt: `answer` (the upload's answer) or `import list`
    /// (found there after the answer was lost, or named with `--adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_from: Option<String>,
    /// Uploads made of this file (more than one only when an earlier one was
    /// answered 5xx or certainly never arrived).
    pub uploads: u32,
    /// When the state last changed (UTC, RFC 3339).
    pub updated_at: String,
}

impl Entry {
    /// A record of `file` in `state`.
    pub fn new(file: &ImportFile, state: State) -> Self {
        Entry {
            file: file.name.clone(),
            kind: file.kind.to_string(),
            size: file.size,
            sha256: file.sha256.clone(),
            rows: file.rows,
            state,
            unique_id: None,
            status: None,
            total_rows: None,
            errors: None,
            listed_as: None,
            id_from: None,
            uploads: 0,
            updated_at: now(),
        }
    }

    /// Moves to `state`, stamping the time.
    pub fn set_state(&mut self, state: State) {
        self.state = state;
        self.updated_at = now();
    }
}

/// The whole journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: String,
    /// The app the files went to.
    pub app_id: String,
    /// The API it was reached at (informative: a host may change, the app not).
    pub base_url: String,
    /// When the journal began.
    pub created_at: String,
    /// Every import the app already had when the journal began: never taken for
    /// an upload of this journal's.
    pub imports_before: Vec<String>,
    /// One record per file sent or being sent, in upload order.
    pub files: Vec<Entry>,
}

impl Journal {
    /// An empty journal for `app_id`.
    pub fn new(app_id: &str, base_url: &str) -> Self {
        Journal { format: FORMAT.into(), app_id: app_id.into(), base_url: base_url.into(), created_at: now(), imports_before: Vec::new(), files: Vec::new() }
    }

    /// Reads the journal at `path`; `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Journal>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::new(ErrorKind::Journal, format!("{}: cannot read the upload journal: {e}", path.display()))),
        };
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Journal, format!("{}: not an upload journal hcconv can read ({e}); it is the record of what was sent: repair it or move it away, never delete it unread", path.display()))
        })?;
        if journal.format != FORMAT {
            return Err(Error::new(ErrorKind::Journal, format!("{}: journal format {:?}, this hcconv reads {FORMAT:?}", path.display(), journal.format)));
        }
        Ok(Some(journal))
    }

    /// Writes the journal to `path` atomically (temporary file, sync, rename, sync
    /// of the folder), so a crash leaves the old version or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = parent_of(path);
        let mut tmp = tempfile::Builder::new().prefix(".upload-journal-").suffix(".tmp").tempfile_in(&dir).output_ctx(&dir)?;
        let mut text = serde_json::to_vec_pretty(self).expect("a journal serialises");
        text.push(b'\n');
        tmp.write_all(&text).and_then(|()| tmp.as_file().sync_all()).output_ctx(tmp.path())?;
        tmp.persist(path).map_err(|e| Error::output(path, e.error))?;
        // The rename is durable once the folder is synced (not possible everywhere).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The record of `file`, if any.
    pub fn entry(&self, file: &str) -> Option<&Entry> {
        self.files.iter().find(|e| e.file == file)
    }

    /// The record of `file`, made (in `state`) if there is none.
    pub fn entry_mut(&mut self, file: &ImportFile, state: State) -> &mut Entry {
        match self.files.iter().position(|e| e.file == file.name) {
            Some(i) => &mut self.files[i],
            None => {
                self.files.push(Entry::new(file, state));
                self.files.last_mut().expect("just pushed")
            }
        }
    }

    /// Forgets `file` (for `--resend`, and for an upload the API refused).
    pub fn forget(&mut self, file: &str) {
        self.files.retain(|e| e.file != file);
    }

    /// Every import id this journal knows: its own uploads and `imports_before`.
    pub fn known_ids(&self) -> impl Iterator<Item = &str> {
        self.files.iter().filter_map(|e| e.unique_id.as_deref()).chain(self.imports_before.iter().map(String::as_str))
    }

    /// Whether some earlier answer showed the import list naming an upload with
    /// the name and size it was sent with (so a look-up by name can be trusted to
    /// find one, and not finding one means it is not there).
    pub fn list_names_uploads_as_sent(&self) -> bool {
        self.files.iter().any(|e| e.listed_as.as_ref().is_some_and(|(name, size)| *name == e.file && *size == e.size))
    }
}

/// A lock held on the journal for the whole run: two uploads from one folder at
/// once would send the same files twice.
pub struct JournalLock {
    _file: File,
}

impl JournalLock {
    /// Takes the lock beside `journal` (`<journal>.lock`, left in place: removing
    /// it would let two runs lock two different files).
    pub fn take(journal: &Path) -> Result<Self> {
        let mut name = journal.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = journal.with_file_name(name);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).output_ctx(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(JournalLock { _file: file }),
            // The same status as another run writing a conversion's OUT (exit 6).
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(ErrorKind::Busy, format!("{}: another hcconv upload is using this journal; wait for it to end", journal.display()))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::output(&path, format!("cannot lock: {e}"))),
        }
    }
}

/// The journal's path: `--journal FILE`, else `upload-journal.json` in the folder.
pub fn path_for(folder: &Path, flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(|| folder.join(DEFAULT_NAME), Path::to_path_buf)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Now, UTC, RFC 3339 to the second.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> ImportFile {
        ImportFile { name: name.into(), kind: "users", number: 1, path: name.into(), size: 4, sha256: "ab".into(), rows: 1 }
    }

    #[test]
    fn saved_and_loaded_the_same_and_nothing_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_NAME);
        assert_eq!(Journal::load(&path).unwrap(), None);
        let mut j = Journal::new("app", "https://api.example/rest");
        j.imports_before.push("old".into());
        let e = j.entry_mut(&file("users-0001.json"), State::Sending);
        e.unique_id = Some("id-1".into());
        e.listed_as = Some(("users-0001.json".into(), 4));
        j.save(&path).unwrap();
        j.entry_mut(&file("users-0001.json"), State::Sending).set_state(State::Finished);
        j.save(&path).unwrap();
        assert_eq!(Journal::load(&path).unwrap().as_ref(), Some(&j));
        assert_eq!(j.known_ids().collect::<Vec<_>>(), ["id-1", "old"]);
        assert!(j.list_names_uploads_as_sent());
        let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [DEFAULT_NAME], "no temporary file left");
    }

    #[test]
    fn an_unreadable_journal_stops_with_the_journal_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_NAME);
        std::fs::write(&path, "{\"format\":").unwrap();
        let err = Journal::load(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Journal);
        assert!(err.message().contains("never delete it unread"), "{err}");
    }

    #[test]
    fn a_second_lock_on_one_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_NAME);
        let held = JournalLock::take(&path).unwrap();
        let err = JournalLock::take(&path).err().expect("second lock refused");
        assert_eq!(err.kind(), ErrorKind::Busy);
        drop(held);
        JournalLock::take(&path).unwrap();
    }
}
