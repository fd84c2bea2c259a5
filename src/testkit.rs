//! Makes hc-migrate exports with known contents: the bundled fixture, the test
//! fixtures and the benchmark's large exports all come from here, so anyone can
//! remake them (`cargo run --example gen_fixture -- --help`).
//!
//! The quirks fixture holds every message kind and every deviation HIPCHAT.md lists;
//! its [`Manifest`] states what is in it, counted while it is built (not by reading it
//! back), so tests compare the reader against an independent truth.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::{json, Value};

use crate::archive::crypto::{EncryptWriter, Kdf};

mod integrations;

/// The password of the bundled fixture (also in `fixtures/quirks.password`).
pub const FIXTURE_PASSWORD: &str = "hipchat export 2018!";

/// One file inside an export.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path inside the archive.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// How to package an export.
#[derive(Clone, Copy, Debug)]
pub enum Container {
    /// A plain tar.
    Tar,
    /// gzip'd tar.
    TarGz,
    /// gzip'd tar encrypted like `openssl enc -aes-256-cbc -salt` with this derivation.
    Encrypted(Kdf),
}

/// What the quirks fixture contains, counted as it was built.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Manifest {
    /// Entries in users.json (a duplicate included).
    pub users_listed: u64,
    /// Distinct user ids in users.json.
    pub users_distinct: u64,
    /// Entries in rooms.json.
    pub rooms_listed: u64,
    /// Messages read from all history files, copies included.
    pub messages_raw: u64,
    /// Raw count per kind.
    pub raw_by_kind: BTreeMap<String, u64>,
    /// Distinct messages.
    pub messages_unique: u64,
    /// Distinct per kind.
    pub unique_by_kind: BTreeMap<String, u64>,
    /// Second copies (same entry twice in a room file, PMs in both histories).
    pub duplicates: u64,
    /// Unique messages with a `deleted` object.
    pub deleted: u64,
    /// Attachments on unique messages.
    pub attachments_referenced: u64,
    /// Of those, whose file is absent from the export.
    pub attachments_missing: u64,
    /// Sender ids not in users.json.
    pub unknown_senders: Vec<u64>,
    /// Private conversations (pairs of users, self-chats included).
    pub private_conversations: u64,
    /// Emoticons in emoticons.json.
    pub emoticons_listed: u64,
    /// Emoticons whose image is absent.
    pub emoticons_missing: u64,
    /// Emoticon image files (all sizes).
    pub emoticon_images: u64,
    /// Users with an avatar found.
    pub avatars: u64,
    /// Unique room messages whose text is longer than 10 000 characters.
    pub long_messages: u64,
}

/// Builds history arrays while counting what goes in.
struct History {
    items: Vec<Value>,
}

impl History {
    fn new() -> Self {
        History { items: Vec::new() }
    }

    /// Adds a message; `copy` marks a second copy of an earlier one.
    fn push(&mut self, m: &mut Manifest, kind: &str, body: Value, copy: bool) {
        *m.raw_by_kind.entry(kind.to_string()).or_default() += 1;
        m.messages_raw += 1;
        if copy {
            m.duplicates += 1;
        } else {
            m.messages_unique += 1;
            *m.unique_by_kind.entry(kind.to_string()).or_default() += 1;
            if body.get("deleted").is_some() {
                m.deleted += 1;
            }
            if body.get("attachment").is_some_and(|a| !a.is_null()) || body.get("attachment_path").is_some_and(|a| !a.is_null()) {
                m.attachments_referenced += 1;
            }
        }
        self.items.push(json!({ kind: body }));
    }

    /// Newest first, as real history files tend to look.
    fn newest_first(mut self) -> Value {
        self.items.reverse();
        Value::Array(self.items)
    }
}

fn sender(id: u64, name: &str) -> Value {
    json!({"id": id, "mention_name": "", "name": name, "version": ""})
}

fn user_msg(id: &str, from: u64, name: &str, text: &str, ts: &str) -> Value {
    json!({"id": id, "type": "muc_message", "sender": sender(from, name), "message": text, "timestamp": ts})
}

fn private_msg(id: &str, from: u64, to: u64, text: &str, ts: &str) -> Value {
    json!({"id": id, "attachment": null, "attachment_path": null, "mentions": [], "message": text,
        "receiver": sender(to, ""), "sender": sender(from, ""), "timestamp": ts, "type": "private"})
}

fn attachment(path: &str, size: u64, from: u64, thumb: Option<&str>) -> Value {
    json!({"name": path, "path": path, "size": size, "url": "", "created": "2018-04-02T15:41:41Z", "senderid": from, "thumbnail": thumb.unwrap_or("")})
}

/// A tiny valid PNG of one colour, so targets that decode images accept it.
pub fn tiny_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    // Each scanline: filter byte 0, then the pixels.
    let mut scanline = vec![0u8];
    for _ in 0..width {
        scanline.extend_from_slice(&rgb);
    }
    let raw = scanline.repeat(height as usize);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("in memory");
    chunk(&mut png, b"IDAT", &z.finish().expect("in memory"));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn json_entry(path: &str, v: &Value) -> Entry {
    Entry { path: path.to_string(), bytes: serde_json::to_vec_pretty(v).expect("json") }
}

