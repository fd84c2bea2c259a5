//! The message stream: sorted spool → de-duplicated messages with resolved files.
//!
//! The work runs on a thread of its own, a batch of messages ahead of the writer
//! ([`ahead`]); what it finds for the report travels with the messages as
//! [`Event`]s, applied in order on the writer's thread.

mod ahead;

use std::sync::Arc;

use crate::error::Result;
use crate::storage::files::FileStore;
use crate::model::{Attachment, Conversation, FileRef, Message, Timestamp};
use crate::report::{Entity, Report, SkipReason};
use crate::storage::spool::SortedSpool;

/// Yields every message once, in (conversation, time, export position) order.
///
/// Two copies of one message (the same entry twice in a room file, or a private
/// message in both participants' histories) have the same id, time and content; the
/// second is reported as a duplicate. Different messages that merely share text and
/// time are kept: only an identical id *and* content counts as a copy. Id `"0"`
/// (integrations) is not unique, so for it the content alone decides: same kind,
/// sender, text and attachment at the same microsecond (as overlapping slices give).
///
/// A message whose later copy differs (the same id, sender and time, in a later
/// file: a newer export slice where it was deleted or edited) gives way to that copy,
/// so a deletion in the newest slice is not undone by an older one. For that, each
/// (conversation, time) group is read whole before any of it is handed out: a group
/// is the messages of one microsecond, and at most [`MAX_GROUP`] are held (beyond
/// that, a group is handed out in parts and only identical copies are recognised
/// across them).
pub struct MessageStream {
    /// Before the first message: the stream, still open to a filter and a
    /// progress callback.
    ready: Option<Box<Unique>>,
    /// From the first message on: the stream, on its thread.
    running: Option<ahead::StreamAhead>,
    /// Messages waiting, duplicates included.
    raw_len: u64,
}

/// The stream's own work: sorted spool records in, unique messages out (as indices
/// into `group`, the memory they were decoded into) and report events beside them.
struct Unique {
    spool: SortedSpool,
    /// The current group in its first `len` entries, decoded into reused messages;
    /// with `carried`, entry `len` is the first of the next group. Boxed, so the
    /// swaps that carry a group's first message over and hand messages to a batch
    /// move a pointer, not a 480-byte message (three copies of it per swap were 9 %
    /// of a Qiscus run's CPU samples, perf 500k); the boxes are reused all run.
    #[allow(clippy::vec_box)] // boxed on purpose: see above
    group: Vec<Box<Message>>,
    len: usize,
    carried: bool,
    /// The next entry of the group to hand out.
    at: usize,
    /// For each entry of the group, the later entry that replaces it.
    replaced_by: Vec<Option<usize>>,
    files: Arc<FileStore>,
    dedupe: Dedupe,
    filter: Option<MessageFilter>,
    delivered: u64,
    on_progress: Option<Box<dyn Fn(u64) + Send>>,
}

/// What the stream has to say to the report, carried from its thread to the
/// writer's, which owns the report.
enum Event {
    /// [`Report::input`].
    Input(Entity),
    /// [`Report::skip`].
    Skip { entity: Entity, id: String, reason: SkipReason, detail: String },
}

impl Event {
    fn skip(entity: Entity, id: String, reason: SkipReason, detail: impl Into<String>) -> Self {
        Event::Skip { entity, id, reason, detail: detail.into() }
    }

    fn apply(self, report: &mut Report) {
        match self {
            Event::Input(entity) => report.input(entity),
            Event::Skip { entity, id, reason, detail } => report.skip(entity, id, reason, detail),
        }
    }
}

/// Why a message is left out (reported as filtered), or `None` to keep it.
pub type Rejects = Box<dyn Fn(&Message) -> Option<&'static str> + Send>;

/// What the stream leaves out, decided outside the reader (the command line's
/// `--since`, `--rooms`, `--no-private`, `--no-files`): the reader knows no flags.
pub struct MessageFilter {
    /// The messages to leave out.
    pub rejects: Rejects,
    /// Attachments are left out, each noted in its message as not migrated.
    pub no_files: bool,
}

/// The most messages of one (conversation, time) group held at once.
pub const MAX_GROUP: usize = 1024;

impl MessageStream {
    pub(super) fn new(spool: SortedSpool, files: Arc<FileStore>) -> Self {
        let raw_len = spool.len();
        MessageStream { ready: Some(Box::new(Unique::new(spool, files))), running: None, raw_len }
    }

