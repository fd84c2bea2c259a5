//! The spool's record body: one [`Message`] in a compact binary encoding.
//!
//! Hand-rolled rather than a serde format, for three reasons. The bytes are internal:
//! written and read back by the same binary within one run, deleted with the scratch
//! folder, so there is no version, no compatibility and no other reader to serve. The
//! spool is the hot path: every message is encoded once and decoded once, and the
//! JSON round trip this replaces cost 8–12 % of a whole conversion. And the format is
//! small enough to read on one screen, which a general serializer's output is not.
//!
//! Integers are LEB128 varints (the time zigzag-encoded, since it may be negative),
//! strings are a varint byte length then UTF-8, and every enum and `Option` is one tag
//! byte (`Option`: 0 none, 1 some; `bool`: 0 or 1). Fields follow the order of their
//! declaration in [`crate::model`]. The one `serde_json::Value` field,
//! [`Message::metadata`], is stored as its JSON text: `Value` deserializes through
//! `deserialize_any`, which non-self-describing serde formats (bincode, postcard)
//! cannot carry, and the field is rare enough that a JSON parse for it costs
//! nothing measurable. (Cards were stored so too, until exports full of
//! integrations made that a tenth of a run: see [`crate::model::Card`].)
//!
//! Decoding trusts nothing: any byte string yields a message or an error, never a
//! panic. Lengths and counts are checked against the bytes left before anything is
//! allocated, strings must be valid UTF-8, tags and varints must be in range and
//! minimal, and trailing bytes are an error.

use std::fmt;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Attachment, Card, Conversation, Deletion, FileRef, Message, MessageKind, Sender, Timestamp};

/// [`Conversation`] tags.
const ROOM: u8 = 0;
const DIRECT: u8 = 1;

/// [`MessageKind`] tags.
const USER: u8 = 0;
const NOTIFICATION: u8 = 1;
const TOPIC: u8 = 2;
const ARCHIVE: u8 = 3;
const GUEST_ACCESS: u8 = 4;
const PRIVATE: u8 = 5;
const UNKNOWN: u8 = 6;

/// Appends the encoding of `m` to `out` (nothing else is allocated).
pub(super) fn encode(m: &Message, out: &mut Vec<u8>) -> Result<()> {
    match m.conversation {
        Conversation::Room(room) => {
            out.push(ROOM);
            put_u64(out, room);
        }
        Conversation::Direct { low, high } => {
            out.push(DIRECT);
            put_u64(out, low);
            put_u64(out, high);
        }
    }
    put_str(out, &m.id);
    put_i64(out, m.time.0);
    put_u64(out, m.seq);
    put_opt(out, m.sender.id.as_ref(), |out, id| put_u64(out, *id));
    put_str(out, &m.sender.name);
    put_str(out, &m.text);
    match &m.kind {
        MessageKind::User => out.push(USER),
        MessageKind::Notification { format, color, card } => {
            out.push(NOTIFICATION);
            put_str(out, format);
            put_str(out, color);
            put_opt(out, card.as_ref(), |out, card| {
                for text in [&card.title, &card.url, &card.description] {
                    put_opt(out, text.as_ref(), |out, s| put_str(out, s));
                }
            });
        }
        MessageKind::Topic { topic } => {
            out.push(TOPIC);
            put_str(out, topic);
        }
        MessageKind::Archive { is_archived } => {
            out.push(ARCHIVE);
            out.push(u8::from(*is_archived));
        }
        MessageKind::GuestAccess { enabled, url } => {
            out.push(GUEST_ACCESS);
            out.push(u8::from(*enabled));
            put_str(out, url);
        }
        MessageKind::Private { receiver } => {
            out.push(PRIVATE);
            put_u64(out, *receiver);
        }
        MessageKind::Unknown { wrapper } => {
            out.push(UNKNOWN);
            put_str(out, wrapper);
        }
    }
    put_opt(out, m.attachment.as_ref(), |out, a| {
        put_str(out, &a.name);
        put_str(out, &a.declared_path);
        put_opt(out, a.declared_size.as_ref(), |out, size| put_u64(out, *size));
        put_opt(out, a.declared_thumbnail.as_ref(), |out, s| put_str(out, s));
        put_opt(out, a.file.as_ref(), put_file);
        put_opt(out, a.thumbnail.as_ref(), put_file);
    });
    put_u64(out, m.mentions.len() as u64);
    for id in &m.mentions {
        put_u64(out, *id);
    }
    put_opt(out, m.deleted.as_ref(), |out, d| {
        put_opt(out, d.user_id.as_ref(), |out, id| put_u64(out, *id));
        put_opt(out, d.date.as_ref(), |out, t| put_i64(out, t.0));
    });
    put_opt_json(out, m.metadata.as_ref())?;
    put_str(out, &m.source);
    Ok(())
}

