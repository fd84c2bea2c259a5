//! Messages and their per-user rows, streamed into `messages-000001.json`, … with
//! 1000 messages per file (the converters' `MESSAGE_BATCH_CHUNK_SIZE`).
//!
//! Facts from Zulip 3.4 (`import_realm.py`, `models.py`): the importer reads message
//! files from number 1 until the first missing one; with `sort_by_date` it orders
//! messages by (whole seconds of `date_sent`, our id), so ids increase with time
//! inside a conversation; `rendered_content: null` makes it render the Markdown;
//! a user sees a message in feeds only through a `zerver_usermessage` row, whose
//! `flags_mask` it renames to `flags`. Content is capped at 10000 characters.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use serde::Serialize;

use crate::convert::json::{bool_field, field, integer_field, str_field};
use crate::convert::text::{event_text, is_code, notification_text, slash_command, slash_command_owned, split_chars_owned, split_weighted, Style};
use crate::error::{Error, OutputContext, Result};
use crate::hipchat::Export;
use crate::model::{Conversation, Message, MessageKind};
use crate::report::{Entity, Report, SkipReason};
use crate::storage::write_behind::{run_behind, PendingFiles};

use super::files::Uploads;
use super::html::{self, Shape};
use super::mentions::{self, Mentioned};
use super::plan::{Plan, ZUser};
use super::profile::FormatProfile;
use super::{PixtoomeOptions, TopicScheme};

/// Messages per file.
pub const MESSAGES_PER_FILE: usize = 1000;
/// Topic of every stream message with `--pixtoome-topic room`.
pub const ROOM_TOPIC: &str = "imported from hipchat";
/// The `zerver_client` id messages are sent with.
pub const SENDING_CLIENT: u64 = 1;

/// A `zerver_message` row. Its keys are the profile's `zerver_message` set (a
/// unit test compares them), typed because exports hold millions of these.
#[derive(Serialize, Debug, Clone)]
pub struct MessageRow {
    id: u64,
    sender: u64,
    recipient: u64,
    /// Borrowed for the one fixed topic (`--pixtoome-topic room`): no copy per row.
    subject: Cow<'static, str>,
    content: String,
    rendered_content: Option<String>,
    rendered_content_version: Option<u32>,
    date_sent: f64,
    sending_client: u64,
    last_edit_time: Option<f64>,
    edit_history: Option<String>,
    has_attachment: bool,
    has_image: bool,
    has_link: bool,
    /// The realm, for releases whose importer reads it (9.x).
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<u64>,
    /// Whether it went to a stream, for releases that have the field (10.x).
    #[serde(skip_serializing_if = "Option::is_none")]
    is_channel_message: Option<bool>,
}

/// A `zerver_usermessage` row.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct UserMessageRow {
    id: u64,
    user_profile: u64,
    message: u64,
    flags_mask: u32,
}

/// The shape of a messages file, as Zulip reads it; [`write_message_file`] writes
/// these bytes without going through serde (the test compares the two).
#[cfg(test)]
#[derive(Serialize)]
struct MessageFile<'a> {
    zerver_message: &'a [MessageRow],
    zerver_usermessage: &'a [UserMessageRow],
}

/// Appends `row` to `rows`, the comma-separated JSON of a file's message rows.
/// The row is written by hand ([`crate::convert::json`]), byte for byte as serde
/// writes it (the file test compares).
fn append_message_row(rows: &mut Vec<u8>, row: &MessageRow) -> std::io::Result<()> {
    integer_field(rows, if rows.is_empty() { b"{\"id\":" } else { b",{\"id\":" }, row.id)?;
    integer_field(rows, b",\"sender\":", row.sender)?;
    integer_field(rows, b",\"recipient\":", row.recipient)?;
    str_field(rows, b",\"subject\":", &row.subject)?;
    str_field(rows, b",\"content\":", &row.content)?;
    field(rows, b",\"rendered_content\":", &row.rendered_content)?;
    field(rows, b",\"rendered_content_version\":", &row.rendered_content_version)?;
    field(rows, b",\"date_sent\":", &row.date_sent)?;
    integer_field(rows, b",\"sending_client\":", row.sending_client)?;
    field(rows, b",\"last_edit_time\":", &row.last_edit_time)?;
    field(rows, b",\"edit_history\":", &row.edit_history)?;
    bool_field(rows, b",\"has_attachment\":", row.has_attachment)?;
    bool_field(rows, b",\"has_image\":", row.has_image)?;
    bool_field(rows, b",\"has_link\":", row.has_link)?;
    if let Some(realm) = row.realm {
        integer_field(rows, b",\"realm\":", realm)?;
    }
    if let Some(channel) = row.is_channel_message {
        bool_field(rows, b",\"is_channel_message\":", channel)?;
    }
    rows.push(b'}');
    Ok(())
}

