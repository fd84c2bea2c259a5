//! Messages → `comments-NNNN.json`, streamed: one message in, its comment rows out.
//!
//! Every comment is `Type: text` (the API's advice); what Hipchat showed differently
//! (slash commands, mentions, notifications, room events, attachments) is rendered as
//! plain text. `CreatedAt` is strictly increasing within a room: Hipchat's
//! microseconds are rounded to milliseconds and ties are moved forward by 1 ms, in the
//! stream's order. Texts over the send limit are split into several comments that
//! concatenate back to the exact text.

use std::collections::HashMap;

use crate::convert::clock::StrictClock;
use crate::convert::text::{event_text, is_code, notification_text, slash_command, slash_command_from, split_chars, Style, TextRewriter};
use crate::error::Result;
use crate::hipchat::Export;
use crate::model::{Catalog, Conversation, Message, MessageKind, RoomId, Timestamp};
use crate::report::{Entity, Report, SkipReason};

use super::chunks::{ChunkedArrays, FileSummary};
use super::identity::{display_name, Directory};
use super::links::FileCopier;
use super::identity::room_unique_id;
use super::rows::{CommentRow, MillisFormatter};
use super::{Settings, MAX_MESSAGE_BYTES, MAX_MESSAGE_CHARS};

/// What the rooms file needs to know about a conversation's comments.
#[derive(Clone, Debug, Default)]
pub struct ConversationSummary<'a> {
    /// Time of the first comment (the room's creation time when Hipchat has none).
    pub first_time: Option<Timestamp>,
    /// Author of the first comment (the creator of a single room).
    pub first_creator: Option<&'a str>,
    /// Every comment author, in address order: all must be participants of the room.
    pub creators: Vec<&'a str>,
}

/// The [`ConversationSummary`] of every conversation, kept small: an export has a
/// room per thousand messages or so, each with a score of authors, and up to
/// hundreds of thousands of private conversations, so authors are numbers into one
/// table of addresses (one per identity) rather than a set of addresses per room,
/// and a private conversation's tally sits at its place in the catalog's sorted
/// list rather than in a map (at 320 000 private conversations, a map and a vector
/// of tallies were 45 MB of a Qiscus run's heap; this is 8 MB).
#[derive(Debug, Default)]
pub struct Summaries {
    /// `known[i]` is the tally of the catalog's `i`-th private conversation
    /// ([`Tally::is_empty`] until its first comment).
    known: Vec<Tally>,
    /// Rooms, and private conversations the catalog does not list, ascending.
    /// Comments come in that order, so a new one is pushed at the end.
    others: Vec<(Conversation, Tally)>,
    /// The authors of conversations with more than two, each list sorted.
    lists: Vec<Vec<u32>>,
    emails: Vec<String>,
    numbers: HashMap<String, u32>,
    /// The conversation, tally and author of the last comment noted. Comments
    /// come a conversation at a time, and authors often in runs, so most notes skip
    /// both lookups (a map search and a hash of the address per comment were 1 % of
    /// a Qiscus run, perf 500k).
    last: Option<(Conversation, Slot, u32)>,
}

/// Where a conversation's [`Tally`] is in [`Summaries`].
#[derive(Debug, Clone, Copy)]
enum Slot {
    Known(usize),
    Other(usize),
}

/// One conversation's facts, authors as numbers into [`Summaries::emails`].
#[derive(Debug, Clone, Copy)]
struct Tally {
    first_time: Timestamp,
    /// [`NO_AUTHOR`] while the conversation has no comment.
    first_creator: u32,
    creators: Authors,
}

impl Tally {
    const EMPTY: Tally = Tally { first_time: Timestamp(0), first_creator: NO_AUTHOR, creators: Authors::Two([NO_AUTHOR; 2]) };

    fn first(time: Timestamp, creator: u32) -> Tally {
        Tally { first_time: time, first_creator: creator, creators: Authors::Two([creator, NO_AUTHOR]) }
    }

    fn is_empty(&self) -> bool {
        self.first_creator == NO_AUTHOR
    }
}

