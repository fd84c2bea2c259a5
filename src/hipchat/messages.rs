//! Room and private history elements → [`Message`].
//!
//! Accepts the five room kinds and PrivateUserMessage with every documented field,
//! plus what real exports do instead: senders as objects, bare names or id 0; the
//! attachment path in `attachment.path` or `attachment_path`; `date`/`from` keys of
//! old exports; unwrapped messages whose kind is only in `type`; unknown wrappers.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::borrowed;
use super::fields::BorrowedFields;
use super::fields::{Field, Members, card_of, id, id_of, unwrap, without_nul};
use super::json::RawElement;
use crate::error::Result;
use crate::model::{Attachment, Conversation, Deletion, Message, MessageKind, RoomId, Sender, UserId};

/// Which history file a message came from.
#[derive(Clone, Copy, Debug)]
pub enum Origin {
    /// `rooms/<id>/history.json`.
    Room(RoomId),
    /// `users/<id>/history.json`.
    User(UserId),
}

/// The outcome of reading one history element. `M` is the message itself, or
/// `()` when it was read into the caller's [`Message`] ([`parse_element_into`]).
#[derive(Debug, PartialEq)]
pub enum Parsed<M = Box<Message>> {
    /// A message.
    Message(M),
    /// Not a message object; the text says what it was.
    Malformed(String),
    /// A message whose time cannot be read (its id and the raw value).
    BadTimestamp {
        /// Message id.
        id: String,
        /// The raw timestamp value.
        raw: String,
    },
}

/// Fields every message kind may have; anything else is counted as unknown. A
/// `match`, not a list search: it runs for every key of every message.
fn is_common(key: &str) -> bool {
    matches!(key, "id" | "type" | "sender" | "message" | "timestamp" | "deleted" | "attachment" | "attachment_path" | "metadata" | "mentions" | "message_format" | "date" | "from")
}

fn kind_fields(wrapper: &str) -> &'static [&'static str] {
    match wrapper {
        "NotificationMessage" => &["format", "color", "card", "notify", "message_format"],
        "TopicRoomMessage" => &["topic"],
        "ArchiveRoomMessage" => &["is_archived"],
        "GuestAccessMessage" => &["enable_guest_access", "url", "format", "color", "card"],
        "PrivateUserMessage" => &["receiver"],
        _ => &[],
    }
}

/// Where a message is read from: the fields of a parsed object, or borrowed JSON text.
/// One parser ([`parse_fields`]) serves both, so the fast path cannot drift.
trait MessageObject {
    fn field(&self, key: &str) -> Option<Field<'_>>;
    fn for_each_key(&self, f: &mut dyn FnMut(&str));

    fn text(&self, key: &str) -> String {
        self.field(key).map(Field::text).unwrap_or_default()
    }
    /// [`MessageObject::text`] into `out`, reusing its memory.
    fn text_into(&self, key: &str, out: &mut String) {
        out.clear();
        if let Some(field) = self.field(key) {
            field.text_into(out);
        }
    }
    fn flag(&self, key: &str) -> bool {
        self.field(key).is_some_and(Field::flag)
    }
    fn has(&self, key: &str) -> bool {
        self.field(key).is_some()
    }
}

impl MessageObject for Map<String, Value> {
    fn field(&self, key: &str) -> Option<Field<'_>> {
        self.get(key).map(Field::Value)
    }
    fn for_each_key(&self, f: &mut dyn FnMut(&str)) {
        self.keys().for_each(|k| f(k));
    }
}

impl MessageObject for Members<'_> {
    fn field(&self, key: &str) -> Option<Field<'_>> {
        self.get(key)
    }
    fn for_each_key(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Members::Borrowed(fields) => fields.keys().for_each(f),
            Members::Parsed(v) => v.as_object().into_iter().flat_map(|o| o.keys()).for_each(|k| f(k)),
        }
    }
}

impl MessageObject for BorrowedFields<'_> {
    fn field(&self, key: &str) -> Option<Field<'_>> {
        BorrowedFields::field(self, key)
    }
    fn for_each_key(&self, f: &mut dyn FnMut(&str)) {
        self.keys().for_each(f);
    }
}

