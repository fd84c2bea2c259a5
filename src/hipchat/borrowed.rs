//! The fast path for history elements: a message's fields as borrowed JSON text.
//!
//! Building a `serde_json::Value` per message (a map, a `String` per key and per
//! value) was the largest cost of a conversion. Here one element is read straight from
//! its slice: the wrapper key and each field's raw JSON text, all borrowed; the
//! message parser then converts only the fields it uses, most of them plain strings.
//! Anything this reader does not take (an escaped key, a repeated key, a lone UTF-16
//! surrogate, malformed JSON) returns `None`, and the caller parses the element as a
//! `Value` instead, so both paths accept exactly the same input.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::fields::Field;
use super::json::RawElement;

/// Whether a JSON text may hold escapes (`\n`, `\u0000`…).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Escapes {
    /// Not one backslash: every string in it is its own text, and none holds a NUL
    /// (JSON allows a NUL in a string only as `\u0000`; serde_json refuses a raw
    /// one), so readers take strings as they are, without looking for either.
    Absent,
    /// There may be escapes: strings are decoded and NULs dropped.
    Possible,
}

/// One message object's fields, in file order, each as its JSON text.
pub struct BorrowedFields<'a> {
    /// Each key and its value's JSON text (checked to be JSON).
    entries: Vec<(&'a str, &'a str)>,
    /// Whether the object's text holds a backslash anywhere.
    escapes: Escapes,
}

impl<'a> BorrowedFields<'a> {
    /// Fields from keys and their values' JSON text, which the caller has checked
    /// to be JSON; `escapes` is what is known of the text they came from.
    pub(super) fn new(entries: Vec<(&'a str, &'a str)>, escapes: Escapes) -> Self {
        BorrowedFields { entries, escapes }
    }

    /// The raw JSON text of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The field `key`, carrying what is known of its escapes.
    pub fn field(&self, key: &str) -> Option<Field<'a>> {
        self.get(key).map(|raw| Field::Raw(raw, self.escapes))
    }

    /// Every key, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.entries.iter().map(|(k, _)| *k)
    }

    /// Every key and its value's JSON text, in file order.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.entries.iter().copied()
    }

    /// Whether the text they came from may hold escapes.
    #[cfg(test)]
    pub fn escapes(&self) -> Escapes {
        self.escapes
    }
}

/// What [`read`] found at the front of an element's bytes.
pub enum Read<'a> {
    /// A message object: its wrapper key (`None` when unwrapped), fields, bytes used.
    Message(Option<&'a str>, BorrowedFields<'a>, usize),
    /// The bytes end inside the element; more will follow.
    Incomplete,
    /// Not a shape this reader takes: parse the element as a `Value`.
    ValuePath,
}

/// True when `json` may hold a `\\uD800`–`\\uDFFF` escape. An escaped backslash
/// before `ud` also counts (a harmless detour to the Value path); backslashes are
/// rare in chat text, so scanning for them beats building a substring finder per
/// message (`memmem::find` does that on every call).
fn has_surrogate_escape(json: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', json).any(|i| json.get(i + 1) == Some(&b'u') && json.get(i + 2).is_some_and(|c| c.eq_ignore_ascii_case(&b'd')))
}

/// Whether `json` may hold escapes. One scan of the element here spares a scan of
/// every string for a backslash and another for a NUL as it is taken (those two
/// were 2 % of a run, perf 460k).
fn escapes_in(json: &[u8]) -> Escapes {
    match memchr::memchr(b'\\', json) {
        None => Escapes::Absent,
        Some(_) => Escapes::Possible,
    }
}

/// Reads the history element at the front of `element.json`.
///
/// The wrapper rule is the one `fields::unwrap` applies to a `Value`: an
/// object with exactly one key whose value is an object is a wrapper.
pub fn read<'a>(element: &RawElement<'a>) -> Read<'a> {
    if let Some((wrapper, fields, used)) = super::scan::message(element.json) {
        return Read::Message(wrapper, fields, used);
    }
    read_with_serde_json(element)
}

/// [`read`] by serde_json alone: what the scanner leaves to it (and, in tests,
/// the reference the scanner is held to).
fn read_with_serde_json<'a>(element: &RawElement<'a>) -> Read<'a> {
    let (outer, used) = match element.parse_prefix::<Outer<'a>>() {
        Ok(Some(found)) => found,
        Ok(None) => return Read::Incomplete,
        Err(_) => return Read::ValuePath,
    };
    let json = &element.json[..used];
    let escapes = escapes_in(json);
    // serde_json checks `\u` escapes only when it decodes a string, and lone
    // surrogates are refused then: leave any element that has one to the Value path.
    if escapes == Escapes::Possible && has_surrogate_escape(json) {
        return Read::ValuePath;
    }
    match outer {
        Outer::Wrapped(key, fields) => Read::Message(Some(key), BorrowedFields { escapes, ..fields }, used),
        Outer::Unwrapped => match serde_json::from_slice::<Fields<'a>>(json) {
            Ok(fields) => Read::Message(None, BorrowedFields { escapes, ..fields.0 }, used),
            Err(_) => Read::ValuePath,
        },
    }
}

