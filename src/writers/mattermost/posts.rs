//! Messages to `post` and `direct_post` lines, one message at a time.
//!
//! State is per conversation only (its clock and the last topic), so memory stays
//! flat however long the history is. Mattermost treats posts with the same
//! channel, millisecond and text as one post, so every line of a conversation
//! gets its own millisecond from a [`StrictClock`]; long messages become
//! consecutive posts, one millisecond apart, that concatenate back to the text.

use serde_json::json;

use crate::convert::clock::StrictClock;
use crate::convert::text::{event_text, is_code, notification_text, slash_command, slash_command_owned, split_chars_owned, Style};
use crate::error::Result;
use crate::model::{Conversation, Message, MessageKind, UserId};
use crate::report::{Entity, Report, SkipReason};

use super::directory::Directory;
use super::lines::{AttachmentRef, DirectChannelLine, DirectPostLine, PostLine};
use super::sink::Sink;

/// `mmctl import validate` checks direct posts against this many runes whatever
/// the server allows, so private messages are never split longer.
pub const DIRECT_POST_MAX_RUNES: usize = 4000;

/// What a message becomes before splitting.
struct Rendered {
    text: String,
    kind: Option<&'static str>,
    props: Option<serde_json::Value>,
}

/// Writes the post section of the import, message by message.
pub struct PostWriter<'a> {
    dir: &'a Directory,
    conversations: &'a [Conversation],
    max_runes: usize,
    current: Option<Conversation>,
    clock: StrictClock,
    topic: String,
    direct_channels_written: bool,
}

impl<'a> PostWriter<'a> {
    /// A writer splitting room posts at `max_runes`.
    pub fn new(dir: &'a Directory, conversations: &'a [Conversation], max_runes: usize) -> Self {
        PostWriter { dir, conversations, max_runes, current: None, clock: StrictClock::new(), topic: String::new(), direct_channels_written: false }
    }

    /// Converts one message (or records why not).
    pub fn message(&mut self, m: &Message, sink: &mut Sink, report: &mut Report) -> Result<()> {
        if let Some((reason, detail)) = self.skip_reason(m) {
            skip_with_attachment(m, reason, detail, report);
            return Ok(());
        }
        if self.current != Some(m.conversation) {
            self.current = Some(m.conversation);
            self.clock.reset();
            self.topic.clear();
        }
        // Borrowed from the directory, not from `self`, so no copy per post.
        let dir = self.dir;
        let author = dir.author(&m.sender);
        let rendered = self.render(m, author);
        let attachments = self.attachments(m, sink, report)?;
        let Rendered { text, kind, props } = rendered;
        let parts = self.parts(m, text);
        // Mattermost needs a time after 1970-01-01 (create_at > 0).
        let base = m.time.millis();
        if base < 1 {
            report.warn(format!("{} id {}: dated {} (before 1970), written at 1970-01-01T00:00:00.001Z, the earliest time Mattermost accepts", m.conversation, m.id, m.time));
        }
        let base = base.max(1);
        let mut first = Some((kind, props, attachments));
        for part in &parts {
            let create_at = self.clock.next(base);
            let (kind, props, attachments) = first.take().unwrap_or((None, None, Vec::new()));
            self.write_line(m.conversation, author, part, kind, props, attachments, create_at, sink)?;
        }
        report.written(Entity::Message);
        if parts.len() > 1 {
            report.add_extra("mattermost_parts_extra", parts.len() as u64 - 1);
        }
        Ok(())
    }

    /// Writes the direct_channel lines if no private message has done so yet
    /// (called once more after the last message).
    pub fn finish(&mut self, sink: &mut Sink) -> Result<()> {
        self.write_direct_channels(sink)
    }

    fn skip_reason(&self, m: &Message) -> Option<(SkipReason, String)> {
        if m.deleted.is_some() {
            return Some((SkipReason::Deleted, "deleted in Hipchat".into()));
        }
        match m.conversation {
            Conversation::Room(rid) if self.dir.skipped_rooms.contains(&rid) => Some((SkipReason::DeletedRoom, format!("room {rid} left out (--skip-deleted-rooms)"))),
            Conversation::Room(rid) if !self.dir.channels.contains_key(&rid) => Some((SkipReason::Invalid, format!("room {rid} is not in the catalog"))),
            _ => None,
        }
    }