/// Reads one history element. `unknown_fields` counts `Kind.field` names the format
/// does not document, for the inspect report.
pub fn parse_message(value: &Value, origin: Origin, seq: u64, source: &str, unknown_fields: &mut BTreeMap<String, u64>) -> Parsed {
    let mut out = crate::storage::spool::blank_message();
    boxed(parse_message_into(value, origin, seq, source, unknown_fields, &mut out), out)
}

/// [`parse_message`] into `out`.
fn parse_message_into(value: &Value, origin: Origin, seq: u64, source: &str, unknown_fields: &mut BTreeMap<String, u64>, out: &mut Message) -> Parsed<()> {
    let Some((wrapper, m)) = unwrap(value) else {
        return Parsed::Malformed(format!("expected a message object, found {}", json_type(value)));
    };
    parse_fields(wrapper, m, origin, seq, source, unknown_fields, out)
}

/// The outcome of reading into `out`, with the message boxed.
fn boxed(parsed: Parsed<()>, out: Message) -> Parsed {
    match parsed {
        Parsed::Message(()) => Parsed::Message(Box::new(out)),
        Parsed::Malformed(why) => Parsed::Malformed(why),
        Parsed::BadTimestamp { id, raw } => Parsed::BadTimestamp { id, raw },
    }
}

/// Reads the history element at the front of `element.json` straight from its text
/// ([`borrowed`]), or through a `Value` ([`parse_message`]) for the shapes the
/// borrowed reader leaves out. Returns the outcome and the bytes used, or `None` when
/// the bytes end inside the element (see [`super::json::ElementHandler`]).
/// Malformed JSON is an error naming `what` with line and column. Messages get
/// `source` as their [`Message::source`] (the history threads give `""`).
pub fn parse_element(element: &RawElement<'_>, what: &str, source: &str, origin: Origin, seq: u64, unknown_fields: &mut BTreeMap<String, u64>) -> Result<Option<(Parsed, usize)>> {
    let mut out = crate::storage::spool::blank_message();
    let read = parse_element_into(element, what, source, origin, seq, unknown_fields, &mut out)?;
    Ok(read.map(|(parsed, used)| (boxed(parsed, out), used)))
}

/// [`parse_element`] into `out`, whose strings keep their memory from message to
/// message: the history threads read millions of messages, and a fresh box and
/// strings for each were an allocation and a free apiece, plus a copy of the
/// 480-byte message into its box.
#[allow(clippy::too_many_arguments)]
pub fn parse_element_into(element: &RawElement<'_>, what: &str, source: &str, origin: Origin, seq: u64, unknown_fields: &mut BTreeMap<String, u64>, out: &mut Message) -> Result<Option<(Parsed<()>, usize)>> {
    if element.key.is_none() {
        match borrowed::read(element) {
            borrowed::Read::Message(wrapper, fields, used) => return Ok(Some((parse_fields(wrapper, &fields, origin, seq, source, unknown_fields, out), used))),
            borrowed::Read::Incomplete => return Ok(None),
            borrowed::Read::ValuePath => {}
        }
    }
    let Some((value, used)) = element.parse_prefix::<Value>().map_err(|e| element.error(what, &e))? else {
        return Ok(None);
    };
    Ok(Some((parse_message_into(&element.wrap(value), origin, seq, source, unknown_fields, out), used)))
}

