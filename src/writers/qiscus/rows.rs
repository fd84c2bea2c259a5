//! The three row shapes the Qiscus import API reads, with its exact key names.
//!
//! Key spelling is the API's, not ours: users carry `CreateAt`, rooms and comments
//! `CreatedAt` (FORMATS.md 3.2). Field order is fixed by the struct, which keeps the
//! output byte-identical across runs.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use crate::convert::json::{bool_field, field, str_field};

use crate::model::Timestamp;

/// One row of `users-NNNN.json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UserRow {
    /// Unique, lowercase; the user's identity everywhere else in the import.
    #[serde(rename = "Email")]
    pub email: String,
    /// Display name.
    #[serde(rename = "Name")]
    pub name: String,
    /// https URL of the avatar, or empty.
    #[serde(rename = "AvatarUrl")]
    pub avatar_url: String,
    /// Unique token, derived from the secret.
    #[serde(rename = "AuthenticationToken")]
    pub authentication_token: String,
    /// Plain password (Qiscus hashes it), derived from the secret.
    #[serde(rename = "Password")]
    pub password: String,
    /// RFC 3339; note the API's spelling.
    #[serde(rename = "CreateAt")]
    pub create_at: String,
}

/// One row of `rooms-NNNN.json`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RoomRow {
    /// Group name (Qiscus replaces it for single rooms).
    #[serde(rename = "Name")]
    pub name: String,
    /// `group` or `single`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// JSON text with what Qiscus has no field for.
    #[serde(rename = "Options")]
    pub options: String,
    /// An existing user, and one of the participants.
    #[serde(rename = "CreatorEmail")]
    pub creator_email: String,
    /// RFC 3339.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// Always empty: Hipchat rooms have no avatar.
    #[serde(rename = "AvatarUrl")]
    pub avatar_url: String,
    /// Stable id derived from the Hipchat room or conversation.
    #[serde(rename = "UniqueId")]
    pub unique_id: String,
    /// Every participant; exactly two for `single`.
    #[serde(rename = "ParticipantEmails")]
    pub participant_emails: Vec<String>,
}

/// One row of `comments-NNNN.json`. Borrows what it can: one is made per comment
/// (millions), and each owned field was an allocation and a copy.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CommentRow<'a> {
    /// The text (at most [`super::MAX_MESSAGE_BYTES`] bytes).
    #[serde(rename = "Message")]
    pub message: &'a str,
    /// Qiscus's link preview switch; left on, as Hipchat showed previews.
    #[serde(rename = "DisableLinkPreview")]
    pub disable_link_preview: bool,
    /// Always `text`: the docs advise only `text` and `reply` for imports.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Stable and unique.
    #[serde(rename = "UniqueId")]
    pub unique_id: &'a str,
    /// The author, an existing user.
    #[serde(rename = "CreatorEmail")]
    pub creator_email: &'a str,
    /// The room, an existing room.
    #[serde(rename = "RoomUniqueId")]
    pub room_unique_id: &'a str,
    /// RFC 3339 with milliseconds, strictly increasing within a room.
    #[serde(rename = "CreatedAt")]
    pub created_at: &'a str,
    /// `null` for `text`.
    #[serde(rename = "Payload")]
    pub payload: Option<serde_json::Value>,
    /// `""`: not a reply.
    #[serde(rename = "ParentCommentUniqueId")]
    pub parent_comment_unique_id: &'a str,
}

impl RoomRow {
    /// Appends the row's JSON to `out`: the bytes serde gives for it (tested),
    /// written by hand ([`crate::convert::json`]); an export has a single room
    /// per private conversation, tens of thousands of them.
    pub fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        str_field(out, b"{\"Name\":", &self.name)?;
        str_field(out, b",\"Type\":", self.kind)?;
        str_field(out, b",\"Options\":", &self.options)?;
        str_field(out, b",\"CreatorEmail\":", &self.creator_email)?;
        str_field(out, b",\"CreatedAt\":", &self.created_at)?;
        str_field(out, b",\"AvatarUrl\":", &self.avatar_url)?;
        str_field(out, b",\"UniqueId\":", &self.unique_id)?;
        out.extend_from_slice(b",\"ParticipantEmails\":[");
        for (i, email) in self.participant_emails.iter().enumerate() {
            str_field(out, if i == 0 { b"" } else { b"," }, email)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

impl CommentRow<'_> {
    /// Appends the row's JSON to `out`: the bytes serde gives for it (tested),
    /// written by hand ([`crate::convert::json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        str_field(out, b"{\"Message\":", self.message)?;
        bool_field(out, b",\"DisableLinkPreview\":", self.disable_link_preview)?;
        str_field(out, b",\"Type\":", self.kind)?;
        str_field(out, b",\"UniqueId\":", self.unique_id)?;
        str_field(out, b",\"CreatorEmail\":", self.creator_email)?;
        str_field(out, b",\"RoomUniqueId\":", self.room_unique_id)?;
        str_field(out, b",\"CreatedAt\":", self.created_at)?;
        field(out, b",\"Payload\":", &self.payload)?;
        str_field(out, b",\"ParentCommentUniqueId\":", self.parent_comment_unique_id)?;
        out.push(b'}');
        Ok(())
    }
}