    /// The stream before its first message. Filters and progress are set up before
    /// the writer starts; setting them later is a bug.
    fn ready(&mut self) -> &mut Unique {
        self.ready.as_deref_mut().expect("the message stream is set up before its first message")
    }

    /// Calls `f` with the number of spool records consumed, every 1024 records
    /// (on the stream's thread).
    pub fn set_progress(&mut self, f: Box<dyn Fn(u64) + Send>) {
        self.ready().on_progress = Some(f);
    }

    /// Leaves out what `filter` rejects.
    pub fn set_filter(&mut self, filter: MessageFilter) {
        self.ready().filter = Some(filter);
    }

    /// Messages waiting, duplicates included.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// The next unique message, its attachment looked up in the export's files.
    /// Duplicates and missing files are recorded in `report`. The message is lent:
    /// later calls hand out other messages in the same memory.
    pub fn next(&mut self, report: &mut Report) -> Result<Option<&Message>> {
        if let Some(unique) = self.ready.take() {
            self.running = Some(ahead::StreamAhead::start(unique)?);
        }
        self.running.as_mut().expect("started just above").next(report)
    }
}

impl Unique {
    fn new(spool: SortedSpool, files: Arc<FileStore>) -> Self {
        Unique {
            spool,
            group: Vec::new(),
            len: 0,
            carried: false,
            at: 0,
            replaced_by: Vec::new(),
            files,
            dedupe: Dedupe::default(),
            filter: None,
            delivered: 0,
            on_progress: None,
        }
    }

    /// The next unique message, as its place in `group`, its attachment looked up
    /// in the export's files; what the report must hear of is pushed on `events`.
    /// The slot is the caller's until the next call (it may swap the message out).
    fn next(&mut self, events: &mut Vec<Event>) -> Result<Option<usize>> {
        loop {
            if self.at == self.len && !self.fill_group()? {
                return Ok(None);
            }
            let i = self.at;
            self.at += 1;
            let m = &self.group[i];
            if let Some(later) = self.replaced_by[i] {
                let detail = format!("replaced by its later copy in {}, which differs (deleted or edited there)", self.spool.source_of(&self.group[later]));
                events.push(Event::skip(Entity::Message, format!("{} id {}", m.conversation, m.id), SkipReason::Duplicate, detail));
                continue;
            }
            if self.dedupe.is_duplicate(m) {
                events.push(Event::skip(Entity::Message, format!("{} id {}", m.conversation, m.id), SkipReason::Duplicate, format!("second copy (in {})", self.spool.source_of(m))));
                continue;
            }
            if let Some(filter) = &self.filter
                && let Some(why) = (filter.rejects)(m) {
                    if m.attachment.is_some() {
                        events.push(Event::Input(Entity::Attachment));
                        events.push(Event::skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::Filtered, why));
                    }
                    events.push(Event::skip(Entity::Message, format!("{} id {}", m.conversation, m.id), SkipReason::Filtered, why));
                    continue;
                }
            let no_files = self.filter.as_ref().is_some_and(|f| f.no_files);
            let m = &mut self.group[i];
            if let Some(a) = m.attachment.as_mut() {
                events.push(Event::Input(Entity::Attachment));
                if no_files {
                    (a.file, a.thumbnail, a.left_out) = (None, None, true);
                    events.push(Event::skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::Filtered, "--no-files"));
                    return Ok(Some(i));
                }
                resolve_attachment(&self.files, m.conversation, m.sender.id, a)?;
                if a.file.is_none() {
                    events.push(Event::skip(Entity::Attachment, format!("{} message {}", m.conversation, m.id), SkipReason::MissingFile, format!("{} is not in the export", a.declared_path)));
                }
            }
            return Ok(Some(i));
        }
    }

    /// Reads the next (conversation, time) group; false when the spool is done.
    fn fill_group(&mut self) -> Result<bool> {
        if self.carried {
            self.group.swap(0, self.len);
            (self.len, self.carried) = (1, false);
        } else {
            self.len = 0;
        }
        self.at = 0;
        while self.len < MAX_GROUP {
            if self.len == self.group.len() {
                self.group.push(Box::new(crate::storage::spool::blank_message()));
            }
            if !self.spool.next_into(&mut self.group[self.len])? {
                break;
            }
            self.delivered += 1;
            if self.delivered.is_multiple_of(1024)
                && let Some(f) = &self.on_progress {
                    f(self.delivered);
                }
            if self.len > 0 && group_of(&self.group[self.len]) != group_of(&self.group[0]) {
                self.carried = true;
                break;
            }
            self.len += 1;
        }
        self.mark_replaced();
        Ok(self.len > 0)
    }

    /// Finds, for each message of the group, a later copy of it that differs.
    fn mark_replaced(&mut self) {
        let group = &self.group[..self.len];
        self.replaced_by.clear();
        self.replaced_by.extend((0..group.len()).map(|i| (i + 1..group.len()).find(|&j| same_message(&group[i], &group[j]) && !same_content(&group[i], &group[j]))));
    }
}