fn parse_fields(wrapper: Option<&str>, m: &dyn MessageObject, origin: Origin, seq: u64, source: &str, unknown_fields: &mut BTreeMap<String, u64>, out: &mut Message) -> Parsed<()> {
    // Borrowed: a String per message for a handful of kind names was an
    // allocation and a free for each of millions of messages.
    let wrapper = wrapper.unwrap_or_else(|| infer_wrapper(m, origin));
    let known = kind_fields(wrapper);
    m.for_each_key(&mut |key| {
        if !is_common(key) && !known.contains(&key) {
            *unknown_fields.entry(format!("{wrapper}.{key}")).or_default() += 1;
        }
    });
    m.text_into("id", &mut out.id);
    let raw_time = m.field("timestamp").or_else(|| m.field("date"));
    let Some(time) = raw_time.and_then(Field::timestamp) else {
        let raw = raw_time.map_or_else(|| Value::Null.to_string(), |f| f.value().to_string());
        return Parsed::BadTimestamp { id: out.id.clone(), raw };
    };
    let sender = match m.field("sender") {
        Some(field) => sender_of(Some(field)),
        None => cloud_sender(m.field("from")),
    };
    let kind = parse_kind(wrapper, m, origin);
    let conversation = match (origin, &kind) {
        (Origin::Room(rid), _) => Conversation::Room(rid),
        (Origin::User(owner), MessageKind::Private { receiver }) => Conversation::direct(sender.id.unwrap_or(owner), *receiver),
        (Origin::User(owner), _) => Conversation::direct(sender.id.unwrap_or(owner), owner),
    };
    out.mentions.clear();
    if let Some(Value::Array(items)) = m.field("mentions").map(Field::value).as_deref() {
        out.mentions.extend(items.iter().filter_map(|v| v.as_object().and_then(|o| id(o, "id")).or_else(|| id_of(v))));
    }
    let deleted = m.field("deleted").filter(|d| d.is_object()).map(Field::members).map(|d| Deletion {
        user_id: d.get("user_id").and_then(Field::id),
        date: d.get("date").and_then(Field::timestamp),
    });
    out.conversation = conversation;
    out.time = time;
    out.seq = seq;
    out.sender = sender;
    m.text_into("message", &mut out.text);
    if m.field("timestamp").is_none() && m.field("sender").is_none() {
        cloud_newlines(&mut out.text);
    }
    out.kind = kind;
    out.attachment = parse_attachment(m);
    out.deleted = deleted;
    out.metadata = m.field("metadata").map(Field::value).filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())).map(|v| v.into_owned());
    out.source.clear();
    out.source.push_str(source);
    Parsed::Message(())
}

/// An unwrapped message: its kind from `type`.
fn infer_wrapper(m: &dyn MessageObject, origin: Origin) -> &'static str {
    match m.text("type").as_str() {
        "muc_topic" => "TopicRoomMessage",
        "muc_archive" => "ArchiveRoomMessage",
        "muc_guest_access" => "GuestAccessMessage",
        "private" | "chat" => "PrivateUserMessage",
        "notification" => "NotificationMessage",
        "muc_message" if m.has("card") || m.has("color") => "NotificationMessage",
        "muc_message" => "UserMessage",
        _ if matches!(origin, Origin::User(_)) => "PrivateUserMessage",
        _ => "UserMessage",
    }
}

fn parse_kind(wrapper: &str, m: &dyn MessageObject, origin: Origin) -> MessageKind {
    match wrapper {
        "UserMessage" => MessageKind::User,
        "NotificationMessage" => MessageKind::Notification {
            format: match m.text("format") {
                f if f.is_empty() => m.text("message_format"),
                f => f,
            },
            color: m.text("color"),
            card: card_of(m.field("card")),
        },
        "TopicRoomMessage" => MessageKind::Topic { topic: m.text("topic") },
        "ArchiveRoomMessage" => MessageKind::Archive { is_archived: m.flag("is_archived") },
        // HIPCHAT.md: a GuestAccessMessage is "sometimes a UserMessage, sometimes a
        // NotificationMessage in shape". Without the guest-access fields it is one of
        // those, and its text must be kept rather than replaced by an event.
        "GuestAccessMessage" if !m.has("enable_guest_access") && m.text("type") != "muc_guest_access" => {
            if m.text("type") == "notification" || m.has("card") || m.has("color") || m.has("format") {
                parse_kind("NotificationMessage", m, origin)
            } else {
                MessageKind::User
            }
        }
        "GuestAccessMessage" => MessageKind::GuestAccess { enabled: m.flag("enable_guest_access"), url: m.text("url") },
        "PrivateUserMessage" => {
            let owner = match origin {
                Origin::User(u) => u,
                Origin::Room(_) => 0,
            };
            let receiver = m.field("receiver").and_then(|r| match r.is_object() {
                true => match party(r) {
                    Some(p) => p.id,
                    None => r.members().get("id").and_then(Field::id),
                },
                false => r.id(),
            });
            // Without a receiver, the only other party we know is the history's owner.
            MessageKind::Private { receiver: receiver.unwrap_or(owner) }
        }
        other => MessageKind::Unknown { wrapper: other.to_string() },
    }
}

