//! Tolerant field access on JSON objects.
//!
//! Real exports disagree on types (ids as numbers or strings, null where the document
//! says string), so every read goes through these helpers instead of strict serde
//! structs that would reject a whole file for one odd field.
//!
//! The fields of a message read borrowed ([`BorrowedFields`], what is known of
//! their [`Escapes`], and [`object`] for a nested object) live here too: the
//! element readers that make them ([`super::scan`], [`super::borrowed`]) and the
//! field accessors that read them both use this module, which uses neither.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use super::json::without_nul;
use super::time::{parse_timestamp, timestamp_from_json};
use crate::model::{Card, Timestamp};

/// The string at `key`; empty for null, missing or non-string (numbers are printed).
pub fn text(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key).map(text_of).unwrap_or_default()
}


/// [`without_nul`] for every string inside `v`.
fn strip_nul_in(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Value::Array(items) => items.iter_mut().for_each(strip_nul_in),
        Value::Object(map) => map.values_mut().for_each(strip_nul_in),
        _ => {}
    }
}

/// A value as text: strings as they are (without NUL), numbers and booleans
/// printed, else empty.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => without_nul(s.clone()),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The string at `key`, `None` when null, missing or blank.
pub fn opt_text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    let s = text(obj, key);
    (!s.trim().is_empty()).then_some(s)
}

/// An id: a non-negative integer, or a string of digits.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The id at `key`.
pub fn id(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    obj.get(key).and_then(id_of)
}

/// A boolean at `key`: JSON true/false, `"true"`/`"false"`, or 0/1. Missing → false.
pub fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key).is_some_and(flag_of)
}

/// A value as a boolean, by [`flag`]'s rules.
pub fn flag_of(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// User ids from a list of ids or of objects with an `id` (room members come both ways).
pub fn id_list(obj: &Map<String, Value>, key: &str) -> Vec<u64> {
    match obj.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Object(o) => id(o, "id"),
                other => id_of(other),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The object inside a one-key wrapper (`{"User": {...}}`), or the object itself
/// when it is not wrapped. The wrapper key is returned when there was one.
pub fn unwrap(value: &Value) -> Option<(Option<&str>, &Map<String, Value>)> {
    let obj = value.as_object()?;
    if obj.len() == 1 {
        let (k, v) = obj.iter().next()?;
        if let Value::Object(inner) = v {
            return Some((Some(k.as_str()), inner));
        }
    }
    Some((None, obj))
}

/// A value that may hold JSON as a string (`card`, autojoin `data`, user `metadata`).
pub fn embedded_json(v: Option<&Value>) -> Option<Value> {
    let mut value = match v? {
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        Value::Null => return None,
        other => other.clone(),
    };
    strip_nul_in(&mut value);
    Some(value)
}

/// The card of a notification, from its `card` field: a JSON object given as a
/// string (or, rarely, as an object), read exactly as [`embedded_json`] reads it
/// (a blank string, null, text that is not JSON or JSON that is not an object:
/// no card), keeping what the targets show ([`Card`]).
///
/// A raw field is read without building a `Value`: [`Probe`] walks the card's
/// JSON through serde_json as a `Value` is read (the same checks and errors:
/// number ranges, escapes, nesting, trailing text) but keeps only the three
/// texts. A parsed field, or a card holding serde_json's private raw-value key
/// (which changes how a `Value` reads that object), goes the `Value` way.
pub fn card_of(field: Option<Field<'_>>) -> Option<Card> {
    let field = field?;
    if let Field::Raw(raw, _) = field {
        let probed = match raw.as_bytes().first() {
            Some(b'"') => {
                let text: String = serde_json::from_str(raw).ok()?;
                if text.trim().is_empty() {
                    return None;
                }
                serde_json::from_str::<Probe>(&text)
            }
            Some(b'{') => serde_json::from_str::<Probe>(raw),
            _ => return None,
        };
        match probed {
            // JSON that does not read: the card stays text, which shows nothing.
            Err(_) | Ok(Probe::Other | Probe::Text(_)) => return None,
            Ok(Probe::Card(card)) => return Some(card),
            Ok(Probe::Special) => {}
        }
    }
    card_in(embedded_json(Some(&field.value())))
}

/// [`Card`] of a card value as [`embedded_json`] gives it.
fn card_in(card: Option<Value>) -> Option<Card> {
    let card = card?;
    let card = card.as_object()?;
    let text = |key: &str| card.get(key).and_then(Value::as_str).map(str::to_string);
    Some(Card { title: text("title"), url: text("url"), description: text("description") })
}

/// A card's JSON read through, as serde_json reads a `Value`, without building one.
enum Probe {
    /// An object read as the card: its texts.
    Card(Card),
    /// A string read as a card text (NUL dropped, as [`embedded_json`] does).
    Text(String),
    /// Any other valid JSON.
    Other,
    /// An object (at any depth) whose first key is serde_json's raw-value token:
    /// a `Value` reads it another way, so the `Value` path decides.
    Special,
}

/// The key a `Value` reads a raw value under (`serde_json::raw::TOKEN`).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// What a [`Probe`] keeps of the value it walks.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    /// The card's texts, if it is an object.
    Card,
    /// The string, if it is one.
    Text,
    /// Nothing: the value is only checked.
    Nothing,
}

impl<'de> de::Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Keep::Card)
    }
}