fn group_of(m: &Message) -> (Conversation, Timestamp) {
    (m.conversation, m.time)
}

/// Two entries for one message: the same unique id (not `"0"`), sender and
/// receiver (they are in one group, so at the same time and place).
fn same_message(a: &Message, b: &Message) -> bool {
    a.id != "0" && a.id == b.id && a.sender.id == b.sender.id && receiver(a) == receiver(b)
}

/// The same kind, text, attachment and deletion.
fn same_content(a: &Message, b: &Message) -> bool {
    a.kind.name() == b.kind.name()
        && a.text == b.text
        && a.attachment.as_ref().map(|x| x.declared_path.as_str()) == b.attachment.as_ref().map(|x| x.declared_path.as_str())
        && a.deleted.is_some() == b.deleted.is_some()
}

/// The copies seen at one (conversation, time): a message is a copy when one with
/// its id and the same content was seen there before. Content is compared in full,
/// not by a hash: two different messages can never pass for copies, and copying
/// into reused buffers costs less than hashing every text did (SipHash was 4 % of
/// the Qiscus writer's thread, perf 500k).
#[derive(Default)]
struct Dedupe {
    group: Option<(Conversation, Timestamp)>,
    /// The group's messages in the first `len` entries; the rest are kept for reuse.
    seen: Vec<SeenCopy>,
    len: usize,
}

impl Dedupe {
    fn is_duplicate(&mut self, m: &Message) -> bool {
        let group = (m.conversation, m.time);
        if self.group != Some(group) {
            self.group = Some(group);
            self.len = 0;
        }
        if self.seen[..self.len].iter().any(|seen| seen.is_copy(m)) {
            return true;
        }
        if self.len == self.seen.len() {
            self.seen.push(SeenCopy::default());
        }
        self.seen[self.len].keep(m);
        self.len += 1;
        false
    }
}

/// What makes two copies the same message: id, kind, sender, text and attachment
/// (and the receiver of a private message). Display names are left out: the two
/// PM copies may spell them differently.
#[derive(Default)]
struct SeenCopy {
    id: String,
    kind: String,
    sender: Option<u64>,
    receiver: Option<u64>,
    text: String,
    /// The attachment's declared path, if there was an attachment.
    attachment: Option<String>,
}

impl SeenCopy {
    fn keep(&mut self, m: &Message) {
        let refill = |buf: &mut String, from: &str| {
            buf.clear();
            buf.push_str(from);
        };
        refill(&mut self.id, &m.id);
        refill(&mut self.kind, m.kind.name());
        refill(&mut self.text, &m.text);
        self.sender = m.sender.id;
        self.receiver = receiver(m);
        match (&mut self.attachment, &m.attachment) {
            (Some(path), Some(a)) => refill(path, &a.declared_path),
            (slot, a) => *slot = a.as_ref().map(|a| a.declared_path.clone()),
        }
    }

    fn is_copy(&self, m: &Message) -> bool {
        self.id == m.id
            && self.sender == m.sender.id
            && self.receiver == receiver(m)
            && self.kind == m.kind.name()
            && self.attachment.as_deref() == m.attachment.as_ref().map(|a| a.declared_path.as_str())
            && self.text == m.text
    }
}