/// Writes one messages file: the bytes `serde_json::to_writer` gives for
/// [`MessageFile`], then a newline. `messages` holds the message rows already as
/// JSON ([`append_message_row`]): they are made on the converting thread, which
/// had time to spare while this (the write-behind thread) was the one that bounded
/// a Pixtoome run. The usermessage rows (about 20 per message, the bulk of the
/// output) are written by hand too ([`crate::convert::json`]).
fn write_message_file(w: &mut impl std::io::Write, messages: &[u8], user_messages: &(impl UserMessageRows + ?Sized)) -> std::io::Result<()> {
    w.write_all(b"{\"zerver_message\":[")?;
    w.write_all(messages)?;
    w.write_all(b"],\"zerver_usermessage\":[")?;
    // A message's rows end alike (`,"message":M,"flags_mask":F}`, the flags
    // differing only for mentioned users): that end is made once per run of rows.
    let mut tail = Vec::with_capacity(48);
    let mut tail_of = None;
    let mut first = true;
    user_messages.try_for_each_row(|row| {
        if tail_of != Some((row.message, row.flags_mask)) {
            row_tail(&mut tail, row.message, row.flags_mask);
            tail_of = Some((row.message, row.flags_mask));
        }
        integer_field(w, if first { b"{\"id\":" } else { b",{\"id\":" }, row.id)?;
        first = false;
        integer_field(w, b",\"user_profile\":", row.user_profile)?;
        w.write_all(&tail)
    })?;
    w.write_all(b"]}\n")
}

/// `,"message":M,"flags_mask":F}` into `tail`.
#[cold]
fn row_tail(tail: &mut Vec<u8>, message: u64, flags: u32) {
    tail.clear();
    // Writes to a Vec do not fail.
    let _ = integer_field(tail, b",\"message\":", message);
    let _ = integer_field(tail, b",\"flags_mask\":", flags);
    tail.push(b'}');
}

/// Usermessage rows, visited in file order.
trait UserMessageRows {
    fn try_for_each_row<F: FnMut(UserMessageRow) -> std::io::Result<()>>(&self, f: F) -> std::io::Result<()>;
}

#[cfg(test)]
impl UserMessageRows for [UserMessageRow] {
    fn try_for_each_row<F: FnMut(UserMessageRow) -> std::io::Result<()>>(&self, f: F) -> std::io::Result<()> {
        self.iter().copied().try_for_each(f)
    }
}

/// One file's rows: the message rows as JSON, the usermessage rows.
type Rows = (Vec<u8>, UserMessages);

/// One file's usermessage rows, kept per message rather than per row: a stream
/// message's rows are its stream's readers (one shared list for a run of the
/// stream's messages) plus the few users it adds, so a file holds about 40 bytes
/// a message whatever the room size. As rows (32 bytes each, one per subscriber)
/// a file of a 300-member room's messages held 10 MiB, and with the files queued
/// for the write-behind thread and the buffers that came back from it (kept at
/// their largest) a run took 90 MiB and more (the issue: 185 MiB), where the other
/// targets take 22. The write-behind thread makes the rows as it writes them.
#[derive(Default)]
struct UserMessages {
    /// Id of the file's first row; the rows are numbered in order.
    first_id: u64,
    /// The reader lists of the file's stream messages.
    sets: Vec<Arc<Vec<u64>>>,
    /// Each message's added readers, then the users it mentions ([`MessageReaders`]).
    users: Vec<u64>,
    messages: Vec<MessageReaders>,
}

/// Who gets one message's rows, and with which flags.
#[derive(Clone, Copy, Debug)]
struct MessageReaders {
    message: u64,
    /// Index in [`UserMessages::sets`], [`NO_SET`] for none.
    set: u32,
    /// `users[start..start + extra]`: readers not in the set, ascending; the
    /// `mentioned` users after them, ascending.
    start: u32,
    extra: u32,
    mentioned: u32,
    /// Flags of every row, and the bit a mentioned user's row adds.
    flags: u32,
    mention_flag: u32,
}

const NO_SET: u32 = u32::MAX;

impl UserMessages {
    fn clear(&mut self, first_id: u64) {
        self.first_id = first_id;
        self.sets.clear();
        self.users.clear();
        self.messages.clear();
    }

    /// Adds one message's rows as `readers` describes them.
    fn push(&mut self, message: u64, readers: &Readers) {
        let set = match &readers.set {
            Some(set) => {
                if !self.sets.last().is_some_and(|last| Arc::ptr_eq(last, set)) {
                    self.sets.push(Arc::clone(set));
                }
                (self.sets.len() - 1) as u32
            }
            None => NO_SET,
        };
        let start = self.users.len() as u32;
        self.users.extend_from_slice(&readers.extra);
        self.users.extend_from_slice(&readers.mentioned);
        self.messages.push(MessageReaders { message, set, start, extra: readers.extra.len() as u32, mentioned: readers.mentioned.len() as u32, flags: readers.flags, mention_flag: readers.mention_flag });
    }
}