/// The quirks fixture: every message kind and every deviation real exports show.
/// Entries come histories first (before users.json and rooms.json), as the reader
/// must not depend on order.
pub fn quirks_fixture() -> (Vec<Entry>, Manifest) {
    let mut m = Manifest::default();
    let mut entries = Vec::new();
    let photo = tiny_png(8, 8, [200, 40, 40]);
    let room_file = tiny_png(16, 12, [40, 200, 40]);
    let pm_file = tiny_png(12, 16, [40, 40, 200]);

    // --- room 1 "Default": every room kind, newest-first, copies and odd shapes.
    let mut h = History::new();
    h.push(&mut m, "UserMessage", user_msg("2088ec9e-dd0d-4214-8f74-45e2fb85109c", 1, "HCDC User", "anyone here? @OtherUser (hcdc)", "2018-04-02T15:40:44Z 942827"), false);
    h.push(&mut m, "UserMessage", json!({"id": "6f0c7db4-ad21-4eeb-8f1a-cbcdda84b066", "type": "muc_message", "sender": sender(1, "HCDC User"),
        "message": "https://example.com/logo.png", "timestamp": "2018-04-02T15:41:32Z 133009",
        "metadata": [{"url": "https://example.com/logo.png", "image": "https://example.com/logo.png", "type": "image", "name": ""}]}), false);
    let mut up = user_msg("500a3362-c904-4fcb-a5a6-230c618bbd76", 2, "Other User", "File uploaded: https://hipchat.example.com/files/1/1/BcudLU14VxUEeUK/GOPR4259.png", "2018-04-02T15:41:41Z 865877");
    up["attachment"] = attachment("BcudLU14VxUEeUK/GOPR4259.png", 3_368_233, 2, Some("BcudLU14VxUEeUK/GOPR4259_thumb.png"));
    h.push(&mut m, "UserMessage", up.clone(), false);
    h.push(&mut m, "UserMessage", up, true); // the document's own duplicate entry
    // Two different messages, same text, same millisecond: must stay two.
    h.push(&mut m, "UserMessage", user_msg("a1", 2, "Other User", "+1", "2018-04-02T15:42:00Z 100100"), false);
    h.push(&mut m, "UserMessage", user_msg("a2", 1, "HCDC User", "+1", "2018-04-02T15:42:00Z 100900"), false);
    // A second message pointing at the same file (the file is used twice).
    let mut again = user_msg("a3", 1, "HCDC User", "same picture again", "2018-04-02T15:43:00Z");
    again["attachment_path"] = json!("BcudLU14VxUEeUK/GOPR4259.png");
    h.push(&mut m, "UserMessage", again, false);
    // An attachment whose file is not in the export.
    let mut gone = user_msg("a4", 2, "Other User", "lost file", "2018-04-02T15:44:00+00:00");
    gone["attachment"] = attachment("ZZZmissing000/report.pdf", 1234, 2, None);
    h.push(&mut m, "UserMessage", gone, false);
    m.attachments_missing += 1;
    h.push(&mut m, "NotificationMessage", json!({"id": "26f32141-8e44-443b-92fa-2d7a97dbb4ac", "type": "notification", "sender": sender(0, "JIRA"),
        "message": "Card <b>Sample link card</b> &amp; <a href=\"http://www.website.com/some-article\">link</a>", "timestamp": "2018-04-02T15:45:53Z 634688",
        "format": "html", "color": "yellow",
        "card": "{\"style\": \"link\", \"description\": \"Two lines\\nof text\", \"title\": \"Sample link card\", \"url\": \"http://www.website.com/some-article\", \"id\": \"c253adc6\"}"}), false);
    h.push(&mut m, "NotificationMessage", json!({"id": "0", "type": "notification", "sender": "Bitbucket", "message": "build <i>passed</i>",
        "timestamp": "2018-04-02T15:46:00Z 000001", "format": "html", "color": "green", "card": null}), false);
    h.push(&mut m, "NotificationMessage", json!({"id": "0", "type": "notification", "sender": "Bitbucket", "message": "build <i>passed</i>",
        "timestamp": "2018-04-02T15:46:00Z 000002", "format": "text", "color": "green"}), false);
    h.push(&mut m, "TopicRoomMessage", json!({"id": "t1", "type": "muc_topic", "sender": sender(1, "HCDC User"), "message": "", "timestamp": "2018-04-02T15:47:00Z 000000", "topic": "this is the purpose of the room"}), false);
    h.push(&mut m, "GuestAccessMessage", json!({"id": "g1", "type": "muc_guest_access", "sender": sender(1, "HCDC User"), "message": "", "timestamp": "2018-04-02T15:48:00Z 000000", "enable_guest_access": true, "url": "https://hipchat.example.com/gQ82tnQz5"}), false);
    h.push(&mut m, "UserMessage", json!({"id": "d1", "type": "muc_message", "sender": sender(2, "Other User"), "message": "", "timestamp": "2018-04-02T15:49:00Z 000000",
        "deleted": {"user_id": 2, "date": "2018-04-02T16:00:00Z", "reason": null}}), false);
    h.push(&mut m, "UserMessage", user_msg("u99", 99, "Ghost Writer", "I am not in users.json", "2018-04-02T15:50:00Z 000000"), false);
    h.push(&mut m, "UserMessage", user_msg("c1", 1, "HCDC User", "/code fn main() {\n    println!(\"hi\");\n}", "2018-04-02T15:51:00Z"), false);
    h.push(&mut m, "UserMessage", user_msg("q1", 2, "Other User", "/quote to be or not to be", "2018-04-02T15:52:00Z"), false);
    h.push(&mut m, "UserMessage", user_msg("me1", 2, "Other User", "/me waves", "2018-04-02T15:53:00Z"), false);
    h.push(&mut m, "UserMessage", user_msg("tag1", 5, "Bob", "keep <username> and </rant> as text", "2018-04-02T15:54:00Z"), false);
    let long: String = (0..1500).map(|i| format!("word{i:04} ")).collect::<String>();
    m.long_messages += 1;
    h.push(&mut m, "UserMessage", user_msg("long1", 1, "HCDC User", &long, "2018-04-02T15:55:00Z"), false);
    let mut odd = user_msg("x1", 2, "Other User", "with an undocumented field", "2018-04-02T15:56:00Z");
    odd["reactions"] = json!([]);
    h.push(&mut m, "UserMessage", odd, false);
    h.push(&mut m, "PollMessage", json!({"id": "p1", "type": "muc_poll", "sender": sender(1, "HCDC User"), "message": "lunch?", "timestamp": "2018-04-02T15:57:00Z"}), false);
    entries.push(json_entry("rooms/1/history.json", &h.newest_first()));
    entries.push(Entry { path: "rooms/1/files/BcudLU14VxUEeUK/img.png".into(), bytes: room_file.clone() });
    entries.push(Entry { path: "rooms/1/files/BcudLU14VxUEeUK/img_thumb.png".into(), bytes: tiny_png(4, 3, [40, 200, 40]) });

    // --- room 2 "Dev Ops" (private): a history wrapped in an extra array.
    let mut h = History::new();
    h.push(&mut m, "UserMessage", user_msg("r2a", 5, "Bob", "private room hello", "2018-04-03T09:00:00Z 000001"), false);
    h.push(&mut m, "UserMessage", user_msg("r2b", 6, "bob", "case twin here", "2018-04-03T09:00:01Z 000001"), false);
    h.push(&mut m, "UserMessage", user_msg("r2c", 3, "Guesty", "guest says hi", "2018-04-03T09:00:02Z 000001"), false);
    entries.push(json_entry("rooms/2/history.json", &json!([h.newest_first()])));

    // --- room 3 "dev-ops": archived only by its last ArchiveRoomMessage.
    let mut h = History::new();
    h.push(&mut m, "ArchiveRoomMessage", json!({"id": "ar1", "type": "muc_archive", "sender": sender(1, "HCDC User"), "message": "", "timestamp": "2018-04-04T10:00:00Z 000000", "is_archived": true}), false);
    h.push(&mut m, "ArchiveRoomMessage", json!({"id": "ar2", "type": "muc_archive", "sender": sender(1, "HCDC User"), "message": "", "timestamp": "2018-04-04T11:00:00Z 000000", "is_archived": false}), false);
    h.push(&mut m, "ArchiveRoomMessage", json!({"id": "ar3", "type": "muc_archive", "sender": sender(1, "HCDC User"), "message": "", "timestamp": "2018-04-04T12:00:00Z 000000", "is_archived": true}), false);
    entries.push(json_entry("rooms/3/history.json", &h.newest_first()));

    // --- room 6: history, but no rooms.json entry.
    let mut h = History::new();
    h.push(&mut m, "UserMessage", user_msg("r6a", 1, "HCDC User", "orphan room", "2018-04-05T10:00:00Z"), false);
    entries.push(json_entry("rooms/6/history.json", &h.newest_first()));

    // --- private histories: each PM in both participants' files.
    let mut h1 = History::new();
    let mut h2 = History::new();
    let pm1 = private_msg("518a7891-9e13-4a85-9bdb-839e5408e56b", 2, 1, "have you heard of https://google.com ?", "2018-04-02T14:54:04Z 777248");
    let mut pm2 = private_msg("cc48cd3d-7d3a-43af-b4e2-02355dad56cd", 2, 1, "nice picture!", "2018-04-02T15:43:42Z 970263");
    pm2["attachment"] = attachment("0Lp9rkaHfzLpPow/img.png", 3_368_233, 2, Some("0Lp9rkaHfzLpPow/img_thumb.png"));
    pm2["attachment_path"] = json!("0Lp9rkaHfzLpPow/img.png");
    let pm3 = private_msg("pm3", 1, 2, "thanks @OtherUser", "2018-04-02T15:44:00Z 000001");
    for (pm, copy) in [(pm1, false), (pm2, false), (pm3, false)] {
        h1.push(&mut m, "PrivateUserMessage", pm.clone(), copy);
        h2.push(&mut m, "PrivateUserMessage", pm, true);
    }
    // Self-chat: appears once.
    h1.push(&mut m, "PrivateUserMessage", private_msg("self1", 1, 1, "note to self", "2018-04-02T16:00:00Z 000000"), false);
    // From the guest: only in user 1's file (the guest has no history file).
    h1.push(&mut m, "PrivateUserMessage", private_msg("g2u", 3, 1, "guest to admin", "2018-04-02T16:01:00Z 000000"), false);
    // A PM whose file sits under users/<id>/files/ (the other layout).
    let mut pm4 = private_msg("pm4", 5, 2, "see attached", "2018-04-02T16:02:00Z 000000");
    pm4["attachment"] = attachment("k9k9k9k9/notes.txt", 11, 5, None);
    h2.push(&mut m, "PrivateUserMessage", pm4, false);
    // From an unknown user (99) to user 2; a deleted PM.
    h2.push(&mut m, "PrivateUserMessage", private_msg("pm99", 99, 2, "ghost PM", "2018-04-02T16:03:00Z 000000"), false);
    let mut del = private_msg("pmdel", 2, 5, "", "2018-04-02T16:04:00Z 000000");
    del["deleted"] = json!({"user_id": 2, "date": "2018-04-02T16:05:00Z", "reason": null});
    h2.push(&mut m, "PrivateUserMessage", del, false);
    entries.push(json_entry("users/1/history.json", &h1.newest_first()));
    entries.push(json_entry("users/2/history.json", &h2.newest_first()));
    entries.push(Entry { path: "users/files/0Lp9rkaHfzLpPow/img.png".into(), bytes: pm_file });
    entries.push(Entry { path: "users/files/0Lp9rkaHfzLpPow/img_thumb.png".into(), bytes: tiny_png(3, 4, [40, 40, 200]) });
    entries.push(Entry { path: "users/5/files/k9k9k9k9/notes.txt".into(), bytes: b"hello notes".to_vec() });
    m.private_conversations = 5; // {1,2} {1,1} {1,3} {2,5} {2,99}
    m.unknown_senders = vec![99];

    // --- avatars: user 1 by path (three sizes); user 2 inline base64 with newlines.
    for (name, px) in [("PrypXtu4rN8sEFL.png", 24), ("PrypXtu4rN8sEFL_125.png", 12), ("PrypXtu4rN8sEFL_36.png", 6)] {
        entries.push(Entry { path: format!("users/1/avatars/{name}"), bytes: tiny_png(px, px, [10, 10, 10]) });
    }
    m.avatars = 2;
    use base64::Engine;
    let inline = base64::engine::general_purpose::STANDARD.encode(&photo);
    let inline_wrapped: String = inline.as_bytes().chunks(20).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n");

    // --- emoticons: hc-migrate shape, four sizes; one whose image is missing.
    for suffix in ["", "@2x", "@3x", "@4x"] {
        entries.push(Entry { path: format!("files/img/emoticons/1/hcdc-1522683674{suffix}.png"), bytes: tiny_png(28, 28, [250, 200, 0]) });
        m.emoticon_images += 1;
    }
    entries.push(json_entry("emoticons.json", &json!({"Emoticons": [
        {"ID": 217, "user_id": 1, "group_id": 1, "path": "1/hcdc-1522683674.png", "shortcut": "hcdc", "width": 28, "height": 28, "audio_path": ""},
        {"ID": 218, "user_id": 2, "group_id": 1, "path": "1/gone-1522683675.png", "shortcut": "gone", "width": 28, "height": 28, "audio_path": ""}
    ]})));
    m.emoticons_listed = 2;
    m.emoticons_missing = 1;

    // --- users.json (after the histories): duplicate entry, null e-mails, case twins.
    let user = |id: u64, name: &str, mention: &str, email: Value, account: &str, roles: Value, deleted: bool, avatar: Value| {
        json!({"User": {"id": id, "name": name, "mention_name": mention, "email": email, "title": "", "avatar": avatar,
            "created": "2018-04-02T15:31:34+00:00", "is_deleted": deleted, "timezone": "Europe/Berlin", "account_type": account,
            "roles": roles, "rooms": [], "metadata": "{\"confirmation_unix_time\": 1522683094}"}})
    };
    let users = json!([
        user(1, "HCDC User", "HCDCUser", json!("User@Example.com"), "admin", json!(["user", "admin", "owner"]), false, json!("files/photos/1/PrypXtu4rN8sEFL.png")),
        user(2, "Other User", "OtherUser", json!("other@example.com"), "user", json!(["user"]), false, json!(inline_wrapped)),
        user(3, "Guesty McGuest", "Guesty", Value::Null, "guest", json!(["user"]), false, Value::Null),
        user(4, "Gone Person", "GonePerson", Value::Null, "user", json!(["user"]), true, Value::Null),
        user(5, "Bob Builder", "Bob", json!("bob@example.com"), "user", json!(["user"]), false, Value::Null),
        user(6, "Bob Twin", "bob", json!("bob@example.com"), "user", json!(["user", "moderator"]), false, Value::Null),
        user(2, "Other User", "OtherUser", json!("other@example.com"), "user", json!(["user"]), false, Value::Null)
    ]);
    m.users_listed = 7;
    m.users_distinct = 6;
    entries.push(json_entry("users.json", &users));

    // --- rooms.json: members as ids and as objects; a name clash; a deleted room.
    let room = |id: u64, name: &str, canonical: &str, privacy: &str, members: Value, admins: Value, archived: bool, deleted: bool, topic: &str| {
        json!({"Room": {"id": id, "created": "2018-04-02T15:31:34+00:00", "guest_access_url": null, "is_archived": archived,
            "members": members, "canonical_name": canonical, "name": name, "owner": 1, "participants": [], "privacy": privacy,
            "room_admins": admins, "topic": topic, "is_deleted": deleted}})
    };
    let rooms = json!([
        room(1, "Default", "default", "public", json!([]), json!([1]), false, false, ""),
        room(2, "Dev Ops", "dev_ops", "private", json!([{"id": 5, "mention_name": "Bob", "name": "Bob Builder", "room_roles": ["room_admin"], "version": ""}, {"id": 6, "mention_name": "bob", "name": "Bob Twin", "room_roles": ["room_member"], "version": ""}, {"id": 3}]), json!([]), false, false, "ops things"),
        room(3, "dev-ops", "dev-ops", "public", json!([1, 2]), json!([1]), false, false, ""),
        room(4, "Deleted room", "deleted_room", "public", json!([1]), json!([1]), false, true, ""),
        room(5, "#####", "hashes", "public", json!([]), json!([]), false, false, "")
    ]);
    m.rooms_listed = 5;
    entries.push(json_entry("rooms.json", &rooms));

    entries.push(json_entry("autojoins.json", &json!({"AutoJoins": [
        {"id": "pref:autoJoin:1", "data": "[{\"jid\":\"1_default@conf.btf.hipchat.com\",\"name\":\"Default\"},{\"jid\":\"1_1@chat.btf.hipchat.com\",\"name\":\"HCDC User\"}]"},
        {"id": "pref:autoJoin:2", "data": "[{\"jid\":\"1_default@conf.btf.hipchat.com\",\"name\":\"Default\"}]"}
    ]})));
    entries.push(json_entry("preferences.json", &json!([{"id": "pref:theme:1", "data": "{\"theme\":\"dark\"}"}])));
    entries.push(json_entry("metadata.json", &json!({"export_version": "3.1.5", "hipchat_version": "3.1.4"})));
    (entries, m)
}

