//! The JSONL line bodies hcconv writes, with the server's field names
//! (`import_types.go`). Optional fields are left out when empty, so every line
//! carries only what the validators have to look at. Field order is the struct
//! order, which keeps the output byte-stable.

use std::io::{self, Write};

use serde::Serialize;

use crate::convert::json::{field, integer_field, str_field};

/// `{"type":"version","version":1,"info":{…}}`, the mandatory first line.
#[derive(Serialize)]
pub struct VersionLine {
    /// Always `version`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always 1.
    pub version: u32,
    /// Who made the file (no creation time: output must be reproducible).
    pub info: VersionInfo,
}

/// The optional `info` object of the version line.
#[derive(Serialize)]
pub struct VersionInfo {
    /// `hcconv`.
    pub generator: &'static str,
    /// hcconv's version.
    pub version: &'static str,
}

/// A custom emoji.
#[derive(Serialize)]
pub struct EmojiLine {
    /// Name without colons.
    pub name: String,
    /// Image path relative to `data/`.
    pub image: String,
}

/// The one team everything is imported into.
#[derive(Serialize)]
pub struct TeamLine {
    /// URL name.
    pub name: String,
    /// Shown name.
    pub display_name: String,
    /// `O` (open).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short text about where the team came from.
    pub description: String,
    /// `true`: current servers turn a team without it into invite-only.
    pub allow_open_invite: bool,
}

/// A channel made from a room.
#[derive(Serialize)]
pub struct ChannelLine {
    /// Team name.
    pub team: String,
    /// URL name.
    pub name: String,
    /// Shown name.
    pub display_name: String,
    /// `O` or `P`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// From the room topic.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub header: String,
    /// The full room name when the display name had to be shortened.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// Archive time for archived or deleted rooms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

/// A user (a person, a placeholder or an integration).
#[derive(Serialize)]
pub struct UserLine {
    /// Login name.
    pub username: String,
    /// Lowercase, unique e-mail.
    pub email: String,
    /// From the first word of the Hipchat name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub first_name: String,
    /// From the rest of the Hipchat name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_name: String,
    /// From the Hipchat title.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub position: String,
    /// System roles.
    pub roles: &'static str,
    /// Deactivation time for deleted, placeholder and integration users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<i64>,
    /// Avatar path relative to `data/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_image: Option<String>,
    /// Team (and channel) memberships.
    pub teams: Vec<TeamMembership>,
}

/// A user's membership in the team.
#[derive(Serialize)]
pub struct TeamMembership {
    /// Team name.
    pub name: String,
    /// Team roles.
    pub roles: &'static str,
    /// Channel memberships in that team.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelMembership>,
}

/// A user's membership in one channel.
#[derive(Serialize)]
pub struct ChannelMembership {
    /// Channel name.
    pub name: String,
    /// Channel roles.
    pub roles: &'static str,
}

/// A file attached to a post.
#[derive(Serialize)]
pub struct AttachmentRef {
    /// Path relative to `data/`.
    pub path: String,
}

/// A room message.
#[derive(Serialize)]
pub struct PostLine<'a> {
    /// Team name.
    pub team: &'a str,
    /// Channel name.
    pub channel: &'a str,
    /// Author's username.
    pub user: &'a str,
    /// A system post type, only for events that have one.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Text (one part of it, for split messages).
    pub message: &'a str,
    /// Props of a system post.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<serde_json::Value>,
    /// Milliseconds, unique within the channel.
    pub create_at: i64,
    /// Attached files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// A direct (or self) conversation.
#[derive(Serialize)]
pub struct DirectChannelLine {
    /// The two usernames (the same one twice for a self-chat).
    pub members: Vec<String>,
}

/// A private message.
#[derive(Serialize)]
pub struct DirectPostLine<'a> {
    /// The conversation's two usernames, as in its direct_channel line.
    pub channel_members: &'a [&'a str],
    /// Author's username.
    pub user: &'a str,
    /// Text (one part of it, for split messages).
    pub message: &'a str,
    /// Milliseconds, unique within the conversation.
    pub create_at: i64,
    /// Attached files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// Post lines are written by hand ([`crate::convert::json`]), byte for byte as
/// serde writes them (tested below).
impl PostLine<'_> {
    /// Writes the line's value (the object under `"post"`).
    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        str_field(w, b"{\"team\":", self.team)?;
        str_field(w, b",\"channel\":", self.channel)?;
        str_field(w, b",\"user\":", self.user)?;
        if let Some(kind) = self.kind {
            str_field(w, b",\"type\":", kind)?;
        }
        str_field(w, b",\"message\":", self.message)?;
        if let Some(props) = &self.props {
            field(w, b",\"props\":", props)?;
        }
        write_tail(w, self.create_at, &self.attachments)
    }
}

impl DirectPostLine<'_> {
    /// Writes the line's value (the object under `"direct_post"`).
    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        field(w, b"{\"channel_members\":", self.channel_members)?;
        str_field(w, b",\"user\":", self.user)?;
        str_field(w, b",\"message\":", self.message)?;
        write_tail(w, self.create_at, &self.attachments)
    }
}

/// `create_at`, the attachments if any, and the closing brace.
fn write_tail(w: &mut impl Write, create_at: i64, attachments: &[AttachmentRef]) -> io::Result<()> {
    integer_field(w, b",\"create_at\":", create_at)?;
    if !attachments.is_empty() {
        field(w, b",\"attachments\":", attachments)?;
    }
    w.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\"quoted\" \\ back\nslash \u{1}\u{e9}\u{1f600} </b>";

    fn attachments(n: usize) -> Vec<AttachmentRef> {
        (0..n).map(|i| AttachmentRef { path: format!("rooms/1/files/{i}/a \"b\".png") }).collect()
    }

    /// The hand-written post lines are byte for byte serde's, with and without
    /// every optional field.
    #[test]
    fn post_lines_are_the_bytes_serde_writes() {
        for (kind, props, files, create_at) in [(None, None, 0, 1), (Some("system_header_change"), Some(serde_json::json!({"old_header": TEXT, "n": [1, 2]})), 2, -5), (None, None, 1, i64::MAX)] {
            let line = PostLine { team: "t", channel: "c-1", user: "ann", kind, message: TEXT, props, create_at, attachments: attachments(files) };
            let mut ours = Vec::new();
            line.write_json(&mut ours).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&line).unwrap());
            let members = ["ann", "bob"];
            let direct = DirectPostLine { channel_members: &members, user: "bob", message: TEXT, create_at, attachments: attachments(files) };
            let mut ours = Vec::new();
            direct.write_json(&mut ours).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&direct).unwrap());
        }
    }
}