/// A conversation's authors, each once. Up to two are held inline, so a private
/// conversation (never more than its two participants) costs no allocation and a
/// [`Tally`] 24 bytes; rooms with more keep a list in [`Summaries::lists`].
#[derive(Debug, Clone, Copy)]
enum Authors {
    /// [`NO_AUTHOR`] marks a free place.
    Two([u32; 2]),
    /// An index into [`Summaries::lists`].
    List(u32),
}

/// An empty place in [`Authors::Two`] (author numbers stay below it).
const NO_AUTHOR: u32 = u32::MAX;

impl Summaries {
    /// Tallies for the catalog's `private` conversations, made at once (a vector
    /// grown by doubling holds its old and new buffer for a moment).
    fn new(private: usize) -> Self {
        Summaries { known: vec![Tally::EMPTY; private], ..Summaries::default() }
    }

    /// Notes a comment of `creator` in `conversation` at `time` (comments come in
    /// time order); `known` is the catalog's private conversations.
    fn note(&mut self, known: &[Conversation], conversation: Conversation, time: Timestamp, creator: &str) {
        let (slot, number) = match self.last {
            Some((c, slot, n)) if c == conversation && self.emails[n as usize] == creator => (slot, n),
            Some((c, slot, _)) if c == conversation => (slot, self.number(creator)),
            _ => {
                let number = self.number(creator);
                (self.slot(known, conversation, time, number), number)
            }
        };
        self.last = Some((conversation, slot, number));
        self.add_author(slot, number);
    }

    /// Adds `number` to the authors of the conversation at `slot`, if not there yet.
    fn add_author(&mut self, slot: Slot, number: u32) {
        let lists = self.lists.len();
        let authors = match slot {
            Slot::Known(at) => &mut self.known[at].creators,
            Slot::Other(at) => &mut self.others[at].1.creators,
        };
        match authors {
            Authors::Two(pair) if pair.contains(&number) => {}
            Authors::Two(pair) if pair[1] == NO_AUTHOR => pair[1] = number,
            Authors::Two(pair) => {
                let mut list = vec![pair[0], pair[1], number];
                list.sort_unstable();
                *authors = Authors::List(u32::try_from(lists).expect("fewer than 2^32 rooms"));
                self.lists.push(list);
            }
            Authors::List(index) => {
                let list = &mut self.lists[*index as usize];
                if let Err(at) = list.binary_search(&number) {
                    list.insert(at, number);
                }
            }
        }
    }

    /// The number of an author's address, given on first sight.
    fn number(&mut self, creator: &str) -> u32 {
        if let Some(n) = self.numbers.get(creator) {
            return *n;
        }
        let n = u32::try_from(self.emails.len()).ok().filter(|n| *n != NO_AUTHOR).expect("fewer than 2^32 - 1 identities");
        self.emails.push(creator.to_string());
        self.numbers.insert(creator.to_string(), n);
        n
    }

    /// The place of a conversation's tally, made on first sight with this
    /// comment's time and author. Others come in ascending order, so a new one goes
    /// at the end; one out of order is inserted in its place (slower, still right).
    fn slot(&mut self, known: &[Conversation], conversation: Conversation, time: Timestamp, creator: u32) -> Slot {
        if let Ok(at) = known.binary_search(&conversation) {
            if self.known[at].is_empty() {
                self.known[at] = Tally::first(time, creator);
            }
            return Slot::Known(at);
        }
        if self.others.last().is_none_or(|(last, _)| *last < conversation) {
            self.others.push((conversation, Tally::first(time, creator)));
            return Slot::Other(self.others.len() - 1);
        }
        match self.others.binary_search_by_key(&conversation, |(c, _)| *c) {
            Ok(at) => Slot::Other(at),
            Err(at) => {
                self.others.insert(at, (conversation, Tally::first(time, creator)));
                Slot::Other(at)
            }
        }
    }