/// Packages `entries` as `container` into `out`. Every archive member is a regular
/// file with a fixed mtime, so the same entries give the same bytes.
pub fn write_export(entries: &[Entry], container: Container, password: &str, out: impl Write) -> io::Result<()> {
    match container {
        Container::Tar => write_tar(entries, out).map(|_| ()),
        Container::TarGz => {
            let gz = write_tar(entries, GzEncoder::new(out, flate2::Compression::default()))?;
            gz.finish().map(|_| ())
        }
        Container::Encrypted(kdf) => {
            let enc = EncryptWriter::new(out, password.as_bytes(), *b"hcconv\x00\x01", kdf)?;
            let gz = write_tar(entries, GzEncoder::new(enc, flate2::Compression::default()))?;
            gz.finish()?.finish().map(|_| ())
        }
    }
}

fn write_tar<W: Write>(entries: &[Entry], out: W) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_522_683_094);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &e.path, e.bytes.as_slice())?;
    }
    tar.into_inner()
}

/// Sizes of a synthetic export for benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct ScaleSpec {
    /// Total room messages.
    pub messages: u64,
    /// Rooms.
    pub rooms: u64,
    /// Users.
    pub users: u64,
    /// One message in this many carries an attachment (0: none).
    pub attachment_every: u64,
    /// Bytes per attachment file.
    pub attachment_bytes: usize,
    /// Share of private messages, in percent of `messages`.
    pub private_percent: u64,
    /// How the export is shaped.
    pub shape: ScaleShape,
}