/// The rows, in the order and with the ids they were counted in.
impl UserMessageRows for UserMessages {
    fn try_for_each_row<F: FnMut(UserMessageRow) -> std::io::Result<()>>(&self, mut f: F) -> std::io::Result<()> {
        let mut id = self.first_id;
        for m in &self.messages {
            let set: &[u64] = if m.set == NO_SET { &[] } else { &self.sets[m.set as usize] };
            let start = m.start as usize;
            let extra = &self.users[start..start + m.extra as usize];
            let mentioned = &self.users[start + m.extra as usize..start + (m.extra + m.mentioned) as usize];
            if extra.is_empty() && mentioned.is_empty() {
                // Most messages: the stream's readers, all flagged alike.
                for &user_profile in set {
                    f(UserMessageRow { id, user_profile, message: m.message, flags_mask: m.flags })?;
                    id += 1;
                }
                continue;
            }
            for user_profile in (Union { a: set, b: extra }) {
                let flags_mask = if mentioned.binary_search(&user_profile).is_ok() { m.flags | m.mention_flag } else { m.flags };
                f(UserMessageRow { id, user_profile, message: m.message, flags_mask })?;
                id += 1;
            }
        }
        Ok(())
    }
}

/// The ascending union of two ascending lists.
struct Union<'a> {
    a: &'a [u64],
    b: &'a [u64],
}

impl Iterator for Union<'_> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        let next = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        if self.a.first() == Some(&next) {
            self.a = &self.a[1..];
        }
        if self.b.first() == Some(&next) {
            self.b = &self.b[1..];
        }
        Some(next)
    }
}

/// One message's readers: the rows [`readers_with_flags`] would give, as a
/// shared list and the few users added to it.
#[derive(Default)]
struct Readers {
    /// A stream's readers (none for a private message).
    set: Option<Arc<Vec<u64>>>,
    /// Readers not in `set`, ascending.
    extra: Vec<u64>,
    /// Mentioned users, ascending.
    mentioned: Vec<u64>,
    flags: u32,
    mention_flag: u32,
}

impl Readers {
    /// Rows per message part.
    fn count(&self) -> u64 {
        (self.set.as_ref().map_or(0, |s| s.len()) + self.extra.len()) as u64
    }
}

/// Sets `readers` to the rows of a message: one per reader, plus the sender and
/// (in a stream) the mentioned users, in ascending user order, with the flags
/// [`readers_with_flags`] gives them (a test compares).
fn readers_of(readers: &mut Readers, dest: &Destination, sender: u64, mentioned: &[u64], wildcard: bool, profile: &FormatProfile) {
    let flags = profile.flags;
    readers.extra.clear();
    readers.mentioned.clear();
    readers.mentioned.extend(mentioned.iter().copied());
    readers.mention_flag = flags.mentioned;
    readers.flags = flags.read;
    if dest.is_private {
        readers.flags |= flags.is_private;
        // One or two people: kept with the message.
        readers.set = None;
        readers.extra.extend(dest.readers.iter().copied());
        readers.extra.push(sender);
    } else {
        if wildcard {
            readers.flags |= flags.wildcard_mentioned;
        }
        readers.extra.extend(std::iter::once(sender).chain(mentioned.iter().copied()).filter(|u| dest.readers.binary_search(u).is_err()));
        readers.set = Some(Arc::clone(&dest.readers));
    }
    readers.extra.sort_unstable();
    readers.extra.dedup();
}

/// Buffers one file's worth of rows and writes numbered files without gaps.
///
/// Message rows are written as JSON here as they come (their strings are freed at
/// once, on the thread that made them). A full file goes to the write-behind
/// thread, which formats the usermessage rows and writes the file while this
/// thread converts the next thousand messages; the two buffers come back for reuse
/// (a fresh one per file would be served fresh pages again and again). The split
/// keeps both threads about equally busy (perf, 500k).
struct MessageFiles {
    out: PathBuf,
    number: u32,
    /// The file's message rows so far, as JSON ([`append_message_row`]).
    messages: Vec<u8>,
    message_count: usize,
    user_messages: UserMessages,
    next_message: u64,
    next_user_message: u64,
    /// Files handed to the write-behind thread, checked as it finishes them.
    written: PendingFiles<PathBuf>,
    /// Rows of written files, on their way back for reuse.
    returned: Receiver<Rows>,
    give_back: Sender<Rows>,
}

impl MessageFiles {
    fn new(out: &Path) -> Self {
        let (give_back, returned) = channel();
        MessageFiles { out: out.to_path_buf(), number: 0, messages: Vec::new(), message_count: 0, user_messages: UserMessages { first_id: 1, ..UserMessages::default() }, next_message: 1, next_user_message: 1, written: PendingFiles::default(), returned, give_back }
    }

    /// Takes `n` consecutive message ids; returns the first.
    fn take_message_ids(&mut self, n: u64) -> u64 {
        let first = self.next_message;
        self.next_message += n;
        first
    }