/// A sender object, bare name, or id. Id 0 means an integration, not a user.
pub fn parse_sender(v: Option<&Value>) -> Sender {
    sender_of(v.map(Field::Value))
}

fn sender_of(field: Option<Field<'_>>) -> Sender {
    let Some(field) = field else {
        return Sender::default();
    };
    if field.is_object() {
        if let Some(p) = party(field) {
            return Sender { id: p.id.filter(|i| *i != 0), name: p.name };
        }
        let sender = field.members();
        return Sender { id: sender.get("id").and_then(Field::id).filter(|i| *i != 0), name: sender.text("name") };
    }
    match field.value().as_ref() {
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(i) => Sender { id: Some(i).filter(|i| *i != 0), name: String::new() },
            Err(_) => Sender { id: None, name: without_nul(s.clone()) },
        },
        other => Sender { id: id_of(other).filter(|i| *i != 0), name: String::new() },
    }
}

/// The sender of an old Cloud export's message (HIPCHAT.md: `date`/`from` keys):
/// `from` is `{name, user_id}` there, so the id is taken from `user_id` when it
/// has no `id` (without it, a person became an integration named after them,
/// and a private message held in both people's files was not seen as one).
fn cloud_sender(field: Option<Field<'_>>) -> Sender {
    match field.filter(|f| f.is_object()) {
        Some(field) => {
            let from = field.members();
            let id = from.get("id").or_else(|| from.get("user_id")).and_then(Field::id);
            Sender { id: id.filter(|i| *i != 0), name: from.text("name") }
        }
        None => sender_of(field),
    }
}

/// Old Cloud exports stored the line breaks of `/code` and `/quote` messages as
/// the two characters `\n` (HIPCHAT.md); they become line breaks again. Other
/// texts keep a typed `\n` as it is.
fn cloud_newlines(text: &mut String) {
    if (text.starts_with("/code") || text.starts_with("/quote")) && text.contains("\\n") && !text.contains('\n') {
        *text = text.replace("\\n", "\n");
    }
}

/// [`borrowed::party`] of a raw object field; `None` for a parsed one, or one
/// that reader leaves to the general path.
fn party(field: Field<'_>) -> Option<borrowed::Party> {
    match field {
        Field::Raw(raw, escapes) => borrowed::party(raw, escapes),
        Field::Value(_) => None,
    }
}