/// The shape of a generated export: what the benchmark measures on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScaleShape {
    /// Short texts, about 20 posters per room, `attachment_every` files of
    /// `attachment_bytes`, private messages in the sender's history only,
    /// users.json and rooms.json first.
    #[default]
    Default,
    /// As independent exports were found to be: texts of 40-400 characters (one
    /// message in 20 000 of 24 000; about 450-500 bytes of JSON per message), UUID
    /// message ids, history files newest first, rooms whose members are a quarter
    /// of the users (at least 20) all posting, small files (10 B-3 kB) on
    /// `attachment_every` messages, each private message in both participants'
    /// histories, and users.json and rooms.json as the last entries of the tar.
    TextHeavy,
    /// The text-heavy shape with rooms full of integrations, as issue 23's
    /// independent export was: 35 % of room messages are notifications in every
    /// form HIPCHAT.md lists (HTML and plain text, with and without cards, from
    /// `{id: 0}` senders, bare integration names and people; see
    /// `testkit/integrations.rs`); private messages spread over as many distinct
    /// pairs as the users allow (nine in ten to a partner the sender writes to once),
    /// one room message in 300 of 4 000-6 000 characters, and one attachment in 20
    /// whose file the export lacks.
    IntegrationHeavy,
}

/// Writes a large synthetic export, one history at a time (memory stays at one
/// room's history), for the benchmark.
pub fn write_scaled_export(spec: ScaleSpec, container: Container, password: &str, out: impl Write) -> io::Result<()> {
    match container {
        Container::Tar => scaled_tar(spec, out).map(|_| ()),
        Container::TarGz => scaled_tar(spec, GzEncoder::new(out, flate2::Compression::fast()))?.finish().map(|_| ()),
        Container::Encrypted(kdf) => {
            let enc = EncryptWriter::new(out, password.as_bytes(), *b"hcconvB\x01", kdf)?;
            scaled_tar(spec, GzEncoder::new(enc, flate2::Compression::fast()))?.finish()?.finish().map(|_| ())
        }
    }
}