    /// The message text in Markdown, with its system post type where Mattermost has one.
    fn render(&mut self, m: &Message, author: &str) -> Rendered {
        let actor = if m.sender.name.trim().is_empty() { author } else { m.sender.name.as_str() };
        let plain = |text: String| Rendered { text, kind: None, props: None };
        match &m.kind {
            MessageKind::User | MessageKind::Private { .. } => plain(self.user_text(m, actor)),
            MessageKind::Notification { .. } => plain(notification_text(m, Style::Markdown)),
            MessageKind::Topic { topic } => {
                let props = json!({"username": author, "old_header": self.topic, "new_header": topic});
                self.topic = topic.clone();
                Rendered { text: event_text(&m.kind, actor).unwrap_or_default(), kind: Some("system_header_change"), props: Some(props) }
            }
            MessageKind::Archive { is_archived } => {
                let kind = if *is_archived { "system_channel_deleted" } else { "system_channel_restored" };
                Rendered { text: event_text(&m.kind, actor).unwrap_or_default(), kind: Some(kind), props: Some(json!({"username": author})) }
            }
            MessageKind::GuestAccess { .. } => plain(event_text(&m.kind, actor).unwrap_or_default()),
            MessageKind::Unknown { wrapper } if m.text.trim().is_empty() => plain(format!("_[Hipchat {wrapper} without text]_")),
            MessageKind::Unknown { .. } => plain(self.user_text(m, actor)),
        }
    }

    /// A person's text: mentions and emoticons rewritten (never inside `/code`),
    /// then the slash command rendered. When the message's `mentions` list names a
    /// user whose mention name another user shares, that user gets the `@`.
    fn user_text(&self, m: &Message, actor: &str) -> String {
        let text = &m.text;
        if is_code(text) {
            return slash_command(text, actor, Style::Markdown);
        }
        let rewritten = if m.mentions.iter().any(|id| self.dir.ambiguous_mentions.contains(id)) {
            self.dir.rewriter_preferring(&m.mentions).rewrite(text)
        } else {
            self.dir.rewriter.rewrite(text)
        };
        slash_command_owned(rewritten, || actor, Style::Markdown)
    }

    /// The attachment, noted for the output; a missing file leaves a line in the text
    /// (added by [`PostWriter::parts`]) and was reported by the reader.
    fn attachments(&self, m: &Message, sink: &mut Sink, report: &mut Report) -> Result<Vec<AttachmentRef>> {
        let Some(file) = m.attachment.as_ref().and_then(|a| a.file.as_ref()) else { return Ok(Vec::new()) };
        report.written(Entity::Attachment);
        Ok(vec![AttachmentRef { path: sink.add_file(file)? }])
    }

    /// The text cut into parts that fit the limit (never empty: a post needs text or a file).
    fn parts(&self, m: &Message, mut text: String) -> Vec<String> {
        if let Some(a) = m.attachment.as_ref().filter(|a| a.file.is_none()) {
            let note = crate::convert::text::missing_attachment_note(a, '_');
            text = if text.is_empty() { note } else { format!("{text}\n\n{note}") };
        }
        if text.is_empty() && m.attachment.is_none() {
            text = "_[empty Hipchat message]_".into();
        }
        let max = match m.conversation {
            Conversation::Room(_) => self.max_runes,
            Conversation::Direct { .. } => self.max_runes.min(DIRECT_POST_MAX_RUNES),
        };
        split_chars_owned(text, max)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_line(&mut self, conv: Conversation, author: &str, text: &str, kind: Option<&'static str>, props: Option<serde_json::Value>, attachments: Vec<AttachmentRef>, create_at: i64, sink: &mut Sink) -> Result<()> {
        match conv {
            Conversation::Room(rid) => {
                let channel = &self.dir.channels[&rid].name;
                let line = PostLine { team: &self.dir.team, channel, user: author, kind, message: text, props, create_at, attachments };
                sink.line_with("post", |w| line.write_json(w))
            }
            Conversation::Direct { low, high } => {
                self.write_direct_channels(sink)?;
                let members = [self.dir.username(low), self.dir.username(high)];
                let line = DirectPostLine { channel_members: &members, user: author, message: text, create_at, attachments };
                sink.line_with("direct_post", |w| line.write_json(w))
            }
        }
    }

    fn members(&self, low: UserId, high: UserId) -> Vec<String> {
        vec![self.dir.username(low).to_string(), self.dir.username(high).to_string()]
    }

    /// One direct_channel line per private conversation of the catalog, written
    /// between the last post and the first direct_post.
    fn write_direct_channels(&mut self, sink: &mut Sink) -> Result<()> {
        if self.direct_channels_written {
            return Ok(());
        }
        self.direct_channels_written = true;
        for conv in self.conversations {
            if let Conversation::Direct { low, high } = *conv {
                sink.line("direct_channel", &DirectChannelLine { members: self.members(low, high) })?;
            }
        }
        Ok(())
    }
}

/// Records a message skip and, when its file exists, the attachment skip with it.
fn skip_with_attachment(m: &Message, reason: SkipReason, detail: String, report: &mut Report) {
    let id = format!("{} {} {}", m.conversation, m.id, m.time);
    if m.attachment.as_ref().is_some_and(|a| a.file.is_some()) {
        report.skip(Entity::Attachment, &id, reason, format!("attachment of a skipped message: {detail}"));
    }
    report.skip(Entity::Message, id, reason, detail);
}