fn parse_attachment(m: &dyn MessageObject) -> Option<Attachment> {
    let obj = m.field("attachment").filter(|a| a.is_object()).map(Field::members);
    let member_text = |key: &str| obj.as_ref().map(|a| a.text(key)).unwrap_or_default();
    let path = Some(member_text("path")).filter(|p| !p.is_empty()).unwrap_or_else(|| m.text("attachment_path"));
    if path.trim().is_empty() {
        return None;
    }
    let name = Some(member_text("name")).filter(|n| !n.is_empty()).unwrap_or_else(|| path.clone());
    let name = name.rsplit('/').next().unwrap_or(&name).to_string();
    Some(Attachment {
        name,
        declared_path: path,
        declared_size: obj.as_ref().and_then(|a| a.get("size")).and_then(Field::id),
        declared_thumbnail: Some(member_text("thumbnail")).filter(|t| !t.is_empty()),
        file: None,
        thumbnail: None,
        left_out: false,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn field_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u64..20).prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!("2018-04-02T14:54:04Z 777248")),
            Just(json!("2018-04-02 15:31:34+00:00")),
            Just(json!("7")),
            // NUL and newline come out as `\u0000` and `\n`: elements with and without escapes.
            "[a-z \"\\\\/{}\u{e9}\u{0}\n]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map(prop_oneof![Just("id".to_string()), Just("name".to_string()), Just("path".to_string()), Just("size".to_string()), Just("user_id".to_string()), Just("date".to_string()), "[a-z]{1,3}"], inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn message_object() -> impl Strategy<Value = Value> {
        let keys = prop_oneof![
            Just("id"), Just("type"), Just("sender"), Just("from"), Just("message"), Just("timestamp"), Just("date"), Just("deleted"), Just("attachment"),
            Just("attachment_path"), Just("metadata"), Just("mentions"), Just("format"), Just("color"), Just("card"), Just("topic"), Just("is_archived"),
            Just("receiver"), Just("url"), Just("enable_guest_access"), Just("shiny"),
        ];
        let fields = proptest::collection::btree_map(keys.prop_map(str::to_string), field_value(), 0..10).prop_map(|m| Value::Object(m.into_iter().collect()));
        let wrapper = prop_oneof![Just(None), Just(Some("UserMessage")), Just(Some("NotificationMessage")), Just(Some("PrivateUserMessage")), Just(Some("TopicRoomMessage")), Just(Some("PollMessage"))];
        (wrapper, fields).prop_map(|(w, f)| match w {
            Some(w) => json!({ w: f }),
            None => f,
        })
    }

    proptest! {
        /// The borrowed fast path and the `Value` path read every message alike.
        #[test]
        fn borrowed_and_value_paths_agree(v in message_object(), room in any::<bool>(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
            let origin = if room { Origin::Room(3) } else { Origin::User(4) };
            let (mut fast_unknown, mut slow_unknown) = (BTreeMap::new(), BTreeMap::new());
            let element = RawElement { json: text.as_bytes(), key: None, line: 1, column: 1, complete: true };
            let (fast, used) = parse_element(&element, "t", "t", origin, 1, &mut fast_unknown).unwrap().unwrap();
            let slow = parse_message(&v, origin, 1, "t", &mut slow_unknown);
            prop_assert_eq!(used, text.len());
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(fast_unknown, slow_unknown);
        }
    }

    /// An element without a backslash has its strings taken as they are, unscanned
    /// for NULs: that holds because a raw NUL (or any control character) inside a
    /// string is malformed JSON, never a message text.
    #[test]
    /// Old Cloud exports (HIPCHAT.md): `date` and `from: {name, user_id}` instead of
    /// `timestamp` and `sender`, and `/code`/`/quote` line breaks as `\\n`.
    fn cloud_shaped_messages_keep_their_sender_and_line_breaks() {
        let parse = |json: &str, origin: Origin| {
            let element = RawElement { json: json.as_bytes(), key: None, line: 1, column: 1, complete: true };
            match parse_element(&element, "t", "", origin, 1, &mut BTreeMap::new()).unwrap() {
                Some((Parsed::Message(m), _)) => m,
                _ => panic!("{json}"),
            }
        };
        let room = parse(r#"{"UserMessage": {"id": "c", "date": "2013-11-15T09:38:57Z", "from": {"name": "H\u00e9l\u00e8ne", "user_id": 103}, "message": "/code one\\ntwo\\n    three"}}"#, Origin::Room(7));
        assert_eq!((room.sender.id, room.sender.name.as_str()), (Some(103), "Hélène"));
        assert_eq!(room.text, "/code one\ntwo\n    three");
        // A private message in both people's files is one conversation, so one message.
        let pm = r#"{"PrivateUserMessage": {"id": "p", "date": "2013-08-01T23:16:52Z", "from": {"name": "J", "user_id": 104}, "message": "a \\n b", "receiver": {"id": 103}}}"#;
        let (in_103, in_104) = (parse(pm, Origin::User(103)), parse(pm, Origin::User(104)));
        assert_eq!(in_103.conversation, in_104.conversation);
        assert_eq!(in_103.conversation, Conversation::direct(103, 104));
        assert_eq!(in_103.text, "a \\n b", "only /code and /quote had their line breaks escaped");
        // A current message's typed backslash-n stays.
        let typed = parse(r#"{"UserMessage": {"id": "t", "timestamp": "2018-04-02T14:54:04Z", "sender": {"id": 1, "name": "A"}, "message": "/code x\\ny"}}"#, Origin::Room(7));
        assert_eq!(typed.text, "/code x\\ny");
    }

    #[test]
    fn a_raw_nul_in_a_string_is_malformed_not_text() {
        for text in ["{\"UserMessage\": {\"id\": \"a\", \"message\": \"x\u{0}y\", \"timestamp\": \"2018-04-02T14:54:04Z\"}}", "{\"id\": \"a\", \"message\": \"x\u{0}y\", \"timestamp\": \"2018-04-02T14:54:04Z\"}"] {
            let element = RawElement { json: text.as_bytes(), key: None, line: 1, column: 1, complete: true };
            let e = parse_element(&element, "rooms/1/history.json", "", Origin::Room(1), 1, &mut BTreeMap::new()).expect_err("a raw NUL is malformed JSON");
            assert!(e.to_string().contains("control character"), "{e}");
        }
        let escaped = r#"{"UserMessage": {"id": "a", "message": "x\u0000y", "timestamp": "2018-04-02T14:54:04Z"}}"#;
        let element = RawElement { json: escaped.as_bytes(), key: None, line: 1, column: 1, complete: true };
        let Some((Parsed::Message(m), _)) = parse_element(&element, "t", "", Origin::Room(1), 1, &mut BTreeMap::new()).unwrap() else { panic!() };
        assert_eq!(m.text, "xy");
    }

    fn parse(v: Value, origin: Origin) -> Message {
        match parse_message(&v, origin, 0, "t", &mut BTreeMap::new()) {
            Parsed::Message(m) => *m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn private_message_conversation_is_the_pair() {
        let m = parse(json!({"PrivateUserMessage": {"id": "a", "message": "hi", "sender": {"id": 2}, "receiver": {"id": 1}, "timestamp": "2018-04-02T14:54:04Z 777248"}}), Origin::User(1));
        assert_eq!(m.conversation, Conversation::Direct { low: 1, high: 2 });
        assert_eq!(m.kind, MessageKind::Private { receiver: 1 });
        assert_eq!(m.time.micros() % 1_000_000, 777_248);
    }

    #[test]
    fn senders_in_every_shape() {
        assert_eq!(parse_sender(Some(&json!({"id": 0, "name": "JIRA"}))), Sender { id: None, name: "JIRA".into() });
        assert_eq!(parse_sender(Some(&json!("Bitbucket"))), Sender { id: None, name: "Bitbucket".into() });
        assert_eq!(parse_sender(Some(&json!(5))).id, Some(5));
        assert_eq!(parse_sender(Some(&json!({"id": "5"}))).id, Some(5));
    }

    /// A repeated member of a sender or receiver object: the last one counts, on
    /// the borrowed path as on the `Value` path (serde_json's maps keep the last).
    #[test]
    fn repeated_sender_and_receiver_members_keep_the_last() {
        let text = r#"{"PrivateUserMessage": {"id": "a", "message": "hi", "sender": {"id": 2, "name": "Old", "id": 3, "name": "New"}, "receiver": {"id": 7, "id": 8}, "timestamp": "2018-04-02T14:54:04Z"}}"#;
        let element = RawElement { json: text.as_bytes(), key: None, line: 1, column: 1, complete: true };
        let (fast, _) = parse_element(&element, "t", "t", Origin::User(3), 1, &mut BTreeMap::new()).unwrap().unwrap();
        let Parsed::Message(m) = fast else { panic!("{fast:?}") };
        assert_eq!(m.sender, Sender { id: Some(3), name: "New".into() });
        assert_eq!(m.kind, MessageKind::Private { receiver: 8 });
        let slow = parse_message(&serde_json::from_str(text).unwrap(), Origin::User(3), 1, "t", &mut BTreeMap::new());
        assert_eq!(Parsed::Message(m), slow);
    }

    #[test]
    fn guest_access_messages_in_other_shapes_keep_their_text() {
        let event = parse(json!({"GuestAccessMessage": {"id": "g", "type": "muc_guest_access", "sender": {"id": 1}, "message": "", "timestamp": "2018-04-02T15:40:44Z", "enable_guest_access": true, "url": "https://h/x"}}), Origin::Room(1));
        assert_eq!(event.kind, MessageKind::GuestAccess { enabled: true, url: "https://h/x".into() });
        let user = parse(json!({"GuestAccessMessage": {"id": "u", "type": "muc_message", "sender": {"id": 1}, "message": "said as a guest", "timestamp": "2018-04-02T15:40:44Z"}}), Origin::Room(1));
        assert_eq!((user.kind, user.text.as_str()), (MessageKind::User, "said as a guest"));
        let card = parse(json!({"GuestAccessMessage": {"id": "n", "sender": "Guest Thing", "message": "<b>hi</b>", "timestamp": "2018-04-02T15:40:44Z", "format": "html", "color": "gray"}}), Origin::Room(1));
        assert!(matches!(card.kind, MessageKind::Notification { .. }), "{:?}", card.kind);
        assert_eq!(card.text, "<b>hi</b>");
    }

    #[test]
    fn nul_characters_never_reach_the_model() {
        let text = r#"{"UserMessage": {"id": "a", "message": "a\u0000b", "sender": {"id": 2, "name": "N\u0000ame"}, "timestamp": "2018-04-02T14:54:04Z"}}"#;
        let element = RawElement { json: text.as_bytes(), key: None, line: 1, column: 1, complete: true };
        let Some((Parsed::Message(m), _)) = parse_element(&element, "t", "", Origin::Room(1), 0, &mut BTreeMap::new()).unwrap() else { panic!() };
        assert_eq!((m.text.as_str(), m.sender.name.as_str()), ("ab", "Name"));
        let m = parse(json!({"NotificationMessage": {"id": "n", "sender": "JI\u{0}RA", "message": "x\u{0}", "timestamp": "2017-11-07T13:53:53Z", "card": "{\"title\": \"T\\u0000\"}"}}), Origin::Room(1));
        assert_eq!((m.text.as_str(), m.sender.name.as_str()), ("x", "JIRA"));
        let MessageKind::Notification { card, .. } = m.kind else { panic!() };
        assert_eq!(card.unwrap().title.as_deref(), Some("T"));
        let (user, _) = crate::hipchat::records::parse_user(&json!({"id": 5, "name": "A\u{0}nn", "mention_name": "a\u{0}"})).unwrap();
        assert_eq!((user.name.as_str(), user.mention_name.as_str()), ("Ann", "a"));
        let room = crate::hipchat::records::parse_room(&json!({"id": 5, "name": "R\u{0}", "topic": "t\u{0}"})).unwrap();
        assert_eq!((room.name.as_str(), room.topic.as_str()), ("R", "t"));
    }

    #[test]
    fn notification_card_is_decoded() {
        let m = parse(json!({"NotificationMessage": {"id": "n", "sender": "JIRA", "message": "<b>x</b>", "timestamp": "2017-11-07T13:53:53Z 634688", "format": "html", "color": "yellow", "card": "{\"title\": \"T\"}"}}), Origin::Room(1));
        let MessageKind::Notification { format, card, .. } = m.kind else { panic!() };
        assert_eq!(format, "html");
        assert_eq!(card.unwrap().title.as_deref(), Some("T"));
    }

    #[test]
    fn attachment_from_either_field_and_unknown_fields_counted() {
        let mut unknown = BTreeMap::new();
        let v = json!({"UserMessage": {"id": "u", "sender": {"id": 1}, "message": "", "timestamp": "2018-04-02T15:41:41Z", "attachment_path": "Bc/img.JPG", "shiny": 1}});
        let Parsed::Message(m) = parse_message(&v, Origin::Room(1), 0, "t", &mut unknown) else { panic!() };
        assert_eq!(m.attachment.unwrap().declared_path, "Bc/img.JPG");
        assert_eq!(unknown.get("UserMessage.shiny"), Some(&1));
    }

    #[test]
    fn unwrapped_and_unknown_kinds() {
        let m = parse(json!({"id": "t", "type": "muc_topic", "topic": "new", "timestamp": "2018-04-02T15:41:41Z", "sender": {"id": 1}}), Origin::Room(1));
        assert_eq!(m.kind, MessageKind::Topic { topic: "new".into() });
        let u = parse(json!({"PollMessage": {"id": "p", "timestamp": "2018-04-02T15:41:41Z"}}), Origin::Room(1));
        assert_eq!(u.kind.name(), "PollMessage");
    }

    #[test]
    fn bad_timestamp_and_non_objects() {
        let r = parse_message(&json!({"UserMessage": {"id": "x", "timestamp": "soon"}}), Origin::Room(1), 0, "t", &mut BTreeMap::new());
        assert!(matches!(r, Parsed::BadTimestamp { .. }));
        assert!(matches!(parse_message(&json!(3), Origin::Room(1), 0, "t", &mut BTreeMap::new()), Parsed::Malformed(_)));
    }
}