fn scaled_tar<W: Write>(spec: ScaleSpec, out: W) -> io::Result<W> {
    if matches!(spec.shape, ScaleShape::TextHeavy | ScaleShape::IntegrationHeavy) {
        return text_heavy_tar(spec, out);
    }
    let mut tar = tar::Builder::new(out);
    let add = add_entry::<W>;
    add(&mut tar, "users.json", &serde_json::to_vec(&scale_users(spec.users))?)?;
    let rooms: Vec<Value> = (1..=spec.rooms)
        .map(|i| json!({"Room": {"id": i, "created": "2015-01-01T00:00:00+00:00", "guest_access_url": null, "is_archived": false, "members": [],
            "canonical_name": format!("room{i}"), "name": format!("Room {i}"), "owner": 1, "participants": [], "privacy": "public", "room_admins": [1], "topic": "", "is_deleted": false}}))
        .collect();
    add(&mut tar, "rooms.json", &serde_json::to_vec(&rooms)?)?;
    let private = spec.messages * spec.private_percent / 100;
    let room_msgs = spec.messages - private;
    let base = 1_420_070_400_i64; // 2015-01-01
    let mut seq = 0u64;
    let stamp = |seq: u64| {
        let t = base + (seq as i64) * 7;
        let dt = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        format!("{} {:06}", dt.format("%Y-%m-%dT%H:%M:%SZ"), (seq * 7919) % 1_000_000)
    };
    for r in 1..=spec.rooms {
        let n = room_msgs / spec.rooms + u64::from(r <= room_msgs % spec.rooms);
        let mut buf = Vec::with_capacity((n as usize) * 260);
        buf.push(b'[');
        for i in 0..n {
            seq += 1;
            // About 20 regular posters per room, as in real rooms.
            let from = 1 + (r * 7 + seq % 20) % spec.users;
            let mut msg = json!({"id": format!("{r:08x}-{i:012x}"), "type": "muc_message", "sender": {"id": from, "mention_name": "", "name": format!("User {from}"), "version": ""},
                "message": format!("message {seq} in room {r}: the quick brown fox jumps over the lazy dog"), "timestamp": stamp(seq)});
            if spec.attachment_every > 0 && seq.is_multiple_of(spec.attachment_every) {
                let bytes: Vec<u8> = (0..spec.attachment_bytes).map(|k| ((k as u64 * 31 + seq) % 251) as u8).collect();
                attach(&mut tar, &mut msg, r, &format!("f{seq:010}/file{seq}.bin"), from, &bytes)?;
            }
            push_element(&mut buf, i == 0, &json!({"UserMessage": msg}))?;
        }
        buf.push(b']');
        add(&mut tar, &format!("rooms/{r}/history.json"), &buf)?;
    }
    // Private messages, each in both participants' histories, grouped per user.
    let per_user = if spec.users > 1 { private / spec.users.max(1) } else { 0 };
    for u in 1..=spec.users {
        if per_user == 0 {
            break;
        }
        let mut buf = vec![b'['];
        for i in 0..per_user {
            seq += 1;
            let other = 1 + (u + i % 7) % spec.users;
            let msg = json!({"PrivateUserMessage": {"id": format!("p{u:06}-{i:010}"), "attachment": null, "attachment_path": null, "mentions": [],
                "message": format!("private {i} from {u}"), "receiver": {"id": other}, "sender": {"id": u}, "timestamp": stamp(seq), "type": "private"}});
            if i > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut buf, &msg)?;
        }
        buf.push(b']');
        add(&mut tar, &format!("users/{u}/history.json"), &buf)?;
    }
    tar.into_inner()
}