/// Reads a body written by [`encode`]; every problem is an "unreadable" error.
#[cfg(test)]
pub(super) fn decode(body: &[u8]) -> Result<Message> {
    let mut m = blank();
    decode_into(body, &mut m)?;
    Ok(m)
}

/// [`decode`] into `m`, reusing its strings' and lists' memory: the message stream
/// decodes every message into the same one, which saves three allocations and
/// three frees per message (a tenth of a Mattermost write pass). After an error
/// `m` holds a mix of old and new fields and must not be used.
pub(super) fn decode_into(body: &[u8], m: &mut Message) -> Result<()> {
    let mut r = Reader::new(body);
    r.message_into(m)?;
    if r.pos != body.len() {
        return Err(r.fail(format_args!("bytes after the message: {}", body.len() - r.pos)));
    }
    Ok(())
}

/// A message with every field empty, to decode into.
pub(crate) fn blank() -> Message {
    Message {
        conversation: Conversation::Room(0),
        id: String::new(),
        time: Timestamp(0),
        seq: 0,
        sender: Sender::default(),
        text: String::new(),
        kind: MessageKind::User,
        attachment: None,
        mentions: Vec::new(),
        deleted: None,
        metadata: None,
        source: String::new(),
    }
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `s` as its byte length (varint) and its UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_file(out: &mut Vec<u8>, f: &FileRef) {
    put_str(out, &f.path);
    put_u64(out, f.size);
}

fn put_opt<T>(out: &mut Vec<u8>, v: Option<&T>, put: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

/// A `Value` as its JSON text, written in place and then given its length prefix
/// (rotated in front of it), so no scratch buffer is needed.
fn put_opt_json(out: &mut Vec<u8>, v: Option<&Value>) -> Result<()> {
    let Some(v) = v else {
        out.push(0);
        return Ok(());
    };
    out.push(1);
    let start = out.len();
    serde_json::to_writer(&mut *out, v).map_err(|e| Error::new(ErrorKind::Other, format!("spool: {e}")))?;
    let text_len = out.len() - start;
    put_u64(out, text_len as u64);
    let prefix_len = out.len() - start - text_len;
    out[start..].rotate_right(prefix_len);
    Ok(())
}

/// A cursor over one body; also reads the small scratch records of other modules
/// written with [`put_u64`] and [`put_str`].
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// True when every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Fails unless every byte was read.
    pub(crate) fn end(&self) -> Result<()> {
        if self.at_end() { Ok(()) } else { Err(self.fail(format_args!("{} bytes left over", self.bytes.len() - self.pos))) }
    }

    fn fail(&self, problem: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Other, format!("spool record unreadable: {problem} at byte {}", self.pos))
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| self.fail("ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    /// A tag byte that must be at most `max`.
    fn tag(&mut self, max: u8) -> Result<u8> {
        let t = self.byte()?;
        if t > max {
            self.pos -= 1;
            return Err(self.fail(format_args!("tag {t} out of range")));
        }
        Ok(t)
    }

    fn bool(&mut self) -> Result<bool> {
        Ok(self.tag(1)? == 1)
    }

    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        if self.bool()? { read(self).map(Some) } else { Ok(None) }
    }

    /// LEB128: at most ten bytes, no bits beyond 64, no redundant zero groups.
    pub(crate) fn u64(&mut self) -> Result<u64> {
        // Most varints end within nine bytes of plenty: read those without a bounds
        // check and a `Result` per byte (times and positions take five to eight
        // bytes, and decoding was 3 % of a run's instructions, callgrind 50k).
        // Nine groups hold 63 bits, so none can overflow here; anything else
        // (a zero last group, a tenth byte, the end of the record) takes the
        // checked way below, which says what is wrong.
        if let Some(window) = self.bytes.get(self.pos..self.pos + 9) {
            let mut v = 0u64;
            for (i, &b) in window.iter().enumerate() {
                v |= u64::from(b & 0x7f) << (7 * i);
                if b < 0x80 {
                    if b == 0 && i > 0 {
                        break;
                    }
                    self.pos += i + 1;
                    return Ok(v);
                }
            }
        }
        self.u64_checked()
    }

    /// [`Reader::u64`] a byte at a time, every rule checked.
    fn u64_checked(&mut self) -> Result<u64> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let mut v = u64::from(first & 0x7f);
        let mut shift = 7;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.fail("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if b == 0 {
                    return Err(self.fail("varint not minimal"));
                }
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// The next `len` bytes, checked against what is left before any allocation.
    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let left = self.bytes.len() - self.pos;
        if len > left as u64 {
            return Err(self.fail(format_args!("length {len} exceeds the {left} bytes left")));
        }
        let s = &self.bytes[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(s)
    }

    pub(crate) fn str(&mut self) -> Result<String> {
        self.text().map(str::to_owned)
    }

    /// The next string, into `out` (its memory reused).
    fn str_into(&mut self, out: &mut String) -> Result<()> {
        let text = self.text()?;
        out.clear();
        out.push_str(text);
        Ok(())
    }

    /// The next string, borrowed from the bytes being read.
    pub(crate) fn text(&mut self) -> Result<&'a str> {
        let len = self.u64()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| {
            self.pos = start + e.valid_up_to();
            self.fail("invalid UTF-8")
        })
    }

    fn json(&mut self) -> Result<Value> {
        let len = self.u64()?;
        let start = self.pos;
        let text = self.take(len)?;
        serde_json::from_slice(text).map_err(|e| {
            self.pos = start;
            self.fail(format_args!("bad JSON ({e})"))
        })
    }

    fn card(&mut self) -> Result<Card> {
        Ok(Card { title: self.opt(Self::str)?, url: self.opt(Self::str)?, description: self.opt(Self::str)? })
    }

    fn file(&mut self) -> Result<FileRef> {
        Ok(FileRef { path: self.str()?, size: self.u64()? })
    }

    fn message_into(&mut self, m: &mut Message) -> Result<()> {
        m.conversation = match self.tag(DIRECT)? {
            ROOM => Conversation::Room(self.u64()?),
            _ => Conversation::Direct { low: self.u64()?, high: self.u64()? },
        };
        self.str_into(&mut m.id)?;
        m.time = Timestamp(self.i64()?);
        m.seq = self.u64()?;
        m.sender.id = self.opt(Self::u64)?;
        self.str_into(&mut m.sender.name)?;
        self.str_into(&mut m.text)?;
        m.kind = match self.tag(UNKNOWN)? {
            USER => MessageKind::User,
            NOTIFICATION => MessageKind::Notification { format: self.str()?, color: self.str()?, card: self.opt(Self::card)? },
            TOPIC => MessageKind::Topic { topic: self.str()? },
            ARCHIVE => MessageKind::Archive { is_archived: self.bool()? },
            GUEST_ACCESS => MessageKind::GuestAccess { enabled: self.bool()?, url: self.str()? },
            PRIVATE => MessageKind::Private { receiver: self.u64()? },
            _ => MessageKind::Unknown { wrapper: self.str()? },
        };
        m.attachment = self.opt(|r| {
            Ok(Attachment {
                name: r.str()?,
                declared_path: r.str()?,
                declared_size: r.opt(Self::u64)?,
                declared_thumbnail: r.opt(Self::str)?,
                file: r.opt(Self::file)?,
                thumbnail: r.opt(Self::file)?,
                left_out: false,
            })
        })?;
        let count = self.u64()?;
        // Each id takes at least one byte: a count beyond the bytes left is damage,
        // and checking it first keeps a garbled count from reserving gigabytes.
        if count > (self.bytes.len() - self.pos) as u64 {
            return Err(self.fail(format_args!("{count} mentions in fewer bytes")));
        }
        m.mentions.clear();
        m.mentions.reserve(count as usize);
        for _ in 0..count {
            m.mentions.push(self.u64()?);
        }
        m.deleted = self.opt(|r| Ok(Deletion { user_id: r.opt(Self::u64)?, date: r.opt(Self::i64)?.map(Timestamp) }))?;
        m.metadata = self.opt(Self::json)?;
        self.str_into(&mut m.source)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn roundtrip(m: &Message) -> Message {
        decode(&encoded(m)).unwrap()
    }

    fn encoded(m: &Message) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(m, &mut buf).unwrap();
        buf
    }

    /// Any JSON value, nested up to four levels: what `metadata` holds.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Floats that serde_json's default (not `float_roundtrip`) parser reads back
            // exactly: as with the JSON spool before, a float's last bit may otherwise change.
            (-1_000_000i64..1_000_000, 0u32..4).prop_map(|(n, e)| Value::from(n as f64 / f64::from(10u32.pow(e)))),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn card() -> impl Strategy<Value = Card> {
        (any::<Option<String>>(), any::<Option<String>>(), any::<Option<String>>()).prop_map(|(title, url, description)| Card { title, url, description })
    }

    fn file() -> impl Strategy<Value = FileRef> {
        (any::<String>(), any::<u64>()).prop_map(|(path, size)| FileRef { path, size })
    }

    fn kind() -> impl Strategy<Value = MessageKind> {
        prop_oneof![
            Just(MessageKind::User),
            (any::<String>(), any::<String>(), proptest::option::of(card())).prop_map(|(format, color, card)| MessageKind::Notification { format, color, card }),
            any::<String>().prop_map(|topic| MessageKind::Topic { topic }),
            any::<bool>().prop_map(|is_archived| MessageKind::Archive { is_archived }),
            (any::<bool>(), any::<String>()).prop_map(|(enabled, url)| MessageKind::GuestAccess { enabled, url }),
            any::<u64>().prop_map(|receiver| MessageKind::Private { receiver }),
            any::<String>().prop_map(|wrapper| MessageKind::Unknown { wrapper }),
        ]
    }

    fn attachment() -> impl Strategy<Value = Attachment> {
        (any::<String>(), any::<String>(), any::<Option<u64>>(), any::<Option<String>>(), proptest::option::of(file()), proptest::option::of(file())).prop_map(
            |(name, declared_path, declared_size, declared_thumbnail, file, thumbnail)| Attachment { name, declared_path, declared_size, declared_thumbnail, file, thumbnail, left_out: false },
        )
    }

    /// Any message: every kind, every `Option` both ways, any Unicode, any time.
    pub(in crate::storage::spool) fn message() -> impl Strategy<Value = Message> {
        let conversation = prop_oneof![any::<u64>().prop_map(Conversation::Room), (any::<u64>(), any::<u64>()).prop_map(|(a, b)| Conversation::direct(a, b))];
        let deletion = (any::<Option<u64>>(), any::<Option<i64>>()).prop_map(|(user_id, date)| Deletion { user_id, date: date.map(Timestamp) });
        (
            (conversation, any::<String>(), any::<i64>(), any::<u64>(), any::<Option<u64>>(), any::<String>(), any::<String>()),
            (kind(), proptest::option::of(attachment()), proptest::collection::vec(any::<u64>(), 0..5), proptest::option::of(deletion), proptest::option::of(value()), any::<String>()),
        )
            .prop_map(|((conversation, id, time, seq, sender_id, sender_name, text), (kind, attachment, mentions, deleted, metadata, source))| Message {
                conversation,
                id,
                time: Timestamp(time),
                seq,
                sender: Sender { id: sender_id, name: sender_name },
                text,
                kind,
                attachment,
                mentions,
                deleted,
                metadata,
                source,
            })
    }

    /// A typical room message as the reader makes it.
    fn typical(seq: u64) -> Message {
        Message {
            conversation: Conversation::Room(7 + seq % 40),
            id: format!("0000002a-{seq:012x}"),
            time: Timestamp(1_420_070_400_000_000 + seq as i64 * 7_000_000 + (seq * 7919 % 1_000_000) as i64),
            seq,
            sender: Sender { id: Some(1 + seq % 20), name: format!("User {}", 1 + seq % 20) },
            text: format!("message {seq} in room 7: the quick brown fox jumps over the lazy dog"),
            kind: MessageKind::User,
            attachment: seq.is_multiple_of(100).then(|| Attachment {
                name: format!("file{seq}.bin"),
                declared_path: format!("f{seq:010}/file{seq}.bin"),
                declared_size: Some(20_000),
                declared_thumbnail: None,
                file: Some(FileRef { path: format!("rooms/7/files/f{seq:010}/file{seq}.bin"), size: 20_000 }),
                thumbnail: None,
                left_out: false,
            }),
            mentions: vec![],
            deleted: None,
            metadata: None,
            source: "rooms/7/history.json".into(),
        }
    }

    fn unreadable(body: &[u8]) -> String {
        let e = decode(body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Other);
        assert!(e.message().starts_with("spool record unreadable: "), "{}", e.message());
        e.message().to_string()
    }

    /// Damaged bytes either read as a message that survives its own round trip (a
    /// flip inside a string or number may still read) or give the named error.
    fn reads_or_is_unreadable(body: &[u8]) {
        match decode(body) {
            Ok(read) => assert_eq!(roundtrip(&read), read),
            Err(_) => _ = unreadable(body),
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(m in message()) {
            prop_assert_eq!(roundtrip(&m), m);
        }

        #[test]
        fn encoding_appends(a in message(), b in message()) {
            let mut buf = encoded(&a);
            let split = buf.len();
            encode(&b, &mut buf).unwrap();
            prop_assert_eq!(decode(&buf[..split]).unwrap(), a);
            prop_assert_eq!(decode(&buf[split..]).unwrap(), b);
        }

        #[test]
        fn every_truncation_and_extension_is_an_error(m in message(), extra in 0u8..=255) {
            let mut buf = encoded(&m);
            for end in 0..buf.len() {
                unreadable(&buf[..end]);
            }
            buf.push(extra);
            prop_assert!(unreadable(&buf).contains("bytes after the message: 1 at byte"));
        }

        #[test]
        fn garbled_bodies_never_panic(m in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let mut buf = encoded(&m);
            for (at, byte) in flips {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
            reads_or_is_unreadable(&buf);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            reads_or_is_unreadable(&bytes);
        }

        /// The unchecked window of `Reader::u64` reads what the checked way reads,
        /// errors included, wherever the varint ends: in the window, on its last
        /// byte, after it, or with the record. Bytes are mostly continuations, so
        /// long and unterminated varints come up as often as short ones.
        #[test]
        fn varints_read_alike_both_ways(bytes in proptest::collection::vec(prop_oneof![0x80u8..=0xff, 0u8..0x80, Just(0u8), Just(0x80u8), Just(1u8)], 0..14), at in 0usize..4) {
            let at = at.min(bytes.len());
            let read = |fast: bool| {
                let mut r = Reader { bytes: &bytes, pos: at };
                let v = if fast { r.u64() } else { r.u64_checked() };
                (v.map_err(|e| e.to_string()), r.pos)
            };
            prop_assert_eq!(read(true), read(false));
        }
    }

    #[test]
    fn varint_edges() {
        let mut max = Vec::new();
        put_u64(&mut max, u64::MAX);
        let read = |b: &[u8]| Reader::new(b).u64().map_err(|e| e.to_string());
        assert_eq!(read(&max), Ok(u64::MAX));
        for v in [0, 127, 128, 1 << 56, (1 << 63) - 1, 1 << 63] {
            let mut b = Vec::new();
            put_u64(&mut b, v);
            assert_eq!(read(&b), Ok(v));
        }
        assert!(read(&[0x80, 0x00]).unwrap_err().contains("not minimal"));
        assert!(read(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()).unwrap_err().contains("overflows"));
        assert!(read(&[0x80; 3]).unwrap_err().contains("ends early"));
    }

    #[test]
    fn typical_message_is_compact_and_exact() {
        let m = typical(100);
        let bin = encoded(&m);
        let json = serde_json::to_vec(&m).unwrap();
        assert!(bin.len() * 2 < json.len(), "binary {} bytes, JSON {}", bin.len(), json.len());
        assert_eq!(decode(&bin).unwrap(), m);
    }

    #[test]
    fn layout_is_as_documented() {
        let mut m = typical(1);
        m.conversation = Conversation::Direct { low: 1, high: 300 };
        m.id = "é".into();
        m.time = Timestamp(-1);
        m.seq = 0;
        m.sender = Sender { id: None, name: String::new() };
        m.text = String::new();
        m.kind = MessageKind::Archive { is_archived: true };
        m.mentions = vec![128];
        m.metadata = Some(json!([1]));
        m.source = "s".into();
        #[rustfmt::skip]
        let expected = [
            DIRECT, 1, 0xac, 0x02,   // Direct { low: 1, high: 300 }
            2, 0xc3, 0xa9,           // id "é"
            1,                       // time -1, zigzag
            0,                       // seq
            0, 0,                    // sender: no id, empty name
            0,                       // text
            ARCHIVE, 1,              // kind
            0,                       // no attachment
            1, 0x80, 0x01,           // mentions [128]
            0,                       // not deleted
            1, 3, b'[', b'1', b']',  // metadata as JSON text
            1, b's',                 // source
        ];
        assert_eq!(encoded(&m), expected);
        assert_eq!(decode(&expected).unwrap(), m);
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let good = encoded(&typical(1));
        // Conversation tag out of range.
        let mut bad = good.clone();
        bad[0] = 2;
        assert_eq!(unreadable(&bad), "spool record unreadable: tag 2 out of range at byte 0");
        // Invalid UTF-8 in the id (right after the tag and room varint).
        let mut bad = good.clone();
        bad[3] = 0xff;
        assert_eq!(unreadable(&bad), "spool record unreadable: invalid UTF-8 at byte 3");
        // A string length far beyond the body: refused before allocating.
        let mut bad = vec![ROOM, 1];
        bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(unreadable(&bad), "spool record unreadable: length 18446744073709551615 exceeds the 0 bytes left at byte 12");
        // Varints: eleven bytes, bits past 64, a redundant zero group.
        assert!(unreadable(&[ROOM, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).contains("overflows 64 bits"));
        assert!(unreadable(&[ROOM, 0x80, 0x00]).contains("not minimal"));
        // A mention count larger than the bytes left.
        let mut m = typical(1);
        m.mentions = vec![5];
        let mut bad = encoded(&m);
        let at = bad.len() - 1 - 1 - m.source.len() - 1 - 1 - 1;
        assert_eq!(&bad[at..at + 2], &[1, 5]);
        bad[at] = 0x7f;
        assert!(unreadable(&bad).contains("127 mentions in fewer bytes"));
        // Metadata whose text is not JSON.
        let mut m = typical(1);
        m.metadata = Some(json!({"a": 1}));
        let mut bad = encoded(&m);
        let text = bad.windows(7).position(|w| w == br#"{"a":1}"#).unwrap();
        bad[text] = b'x';
        assert!(unreadable(&bad).contains("bad JSON"));
    }

    /// Per-record cost of the old JSON body against this one. Run once, in release:
    /// `cargo test --release --lib spool::record -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_json_against_binary() {
        use std::hint::black_box;
        use std::time::Instant;
        const N: u64 = 500_000;
        let messages: Vec<Message> = (0..N).map(typical).collect();
        let t = Instant::now();
        let mut bytes = 0;
        for m in &messages {
            let body = serde_json::to_vec(m).unwrap();
            let back: Message = serde_json::from_slice(&body).unwrap();
            bytes += body.len();
            black_box(back);
        }
        let json = t.elapsed();
        let json_bytes = bytes;
        let t = Instant::now();
        let mut buf = Vec::new();
        bytes = 0;
        for m in &messages {
            buf.clear();
            encode(m, &mut buf).unwrap();
            let back = decode(&buf).unwrap();
            bytes += buf.len();
            black_box(back);
        }
        let bin = t.elapsed();
        let per = |d: std::time::Duration| d.as_nanos() as f64 / N as f64;
        println!("JSON:   {:>7.0} ns/record, {:.1} bytes/record", per(json), json_bytes as f64 / N as f64);
        println!("binary: {:>7.0} ns/record, {:.1} bytes/record", per(bin), bytes as f64 / N as f64);
    }
}
