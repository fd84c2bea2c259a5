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

use super::fields::{BorrowedFields, Escapes, Fields, FieldsVisitor};
use super::json::RawElement;

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
        Outer::Wrapped(key, fields) => Read::Message(Some(key), fields.with_escapes(escapes), used),
        Outer::Unwrapped => match serde_json::from_slice::<Fields<'a>>(json) {
            Ok(fields) => Read::Message(None, fields.0.with_escapes(escapes), used),
            Err(_) => Read::ValuePath,
        },
    }
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

/// The `id` and `name` of a sender or receiver object, read in one pass over its
/// text, each converted as `fields.rs` converts it (an id from a number or
/// a string of digits; a name from a string or a number). Reading the object as a
/// list of members first, then each member again, was a tenth of the history
/// threads' time (perf, 500k). `None` (the caller then reads the object the
/// general way) for a repeated member, or a member of another type (negative or
/// fractional numbers, booleans, arrays, objects), whose rules live there.
pub fn party(json: &str, escapes: Escapes) -> Option<Party> {
    party_plain(json).or_else(|| party_by_serde(json, escapes))
}

/// [`party`] for the common shape, in one pass without serde: keys without
/// escapes, the id and the name plain (digits, a string without escapes, or
/// null), the other members strings, whole numbers or literals. Anything else
/// (`None`) is left to serde. A sender object in every message made serde's
/// reading of it 5 % of a run (callgrind, integration-heavy 50k).
fn party_plain(json: &str) -> Option<Party> {
    let bytes = json.as_bytes();
    let mut at = 0;
    let skip_space = |at: &mut usize| {
        while matches!(bytes.get(*at), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            *at += 1;
        }
    };
    // A string at `at` without escapes: its content, and where it ends.
    let plain_string = |at: usize| -> Option<(&str, usize)> {
        let end = at + 1 + super::json::first_string_special(&bytes[at + 1..])?;
        (bytes[end] == b'"').then(|| (&json[at + 1..end], end + 1))
    };
    let (mut id, mut name): (Option<Option<u64>>, Option<String>) = (None, None);
    skip_space(&mut at);
    (*bytes.get(at)? == b'{').then_some(())?;
    at += 1;
    skip_space(&mut at);
    if *bytes.get(at)? == b'}' {
        at += 1;
    } else {
        loop {
            (*bytes.get(at)? == b'"').then_some(())?;
            let (key, end) = plain_string(at)?;
            at = end;
            skip_space(&mut at);
            (*bytes.get(at)? == b':').then_some(())?;
            at += 1;
            skip_space(&mut at);
            let start = at;
            match *bytes.get(at)? {
                b'"' => at = plain_string(at)?.1,
                b'0' => at += 1,
                b'1'..=b'9' => at += bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count(),
                b'n' if bytes[at..].starts_with(b"null") => at += 4,
                b't' if bytes[at..].starts_with(b"true") && !matches!(key, "id" | "name") => at += 4,
                b'f' if bytes[at..].starts_with(b"false") && !matches!(key, "id" | "name") => at += 5,
                _ => return None,
            }
            // A fraction, an exponent or a leading zero: serde's.
            if matches!(bytes.get(at), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
                return None;
            }
            let value = &json[start..at];
            let text = |v: &str| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).map(str::to_string);
            match key {
                "id" if id.is_some() => return None,
                "id" => {
                    id = Some(match text(value) {
                        Some(s) => s.trim().parse().ok(),
                        None if value == "null" => None,
                        None => Some(value.parse().ok()?),
                    })
                }
                "name" if name.is_some() => return None,
                "name" => {
                    name = Some(match text(value) {
                        Some(s) => s,
                        None if value == "null" => String::new(),
                        None => value.parse::<u64>().ok()?.to_string(),
                    })
                }
                _ => {}
            }
            skip_space(&mut at);
            match *bytes.get(at)? {
                b',' => {
                    at += 1;
                    skip_space(&mut at);
                }
                b'}' => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    skip_space(&mut at);
    (at == bytes.len()).then(|| Party { id: id.flatten(), name: name.unwrap_or_default() })
}

/// [`party`] by serde, for every shape.
fn party_by_serde(json: &str, escapes: Escapes) -> Option<Party> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The serde_json reading of a complete element, for the scanner's tests.
    fn read_with_serde(json: &[u8]) -> Option<super::super::scan::Scanned<'_>> {
        match read_with_serde_json(&RawElement { json, key: None, line: 1, column: 1, complete: true }) {
            Read::Message(wrapper, fields, used) => Some((wrapper, fields, used)),
            Read::Incomplete | Read::ValuePath => None,
        }
    }

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

    /// Sender-like objects, mostly plain, with every member type and flaw.
    fn party_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["\"id\"", "\"name\"", "\"mention_name\"", "\"version\"", "\"i\\u0064\"", "\"links\""]);
        let value = prop::sample::select(vec![
            "0", "7", "12345", "18446744073709551615", "18446744073709551616", "01", "-1", "1.0", "1e2", "null", "true", "false", "\"\"", "\" 12 \"", "\"x\"", "\"Ann Ö\"",
            "\"a\\\"b\"", "\"\\u0000\"", "[1]", "{}", "{\"a\": 1}", "\"\t\"", "nul", "\"unterminated",
        ]);
        let gap = prop::sample::select(vec!["", " ", "\n\t"]);
        (prop::collection::vec((key, value, gap.clone()), 0..5), gap, prop::sample::select(vec!["", " ", "x", ","]))
            .prop_map(|(members, g, tail)| format!("{g}{{{}}}{g}{tail}", members.iter().map(|(k, v, s)| format!("{s}{k}{s}:{s}{v}{s}")).collect::<Vec<_>>().join(",")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the plain reading takes, serde reads alike.
        #[test]
        fn the_plain_party_reading_is_serdes(json in party_text()) {
            if let Some(plain) = party_plain(&json) {
                prop_assert_eq!(Some(plain), party_by_serde(&json, Escapes::Possible), "{}", json);
            }
        }
    }

    #[test]
    fn plain_parties_are_read_without_serde() {
        assert_eq!(party_plain(r#"{"id": 5, "mention_name": "user5", "name": "User 5", "version": "00000000"}"#), Some(Party { id: Some(5), name: "User 5".into() }));
        assert_eq!(party_plain(r#"{"id": "0", "name": 7}"#), Some(Party { id: Some(0), name: "7".into() }));
        assert_eq!(party_plain(r#" { } "#), Some(Party { id: None, name: String::new() }));
        for json in [r#"{"id": 1.5}"#, r#"{"name": "a\"b"}"#, r#"{"id": 1, "id": 2}"#, r#"{"links": {}}"#, r#"{"id": -1}"#, r#"{"name": true}"#] {
            assert_eq!(party_plain(json), None, "{json}");
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the scanner accepts, serde's reader accepts with the same
        /// wrapper, fields, escapes and length (and the other way round for most).
        #[test]
        fn the_scanner_reads_as_serde_reads(json in element_text()) {
            let scanned = super::super::scan::message(json.as_bytes());
            let serde = read_with_serde(json.as_bytes());
            if let Some((w, f, used)) = scanned {
                let Some((sw, sf, sused)) = serde else { panic!("serde refused what the scanner took: {json}") };
                prop_assert_eq!(w, sw);
                prop_assert_eq!(used, sused);
                prop_assert_eq!(f.escapes(), sf.escapes());
                prop_assert_eq!(f.entries().collect::<Vec<_>>(), sf.entries().collect::<Vec<_>>());
            }
        }
    }

    /// Elements near the common shape, with every kind of value and, more rarely,
    /// the flaws the scanner must leave to serde.
    fn element_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![8 => prop_oneof![Just("id".to_string()), Just("message".to_string()), Just("from".to_string()), "[a-z]{1,3}", Just("é".to_string())], 1 => Just("a\\u0062".to_string())];
        let good = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,2})?([eE][+-]?[0-9]{1,3})?",
            "\"([a-z é😀<>]|\\\\[nt\"\\\\/bfr]|\\\\u00[0-9a-fA-F]{2}|\\\\ud83d\\\\ude00){0,12}\"",
        ];
        let flawed = prop_oneof![
            Just("fals".to_string()),
            Just("01".to_string()),
            Just("1e400".to_string()),
            Just("-".to_string()),
            Just("1.".to_string()),
            Just("\"\\ud800\"".to_string()),
            Just("\"\\x\"".to_string()),
            Just("\"\\u12\"".to_string()),
            Just("\"a\u{1}\"".to_string()),
            Just("\"\t\"".to_string()),
        ];
        let leaf = prop_oneof![12 => good, 1 => flawed];
        let value = leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((key_text(), inner), 0..4).prop_map(|m| format!("{{{}}}", m.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))),
            ]
        });
        let members = proptest::collection::vec((key.prop_map(|k| format!("\"{k}\"")), value), 0..6);
        let cut = prop_oneof![8 => Just(0usize), 1 => 1usize..12];
        (members, prop_oneof![Just(""), Just(" "), Just(","), Just("}"), Just(", {")], any::<bool>(), cut, any::<bool>()).prop_map(|(members, tail, wrap, cut, spaced)| {
            let gap = if spaced { " \n\t" } else { "" };
            let body = format!("{{{gap}{}{gap}}}", members.into_iter().map(|(k, v)| format!("{k}{gap}:{gap}{v}")).collect::<Vec<_>>().join(","));
            let mut json = if wrap { format!("{{\"UserMessage\": {body}}}") } else { body };
            let mut end = json.len().saturating_sub(cut);
            while !json.is_char_boundary(end) {
                end -= 1;
            }
            json.truncate(end);
            json + tail
        })
    }

    fn key_text() -> impl Strategy<Value = String> {
        prop_oneof![4 => Just("\"id\"".to_string()), 4 => Just("\"name\"".to_string()), 1 => Just("\"k\\n\"".to_string())]
    }
}