/// Appends one tar entry with fixed metadata (so two runs give the same bytes).
fn add_entry<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_522_683_094);
    tar.append_data(&mut header, path, bytes)
}

/// users.json's rows for users 1..=n.
fn scale_users(n: u64) -> Vec<Value> {
    (1..=n)
        .map(|i| json!({"User": {"id": i, "name": format!("User {i}"), "mention_name": format!("user{i}"), "email": format!("user{i}@example.com"),
            "title": "", "avatar": null, "created": "2015-01-01T00:00:00+00:00", "is_deleted": false, "timezone": "UTC", "account_type": "user", "roles": ["user"], "rooms": []}}))
        .collect()
}

/// Gives room `r`'s message `msg` an attachment at `path` holding `bytes`, and adds
/// the file to the tar.
fn attach<W: Write>(tar: &mut tar::Builder<W>, msg: &mut Value, r: u64, path: &str, from: u64, bytes: &[u8]) -> io::Result<()> {
    list_attachment(msg, path, bytes.len(), from);
    add_entry(tar, &format!("rooms/{r}/files/{path}"), bytes)
}

/// Gives `msg` an attachment object for a file at `path` of `size` bytes.
fn list_attachment(msg: &mut Value, path: &str, size: usize, from: u64) {
    msg["attachment"] = json!({"name": path, "path": path, "size": size, "url": "", "created": "2015-01-01T00:00:00Z", "senderid": from, "thumbnail": ""});
}