    /// The rooms that have comments, in order.
    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.others.iter().filter_map(|(c, _)| if let Conversation::Room(id) = c { Some(*id) } else { None })
    }

    /// Private conversations with comments that `known` (the catalog's) lacks, in order.
    pub fn unlisted_private(&self) -> impl Iterator<Item = Conversation> + '_ {
        self.others.iter().map(|(c, _)| *c).filter(|c| matches!(c, Conversation::Direct { .. }))
    }

    /// The summary of `conversation` (empty when it has no comments); `known` is
    /// the catalog's private conversations.
    pub fn get(&self, known: &[Conversation], conversation: Conversation) -> ConversationSummary<'_> {
        let listed = known.binary_search(&conversation).ok().map(|at| &self.known[at]).filter(|t| !t.is_empty());
        let other = || self.others.binary_search_by_key(&conversation, |(c, _)| *c).ok().map(|at| &self.others[at].1);
        let Some(t) = listed.or_else(other) else { return ConversationSummary::default() };
        let email = |n: u32| self.emails[n as usize].as_str();
        let numbers: &[u32] = match &t.creators {
            Authors::Two(pair) => &pair[..if pair[1] == NO_AUTHOR { 1 } else { 2 }],
            Authors::List(index) => &self.lists[*index as usize],
        };
        let mut creators: Vec<&str> = numbers.iter().map(|n| email(*n)).collect();
        creators.sort_unstable();
        ConversationSummary { first_time: Some(t.first_time), first_creator: Some(email(t.first_creator)), creators }
    }
}

/// The comment-writing state: bounded by users and conversations, never by messages.
pub struct CommentWriter<'a> {
    settings: &'a Settings,
    directory: &'a mut Directory,
    files: &'a mut FileCopier,
    rewriter: TextRewriter,
    arrays: ChunkedArrays,
    clock: StrictClock,
    current: Option<Conversation>,
    /// The `room_unique_id` of `current`.
    room: String,
    /// `created_at` texts, made by the day.
    times: MillisFormatter,
    summaries: Summaries,
    /// The current comment's author address (see [`CommentWriter::message`]).
    creator: String,
    /// The current comment's text, its memory kept from comment to comment.
    text: String,
}

/// A text buffer that grew past this (a long message) is not kept for the next.
const KEPT_TEXT_CAPACITY: usize = 64 * 1024;

impl<'a> CommentWriter<'a> {
    /// A writer for `settings.out`, rewriting `@mention_name` to `@Display Name`.
    pub fn new(catalog: &Catalog, settings: &'a Settings, directory: &'a mut Directory, files: &'a mut FileCopier) -> Self {
        CommentWriter {
            rewriter: mention_rewriter(catalog),
            arrays: ChunkedArrays::new(&settings.out, "comments", settings.max_file_bytes),
            settings,
            directory,
            files,
            clock: StrictClock::new(),
            current: None,
            room: String::new(),
            times: MillisFormatter::default(),
            summaries: Summaries::new(catalog.conversations.len()),
            creator: String::new(),
            text: String::new(),
        }
    }

    /// Drains the export's messages; returns the per-conversation summaries and the files written.
    pub fn run(mut self, export: &mut Export, report: &mut Report) -> Result<(Summaries, Vec<FileSummary>)> {
        while let Some(m) = export.messages.next(report)? {
            self.message(&export.catalog, m, report)?;
        }
        report.add_extra("qiscus_created_at_shifted", self.clock.shifted);
        Ok((self.summaries, self.arrays.finish()?))
    }