/// The entries of a JSON object given as text; `None` for anything else, or an
/// object with escaped or repeated keys. `escapes` is what is known of the text
/// it came from.
pub fn object(json: &str, escapes: Escapes) -> Option<BorrowedFields<'_>> {
    serde_json::from_str::<Fields<'_>>(json).ok().map(|f| BorrowedFields { escapes, ..f.0 })
}

/// The outer object, read once: a wrapper around a message, or not.
enum Outer<'a> {
    Wrapped(&'a str, BorrowedFields<'a>),
    Unwrapped,
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Outer<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OuterVisitor)
    }
}

struct OuterVisitor;

impl<'de> Visitor<'de> for OuterVisitor {
    type Value = Outer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outer<'de>, A::Error> {
        let Some(first) = map.next_key::<&'de str>()? else {
            return Ok(Outer::Unwrapped);
        };
        let value = map.next_value::<MaybeFields<'de>>()?;
        if map.next_key::<&'de str>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Outer::Unwrapped);
        }
        Ok(match value {
            MaybeFields::Object(fields) => Outer::Wrapped(first, fields),
            MaybeFields::Other => Outer::Unwrapped,
        })
    }
}

/// The value under the first key: the fields of an object, or something else.
enum MaybeFields<'a> {
    Object(BorrowedFields<'a>),
    Other,
}

impl<'de: 'a, 'a> de::Deserialize<'de> for MaybeFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MaybeFieldsVisitor)
    }
}

struct MaybeFieldsVisitor;

impl<'de> Visitor<'de> for MaybeFieldsVisitor {
    type Value = MaybeFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        FieldsVisitor.visit_map(map).map(|f| MaybeFields::Object(f.0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeFields::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(MaybeFields::Other)
    }
}

/// A message object's entries; a repeated key is an error (the `Value` path keeps
/// the last one, and counting it is that path's business).
struct Fields<'a>(BorrowedFields<'a>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut entries: Vec<(&'de str, &'de str)> = Vec::with_capacity(12);
        while let Some((key, value)) = map.next_entry::<&'de str, &'de RawValue>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom("repeated key"));
            }
            entries.push((key, value.get()));
        }
        Ok(Fields(BorrowedFields { entries, escapes: Escapes::Possible }))
    }
}

/// The `id` and `name` of a sender or receiver object, read in one pass over its
/// text, each converted as `fields.rs` converts it (an id from a number or
/// a string of digits; a name from a string or a number). Reading the object as a
/// list of members first, then each member again, was a tenth of the history
/// threads' time (perf, 500k). `None` (the caller then reads the object the
/// general way) for a repeated member, or a member of another type (negative or
/// fractional numbers, booleans, arrays, objects), whose rules live there.
pub fn party(json: &str, escapes: Escapes) -> Option<Party> {
    let members = serde_json::from_str::<PartyMembers<'_>>(json).ok()?;
    let id = match members.id {
        Scalar::Absent | Scalar::Null => None,
        Scalar::U64(n) => Some(n),
        Scalar::Str(s) => s.trim().parse().ok(),
    };
    let name = match members.name {
        Scalar::Absent | Scalar::Null => String::new(),
        Scalar::U64(n) => n.to_string(),
        Scalar::Str(s) if escapes == Escapes::Absent => s.into_owned(),
        Scalar::Str(s) => super::json::without_nul(s.into_owned()),
    };
    Some(Party { id, name })
}

/// What [`party`] read.
#[derive(Debug, PartialEq)]
pub struct Party {
    /// The id, if one was given and readable.
    pub id: Option<u64>,
    /// The name, empty when not given.
    pub name: String,
}

/// One member's value, as far as [`party`] takes it: any other type is an error
/// (serde's default for the visits not written below), so the general path reads it.
enum Scalar<'a> {
    Absent,
    Null,
    U64(u64),
    Str(std::borrow::Cow<'a, str>),
}

struct PartyMembers<'a> {
    id: Scalar<'a>,
    name: Scalar<'a>,
}

impl<'de: 'a, 'a> de::Deserialize<'de> for PartyMembers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PartyVisitor)
    }
}

struct PartyVisitor;

impl<'de> Visitor<'de> for PartyVisitor {
    type Value = PartyMembers<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sender object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PartyMembers<'de>, A::Error> {
        let mut members = PartyMembers { id: Scalar::Absent, name: Scalar::Absent };
        while let Some(key) = map.next_key::<PartyKey>()? {
            let slot = match key {
                PartyKey::Id => &mut members.id,
                PartyKey::Name => &mut members.name,
                PartyKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if !matches!(slot, Scalar::Absent) {
                return Err(de::Error::custom("repeated member"));
            }
            *slot = map.next_value::<Scalar<'de>>()?;
        }
        Ok(members)
    }
}