    fn push(&mut self, row: MessageRow, readers: &Readers) -> Result<()> {
        self.user_messages.push(row.id, readers);
        self.next_user_message += readers.count();
        append_message_row(&mut self.messages, &row).map_err(|e| Error::new(crate::error::ErrorKind::Other, format!("cannot write message row {}: {e}", row.id)))?;
        self.message_count += 1;
        if self.message_count >= MESSAGES_PER_FILE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.message_count == 0 {
            return Ok(());
        }
        self.message_count = 0;
        self.number += 1;
        let path = self.out.join(format!("messages-{:06}.json", self.number));
        let (mut messages, mut user_messages) = self.returned.try_recv().unwrap_or_default();
        messages.clear();
        user_messages.clear(self.next_user_message);
        let rows = (std::mem::replace(&mut self.messages, messages), std::mem::replace(&mut self.user_messages, user_messages));
        let (dest, give_back) = (path.clone(), self.give_back.clone());
        let task = Box::new(move || {
            let mut w = std::io::BufWriter::with_capacity(crate::storage::write_behind::CHUNK, std::fs::File::create(&dest)?);
            write_message_file(&mut w, &rows.0, &rows.1)?;
            w.flush()?;
            let _ = give_back.send(rows);
            Ok(())
        });
        let closing = run_behind(task).output_ctx(&path)?;
        self.written.push(path, closing).map_err(|(path, e)| Error::output(&path, e))
    }
}

/// Totals for the report and the docs' measurements.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageTotals {
    /// Message rows written (parts of split messages counted).
    pub rows: u64,
    /// Usermessage rows written.
    pub user_message_rows: u64,
    /// Message files.
    pub files: u32,
}

/// Everything one message needs from outside.
pub struct MessageContext<'a> {
    /// Users, streams, rewriting.
    pub plan: &'a mut Plan,
    /// Attachments.
    pub uploads: &'a mut Uploads,
    /// Release facts.
    pub profile: &'static FormatProfile,
    /// Writer flags.
    pub opts: &'a PixtoomeOptions,
    /// The realm id message rows carry, in releases whose rows have one.
    pub message_realm: Option<u64>,
    /// Whether message rows carry `is_channel_message` (10.x on).
    pub channel_flag: bool,
}

/// Drains the export's messages into message files.
pub fn write_messages(export: &mut Export, out: &Path, ctx: &mut MessageContext, report: &mut Report) -> Result<MessageTotals> {
    let mut files = MessageFiles::new(out);
    let mut totals = MessageTotals::default();
    let mut dest = Destination::default();
    let mut rows = Readers::default();
    while let Some(m) = export.messages.next(report)? {
        if let Some(reason) = skip_reason(m, ctx.plan) {
            skip_message(m, reason, report);
            continue;
        }
        let before = files.next_user_message;
        let parts = convert_message(m, ctx, &mut dest, &mut rows, &mut files, report)?;
        totals.rows += parts;
        totals.user_message_rows += files.next_user_message - before;
        report.written(Entity::Message);
        if parts > 1 {
            report.add_extra("pixtoome_parts_extra", parts - 1);
        }
    }
    files.flush()?;
    files.written.wait_all().map_err(|(path, e)| Error::output(&path, e))?;
    totals.files = files.number;
    report.add_extra("pixtoome_message_rows", totals.rows);
    report.add_extra("pixtoome_usermessage_rows", totals.user_message_rows);
    report.add_extra("pixtoome_message_files", u64::from(totals.files));
    Ok(totals)
}

fn skip_reason(m: &Message, plan: &Plan) -> Option<(SkipReason, String)> {
    if m.deleted.is_some() {
        return Some((SkipReason::Deleted, "deleted in Hipchat".to_string()));
    }
    match m.conversation {
        Conversation::Room(r) if plan.skipped_rooms.contains(&r) => Some((SkipReason::DeletedRoom, format!("room {r} was left out (--skip-deleted-rooms)"))),
        _ => None,
    }
}

fn skip_message(m: &Message, (reason, detail): (SkipReason, String), report: &mut Report) {
    let id = format!("{} id {}", m.conversation, m.id);
    if m.attachment.as_ref().is_some_and(|a| a.file.is_some()) {
        report.skip(Entity::Attachment, id.clone(), reason, format!("its message was skipped: {detail}"));
    }
    report.skip(Entity::Message, id, reason, detail);
}

/// Where a message goes and who gets a copy. One is reused for every message,
/// and a stream's readers are worked out once per run of its messages (they come
/// conversation by conversation): per message, filtering the subscribers and the
/// sets and lists around them were a third of this thread's time (perf, 500k).
#[derive(Default)]
struct Destination {
    recipient: u64,
    topic: Cow<'static, str>,
    is_private: bool,
    public_stream: bool,
    /// Users with a row regardless of mentions: stream subscribers under the
    /// policy, or the two people of a private message; ascending. Shared with the
    /// message files that hold a stream's messages ([`UserMessages`]).
    readers: Arc<Vec<u64>>,
    /// The room whose readers `readers` holds, if a stream's.
    stream_of: Option<u64>,
}