    fn message(&mut self, catalog: &Catalog, m: &Message, report: &mut Report) -> Result<()> {
        if self.current != Some(m.conversation) {
            // A new room: its own strictly increasing clock (the shift count runs on).
            self.clock.reset();
            self.current = Some(m.conversation);
            self.room = room_unique_id(m.conversation);
        }
        // Only skips name the message; most messages never need this string.
        let id = || format!("{} message {}", m.conversation, m.id);
        if m.deleted.is_some() {
            return skip_with_attachment(report, m, &id(), SkipReason::Deleted, "deleted in Hipchat; nothing left to import");
        }
        if let Conversation::Room(rid) = m.conversation
            && self.settings.skip_deleted_rooms
            && catalog.rooms.get(&rid).is_some_and(|r| r.is_deleted)
        {
            return skip_with_attachment(report, m, &id(), SkipReason::DeletedRoom, "room deleted in Hipchat; left out by --skip-deleted-rooms");
        }
        // Copied into a buffer kept for the run: a new `String` per comment was an
        // allocation and a free for millions of comments.
        let mut creator = std::mem::take(&mut self.creator);
        self.creator_into(m, report, &mut creator);
        // The text too (a long one's memory is not kept).
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        self.render_into(catalog, m, report, &mut text);
        if let Some(line) = self.attachment_line(m, report)? {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&line);
        }
        if text.trim().is_empty() {
            // It was sent in Hipchat, so it stays a comment, as in the other targets.
            text.clear();
            text.push_str("(empty Hipchat message)");
        }
        let emitted = self.emit(&catalog.conversations, m, &creator, &text, report);
        self.creator = creator;
        if text.capacity() <= KEPT_TEXT_CAPACITY {
            self.text = text;
        }
        emitted
    }

    /// The comment author's e-mail (a placeholder user is made for a sender the
    /// catalog lacks).
    fn creator_into(&mut self, m: &Message, report: &mut Report, out: &mut String) {
        out.clear();
        match m.sender.id {
            Some(uid) => match self.directory.known_user_email(uid) {
                Some(email) => out.push_str(email),
                None => out.push_str(&self.directory.user_email(uid, &m.sender.name, report)),
            },
            None => out.push_str(&self.directory.integration_email(&m.sender.name, report)),
        }
    }

    /// The name events and `/me` show. Made only for them: most messages need none.
    fn actor(&self, catalog: &Catalog, m: &Message) -> String {
        match m.sender.id {
            Some(uid) => catalog.users.get(&uid).map(display_name).or_else(|| self.directory.user(uid).map(|i| i.name.clone())).unwrap_or_default(),
            None => m.sender.name.trim().to_string(),
        }
    }

    /// The message as plain text, before attachments, appended to `out`.
    fn render_into(&self, catalog: &Catalog, m: &Message, report: &mut Report, out: &mut String) {
        let actor = || self.actor(catalog, m);
        match &m.kind {
            MessageKind::Notification { .. } => out.push_str(&notification_text(m, Style::Plain)),
            MessageKind::Topic { .. } | MessageKind::Archive { .. } | MessageKind::GuestAccess { .. } => out.push_str(&event_text(&m.kind, &actor()).unwrap_or_default()),
            MessageKind::Unknown { wrapper } => {
                report.add_extra("qiscus_unknown_kinds_as_text", 1);
                out.push_str(&format!("[Hipchat {wrapper}] "));
                self.user_text_into(&m.text, &actor, out);
            }
            MessageKind::User | MessageKind::Private { .. } => self.user_text_into(&m.text, &actor, out),
        }
    }

    /// A person's text, appended to `out`: `/code` kept verbatim, otherwise
    /// mentions rewritten; then the slash command rendered as Hipchat showed it
    /// (`actor` is asked only then).
    fn user_text_into(&self, text: &str, actor: &dyn Fn() -> String, out: &mut String) {
        if is_code(text) {
            out.push_str(&slash_command(text, &actor(), Style::Plain));
            return;
        }
        let start = out.len();
        self.rewriter.rewrite_into(text, out);
        slash_command_from(out, start, actor, Style::Plain);
    }

    /// `Attachment: <name> <link>`, after copying the file; a note when it is missing.
    fn attachment_line(&mut self, m: &Message, report: &mut Report) -> Result<Option<String>> {
        let Some(a) = &m.attachment else {
            return Ok(None);
        };
        let shown = a.name.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(&a.name);
        let Some(file) = &a.file else {
            // Already reported by the reader: missing, or left out by --no-files.
            let why = if a.left_out { "not migrated" } else { "not in the Hipchat export" };
            return Ok(Some(format!("Attachment {shown} ({why})")));
        };
        if self.files.base().is_none() && self.files.linked() == 0 {
            report.warn("qiscus: no --files-base-url: attachment links are relative paths (files/...) that readers cannot open");
        }
        let link = self.files.link(file)?;
        report.written(Entity::Attachment);
        Ok(Some(format!("Attachment {shown}: {link}")))
    }

    /// Writes the comment rows of one message (several when it is split).
    fn emit(&mut self, known: &[Conversation], m: &Message, creator: &str, text: &str, report: &mut Report) -> Result<()> {
        let base_id = comment_unique_id(&self.room, m);
        // Nearly every text fits one comment: no copy of it then.
        let split;
        let parts: &[&str] = if text.len() <= MAX_MESSAGE_BYTES {
            std::slice::from_ref(&text)
        } else {
            split = split_for_qiscus(text);
            &split.iter().map(String::as_str).collect::<Vec<_>>()
        };
        for (i, part) in parts.iter().enumerate() {
            let at = self.clock.next(m.time.millis());
            let part_id;
            let unique_id = if i == 0 {
                &base_id
            } else {
                part_id = format!("{base_id}-part{}", i + 1);
                &part_id
            };
            let row = CommentRow {
                message: part,
                disable_link_preview: false,
                kind: "text",
                unique_id,
                creator_email: creator,
                room_unique_id: &self.room,
                created_at: self.times.format(at),
                payload: None,
                parent_comment_unique_id: "",
            };
            self.arrays.push_json(|out| row.write_json(out))?;
        }
        report.written(Entity::Message);
        report.add_extra("qiscus_comments", parts.len() as u64);
        if parts.len() > 1 {
            report.add_extra("qiscus_parts_extra", parts.len() as u64 - 1);
        }
        self.summaries.note(known, m.conversation, m.time, creator);
        Ok(())
    }
}