impl<'de> de::DeserializeSeed<'de> for Keep {
    type Value = Probe;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Probe, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let mut card = Card::default();
        let mut special = false;
        let mut first = true;
        while let Some(key) = map.next_key::<Key>()? {
            if first && key == Key::Token {
                // What a `Value` does next is its own business: step over the
                // rest as leniently as JSON allows, and let it decide.
                map.next_value::<de::IgnoredAny>()?;
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                return Ok(Probe::Special);
            }
            first = false;
            let slot = match (self, key) {
                (Keep::Card, Key::Title) => &mut card.title,
                (Keep::Card, Key::Url) => &mut card.url,
                (Keep::Card, Key::Description) => &mut card.description,
                _ => {
                    special |= matches!(map.next_value_seed(Keep::Nothing)?, Probe::Special);
                    continue;
                }
            };
            // The last of repeated keys wins, as in a `Value`'s map.
            *slot = match map.next_value_seed(Keep::Text)? {
                Probe::Text(text) => Some(text),
                Probe::Special => {
                    special = true;
                    None
                }
                _ => None,
            };
        }
        Ok(match (special, self) {
            (true, _) => Probe::Special,
            (false, Keep::Card) => Probe::Card(card),
            (false, _) => Probe::Other,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Probe, A::Error> {
        let mut special = false;
        while let Some(element) = seq.next_element_seed(Keep::Nothing)? {
            special |= matches!(element, Probe::Special);
        }
        Ok(if special { Probe::Special } else { Probe::Other })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Probe, E> {
        Ok(match self {
            Keep::Text => Probe::Text(without_nul(s.to_string())),
            _ => Probe::Other,
        })
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Probe, E> {
        Ok(Probe::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Probe, E> {
        Ok(Probe::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Probe, E> {
        Ok(Probe::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Probe, E> {
        Ok(Probe::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Probe, E> {
        Ok(Probe::Other)
    }
}

/// A card's member name, as far as [`Probe`] cares.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Key {
    Title,
    Url,
    Description,
    Token,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "title" => Key::Title,
                    "url" => Key::Url,
                    "description" => Key::Description,
                    RAW_VALUE_TOKEN => Key::Token,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One field of a message object: a parsed value, or the raw JSON text of the
/// borrowed fast path ([`super::borrowed`], [`super::scan`]). Every reading goes through the `Value`
/// rules above; the raw side only skips building a `Value` for plain strings and
/// small objects, so both give the same result.
#[derive(Clone, Copy)]
pub enum Field<'a> {
    /// A parsed value.
    Value(&'a Value),
    /// JSON text, already checked to be valid, and whether it may hold escapes.
    Raw(&'a str, Escapes),
}

impl<'a> Field<'a> {
    /// The field as a `Value` (parsed on demand from raw text).
    pub fn value(self) -> Cow<'a, Value> {
        match self {
            Field::Value(v) => Cow::Borrowed(v),
            Field::Raw(r, _) => Cow::Owned(serde_json::from_str(r).unwrap_or(Value::Null)),
        }
    }

    /// The string content when the field is a JSON string, borrowed unless escaped.
    fn as_str(self) -> Option<Cow<'a, str>> {
        match self {
            Field::Value(Value::String(s)) => Some(Cow::Borrowed(s)),
            Field::Value(_) => None,
            Field::Raw(r, escapes) => {
                let text = r;
                let inner = text.strip_prefix('"')?.strip_suffix('"')?;
                if escapes == Escapes::Possible && memchr::memchr(b'\\', inner.as_bytes()).is_some() {
                    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(inner))
                }
            }
        }
    }

    /// [`text_of`] of the field.
    pub fn text(self) -> String {
        let mut out = String::new();
        self.text_into(&mut out);
        out
    }

    /// [`Field::text`] appended to `out`, without a `String` of its own.
    pub fn text_into(self, out: &mut String) {
        match self.as_str() {
            Some(s) if matches!(self, Field::Raw(_, Escapes::Absent)) => out.push_str(&s),
            Some(s) if s.contains('\0') => out.push_str(&s.replace('\0', "")),
            Some(s) => out.push_str(&s),
            None => out.push_str(&text_of(&self.value())),
        }
    }

    /// [`flag_of`] of the field.
    pub fn flag(self) -> bool {
        flag_of(&self.value())
    }

    /// [`id_of`] of the field.
    pub fn id(self) -> Option<u64> {
        id_of(&self.value())
    }

    /// [`timestamp_from_json`] of the field.
    pub fn timestamp(self) -> Option<Timestamp> {
        match self.as_str() {
            Some(s) => parse_timestamp(&s),
            None => timestamp_from_json(&self.value()),
        }
    }

    /// The members of an object field, read once so several can be taken without
    /// parsing it again. Raw objects are read borrowed, without a `Value`.
    pub fn members(self) -> Members<'a> {
        if let Field::Raw(r, escapes) = self {
            if let Some(fields) = object(r, escapes) {
                return Members::Borrowed(fields);
            }
        }
        Members::Parsed(self.value())
    }

    /// True when the field is a JSON object.
    pub fn is_object(self) -> bool {
        match self {
            Field::Value(v) => v.is_object(),
            Field::Raw(r, _) => r.starts_with('{'),
        }
    }
}

/// The members of an object field ([`Field::members`]); empty for a non-object.
pub enum Members<'a> {
    /// Borrowed from raw JSON text.
    Borrowed(BorrowedFields<'a>),
    /// A parsed value.
    Parsed(Cow<'a, Value>),
}

impl Members<'_> {
    /// The member `key`.
    pub fn get(&self, key: &str) -> Option<Field<'_>> {
        match self {
            Members::Borrowed(fields) => fields.field(key),
            Members::Parsed(v) => v.get(key).map(Field::Value),
        }
    }
}

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

    /// The same fields, known to come from a text whose escapes are `escapes`.
    pub(super) fn with_escapes(self, escapes: Escapes) -> Self {
        BorrowedFields { escapes, ..self }
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

/// The entries of a JSON object given as text; `None` for anything else, or an
/// object with escaped or repeated keys. `escapes` is what is known of the text
/// it came from.
pub fn object(json: &str, escapes: Escapes) -> Option<BorrowedFields<'_>> {
    serde_json::from_str::<Fields<'_>>(json).ok().map(|f| f.0.with_escapes(escapes))
}

/// A message object's entries; a repeated key is an error (the `Value` path keeps
/// the last one, and counting it is that path's business).
pub(super) struct Fields<'a>(pub(super) BorrowedFields<'a>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

pub(super) struct FieldsVisitor;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The card as it was read before [`card_of`]: the field's `Value`, then
    /// [`embedded_json`], then the three texts.
    fn card_as_a_value(raw: &str) -> Option<Card> {
        card_in(embedded_json(Some(&serde_json::from_str(raw).unwrap_or(Value::Null))))
    }

    fn card_from_string(text: &str) -> Option<Card> {
        let raw = serde_json::to_string(text).unwrap();
        let card = card_of(Some(Field::Raw(&raw, Escapes::Possible)));
        assert_eq!(card, card_as_a_value(&raw), "{text}");
        card
    }

    #[test]
    fn cards_read_as_their_value_reads() {
        let card = card_from_string(r#"{"style": "link", "title": "T\u0000", "url": 7, "description": "a\nb", "icon": {"url": "x"}, "title": "again"}"#).unwrap();
        assert_eq!(card, Card { title: Some("again".into()), url: None, description: Some("a\nb".into()) });
        for text in ["", "  ", "not json", "[1]", "\"x\"", "{\"title\": 1e400}", "{\"title\": \"a\"} x", "{\"title\": \"\\ud800\"}", "null", "{\"title\": \"a\",}"] {
            assert_eq!(card_from_string(text), None, "{text}");
        }
        let deep = format!("{{\"title\": \"t\", \"x\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(card_from_string(&deep), None, "past serde_json's nesting limit");
        // serde_json's raw-value key first: the Value path decides.
        card_from_string(r#"{"title": "t", "x": {"$serde_json::private::RawValue": "{\"a\": 1}"}}"#);
        card_from_string(r#"{"$serde_json::private::RawValue": "{\"title\": \"t\"}"}"#);
        // A card given as an object, not a string.
        let raw = r#"{"title": "T", "url": "https://x", "n": 1e400}"#;
        assert_eq!(card_of(Some(Field::Raw(raw, Escapes::Absent))), card_as_a_value(raw));
        assert_eq!(card_of(Some(Field::Raw(r#"{"title": "T"}"#, Escapes::Absent))).unwrap().title.as_deref(), Some("T"));
        assert_eq!(card_of(Some(Field::Raw("null", Escapes::Absent))), None);
        assert_eq!(card_of(None), None);
    }

    /// JSON near what cards hold, with the numbers, escapes, keys, nesting and
    /// trailing text on which a `Value` read fails or differs.
    fn card_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["title", "url", "description", "style", "icon", "tit\\u006ce", "$serde_json::private::RawValue", "ü"]).prop_map(|k| format!("\"{k}\""));
        let good = prop::sample::select(vec![
            "null", "true", "false", "0", "-0", "1.5", "1e-400", "123456789012345678901234567890", "\"\"", "\"text\"", "\"a\\nb\"", "\"\\u0000x\"", "\"\\ud83d\\ude00\"",
            "\"é 😀\"", "\"  \"", "\"{\\\"title\\\": 1}\"",
        ]);
        let bad = prop::sample::select(vec!["1e400", "-1e400", "\"\\ud800\"", "01", "\"\\x\""]);
        let leaf = prop_oneof![12 => good, 1 => bad].prop_map(String::from);
        let value = leaf.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((prop::sample::select(vec!["\"a\"", "\"title\"", "\"$serde_json::private::RawValue\""]), inner), 0..4)
                    .prop_map(|m| format!("{{{}}}", m.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))),
            ]
        });
        let object = prop::collection::vec((key, value.clone()), 0..6).prop_map(|m| format!("{{{}}}", m.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")));
        let tail = prop_oneof![6 => prop::sample::select(vec!["", " ", "\n"]), 1 => prop::sample::select(vec!["x", ",", "}"])];
        (prop_oneof![4 => object, 1 => value], prop::sample::select(vec!["", " ", "\t\n"]), tail).prop_map(|(json, lead, tail)| format!("{lead}{json}{tail}"))
    }

    /// The generated cards must often read as cards, or the property says little.
    #[test]
    fn generated_cards_often_read() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::default();
        let (mut cards, total) = (0, 2000);
        for _ in 0..total {
            let text = card_text().new_tree(&mut runner).expect("a value").current();
            cards += usize::from(card_from_string(&text).is_some());
        }
        assert!(cards * 100 >= total * 25, "only {cards} of {total} generated cards read as cards");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever the card's JSON, the probe reads what the `Value` path reads.
        #[test]
        fn the_probe_reads_cards_as_a_value_does(text in card_text()) {
            card_from_string(&text);
        }
    }
}