/// Converts one message into one or more rows; returns how many. `dest` and
/// `rows` are buffers kept from one message to the next.
fn convert_message(m: &Message, ctx: &mut MessageContext, dest: &mut Destination, rows: &mut Readers, files: &mut MessageFiles, report: &mut Report) -> Result<u64> {
    let sender = sender_index(m, ctx, report);
    // Borrowed, not cloned (a clone per message was three strings copied).
    let sender_user = ctx.plan.user(sender);
    if !route(dest, m, sender_user, ctx, report) {
        return Ok(0);
    }
    let Body { text, shape } = body_text(m, sender_user, ctx, report);
    let max = ctx.profile.max_message;
    let mut parts = if ctx.profile.writes_html || text.is_ascii() { split_chars_owned(text, max) } else { split_for_render(text, max) };
    let file = m.attachment.as_ref().and_then(|a| a.file.as_ref().map(|f| (a.name.as_str(), f)));
    let link = match file {
        Some((name, f)) => Some(ctx.uploads.prepare(f, name, sender_user.id, m.time.seconds_f64())?),
        None => None,
    };
    if let Some(link) = &link {
        let last = parts.last_mut().map_or(0, |p| p.chars().count());
        if last > 0 && last + 1 + link.markdown.chars().count() > max {
            parts.push(String::new());
        }
        let part = parts.last_mut().ok_or_else(|| crate::error::Error::new(crate::error::ErrorKind::Other, "no message part"))?;
        if !part.is_empty() && !part.ends_with('\n') {
            part.push('\n');
        }
        part.push_str(&link.markdown);
    }
    let first_id = files.take_message_ids(parts.len() as u64);
    let last = parts.len() - 1;
    let has_image = link.as_ref().is_some_and(|l| l.is_image);
    let has_attachment = link.is_some();
    if let Some(link) = &link {
        ctx.uploads.attach(link, first_id + last as u64, dest.public_stream)?;
        report.written(Entity::Attachment);
    }
    // A split message's parts are read as plain text each (a cut can fall inside
    // a code block or quote).
    let own_html = ctx.profile.writes_html;
    let shape = shape.filter(|_| own_html).map(|s| if last > 0 { Shape::Plain } else { s });
    for (i, content) in parts.into_iter().enumerate() {
        let with_file = has_attachment && i == last;
        let rendered = shape.map(|s| html::rendered(&content, s, &ctx.plan.link_targets));
        // Each part flags whom it shows mentioned: hcconv's own HTML says whom; a
        // server that renders without a message (3.4, a notification) links
        // nobody; a later server renders mentions by its Markdown's rules.
        let mentioned = match (&rendered, own_html) {
            (Some(r), _) => Cow::Borrowed(&r.mentioned),
            (None, true) => Cow::Owned(Mentioned::default()),
            (None, false) => Cow::Owned(mentions::server_rendered(&content, &ctx.plan.link_targets)),
        };
        readers_of(rows, dest, sender_user.id, &mentioned.users, mentioned.wildcard, ctx.profile);
        // As 3.4's renderer sets them: a link is any anchor, an image any preview;
        // for Markdown the server renders, from the text.
        let (has_link, has_image) = match &rendered {
            Some(r) => (r.html.contains("<a "), r.html.contains("message_inline_image\"")),
            None => (content.contains("http://") || content.contains("https://") || with_file, has_image && with_file),
        };
        let row = MessageRow {
            id: first_id + i as u64,
            sender: sender_user.id,
            recipient: dest.recipient,
            subject: dest.topic.clone(),
            has_link,
            content,
            rendered_content_version: rendered.as_ref().map(|r| r.version),
            rendered_content: rendered.map(|r| r.html),
            date_sent: m.time.seconds_f64(),
            sending_client: SENDING_CLIENT,
            last_edit_time: None,
            edit_history: None,
            has_attachment: with_file,
            has_image,
            realm: ctx.message_realm,
            is_channel_message: ctx.channel_flag.then_some(!dest.is_private),
        };
        files.push(row, rows)?;
    }
    Ok(last as u64 + 1)
}

/// Unicode emoji a part may hold when the server renders it. Zulip's Markdown
/// takes time that grows faster than the emoji it renders and gives up after 5
/// seconds, leaving the message without HTML for good (each fetch tries again and
/// fails): measured in the 10.0 importer, 1 000 emoji took 1.9 s, 2 000 took
/// 9.3 s and a 10 000-character part of them 211 s.
const MAX_RENDERED_EMOJI: usize = 500;

/// `text` in parts of at most `max` characters that also hold at most
/// [`MAX_RENDERED_EMOJI`] emoji each (lossless, like every split).
fn split_for_render(text: String, max: usize) -> Vec<String> {
    let emoji_weight = (max / MAX_RENDERED_EMOJI).max(1);
    let weight = |c: char| if html::is_unicode_emoji(c) { emoji_weight } else { 1 };
    if text.chars().map(weight).sum::<usize>() <= max {
        return vec![text];
    }
    split_weighted(&text, max, weight)
}

