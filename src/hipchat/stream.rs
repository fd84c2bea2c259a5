//! The message stream: sorted spool → de-duplicated messages with resolved files.

use std::collections::BTreeSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::Result;
use crate::files::FileStore;
use crate::filter::Filters;
use crate::model::{Attachment, Conversation, FileRef, Message, Timestamp};
use crate::report::{Entity, Report, SkipReason};
use crate::spool::SortedSpool;

/// Yields every message once, in (conversation, time, export position) order.
///
/// Two copies of one message (the same entry twice in a room file, or a private
/// message in both participants' histories) have the same id, time and content; the
/// second is reported as a duplicate. Different messages that merely share text and
/// time are kept: only an identical id *and* content counts as a copy. Id `"0"`
/// (integrations) is not unique, so for it the content alone decides: same kind,
/// sender, text and attachment at the same microsecond (as overlapping slices give).
pub struct MessageStream {
    spool: SortedSpool,
    /// The message handed out last; every message is decoded into it.
    current: Message,
    files: Arc<FileStore>,
    dedupe: Dedupe,
    filter: Option<(Filters, BTreeSet<u64>)>,
    delivered: u64,
    on_progress: Option<Box<dyn Fn(u64)>>,
}

impl MessageStream {
    pub(super) fn new(spool: SortedSpool, files: Arc<FileStore>) -> Self {
        MessageStream { spool, current: crate::spool::blank_message(), files, dedupe: Dedupe::default(), filter: None, delivered: 0, on_progress: None }
    }

    /// Calls `f` with the number of spool records consumed, every 1024 records.
    pub fn set_progress(&mut self, f: Box<dyn Fn(u64)>) {
        self.on_progress = Some(f);
    }

    /// Leaves out what `filters` reject; `rooms` are the room ids still selected.
    pub fn set_filter(&mut self, filters: Filters, rooms: BTreeSet<u64>) {
        self.filter = Some((filters, rooms));
    }

    /// Messages waiting, duplicates included.
    pub fn raw_len(&self) -> u64 {
        self.spool.len()
    }

    /// The next unique message, its attachment looked up in the export's files.
    /// Duplicates and missing files are recorded in `report`. The message is lent:
    /// the next call decodes the next one into the same memory.
    pub fn next(&mut self, report: &mut Report) -> Result<Option<&Message>> {
        while self.spool.next_into(&mut self.current)? {
            self.delivered += 1;
            if self.delivered % 1024 == 0 {
                if let Some(f) = &self.on_progress {
                    f(self.delivered);
                }
            }
            let m = &self.current;
            if self.dedupe.is_duplicate(m) {
                report.skip(Entity::Message, format!("{} id {}", m.conversation, m.id), SkipReason::Duplicate, format!("second copy (in {})", self.spool.last_source(m)));
                continue;
            }
            if let Some((filters, rooms)) = &self.filter {
                if let Some(why) = filters.rejects(m, &|id| rooms.contains(&id)) {
                    if m.attachment.is_some() {
                        report.input(Entity::Attachment);
                        report.skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::Filtered, why);
                    }
                    report.skip(Entity::Message, format!("{} id {}", m.conversation, m.id), SkipReason::Filtered, why);
                    continue;
                }
            }
            let no_files = self.filter.as_ref().is_some_and(|(f, _)| f.no_files);
            let m = &mut self.current;
            if let Some(a) = m.attachment.as_mut() {
                report.input(Entity::Attachment);
                if no_files {
                    a.file = None;
                    a.thumbnail = None;
                    report.skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::Filtered, "--no-files");
                    return Ok(Some(&self.current));
                }
                resolve_attachment(&self.files, m.conversation, m.sender.id, a)?;
                if a.file.is_none() {
                    report.skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::MissingFile, format!("{} is not in the export", a.declared_path));
                }
            }
            return Ok(Some(&self.current));
        }
        Ok(None)
    }
}

/// The copies seen at one (conversation, time): a message is a copy when one with
/// its id and fingerprint was seen there before.
#[derive(Default)]
struct Dedupe {
    group: Option<(Conversation, Timestamp)>,
    seen: Vec<(String, u64)>,
}

impl Dedupe {
    fn is_duplicate(&mut self, m: &Message) -> bool {
        let group = (m.conversation, m.time);
        if self.group != Some(group) {
            self.group = Some(group);
            self.seen.clear();
        }
        let fp = fingerprint(m);
        if self.seen.iter().any(|(id, f)| *id == m.id && *f == fp) {
            return true;
        }
        self.seen.push((m.id.clone(), fp));
        false
    }
}

/// What makes two copies the same message: kind, sender, text and attachment.
/// Display names are left out: the two PM copies may spell them differently.
fn fingerprint(m: &Message) -> u64 {
    let mut h = DefaultHasher::new();
    m.kind.name().hash(&mut h);
    m.sender.id.hash(&mut h);
    m.text.hash(&mut h);
    m.attachment.as_ref().map(|a| &a.declared_path).hash(&mut h);
    if let crate::model::MessageKind::Private { receiver } = m.kind {
        receiver.hash(&mut h);
    }
    h.finish()
}

/// Where an attachment may be, best first. The document says paths are relative to
/// `users/files`, but room files live under `rooms/<id>/files/`, and one tool put
/// private files under `users/<id>/files/`; all are tried.
pub fn attachment_candidates(conversation: Conversation, sender: Option<u64>, declared: &str) -> Vec<String> {
    let p = declared.trim_start_matches('/');
    let mut out = Vec::new();
    let mut users: Vec<u64> = sender.into_iter().collect();
    match conversation {
        Conversation::Room(r) => out.push(format!("rooms/{r}/files/{p}")),
        Conversation::Direct { low, high } => users.extend([low, high]),
    }
    out.push(format!("users/files/{p}"));
    for u in users {
        out.push(format!("users/{u}/files/{p}"));
    }
    out.push(p.to_string());
    out.dedup();
    out
}

fn resolve_attachment(files: &FileStore, conversation: Conversation, sender: Option<u64>, a: &mut Attachment) -> Result<()> {
    let candidates = attachment_candidates(conversation, sender, &a.declared_path);
    a.file = match files.find(&candidates)? {
        Some(hit) => Some(hit),
        None => only_file_in_folder(files, &candidates)?,
    };
    a.thumbnail = match a.declared_thumbnail.as_deref() {
        Some(t) => files.find(&attachment_candidates(conversation, sender, t))?,
        None => None,
    };
    Ok(())
}

/// The document's own example names `BcudLU14VxUEeUK/GOPR4259.JPG` while the file
/// sits at `BcudLU14VxUEeUK/img.JPG`: the folder is the upload's unique key. When
/// the exact name is absent, the one non-thumbnail file in that folder is the upload.
fn only_file_in_folder(files: &FileStore, candidates: &[String]) -> Result<Option<FileRef>> {
    for c in candidates.iter().filter(|c| c.contains("/files/")) {
        let Some((dir, _)) = c.rsplit_once('/') else { continue };
        let prefix = format!("{dir}/");
        let mut found = files.under(&prefix)?.into_iter().filter(|f| !f.path[prefix.len()..].contains('/') && !is_thumbnail(f.file_name()));
        if let (Some(first), None) = (found.next(), found.next()) {
            return Ok(Some(first));
        }
    }
    Ok(None)
}

fn is_thumbnail(name: &str) -> bool {
    name.rsplit_once('.').map_or(name, |(stem, _)| stem).ends_with("_thumb")
}