/// Appends `value` to a JSON array being written into `buf` (`[` already there).
fn push_element(buf: &mut Vec<u8>, first: bool, value: &Value) -> io::Result<()> {
    if !first {
        buf.push(b',');
    }
    serde_json::to_writer(buf, value).map_err(io::Error::from)
}

/// Words for generated texts.
const WORDS: [&str; 16] = ["deploy", "review", "the", "build", "is", "green", "again", "after", "lunch", "please", "check", "ticket", "and", "merge", "it", "today"];

/// A text of about `len` characters, made of words picked by `seed`.
fn text_of(len: usize, seed: u64) -> String {
    let mut out = String::with_capacity(len + 8);
    let mut k = seed;
    while out.len() < len {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.push_str(WORDS[(k >> 60) as usize]);
        out.push(' ');
    }
    out.truncate(len);
    out
}

/// A message id shaped like Hipchat's (a UUID), made from `seq`.
fn uuid_of(seq: u64) -> String {
    let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", h >> 32, (h >> 16) & 0xffff, h & 0xfff, (seq >> 48) & 0xfff, seq & 0xffff_ffff_ffff)
}

/// A history file's bytes with its elements newest first, as real history files
/// look (HIPCHAT.md): the elements were made oldest first.
fn newest_first(elements: Vec<Value>) -> io::Result<Vec<u8>> {
    let mut buf = vec![b'['];
    for (i, element) in elements.iter().rev().enumerate() {
        push_element(&mut buf, i == 0, element)?;
    }
    buf.push(b']');
    Ok(buf)
}