/// The user who sent `m`: a Hipchat user, a mirror dummy, or an integration bot.
fn sender_index(m: &Message, ctx: &mut MessageContext, report: &mut Report) -> usize {
    if let Some(i) = m.sender.id.and_then(|id| ctx.plan.by_hipchat.get(&id)) {
        return *i;
    }
    if let Some(id) = m.sender.id {
        report.warn(format!("{} id {}: sender {id} is not a known user; an integration bot named after it stands in", m.conversation, m.id));
    }
    let name = if m.sender.name.trim().is_empty() { m.sender.id.map(|id| format!("Hipchat user {id}")).unwrap_or_default() } else { m.sender.name.clone() };
    ctx.plan.integration_user(&name, ctx.profile, report)
}

/// Points `dest` at where `m` goes; false (with a warning) when that is nowhere.
fn route(dest: &mut Destination, m: &Message, sender: &ZUser, ctx: &MessageContext, report: &mut Report) -> bool {
    match (m.conversation, &m.kind) {
        (Conversation::Room(room), _) => {
            let Some(stream) = ctx.plan.by_room.get(&room).map(|i| &ctx.plan.streams[*i]) else {
                report.warn(format!("room {room} id {}: the room is unknown; message written nowhere", m.id));
                dest.stream_of = None;
                return false;
            };
            if dest.stream_of != Some(room) {
                let policy = ctx.opts.usermessages;
                // A new list: the old one may be in files still being written.
                let mut readers: Vec<u64> = stream.subscribers.iter().copied().filter(|id| ctx.plan.user_by_id(*id).is_some_and(|u| u.gets_stream_rows(policy))).collect();
                readers.sort_unstable();
                readers.dedup();
                dest.readers = Arc::new(readers);
                (dest.recipient, dest.is_private, dest.public_stream, dest.stream_of) = (stream.recipient, false, !stream.invite_only, Some(room));
            }
            dest.topic = match ctx.opts.topic {
                TopicScheme::Room => Cow::Borrowed(ROOM_TOPIC),
                TopicScheme::Month => Cow::Owned(m.time.to_datetime().format("%Y-%m").to_string()),
            };
            true
        }
        (Conversation::Direct { low, high }, kind) => {
            let receiver_hipchat = match kind {
                MessageKind::Private { receiver } => *receiver,
                _ => if m.sender.id == Some(low) { high } else { low },
            };
            (dest.topic, dest.is_private, dest.public_stream, dest.stream_of) = (Cow::Borrowed(ctx.profile.dm_topic), true, false, None);
            // Private readers stay with each message ([`readers_of`]), so this
            // list is ours unless a stream's is still in files being written.
            match Arc::get_mut(&mut dest.readers) {
                Some(readers) => readers.clear(),
                None => dest.readers = Arc::default(),
            }
            let readers = Arc::make_mut(&mut dest.readers);
            match ctx.plan.by_hipchat.get(&receiver_hipchat).map(|i| ctx.plan.user(*i)) {
                Some(receiver) => {
                    dest.recipient = receiver.recipient;
                    readers.extend([sender.id.min(receiver.id), sender.id.max(receiver.id)]);
                    readers.dedup();
                }
                None => {
                    report.warn(format!("{} id {}: receiver {receiver_hipchat} is unknown; written to the sender's own conversation", m.conversation, m.id));
                    dest.recipient = sender.recipient;
                    readers.push(sender.id);
                }
            }
            true
        }
    }
}

/// A message's Markdown, and the shape it was written in: `None` for Markdown
/// hcconv does not render itself (a notification's, converted from its HTML card),
/// which the server renders on import.
struct Body {
    text: String,
    shape: Option<Shape>,
}

/// Hipchat's slash commands as Zulip shows them: `/me` is Zulip's own status
/// message (`/me waves`, shown as "Ann waves"), `/quote` a quote.
fn zulip_slash_command(text: String, actor: &str) -> (String, Shape) {
    if let Some(action) = text.strip_prefix("/me ").map(str::trim).filter(|a| !a.is_empty()) {
        return (format!("/me {action}"), Shape::Plain);
    }
    let shape = if text.starts_with("/quote ") || text.starts_with("/quote\n") { Shape::Quote } else { Shape::Plain };
    (slash_command_owned(text, || actor, Style::Markdown), shape)
}

/// The Markdown text of `m` and its shape. Whom it mentions is read from the
/// text as the target shows it, not from Hipchat's `mentions` list: a user named
/// there whom the text does not show mentioned gets no flag.
fn body_text(m: &Message, sender: &ZUser, ctx: &MessageContext, report: &mut Report) -> Body {
    let plan = &*ctx.plan;
    let (text, shape) = match &m.kind {
        MessageKind::Notification { .. } => (plan.rewriter.rewrite(&notification_text(m, Style::Markdown)), None),
        kind @ (MessageKind::Topic { .. } | MessageKind::Archive { .. } | MessageKind::GuestAccess { .. }) => {
            (event_text(kind, &sender.full_name).unwrap_or_default(), Some(Shape::Plain))
        }
        _ if is_code(&m.text) => (slash_command(&m.text, &sender.full_name, Style::Markdown), Some(Shape::Code)),
        _ => {
            let (text, shape) = zulip_slash_command(plan.rewriter.rewrite(&m.text), &sender.full_name);
            (text, Some(shape))
        }
    };
    if let MessageKind::Unknown { wrapper } = &m.kind {
        report.warn(format!("{} id {}: {wrapper} is not a documented kind; its text was written as an ordinary message", m.conversation, m.id));
    }
    Body { text: fill_empty(text, m), shape }
}

