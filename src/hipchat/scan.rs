//! One pass over a history element of the common shape, without serde.
//!
//! serde_json reads a borrowed element ([`super::borrowed`]) in several passes: it
//! skips each field value byte by byte to find its raw text, checks the UTF-8 of
//! every key and every raw value apart, and the element's bytes are searched again
//! for backslashes. That was most of the history threads' time, and the history
//! threads are the read pass's bottleneck. This scanner finds the same fields in
//! one pass: strings are crossed eight bytes at a time, and UTF-8 is checked once
//! for the whole element.
//!
//! Hand-rolled (about 200 lines) because it has to agree with serde_json exactly,
//! which no other parser promises: it accepts a strict subset of JSON, and says
//! `None` for anything outside it (an escaped key, a `\u` escape of a surrogate, a
//! repeated key, a number first, deep nesting, the end of the bytes, any syntax
//! error). The serde reader then decides, so every element it would refuse, and
//! every error text, stays as it was. Whenever this scanner accepts, serde_json
//! accepts with the same fields (the proptest beside that reader, in
//! `borrowed.rs`, which reads through this scanner first).

use super::fields::{BorrowedFields, Escapes};
use super::json::first_string_special;

/// Nesting followed inside a field value; deeper values are left to serde_json.
const MAX_DEPTH: usize = 32;

/// Members of the element, or of its first value, taken at most (messages have a
/// dozen); more are left to serde_json. Kept on the stack: vectors for them were
/// an allocation and a free each per message.
const MAX_MEMBERS: usize = 24;

/// What [`message`] found: the wrapper key (`None` when unwrapped), the fields,
/// and the bytes the element took.
pub type Scanned<'a> = (Option<&'a str>, BorrowedFields<'a>, usize);

/// Reads the message object at the front of `json` (its first byte must be `{`),
/// by the rule `fields::unwrap` applies to a `Value`: an object with exactly one
/// member whose value is an object is a wrapper. `None`: let serde_json read it.
pub fn message(json: &[u8]) -> Option<Scanned<'_>> {
    let mut s = Scanner { json, pos: 0, backslash: false };
    let (mut outer, mut inner) = (Members::default(), Members::default());
    s.object(0, Some(&mut outer), Some(&mut inner))?;
    let (outer, inner) = (outer.spans(), inner.spans());
    let used = s.pos;
    let text = std::str::from_utf8(&json[..used]).ok()?;
    let escapes = if s.backslash { Escapes::Possible } else { Escapes::Absent };
    let slice = |r: &Span| text.get(r.0 as usize..r.1 as usize);
    let entries = |members: &[(Span, Span)]| -> Option<Vec<(&str, &str)>> {
        let mut entries: Vec<(&str, &str)> = Vec::with_capacity(members.len());
        for (key, value) in members {
            let key = slice(key)?;
            // serde's reader refuses a repeated key (the `Value` path keeps the
            // last). Lengths and first bytes rule out most pairs without a call.
            if entries.iter().any(|(earlier, _)| earlier.len() == key.len() && earlier.as_bytes().first() == key.as_bytes().first() && *earlier == key) {
                return None;
            }
            entries.push((key, slice(value)?));
        }
        Some(entries)
    };
    // serde reads the first member's value as an object's fields whenever it is an
    // object, wrapper or not: its keys must pass the same checks.
    let first_is_object = outer.first().is_some_and(|(_, value)| json[value.0 as usize] == b'{');
    let inner_entries = if first_is_object { Some(entries(inner)?) } else { None };
    match (outer, inner_entries) {
        ([(key, _)], Some(fields)) => Some((Some(slice(key)?), BorrowedFields::new(fields, escapes), used)),
        _ => Some((None, BorrowedFields::new(entries(outer)?, escapes), used)),
    }
}

/// A byte range `start..end` of the element (a key's without its quotes). Four
/// bytes each keep [`Members`] small; an element is far shorter than 4 GiB
/// ([`super::json::MAX_VALUE_BYTES`]), and a longer one is left to serde.
#[derive(Clone, Copy, Default)]
struct Span(u32, u32);

impl Span {
    fn new(start: usize, end: usize) -> Option<Span> {
        Some(Span(u32::try_from(start).ok()?, u32::try_from(end).ok()?))
    }
}

/// The key and value spans of an object's members, in order.
#[derive(Default)]
struct Members {
    spans: [(Span, Span); MAX_MEMBERS],
    len: usize,
}

impl Members {
    fn push(&mut self, key: Span, value: Span) -> Option<()> {
        *self.spans.get_mut(self.len)? = (key, value);
        self.len += 1;
        Some(())
    }

    fn spans(&self) -> &[(Span, Span)] {
        &self.spans[..self.len]
    }
}

