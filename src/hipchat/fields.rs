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

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use super::json::without_nul;
use super::time::{parse_timestamp, timestamp_from_json};
use crate::model::Timestamp;

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