/// Skips a message and, when it has one, its attachment, for the same reason.
fn skip_with_attachment(report: &mut Report, m: &Message, id: &str, reason: SkipReason, detail: &str) -> Result<()> {
    report.skip(Entity::Message, id, reason, detail);
    if m.attachment.as_ref().is_some_and(|a| a.file.is_some()) {
        report.skip(Entity::Attachment, id, reason, detail);
    }
    Ok(())
}

/// `@mention_name` → `@Display Name`, users in id order (the first of two case-twins wins).
fn mention_rewriter(catalog: &Catalog) -> TextRewriter {
    let mut r = TextRewriter::new();
    for user in catalog.users.values() {
        r.mention(&user.mention_name, format!("@{}", display_name(user)));
    }
    r
}

/// `<room id>-<export position>[-<Hipchat id>]`: unique because the export position is,
/// stable for the same export, and traceable to the Hipchat message.
pub fn comment_unique_id(room: &str, m: &Message) -> String {
    // Kept characters are ASCII, so bytes can be filtered: no byte of a multi-byte
    // character is ASCII. Built in one string (this runs for every comment).
    let kept = || m.id.bytes().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')).take(64);
    let mut id = String::with_capacity(room.len() + 24 + m.id.len().min(64));
    id.push_str(room);
    id.push('-');
    id.push_str(itoa::Buffer::new().format(m.seq));
    let mut hipchat = kept();
    if let (Some(first), second) = (hipchat.next(), hipchat.next())
        && !(first == b'0' && second.is_none()) {
            id.push('-');
            id.extend(kept().map(char::from));
        }
    id
}