/// A member name; escaped names arrive unescaped, as the `Value` path sees them.
enum PartyKey {
    Id,
    Name,
    Other,
}

impl<'de> de::Deserialize<'de> for PartyKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = PartyKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<PartyKey, E> {
                Ok(match key {
                    "id" => PartyKey::Id,
                    "name" => PartyKey::Name,
                    _ => PartyKey::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null, a string or an unsigned integer")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(std::borrow::Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(std::borrow::Cow::Owned(s.to_string())))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(n))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
}

/// The serde_json reading of a complete element, for the scanner's tests.
#[cfg(test)]
pub(super) fn read_with_serde(json: &[u8]) -> Option<super::scan::Scanned<'_>> {
    match read_with_serde_json(&RawElement { json, key: None, line: 1, column: 1, complete: true }) {
        Read::Message(wrapper, fields, used) => Some((wrapper, fields, used)),
        Read::Incomplete | Read::ValuePath => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(json: &str) -> RawElement<'_> {
        RawElement { json: json.as_bytes(), key: None, line: 1, column: 1, complete: true }
    }

    fn shape(json: &str) -> Option<(Option<String>, Vec<String>)> {
        match read(&element(json)) {
            Read::Message(w, f, used) => {
                assert_eq!(used, json.len());
                Some((w.map(str::to_string), f.keys().map(str::to_string).collect()))
            }
            Read::Incomplete => panic!("complete input reported incomplete"),
            Read::ValuePath => None,
        }
    }

    #[test]
    fn wrapped_unwrapped_and_refused_shapes() {
        assert_eq!(shape(r#"{"UserMessage": {"id": "a", "message": "x"}}"#), Some((Some("UserMessage".into()), vec!["id".into(), "message".into()])));
        assert_eq!(shape(r#"{"id": "a", "type": "muc_topic"}"#), Some((None, vec!["id".into(), "type".into()])));
        // One key with a non-object value, and two keys with an object first: unwrapped.
        assert_eq!(shape(r#"{"id": "a"}"#), Some((None, vec!["id".into()])));
        assert_eq!(shape(r#"{"UserMessage": {"id": "a"}, "x": 1}"#), Some((None, vec!["UserMessage".into(), "x".into()])));
        assert_eq!(shape("{}"), Some((None, vec![])));
        // Left to the Value path.
        assert!(shape(r#"{"UserMessage": {"id": "a", "id": "b"}}"#).is_none());
        assert!(shape(r#"{"UserMessage": {"i\u0064": "a"}}"#).is_none());
        assert!(shape(r#"{"UserMessage": {"message": "\ud800"}}"#).is_none());
        assert!(shape(r#"{"UserMessage": {"message": "a"#).is_none());
        assert!(shape(r#"[1]"#).is_none());
        assert!(shape(r#""text""#).is_none());
    }

    #[test]
    fn a_prefix_is_read_up_to_its_end_or_found_incomplete() {
        let json = r#"{"UserMessage": {"id": "a"}}, {"UserMessage": {"id": "b"}}"#;
        let Read::Message(Some("UserMessage"), f, used) = read(&element(json)) else { panic!() };
        assert_eq!((f.get("id").unwrap(), used), (r#""a""#, 28));
        let cut = RawElement { json: &json.as_bytes()[..20], key: None, line: 1, column: 1, complete: false };
        assert!(matches!(read(&cut), Read::Incomplete));
    }

    #[test]
    fn party_members_in_one_pass() {
        let party = |json: &str| super::party(json, Escapes::Possible);
        assert_eq!(party(r#"{"id": 9, "name": "N", "links": {"a": [1]}}"#), Some(Party { id: Some(9), name: "N".into() }));
        assert_eq!(party(r#"{"id": " 12 ", "name": 7}"#), Some(Party { id: Some(12), name: "7".into() }));
        assert_eq!(party(r#"{"i\u0064": "x", "name": null}"#), Some(Party { id: None, name: String::new() }));
        assert_eq!(party(r#"{"name": "a\"b"}"#), Some(Party { id: None, name: "a\"b".into() }));
        assert_eq!(party("{}"), Some(Party { id: None, name: String::new() }));
        // Left to the general path.
        for json in [r#"{"id": 1, "id": 2}"#, r#"{"id": -1}"#, r#"{"id": 1.0}"#, r#"{"name": true}"#, r#"{"id": [1]}"#, r#"{"name": {}}"#, "[1, 2]"] {
            assert_eq!(party(json), None, "{json}");
        }
    }

    #[test]
    fn values_are_the_raw_text() {
        let json = r#"{"UserMessage": {"sender": {"id": 9, "name": "N"}, "message": "a\"b"}}"#;
        let Read::Message(_, f, _) = read(&element(json)) else { panic!() };
        assert_eq!(f.get("sender").unwrap(), r#"{"id": 9, "name": "N"}"#);
        assert_eq!(f.get("message").unwrap(), r#""a\"b""#);
        assert!(f.get("missing").is_none());
    }
}