/// RFC 3339 to the second, as in the API's examples (users and rooms).
pub fn rfc3339_seconds(t: Timestamp) -> String {
    t.to_datetime().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 with milliseconds from Unix milliseconds (comments: the finest precision
/// that survives a millisecond store, so bumped ties stay distinct).
pub fn rfc3339_millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// [`rfc3339_millis`] for a stream of times that mostly fall on the same day (a
/// room's comments): chrono makes (and range-checks) the date once per day, and the
/// time of day is written here digit by digit. chrono's full formatting per comment
/// was 4 % of a Qiscus run, and `write!` for the time of day still a tenth of the
/// comment writer's time (perf, 500k).
#[derive(Default)]
pub struct MillisFormatter {
    /// The day last formatted (days since 1970-01-01) and its text up to the `T`.
    day: Option<(i64, String)>,
    text: String,
}

impl MillisFormatter {
    /// The same text as [`rfc3339_millis`]`(ms)`, valid until the next call.
    pub fn format(&mut self, ms: i64) -> &str {
        const DAY_MS: i64 = 86_400_000;
        let (day, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
        if self.day.as_ref().is_none_or(|(d, _)| *d != day) {
            if DateTime::from_timestamp_millis(ms).is_none() {
                // Out of chrono's range: its own fallback text, and no day kept.
                self.day = None;
                self.text = rfc3339_millis(ms);
                return &self.text;
            }
            let start = rfc3339_millis(ms - in_day);
            let date = start.split_once('T').map_or(start.as_str(), |(date, _)| date).to_string();
            self.day = Some((day, date));
        }
        let date = &self.day.as_ref().expect("just set").1;
        self.text.clear();
        self.text.push_str(date);
        self.text.push('T');
        push_digits(&mut self.text, in_day / 3_600_000, 2);
        self.text.push(':');
        push_digits(&mut self.text, in_day / 60_000 % 60, 2);
        self.text.push(':');
        push_digits(&mut self.text, in_day / 1000 % 60, 2);
        self.text.push('.');
        push_digits(&mut self.text, in_day % 1000, 3);
        self.text.push('Z');
        &self.text
    }
}

/// Appends `n` (0 ≤ n < 10^width) as exactly `width` decimal digits.
fn push_digits(out: &mut String, n: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10_i64.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written comment JSON is byte for byte serde's.
    #[test]
    fn comment_rows_are_the_bytes_serde_writes() {
        for (message, flag, payload) in [("plain", false, None), ("\"quoted\" \\ back\nslash \u{1}\u{e9}\u{1f600} </script>", true, Some(serde_json::json!({"a": [1, "b"]})))] {
            let row = CommentRow {
                message,
                disable_link_preview: flag,
                kind: "text",
                unique_id: "r-1-a\"b",
                creator_email: "a@b.c",
                room_unique_id: "hipchat-room-1",
                created_at: "2018-04-02T15:50:44.942Z",
                payload,
                parent_comment_unique_id: "",
            };
            let mut ours = Vec::new();
            row.write_json(&mut ours).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&row).unwrap());
        }
    }

    /// The hand-written room JSON is byte for byte serde's.
    #[test]
    fn room_rows_are_the_bytes_serde_writes() {
        for participants in [vec![], vec!["a@b.c".to_string()], vec!["a@b.c".to_string(), "q\"uote\\@x\u{1}\u{e9}".to_string()]] {
            let row = RoomRow {
                name: "Room \"1\"\n\u{1f600}".into(),
                kind: "group",
                options: r#"{"source":"hipchat","topic":"a\"b"}"#.into(),
                creator_email: "a@b.c".into(),
                created_at: "2018-04-02T15:50:44Z".into(),
                avatar_url: String::new(),
                unique_id: "hipchat-room-1".into(),
                participant_emails: participants,
            };
            let mut ours = Vec::new();
            row.write_json(&mut ours).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&row).unwrap());
        }
    }

    #[test]
    fn key_spelling_and_time_formats() {
        let u = UserRow { email: "a@b".into(), name: "A".into(), avatar_url: String::new(), authentication_token: "t".into(), password: "p".into(), create_at: "x".into() };
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, r#"{"Email":"a@b","Name":"A","AvatarUrl":"","AuthenticationToken":"t","Password":"p","CreateAt":"x"}"#);
        assert_eq!(rfc3339_seconds(Timestamp(1_522_684_244_942_827)), "2018-04-02T15:50:44Z");
        assert_eq!(rfc3339_millis(1_522_684_244_942), "2018-04-02T15:50:44.942Z");
        assert_eq!(rfc3339_millis(1_522_684_244_000), "2018-04-02T15:50:44.000Z");
        let mut f = MillisFormatter::default();
        for ms in [1_522_684_244_942, 1_522_684_244_943, 0, -1, -86_400_000, -86_400_001, 86_399_999, 253_402_300_799_999, -62_135_596_800_000, i64::MAX, i64::MIN, 1_522_627_200_000] {
            assert_eq!(f.format(ms), rfc3339_millis(ms), "{ms}");
        }
        // Every field's every digit, across a day edge and back: the cached day must
        // never serve a time of another day.
        for ms in (1_522_540_800_000 - 3_700_000..1_522_540_800_000 + 3_700_000).step_by(997).chain([1_522_540_799_999, 5, i64::MAX, 7]) {
            assert_eq!(f.format(ms), rfc3339_millis(ms), "{ms}");
        }
    }
}