/// Notes an attachment the export lacks, and fills empty texts (NUL characters are
/// already gone: the reader drops them).
fn fill_empty(mut text: String, m: &Message) -> String {
    if let Some(a) = m.attachment.as_ref().filter(|a| a.file.is_none()) {
        let note = crate::convert::text::missing_attachment_note(a, '*');
        text = if text.trim().is_empty() { note } else { format!("{text}\n\n{note}") };
    }
    if text.trim().is_empty() && m.attachment.as_ref().and_then(|a| a.file.as_ref()).is_none() {
        return "(empty message)".to_string();
    }
    text
}

/// One row per reader, plus the sender and mentioned users, with flag bits, in
/// ascending user order, into `rows`: what [`readers_of`] describes (the rows
/// as they were made before, kept as the tests' reference).
#[cfg(test)]
fn readers_with_flags(rows: &mut Vec<(u64, u32)>, dest: &Destination, sender: u64, mentioned: &[u64], wildcard: bool, profile: &FormatProfile) {
    let flags = profile.flags;
    rows.clear();
    rows.extend(dest.readers.iter().map(|u| (*u, 0)));
    // `readers` is ascending and the sender mostly one of them: sort only when
    // someone joins (sorting per message was 5 % of this thread, perf 500k).
    let mentions_join = !dest.is_private && !mentioned.is_empty();
    if mentions_join || dest.readers.binary_search(&sender).is_err() {
        rows.push((sender, 0));
        if !dest.is_private {
            rows.extend(mentioned.iter().map(|u| (*u, 0)));
        }
        rows.sort_unstable_by_key(|(u, _)| *u);
        rows.dedup_by_key(|(u, _)| *u);
    }
    for (u, f) in rows.iter_mut() {
        *f = flags.read;
        if mentioned.contains(u) {
            *f |= flags.mentioned;
        }
        if wildcard && !dest.is_private {
            *f |= flags.wildcard_mentioned;
        }
        if dest.is_private {
            *f |= flags.is_private;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writers::pixtoome::profile::{ZULIP_10, ZULIP_11, ZULIP_12, ZULIP_3_4, ZULIP_9_0};

    /// A part the server renders holds at most 500 emoji (a 10 000-character part
    /// of them never rendered in the 10.0 importer); other text keeps the
    /// character limit alone.
    #[test]
    fn emoji_dense_text_is_split_for_the_server() {
        let text = format!("{} and {}", "\u{1F600}".repeat(1200), "\u{2764}".repeat(10));
        let parts = split_for_render(text.clone(), 10_000);
        assert_eq!(parts.concat(), text);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().filter(|c| html::is_unicode_emoji(*c)).count() <= MAX_RENDERED_EMOJI));
        let prose = "caf\u{e9} \u{2019}quoted\u{2019} ".repeat(600);
        assert!(split_for_render(prose.clone(), 10_000) == vec![prose], "9 000 characters without emoji are one part");
    }

    #[test]
    fn message_rows_have_exactly_the_profile_keys() {
        let row = MessageRow {
            id: 1, sender: 1, recipient: 1, subject: Cow::Borrowed(""), content: "x".into(), rendered_content: None, rendered_content_version: None,
            date_sent: 1.5, sending_client: 1, last_edit_time: None, edit_history: None, has_attachment: false, has_image: false, has_link: false, realm: None,
            is_channel_message: None,
        };
        let v = serde_json::to_value(&row).unwrap();
        ZULIP_3_4.check_row("zerver_message", v.as_object().unwrap()).unwrap();
        // Later releases' rows carry what their profile adds.
        for p in [&ZULIP_9_0, &ZULIP_10, &ZULIP_11, &ZULIP_12] {
            let row = MessageRow { realm: Some(1), is_channel_message: p.has_key("zerver_message", "is_channel_message").then_some(false), ..row.clone() };
            let v = serde_json::to_value(&row).unwrap();
            p.check_row("zerver_message", v.as_object().unwrap()).unwrap();
        }
        let um = serde_json::to_value(UserMessageRow { id: 1, user_profile: 1, message: 1, flags_mask: 1 }).unwrap();
        ZULIP_3_4.check_row("zerver_usermessage", um.as_object().unwrap()).unwrap();
    }

    #[test]
    fn message_files_are_the_bytes_serde_writes() {
        let row = |id: u64, content: &str, subject: Cow<'static, str>| MessageRow {
            id, sender: id % 7, recipient: 500 + id, subject, content: content.into(), rendered_content: None, rendered_content_version: None,
            date_sent: 1_420_070_407.007_919 + id as f64, sending_client: 1, last_edit_time: None, edit_history: None, has_attachment: id.is_multiple_of(2), has_image: false, has_link: id.is_multiple_of(3), realm: id.is_multiple_of(5).then_some(1),
            is_channel_message: (!id.is_multiple_of(4)).then_some(id.is_multiple_of(3)),
        };
        let mut many: Vec<MessageRow> = (1..40).map(|i| row(i, &format!("message {i} with \"quotes\", a \\ and\nlines \u{e9}\u{1f600}"), Cow::Owned(format!("2018-{i:02}")))).collect();
        // The fields converters leave empty, set, so their formats are compared too.
        many[3].rendered_content = Some("<p>x</p>".into());
        many[3].rendered_content_version = Some(1);
        many[3].last_edit_time = Some(1.25e9);
        many[3].edit_history = Some("[]".into());
        many[4].has_image = true;
        for (rows, users) in [
            (Vec::new(), vec![]),
            (vec![row(1, "", Cow::Borrowed(ROOM_TOPIC))], vec![UserMessageRow { id: 1, user_profile: 2, message: 3, flags_mask: 2048 }]),
            (many, (0..50).map(|i| UserMessageRow { id: u64::MAX - i, user_profile: i * 977, message: i / 3, flags_mask: (i as u32) << 5 }).collect()),
        ] {
            let mut json = Vec::new();
            rows.iter().for_each(|r| append_message_row(&mut json, r).unwrap());
            let mut ours = Vec::new();
            write_message_file(&mut ours, &json, users.as_slice()).unwrap();
            let mut expected = serde_json::to_vec(&MessageFile { zerver_message: &rows, zerver_usermessage: &users }).unwrap();
            expected.push(b'\n');
            assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(expected).unwrap());
        }
    }

    #[test]
    fn flags_for_mentions_wildcards_and_private_messages() {
        let mut rows = vec![(77, 77)];
        let stream = Destination { recipient: 9, topic: "t".into(), is_private: false, public_stream: true, readers: Arc::new(vec![2, 3, 5]), stream_of: Some(1) };
        readers_with_flags(&mut rows, &stream, 4, &[3, 6], true, &ZULIP_3_4);
        assert_eq!(rows, vec![(2, 1 | 16), (3, 1 | 8 | 16), (4, 1 | 16), (5, 1 | 16), (6, 1 | 8 | 16)]);
        let pm = Destination { recipient: 9, topic: "".into(), is_private: true, public_stream: false, readers: Arc::new(vec![1, 2]), stream_of: None };
        readers_with_flags(&mut rows, &pm, 1, &[2, 7], false, &ZULIP_3_4);
        assert_eq!(rows, vec![(1, 1 | 2048), (2, 1 | 8 | 2048)], "a mention adds no row to a private message");
        // The sender among the readers and nobody mentioned: the readers as they are.
        readers_with_flags(&mut rows, &stream, 3, &[], false, &ZULIP_3_4);
        assert_eq!(rows, vec![(2, 1), (3, 1), (5, 1)]);
        // A sender who is no reader joins in order.
        readers_with_flags(&mut rows, &stream, 4, &[], false, &ZULIP_3_4);
        assert_eq!(rows, vec![(2, 1), (3, 1), (4, 1), (5, 1)]);
    }

    /// The rows a file makes from [`readers_of`] are those [`readers_with_flags`]
    /// gives, numbered on from the file's first id, with stream and private
    /// messages, mentions, wildcards and senders outside the stream mixed.
    #[test]
    fn compact_rows_are_the_rows_of_readers_with_flags() {
        let lists = [vec![], vec![4], vec![2, 3, 5], (1..300).map(|i| i * 3).collect::<Vec<u64>>()];
        let mut file = UserMessages::default();
        file.clear(7);
        let (mut expected, mut want, mut readers) = (Vec::new(), Vec::new(), Readers::default());
        let mut message = 100u64;
        for list in &lists {
            for is_private in [false, true] {
                let people = if is_private { list.iter().copied().take(2).collect() } else { list.clone() };
                let dest = Destination { recipient: 1, topic: "".into(), is_private, public_stream: true, readers: Arc::new(people), stream_of: None };
                for sender in [1u64, 3, 4, 9, 600] {
                    for (mentioned, wildcard) in [(vec![], false), (vec![3, 9], true), (vec![1, 2, 5, 601], false), (vec![sender], true)] {
                        readers_with_flags(&mut want, &dest, sender, &mentioned, wildcard, &ZULIP_3_4);
                        readers_of(&mut readers, &dest, sender, &mentioned, wildcard, &ZULIP_3_4);
                        assert_eq!(readers.count(), want.len() as u64);
                        message += 1;
                        file.push(message, &readers);
                        expected.extend(want.iter().map(|(u, f)| (message, *u, *f)));
                    }
                }
            }
        }
        assert_eq!(file.sets.len(), lists.len(), "one reader list per run of a stream's messages");
        let mut got = Vec::new();
        file.try_for_each_row(|row| {
            got.push((row.id, row.message, row.user_profile, row.flags_mask));
            Ok(())
        })
        .unwrap();
        let expected: Vec<_> = expected.into_iter().zip(7..).map(|((message, user, flags), id)| (id, message, user, flags)).collect();
        assert_eq!(got, expected);
    }
}