struct Scanner<'b> {
    json: &'b [u8],
    pos: usize,
    /// A backslash was crossed inside a string.
    backslash: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.pos).copied()
    }

    /// Steps over the whitespace JSON allows (serde_json's four bytes).
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Steps over `byte` after any whitespace, or fails.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// An object at `pos`. Its members' key and value spans go into `members`, if
    /// given. For the element itself, `first` is given: the members of its first
    /// member's value, when that is an object, go there.
    fn object(&mut self, depth: usize, mut members: Option<&mut Members>, mut first: Option<&mut Members>) -> Option<()> {
        self.expect(b'{')?;
        if self.empty(b'}')? {
            return Some(());
        }
        loop {
            self.whitespace();
            let key_start = self.pos;
            if self.peek()? != b'"' {
                return None;
            }
            self.string(true)?;
            let key = Span::new(key_start + 1, self.pos - 1)?;
            self.expect(b':')?;
            self.whitespace();
            let value_start = self.pos;
            match (self.peek()?, first.take()) {
                // The element's first value is read by serde as any value: a
                // number there is parsed, and may be out of range. Left to serde.
                (b'-' | b'0'..=b'9', Some(_)) => return None,
                (b'{', Some(fields)) => self.object(depth + 1, Some(fields), None)?,
                _ => self.value(depth + 1)?,
            }
            if let Some(members) = members.as_deref_mut() {
                members.push(key, Span::new(value_start, self.pos)?)?;
            }
            if self.closes(b'}')? {
                return Some(());
            }
        }
    }

    /// Just after an opening bracket: true past `close` right away (an empty
    /// object or array).
    fn empty(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        let empty = self.peek()? == close;
        if empty {
            self.pos += 1;
        }
        Some(empty)
    }

    /// After a member or an element: true past the closing `close`, false past a
    /// comma; anything else fails.
    fn closes(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        let byte = self.peek()?;
        self.pos += 1;
        match byte {
            b',' => Some(false),
            _ => (byte == close).then_some(true),
        }
    }

    /// Any value at `pos` (no whitespace before it).
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string(false),
            b'{' => self.object(depth, None, None),
            b'[' => self.array(depth),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.pos += 1;
        if self.empty(b']')? {
            return Some(());
        }
        loop {
            self.whitespace();
            self.value(depth + 1)?;
            if self.closes(b']')? {
                return Some(());
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.json.get(self.pos..self.pos + word.len())? == word).then(|| self.pos += word.len())
    }

    /// JSON's number grammar; its value is not read (serde_json only skips it
    /// here too, so no range applies).
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.peek()?.is_ascii_digit().then_some(())?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.peek()?.is_ascii_digit().then_some(())?;
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A string at `pos`, quotes included. A key may hold no escape (serde's
    /// reader takes keys borrowed, which an escape rules out).
    fn string(&mut self, key: bool) -> Option<()> {
        self.pos += 1;
        loop {
            self.pos += first_string_special(&self.json[self.pos..])?;
            match self.json[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' if !key => {
                    self.backslash = true;
                    self.escape()?;
                }
                // A raw control character, which JSON forbids in a string.
                _ => return None,
            }
        }
    }

    /// The escape whose backslash is at `pos`.
    fn escape(&mut self) -> Option<()> {
        match *self.json.get(self.pos + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
            b'u' => {
                let hex = self.json.get(self.pos + 2..self.pos + 6)?;
                // serde_json checks surrogate pairs only as it decodes a string:
                // an element with one goes to it (and then to the `Value` path).
                if !hex.iter().all(u8::is_ascii_hexdigit) || hex[0].eq_ignore_ascii_case(&b'd') {
                    return None;
                }
                self.pos += 6;
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper, fields, escapes and length the scanner finds, owned.
    type Found = (Option<String>, Vec<(String, String)>, Escapes, usize);

    fn fields(json: &str) -> Option<Found> {
        message(json.as_bytes()).map(|(w, f, used)| (w.map(str::to_string), f.entries().map(|(k, v)| (k.to_string(), v.to_string())).collect(), f.escapes(), used))
    }

    #[test]
    fn wrapped_unwrapped_and_left_to_serde() {
        let json = r#"{"UserMessage": {"id": "a", "from": {"id": 9, "n": [1, -2.5e3, true, null]}, "message": "x\ny"}}, {"#;
        let (w, f, e, used) = fields(json).unwrap();
        assert_eq!(w.as_deref(), Some("UserMessage"));
        assert_eq!(f, vec![("id".into(), r#""a""#.into()), ("from".into(), r#"{"id": 9, "n": [1, -2.5e3, true, null]}"#.into()), ("message".into(), r#""x\ny""#.into())]);
        assert_eq!((e, used), (Escapes::Possible, json.len() - 3));
        assert_eq!(fields(r#"{"id": "a", "x": {"b": 1}}"#).unwrap().0, None);
        assert_eq!(fields(r#"{"UserMessage": {"id": "a"}, "x": 1}"#).unwrap().1.len(), 2);
        assert_eq!(fields("{}").unwrap().1, vec![]);
        // A repeated key deeper down is part of a value's text, as for serde.
        assert_eq!(fields(r#"{"a": {"x": {"i": 1, "i": 2}}}"#).unwrap().1, vec![("x".into(), r#"{"i": 1, "i": 2}"#.into())]);
        assert_eq!(fields(r#"{"a": "é"}"#).unwrap().2, Escapes::Absent);
        for json in [
            r#"{"a": {"id": 1, "id": 2}}"#,
            r#"{"a": {"id": 1}, "b": 1, "b": 2}"#,
            r#"{"a\u0062": 1}"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\x"}"#,
            "{\"a\": \"\u{1}\"}",
            r#"{"a": 1e400}"#,
            r#"{"a": "b", "c": 01}"#,
            r#"{"a": "b", "c": 1.}"#,
            r#"{"a": "b", "c": -}"#,
            r#"{"a": "b",}"#,
            r#"{"a": "b" "c": 1}"#,
            r#"{"a": tru}"#,
            r#"{"a": "b"#,
            r#"[1]"#,
            r#" {"a": 1}"#,
        ] {
            assert!(fields(json).is_none(), "{json}");
        }
        assert!(message(b"{\"a\": \"\xff\"}").is_none());
        let deep = format!(r#"{{"a": "b", "c": {}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert!(fields(&deep).is_none());
    }
}