fn receiver(m: &Message) -> Option<u64> {
    match m.kind {
        crate::model::MessageKind::Private { receiver } => Some(receiver),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageKind, Sender};

    fn message(id: &str, micros: i64, text: &str) -> Message {
        let mut m = crate::storage::spool::blank_message();
        m.conversation = Conversation::Room(1);
        m.id = id.to_string();
        m.time = Timestamp(micros);
        m.sender = Sender { id: Some(7), name: "Ann".into() };
        m.text = text.to_string();
        m
    }

    fn attached(mut m: Message, path: &str) -> Message {
        m.attachment = Some(Attachment { name: "f".into(), declared_path: path.into(), declared_size: None, declared_thumbnail: None, file: None, thumbnail: None, left_out: false });
        m
    }

    /// Messages of every kind of outcome, pushed into a spool of small runs: copies
    /// (in one group and in a later slice that differs), filtered ones, present and
    /// missing attachments, and 40 kB texts that cut batches short.
    fn spool_of_every_outcome(dir: &std::path::Path) -> SortedSpool {
        let mut w = crate::storage::spool::SpoolWriter::new(dir, 64 * 1024);
        let mut seq = 0;
        for i in 0..3000u64 {
            let time = (i / 3) as i64;
            let mut m = message(&format!("m{}", i % 700), time, &format!("text {}", i % 5));
            m.conversation = Conversation::Room(1 + i % 4);
            if i % 97 == 0 {
                m.text = "x".repeat(40_000);
            }
            if i % 11 == 0 {
                m = attached(m, if i % 2 == 0 { "k/present.png" } else { "k/missing.png" });
            }
            for _ in 0..(1 + u64::from(i % 13 == 0)) {
                seq += 1;
                m.seq = seq;
                w.push(&m).unwrap();
            }
            if i % 17 == 0 {
                seq += 1;
                m.seq = seq;
                m.deleted = Some(crate::model::Deletion { user_id: Some(7), date: None });
                w.push(&m).unwrap();
            }
        }
        w.finish().unwrap()
    }

    fn store() -> Arc<FileStore> {
        let mut s = FileStore::measured();
        s.add("rooms/2/files/k/present.png", &mut std::io::empty(), 5).unwrap();
        s.add("rooms/4/files/k/present.png", &mut std::io::empty(), 5).unwrap();
        s.seal().unwrap();
        Arc::new(s)
    }

    fn filter() -> MessageFilter {
        MessageFilter { rejects: Box::new(|m: &Message| (m.time.0 % 50 == 7).then_some("test filter")), no_files: false }
    }

    /// What a message handed out is, for comparing two streams.
    fn summary(m: &Message) -> String {
        format!("{} {} {} {} {:?} {}", m.conversation, m.id, m.time.0, m.text.len(), m.attachment.as_ref().map(|a| a.file.is_some()), m.deleted.is_some())
    }

    /// What a writer adds to the report between messages: the stream's skips must
    /// land among these just where inline work puts them.
    fn writer_skip(report: &mut Report, m: &Message) {
        if m.text == "text 3" {
            report.skip(Entity::Room, summary(m), SkipReason::Invalid, "a writer's skip");
        }
    }

    /// The stream on its own thread hands out the same messages, and leaves the same
    /// report (every skip, in the same order among a writer's), as the same work
    /// done inline.
    #[test]
    fn the_stream_on_its_thread_gives_what_inline_work_gives() {
        let dir = tempfile::tempdir().unwrap();
        let (inline_dir, threaded_dir) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&inline_dir).unwrap();
        std::fs::create_dir_all(&threaded_dir).unwrap();

        let mut unique = Unique::new(spool_of_every_outcome(&inline_dir), store());
        unique.filter = Some(filter());
        let (mut inline_report, mut inline) = (Report::new(), Vec::new());
        let mut events = Vec::new();
        while let Some(i) = unique.next(&mut events).unwrap() {
            events.drain(..).for_each(|e| e.apply(&mut inline_report));
            inline.push(summary(&unique.group[i]));
            writer_skip(&mut inline_report, &unique.group[i]);
        }
        events.drain(..).for_each(|e| e.apply(&mut inline_report));

        let mut stream = MessageStream::new(spool_of_every_outcome(&threaded_dir), store());
        stream.set_filter(filter());
        let (mut report, mut threaded) = (Report::new(), Vec::new());
        while let Some(m) = stream.next(&mut report).unwrap() {
            threaded.push(summary(m));
            writer_skip(&mut report, m);
        }
        assert!(stream.next(&mut report).unwrap().is_none(), "the end stays the end");

        assert!(inline.len() > 1000 && inline.iter().any(|s| s.contains("40000")), "{}", inline.len());
        assert_eq!(threaded, inline);
        let skips = |r: &Report| r.skipped.iter().map(|s| s.unwrap()).map(|s| format!("{:?} {} {:?} {}", s.entity, s.id, s.reason, s.detail)).collect::<Vec<_>>();
        let reasons: std::collections::BTreeSet<_> = report.skipped.iter().map(|s| s.unwrap().reason).collect();
        assert_eq!(reasons, [SkipReason::Duplicate, SkipReason::Filtered, SkipReason::Invalid, SkipReason::MissingFile].into_iter().collect());
        assert_eq!(skips(&report), skips(&inline_report));
        assert_eq!(report.counts_of(Entity::Attachment), inline_report.counts_of(Entity::Attachment));
        assert_eq!(report.counts_of(Entity::Message), inline_report.counts_of(Entity::Message));
    }

    /// A stream thread that dies (here: its progress callback panics) is an error
    /// for the writer, never an early, quiet end of the messages.
    #[test]
    fn a_stream_thread_that_dies_is_an_error_not_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut stream = MessageStream::new(spool_of_every_outcome(dir.path()), store());
        stream.set_progress(Box::new(|n| assert!(n < 2048, "a progress callback that fails")));
        let mut report = Report::new();
        let mut handed = 0;
        let outcome = loop {
            match stream.next(&mut report) {
                Ok(Some(_)) => handed += 1,
                other => break other.map(|m| m.is_some()),
            }
        };
        let error = outcome.expect_err("the messages did not all come").to_string();
        assert!(error.contains("stopped before the last message"), "{error}");
        assert!(handed > 0 && handed < 2048, "{handed}");
    }

    /// Copies are the same id and content at the same time and place; anything
    /// that differs keeps a message, and the seen buffers are reused across groups.
    #[test]
    fn only_true_copies_are_duplicates() {
        let mut d = Dedupe::default();
        let a = message("a", 1, "hi");
        assert!(!d.is_duplicate(&a));
        let mut renamed = a.clone();
        renamed.sender.name = "Ann B.".into();
        assert!(d.is_duplicate(&renamed), "display names may differ between the two PM copies");
        assert!(!d.is_duplicate(&message("a", 1, "hi!")), "same id, other text");
        assert!(!d.is_duplicate(&message("b", 1, "hi")), "other id, same text");
        let mut other_sender = a.clone();
        other_sender.sender.id = Some(8);
        assert!(!d.is_duplicate(&other_sender));
        let mut other_kind = a.clone();
        other_kind.kind = MessageKind::Unknown { wrapper: "PollMessage".into() };
        assert!(!d.is_duplicate(&other_kind));
        assert!(d.is_duplicate(&other_kind.clone()), "the third kept message is compared too");
        // Attachments: none, an empty path and a path all differ.
        assert!(!d.is_duplicate(&attached(message("c", 1, "f"), "")));
        assert!(!d.is_duplicate(&attached(message("c", 1, "f"), "x/y.png")));
        assert!(!d.is_duplicate(&message("c", 1, "f")));
        assert!(d.is_duplicate(&attached(message("c", 1, "f"), "x/y.png")));
        // Private messages: the receiver counts.
        let mut pm = message("p", 1, "psst");
        pm.kind = MessageKind::Private { receiver: 2 };
        assert!(!d.is_duplicate(&pm));
        pm.kind = MessageKind::Private { receiver: 3 };
        assert!(!d.is_duplicate(&pm));
        // A new time starts a new group: nothing seen before counts, and the kept
        // buffers (with a path in them) are refilled, not compared.
        assert!(!d.is_duplicate(&message("a", 2, "hi")));
        assert!(!d.is_duplicate(&message("c", 2, "f")));
        assert!(d.is_duplicate(&message("c", 2, "f")));
        assert!(!d.is_duplicate(&attached(message("c", 2, "f"), "")), "a refilled entry without a path is not one with an empty path");
        // Integrations share id "0": content alone decides.
        assert!(!d.is_duplicate(&message("0", 3, "build passed")));
        assert!(!d.is_duplicate(&message("0", 3, "build failed")));
        assert!(d.is_duplicate(&message("0", 3, "build passed")));
    }
}