/// Parts of at most [`MAX_MESSAGE_CHARS`] characters and [`MAX_MESSAGE_BYTES`] UTF-8
/// bytes that concatenate to `text`. Whether Qiscus counts characters, UTF-16 units or
/// bytes is not documented; a part within the byte limit is within all three.
pub fn split_for_qiscus(text: &str) -> Vec<String> {
    let max_char_bytes = 4;
    split_chars(text, MAX_MESSAGE_CHARS)
        .into_iter()
        .flat_map(|p| if p.len() <= MAX_MESSAGE_BYTES { vec![p] } else { split_chars(&p, MAX_MESSAGE_BYTES / max_char_bytes) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn summaries_keep_first_time_first_author_and_every_author_once() {
        // (1,2) is in the catalog's list, (3,4) is not: both are summarised.
        let known = [Conversation::direct(1, 2), Conversation::direct(5, 6)];
        let mut s = Summaries::new(known.len());
        let room = Conversation::Room(7);
        for (t, who) in [(5, "zed@x"), (6, "amy@x"), (6, "amy@x"), (7, "zed@x"), (8, "bob@x")] {
            s.note(&known, room, Timestamp(t), who);
        }
        s.note(&known, Conversation::direct(1, 2), Timestamp(9), "amy@x");
        s.note(&known, Conversation::direct(1, 2), Timestamp(10), "ben@x");
        s.note(&known, Conversation::direct(3, 4), Timestamp(11), "cy@x");
        // A conversation met again later still adds to its own tally, not the last one's.
        s.note(&known, room, Timestamp(12), "cat@x");
        s.note(&known, room, Timestamp(13), "amy@x");
        s.note(&known, Conversation::direct(1, 2), Timestamp(14), "amy@x");
        let got = s.get(&known, room);
        assert_eq!((got.first_time, got.first_creator, got.creators), (Some(Timestamp(5)), Some("zed@x"), vec!["amy@x", "bob@x", "cat@x", "zed@x"]));
        let direct = s.get(&known, Conversation::direct(1, 2));
        assert_eq!((direct.first_time, direct.first_creator, direct.creators), (Some(Timestamp(9)), Some("amy@x"), vec!["amy@x", "ben@x"]));
        assert_eq!(s.get(&known, Conversation::direct(3, 4)).creators, vec!["cy@x"]);
        for silent in [Conversation::Room(8), Conversation::direct(5, 6), Conversation::direct(8, 9)] {
            let none = s.get(&known, silent);
            assert_eq!((none.first_time, none.first_creator, none.creators.len()), (None, None, 0));
        }
        assert_eq!(s.rooms().collect::<Vec<_>>(), vec![7]);
        assert_eq!(s.unlisted_private().collect::<Vec<_>>(), vec![Conversation::direct(3, 4)]);
    }

    #[test]
    fn a_private_conversation_with_a_third_author_keeps_all_three() {
        let mut s = Summaries::new(0);
        for who in ["b@x", "a@x", "c@x", "a@x"] {
            s.note(&[], Conversation::direct(1, 2), Timestamp(1), who);
        }
        assert_eq!(s.get(&[], Conversation::direct(1, 2)).creators, vec!["a@x", "b@x", "c@x"]);
    }

    #[test]
    fn long_text_is_split_within_limits() {
        let ascii: String = (0..1500).map(|i| format!("word{i:04} ")).collect();
        let parts = split_for_qiscus(&ascii);
        assert_eq!(parts.concat(), ascii);
        assert_eq!(parts.len(), 4);
        let wide = "漢".repeat(3000);
        let parts = split_for_qiscus(&wide);
        assert_eq!(parts.concat(), wide);
        assert!(parts.iter().all(|p| p.len() <= MAX_MESSAGE_BYTES));
    }

    proptest! {
        /// The unique id: room, export position, then the Hipchat id's ASCII letters,
        /// digits, `-` and `_` (at most 64), left out when none are left or only `0`.
        #[test]
        fn comment_ids_keep_the_safe_part_of_the_hipchat_id(id in prop_oneof![Just(String::new()), Just("0".to_string()), Just("00".to_string()), "\\PC{0,90}", "[a-z0-9_é-]{0,80}"], seq in 0u64..u64::MAX) {
            let m = Message {
                conversation: Conversation::Room(1),
                id: id.clone(),
                time: Timestamp(0),
                seq,
                sender: crate::model::Sender::default(),
                text: String::new(),
                kind: crate::model::MessageKind::User,
                attachment: None,
                mentions: vec![],
                deleted: None,
                metadata: None,
                source: String::new(),
            };
            let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(64).collect();
            let want = if safe.is_empty() || safe == "0" { format!("r-{seq}") } else { format!("r-{seq}-{safe}") };
            prop_assert_eq!(comment_unique_id("r", &m), want);
        }

        #[test]
        fn split_is_lossless_and_bounded(text in "\\PC{0,9000}") {
            let parts = split_for_qiscus(&text);
            prop_assert_eq!(parts.concat(), text.clone());
            for p in &parts {
                prop_assert!(p.len() <= MAX_MESSAGE_BYTES && p.chars().count() <= MAX_MESSAGE_CHARS);
            }
        }
    }
}