/// [`ScaleShape::TextHeavy`] and [`ScaleShape::IntegrationHeavy`]: histories
/// first, metadata last; each private message lands in both participants' files,
/// built one file at a time (user `u` receives message `i` of user `u - step(i)`,
/// so no file needs another in memory).
fn text_heavy_tar<W: Write>(spec: ScaleSpec, out: W) -> io::Result<W> {
    let integrations = spec.shape == ScaleShape::IntegrationHeavy;
    let mut tar = tar::Builder::new(out);
    let add = add_entry::<W>;
    let users = spec.users.max(2);
    let members = (users / 4).max(20).min(users);
    let private = spec.messages * spec.private_percent / 100;
    let room_msgs = spec.messages - private;
    let base = 1_420_070_400_i64;
    let stamp = |seq: u64| {
        let dt = chrono::DateTime::from_timestamp(base + (seq as i64) * 3, 0).unwrap_or_default();
        format!("{} {:06}", dt.format("%Y-%m-%dT%H:%M:%SZ"), (seq * 7919) % 1_000_000)
    };
    let text_len = |seq: u64| match seq {
        _ if seq % 20_000 == 19_999 => 24_000,
        _ if integrations && seq % 300 == 150 => 4_000 + (seq % 2_001) as usize,
        _ => 40 + ((seq * 2_654_435_761) % 361) as usize,
    };
    let first_member = |r: u64| 1 + (r * 37) % users;
    let mut seq = 0u64;
    for r in 1..=spec.rooms {
        let n = room_msgs / spec.rooms + u64::from(r <= room_msgs % spec.rooms);
        let mut elements = Vec::with_capacity(n as usize);
        for _ in 0..n {
            seq += 1;
            let from = 1 + (first_member(r) - 1 + (seq * 40_503) % members) % users;
            if integrations && integrations::is_notification(seq) {
                elements.push(integrations::notification(seq, from, uuid_of(seq), stamp(seq)));
                continue;
            }
            let mut msg = json!({"id": uuid_of(seq), "type": "muc_message", "sender": {"id": from, "mention_name": format!("user{from}"), "name": format!("User {from}"), "version": "00000000"},
                "message": text_of(text_len(seq), seq), "timestamp": stamp(seq), "mentions": []});
            if spec.attachment_every > 0 && seq.is_multiple_of(spec.attachment_every) {
                let size = 10 + ((seq * 97) % 2_991) as usize;
                let bytes: Vec<u8> = (0..size).map(|k| b'a' + ((k as u64 + seq) % 26) as u8).collect();
                if integrations && seq % (spec.attachment_every * 20) == 0 {
                    // Listed, but not in the export.
                    list_attachment(&mut msg, &format!("f{seq:010}/lost{seq}.txt"), size, from);
                } else {
                    attach(&mut tar, &mut msg, r, &format!("f{seq:010}/note{seq}.txt"), from, &bytes)?;
                }
            }
            elements.push(json!({"UserMessage": msg}));
        }
        add(&mut tar, &format!("rooms/{r}/history.json"), &newest_first(elements)?)?;
    }
    // Private messages: user u sends `per_user`, message i to u + step(i).
    let per_user = private / users;
    let step = |i: u64| if integrations { integrations::private_step(i, users) } else { 1 + (i % 29) * 7 % (users - 1) };
    let private_msg = |from: u64, i: u64| {
        let to = 1 + (from - 1 + step(i)) % users;
        let seq = 1_000_000_000 + from * 1_000_000 + i;
        json!({"PrivateUserMessage": {"id": uuid_of(seq), "attachment": null, "attachment_path": null, "mentions": [],
            "message": text_of(text_len(seq), seq), "receiver": {"id": to, "mention_name": format!("user{to}"), "name": format!("User {to}")},
            "sender": {"id": from, "mention_name": format!("user{from}"), "name": format!("User {from}")}, "timestamp": stamp(seq % 50_000_000), "type": "private"}})
    };
    for u in 1..=users {
        if per_user == 0 {
            break;
        }
        let mut elements = Vec::with_capacity(2 * per_user as usize);
        for i in 0..per_user {
            let received_from = 1 + (u - 1 + users - step(i)) % users;
            elements.extend([private_msg(u, i), private_msg(received_from, i)]);
        }
        add(&mut tar, &format!("users/{u}/history.json"), &newest_first(elements)?)?;
    }
    let room_rows: Vec<Value> = (1..=spec.rooms)
        .map(|r| {
            let members: Vec<u64> = (0..members).map(|k| 1 + (first_member(r) - 1 + k) % users).collect();
            json!({"Room": {"id": r, "created": "2015-01-01T00:00:00+00:00", "guest_access_url": null, "is_archived": false, "members": members,
                "canonical_name": format!("room{r}"), "name": format!("Room {r}"), "owner": first_member(r), "participants": [], "privacy": "public", "room_admins": [first_member(r)], "topic": "", "is_deleted": false}})
        })
        .collect();
    add(&mut tar, "users.json", &serde_json::to_vec(&scale_users(users))?)?;
    add(&mut tar, "rooms.json", &serde_json::to_vec(&room_rows)?)?;
    tar.into_inner()
}

/// Names the phase where a run pauses for a test (see [`pause_point`]).
pub const PAUSE_AT_ENV: &str = "HCCONV_TEST_PAUSE_AT";
/// Names the file a paused run announces itself in (see [`pause_point`]).
pub const PAUSE_FILE_ENV: &str = "HCCONV_TEST_PAUSE_FILE";

/// A test hook, so tests act on a run at a known moment instead of after a guessed
/// sleep (which a loaded CI machine turns into a flaky test). With
/// `HCCONV_TEST_PAUSE_AT=PHASE` and `HCCONV_TEST_PAUSE_FILE=FILE` in its
/// environment, a run that reaches PHASE writes its pid to FILE (whole, by a rename)
/// and waits there until FILE is removed; once per phase. The phases: `staged` (OUT's
/// lock and hidden folders made, nothing read), `read` (the export read, nothing
/// written), `writing` (half the messages handed to the writer), `written` (the
/// output complete in its hidden folder), `committed` (OUT in place, the scratch
/// folder still being removed, the lock still held).
///
/// Only in builds with the testkit feature (the tests' build of the binary), never
/// in a release binary, and no part of the command-line contract.
pub fn pause_point(phase: &str) {
    if std::env::var_os(PAUSE_AT_ENV).is_none_or(|p| p != phase) {
        return;
    }
    let Some(file) = std::env::var_os(PAUSE_FILE_ENV).map(std::path::PathBuf::from) else { return };
    static PAUSED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    {
        let mut paused = PAUSED.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::replace(&mut *paused, true) {
            return;
        }
    }
    let mut announcing = file.clone().into_os_string();
    announcing.push(".tmp");
    if std::fs::write(&announcing, std::process::id().to_string()).and_then(|()| std::fs::rename(&announcing, &file)).is_err() {
        return;
    }
    while file.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
