//! Streaming over the elements of a top-level JSON array, one element at a time.
//!
//! History files run to hundreds of megabytes; parsing one into a `Vec` (as every
//! earlier importer did) is what made them run out of memory. The walk here reads the
//! file in chunks and cuts out each element's JSON text, which is then parsed from a
//! slice: serde_json is several times faster on a slice than on a `Read` (where every
//! byte of every string goes through the reader), and a slice lets the message parser
//! borrow its strings instead of building a `serde_json::Value` per message.
//!
//! Hand-rolled (about 250 lines) because no maintained crate splits a JSON array
//! into element slices from a stream: serde_json's `StreamDeserializer` only reads
//! whitespace-separated values, and the pull parsers (struson and the like) copy every
//! string. The walk only finds where each element starts and ends; serde_json still
//! parses and validates every element, so what this module accepts is exactly JSON.
//! Shapes real exports use: a bare array, an array nested in another array, and an
//! object whose values are arrays (`{"Emoticons": [...]}`) or a single wrapped item.

use std::io::Read;

use serde_json::Value;

use crate::error::{Error, Result};

/// `s` without NUL characters. No target can store them (PostgreSQL text columns
/// reject U+0000, so one aborts a Zulip import), so the reader drops them from every
/// text it takes from the export; only a JSON `\u0000` escape can carry one.
pub fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}


/// The largest single JSON value (one message, one user…) accepted: far beyond any
/// real chat message, small enough that a hostile export with one endless string
/// cannot exhaust memory.
pub const MAX_VALUE_BYTES: u64 = 512 * 1024 * 1024;

/// Arrays nested deeper than this are refused (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;

/// Bytes read from the entry at a time.
const CHUNK: usize = 256 * 1024;

/// One element of the walked array, as JSON text.
pub struct RawElement<'b> {
    /// The element's JSON text, exactly as in the file.
    pub json: &'b [u8],
    /// For `{"Key": {...}}` at the top level: the key, which wraps the element.
    pub key: Option<&'b str>,
    /// Line (1-based) where the element starts.
    pub line: u64,
    /// Column (1-based, in bytes) where the element starts.
    pub column: u64,
    /// False when `json` may stop inside the element and more bytes will follow
    /// ([`for_each_prefix`]); true when it holds the whole element (and maybe more).
    pub complete: bool,
}

/// A callback over elements: `Some(bytes used)`, or `None` when `json` ended inside
/// the element and it is not `complete` (then it is called again with all of it).
pub type ElementHandler<'h> = dyn FnMut(RawElement<'_>) -> Result<Option<usize>> + 'h;

impl<'b> RawElement<'b> {
    /// The element as a `Value`; a keyed element becomes the one-key object `{key: value}`.
    pub fn to_value(&self, what: &str) -> Result<Value> {
        let value: Value = serde_json::from_slice(self.json).map_err(|e| self.error(what, &e))?;
        Ok(self.wrap(value))
    }

    /// `value` as this element delivers it: inside `{key: value}` when it was keyed.
    pub fn wrap(&self, value: Value) -> Value {
        match self.key {
            Some(key) => Value::Object(serde_json::Map::from_iter([(key.to_string(), value)])),
            None => value,
        }
    }

    /// Parses the value at the start of `json` as a `T`, returning it and the bytes it
    /// took; `Ok(None)` when `json` ends inside it and more bytes will follow.
    pub fn parse_prefix<T: serde::Deserialize<'b>>(&self) -> std::result::Result<Option<(T, usize)>, serde_json::Error> {
        let mut stream = serde_json::Deserializer::from_slice(self.json).into_iter::<T>();
        match stream.next() {
            Some(Ok(value)) => Ok(Some((value, stream.byte_offset()))),
            Some(Err(e)) if e.is_eof() && !self.complete => Ok(None),
            Some(Err(e)) => Err(e),
            None if !self.complete => Ok(None),
            None => Err(serde::de::Error::custom("EOF while parsing a value")),
        }
    }

    /// A parse error inside this element, with its line and column in the whole file.
    pub fn error(&self, what: &str, e: &serde_json::Error) -> Error {
        let (line, column) = match e.line() {
            0 => (self.line, self.column),
            1 => (self.line, self.column + e.column() as u64 - 1),
            n => (self.line + n as u64 - 1, e.column() as u64),
        };
        let text = e.to_string();
        let bare = text.rsplit_once(" at line ").map_or(text.as_str(), |(head, _)| head);
        Error::input(what, format!("malformed JSON: {bare} at line {line} column {column}"))
    }
}

/// Calls `each` with every element of the top-level array in `reader`, as a `Value`.
///
/// Errors from `each` stop the walk and are returned as they are; malformed JSON
/// becomes an input error naming `what` with line and column.
pub fn for_each_element(reader: impl Read, what: &str, each: &mut dyn FnMut(Value) -> Result<()>) -> Result<()> {
    for_each_element_limited(reader, what, MAX_VALUE_BYTES, each)
}

/// [`for_each_element`] with a chosen limit on the bytes of one element.
pub fn for_each_element_limited(reader: impl Read, what: &str, limit: u64, each: &mut dyn FnMut(Value) -> Result<()>) -> Result<()> {
    for_each_raw(reader, what, limit, &mut |element| each(element.to_value(what)?))
}

/// Calls `each` with the exact JSON text of every element, unparsed: the caller
/// parses it (and reports its errors through [`RawElement::error`]).
pub fn for_each_raw(reader: impl Read, what: &str, limit: u64, each: &mut dyn FnMut(RawElement<'_>) -> Result<()>) -> Result<()> {
    let mut handler = |element: RawElement<'_>| {
        let len = element.json.len();
        each(element).map(|()| Some(len))
    };
    Walk::new(reader, what, limit, false).document(&mut handler).map(|_| ())
}

/// Calls `each` with the bytes from the start of every element to the end of what
/// is read so far: the handler parses the element off the front (one pass over the
/// bytes instead of two) and says how many it used. See [`ElementHandler`].
///
/// For history files: one with no JSON at all (no bytes, or only whitespace) is a
/// history without messages, as hc-migrate leaves for some users, and gives
/// `Ok(false)`; anything else read gives `Ok(true)`.
pub fn for_each_prefix(reader: impl Read, what: &str, limit: u64, each: &mut ElementHandler<'_>) -> Result<bool> {
    for_each_prefix_in(&mut Vec::new(), reader, what, limit, each)
}

/// [`for_each_prefix`] reading through `window`, a buffer the caller keeps for
/// the next file: a fresh window is 256 KiB to zero (and fault in) per file, and
/// an export of 800 users has 800 history files of a few kilobytes. A window
/// that grew past a few chunks (a huge element) is let go rather than kept.
pub fn for_each_prefix_in(window: &mut Vec<u8>, reader: impl Read, what: &str, limit: u64, each: &mut ElementHandler<'_>) -> Result<bool> {
    let mut walk = Walk::new(reader, what, limit, true);
    walk.buf = std::mem::take(window);
    walk.empty_ok = true;
    let outcome = walk.document(each);
    if walk.buf.len() <= 4 * CHUNK {
        *window = std::mem::take(&mut walk.buf);
    }
    outcome
}

/// The index of the first byte a JSON string cannot hold as it is: `"`, `\` or
/// a control character (below 0x20). The history scanner looks for a string's end
/// with it, and the writers for whether a text needs escaping. Hand-rolled
/// because the crates that search for sets of bytes take at most three values,
/// and here 34 count.
/// Eight bytes at a time, by the usual zero-byte test on a word (a byte is flagged
/// exactly when it matches, except above a byte that already matched, so the
/// lowest flag is always right); the tail byte by byte.
pub fn first_string_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

/// Formats a serde_json error as `what: malformed JSON: … at line L column C`.
pub fn json_error(what: &str, e: &serde_json::Error) -> Error {
    if e.is_io() {
        Error::input(what, format!("cannot read: {e}"))
    } else {
        Error::input(what, format!("malformed JSON: {e}"))
    }
}

/// The walk over one file: a window of its bytes and where the reading stands.
struct Walk<'w, R> {
    reader: R,
    what: &'w str,
    limit: u64,
    /// The window: bytes not yet delivered or skipped, plus what was read ahead.
    buf: Vec<u8>,
    /// Bytes of `buf` holding file content; the rest is room for the next read.
    end: usize,
    /// The next byte to look at, as an index into `buf`.
    pos: usize,
    eof: bool,
    /// File offset of `buf[0]`.
    base: u64,
    /// File offset up to which newlines have been counted.
    counted: u64,
    /// Line number at `counted`.
    line: u64,
    /// File offset where that line starts.
    line_start: u64,
    /// Hand elements over as prefixes of the window ([`for_each_prefix`]).
    prefix: bool,
    /// A file without a document is an empty one, not an error.
    empty_ok: bool,
}

/// Where an array walk stands between elements.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Just after `[` or `{`: a value (key) or the closing bracket.
    First,
    /// After a comma: a value (key) is required.
    Next,
    /// After a value: a comma or the closing bracket.
    Separator,
}

impl<'w, R: Read> Walk<'w, R> {
    fn new(reader: R, what: &'w str, limit: u64, prefix: bool) -> Self {
        Walk { reader, what, limit, buf: Vec::new(), end: 0, pos: 0, eof: false, base: 0, counted: 0, line: 1, line_start: 0, prefix, empty_ok: false }
    }

    /// Walks the whole file; false when it held no document (see `empty_ok`).
    fn document(&mut self, each: &mut ElementHandler<'_>) -> Result<bool> {
        self.skip_bom()?;
        match self.peek_significant()? {
            None if self.empty_ok => return Ok(false),
            None => return Err(self.syntax("EOF while parsing a value")),
            Some(b'[') => {
                self.pos += 1;
                self.array(each)?;
            }
            Some(b'{') => {
                self.pos += 1;
                self.keyed_object(each)?;
            }
            // `null`: an empty file in all but name.
            Some(b'n') => {
                let (start, end) = self.value_extent()?;
                if &self.buf[start..end] != b"null" {
                    return Err(self.syntax("expected value"));
                }
                self.pos = end;
            }
            Some(_) => return Err(self.syntax("expected a JSON array or an object of arrays")),
        }
        match self.peek_significant()? {
            None => Ok(true),
            Some(_) => Err(self.syntax("trailing characters")),
        }
    }

    /// Steps over a UTF-8 byte-order mark at the start of the file (editors and
    /// Windows tools write one when an export is unpacked and packed again); JSON
    /// parsers reject it. Columns on the first line count from after it.
    fn skip_bom(&mut self) -> Result<()> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        while self.end < BOM.len() && self.fill(0)? {}
        if self.buf[..self.end].starts_with(BOM) {
            self.pos = BOM.len();
            self.line_start = BOM.len() as u64;
        }
        Ok(())
    }

    /// Walks an array whose `[` was just consumed; nested arrays are walked into.
    fn array(&mut self, each: &mut ElementHandler<'_>) -> Result<()> {
        let mut depth = 1usize;
        let mut expect = Expect::First;
        loop {
            let Some(b) = self.peek_significant()? else {
                return Err(self.syntax("EOF while parsing a list"));
            };
            match (expect, b) {
                (Expect::Next, b']') => return Err(self.syntax("trailing comma")),
                (Expect::First | Expect::Separator, b']') => {
                    self.pos += 1;
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                    expect = Expect::Separator;
                }
                (Expect::Separator, b',') => {
                    self.pos += 1;
                    expect = Expect::Next;
                }
                (Expect::Separator, _) => return Err(self.syntax("expected `,` or `]`")),
                (_, b'[') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(self.syntax("recursion limit exceeded"));
                    }
                    self.pos += 1;
                    expect = Expect::First;
                }
                _ => {
                    self.element(None, each)?;
                    expect = Expect::Separator;
                }
            }
        }
    }

    /// Walks a top-level object whose `{` was just consumed: arrays under its keys
    /// are walked, an object under a key is one element wrapped by that key, and
    /// anything else is skipped.
    fn keyed_object(&mut self, each: &mut ElementHandler<'_>) -> Result<()> {
        let mut expect = Expect::First;
        loop {
            let Some(b) = self.peek_significant()? else {
                return Err(self.syntax("EOF while parsing an object"));
            };
            match (expect, b) {
                (Expect::Next, b'}') => return Err(self.syntax("trailing comma")),
                (Expect::First | Expect::Separator, b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                (Expect::Separator, b',') => {
                    self.pos += 1;
                    expect = Expect::Next;
                }
                (Expect::Separator, _) => return Err(self.syntax("expected `,` or `}`")),
                (_, b'"') => {
                    let key = self.key()?;
                    match self.peek_significant()? {
                        Some(b'[') => {
                            self.pos += 1;
                            self.array(each)?;
                        }
                        Some(b'{') => self.element(Some(&key), each)?,
                        Some(_) => self.skip_value()?,
                        None => return Err(self.syntax("EOF while parsing a value")),
                    }
                    expect = Expect::Separator;
                }
                _ => return Err(self.syntax("key must be a string")),
            }
        }
    }

    /// Reads an object key and the colon after it.
    fn key(&mut self) -> Result<String> {
        let (start, end) = self.value_extent()?;
        let key: String = serde_json::from_slice(&self.buf[start..end]).map_err(|_| self.syntax("invalid object key"))?;
        self.pos = end;
        match self.peek_significant()? {
            Some(b':') => {
                self.pos += 1;
                Ok(key)
            }
            _ => Err(self.syntax("expected `:`")),
        }
    }

    /// Skips a scalar under a top-level key, still checking that it is JSON.
    fn skip_value(&mut self) -> Result<()> {
        let (start, end) = self.value_extent()?;
        let (line, column) = self.position(start);
        let element = RawElement { json: &self.buf[start..end], key: None, line, column, complete: true };
        serde_json::from_slice::<serde::de::IgnoredAny>(element.json).map_err(|e| element.error(self.what, &e))?;
        self.pos = end;
        Ok(())
    }

    /// Hands the value at `pos` to `each`: as a prefix of the window when walking in
    /// prefix mode (and again, whole, if the window ends inside it), else exactly.
    fn element(&mut self, key: Option<&str>, each: &mut ElementHandler<'_>) -> Result<()> {
        let start = self.pos;
        let (line, column) = self.position(start);
        if self.prefix && key.is_none() {
            let complete = self.eof;
            if let Some(used) = each(RawElement { json: &self.buf[start..self.end], key, line, column, complete })? {
                return self.consumed(start, used);
            }
            if complete {
                return Err(self.syntax("EOF while parsing a value"));
            }
        }
        let (start, end) = self.value_extent()?;
        match each(RawElement { json: &self.buf[start..end], key, line, column, complete: true })? {
            Some(used) => self.consumed(start, used),
            None => Err(self.syntax("EOF while parsing a value")),
        }
    }

    /// Moves past an element of `used` bytes starting at `start`.
    fn consumed(&mut self, start: usize, used: usize) -> Result<()> {
        if used as u64 > self.limit {
            return Err(self.too_large());
        }
        self.pos = (start + used).min(self.end);
        Ok(())
    }

    /// The extent (`start..end` in `buf`) of the value at `pos`, reading more as
    /// needed. Only brackets and strings are tracked; serde_json checks the rest
    /// when the element is parsed. Leaves `pos` at the value's start.
    fn value_extent(&mut self) -> Result<(usize, usize)> {
        let end = match self.buf[self.pos] {
            b'{' | b'[' => self.composite_end()?,
            b'"' => self.string_end(0)?,
            _ => self.scalar_end()?,
        };
        let len = end as u64;
        if len > self.limit {
            return Err(self.too_large());
        }
        Ok((self.pos, self.pos + end))
    }

    /// Offset (from `pos`) just past the object or array starting at `pos`.
    fn composite_end(&mut self) -> Result<usize> {
        let mut depth = 0usize;
        let mut off = 0;
        loop {
            if self.pos + off >= self.end {
                self.read_more()?;
                continue;
            }
            match self.buf[self.pos + off] {
                b'{' | b'[' => {
                    depth += 1;
                    off += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    off += 1;
                    if depth == 0 {
                        return Ok(off);
                    }
                }
                b'"' => off = self.string_end(off)?,
                _ => off += 1,
            }
        }
    }

    /// Offset just past the string whose opening quote is at offset `open`.
    fn string_end(&mut self, open: usize) -> Result<usize> {
        let mut off = open + 1;
        loop {
            let at = self.pos + off;
            if at >= self.end {
                self.read_more()?;
                continue;
            }
            match memchr::memchr2(b'"', b'\\', &self.buf[at..self.end]) {
                Some(k) if self.buf[at + k] == b'"' => return Ok(off + k + 1),
                // A backslash escapes the next byte, which may not be read yet.
                Some(k) => off += k + 2,
                None => off = self.end - self.pos,
            }
        }
    }

    /// Offset just past a number or literal at `pos`.
    fn scalar_end(&mut self) -> Result<usize> {
        let mut off = 0;
        loop {
            if self.pos + off >= self.end {
                if self.eof || !self.fill(self.pos)? {
                    break;
                }
                continue;
            }
            match self.buf[self.pos + off] {
                b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r' => break,
                _ => off += 1,
            }
        }
        if off == 0 {
            return Err(self.syntax("expected value"));
        }
        Ok(off)
    }

    /// Reads more inside a value; EOF there is an error, and so is a value that
    /// outgrows the limit.
    fn read_more(&mut self) -> Result<()> {
        if (self.end - self.pos) as u64 > self.limit {
            return Err(self.too_large());
        }
        if self.fill(self.pos)? {
            Ok(())
        } else {
            self.pos = self.end;
            Err(self.syntax("EOF while parsing a value"))
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek_significant(&mut self) -> Result<Option<u8>> {
        loop {
            while let Some(&b) = self.buf[..self.end].get(self.pos) {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.fill(self.pos)? {
                return Ok(None);
            }
        }
    }

    /// Reads the next chunk after `buf[..end]`, first dropping `buf[..keep_from]`
    /// when the window is short of room; false at the end of the file. The window
    /// is zeroed only when it grows, never per read.
    fn fill(&mut self, keep_from: usize) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() - self.end < CHUNK / 2 {
            if keep_from > 0 {
                self.count_lines_to(keep_from);
                self.buf.copy_within(keep_from..self.end, 0);
                self.end -= keep_from;
                self.base += keep_from as u64;
                self.pos -= keep_from;
            }
            if self.buf.len() - self.end < CHUNK / 2 {
                self.buf.resize(self.end + CHUNK, 0);
            }
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.eof = n == 0;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The archive stream under the entry broke (truncated, corrupt, bad
                // padding): say so, without a JSON line and column.
                Err(e) => return Err(crate::archive::classify(self.what, e)),
            }
        }
    }

    fn count_lines_to(&mut self, index: usize) {
        let from = (self.counted - self.base) as usize;
        if index <= from {
            return;
        }
        for nl in memchr::memchr_iter(b'\n', &self.buf[from..index]) {
            self.line += 1;
            self.line_start = self.base + (from + nl) as u64 + 1;
        }
        self.counted = self.base + index as u64;
    }

    /// Line and column (1-based) of `buf[index]`.
    fn position(&mut self, index: usize) -> (u64, u64) {
        self.count_lines_to(index);
        (self.line, self.base + index as u64 - self.line_start + 1)
    }

    fn syntax(&mut self, what_is_wrong: &str) -> Error {
        let (line, column) = self.position(self.pos.min(self.end));
        Error::input(self.what, format!("malformed JSON: {what_is_wrong} at line {line} column {column}"))
    }

    fn too_large(&self) -> Error {
        Error::input(self.what, format!("a single JSON value is larger than {} bytes; refusing it (a damaged or hostile export)", self.limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect_from(reader: impl Read, limit: u64) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for_each_element_limited(reader, "t.json", limit, &mut |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    fn collect(json: &str) -> Result<Vec<Value>> {
        collect_from(json.as_bytes(), MAX_VALUE_BYTES)
    }

    #[test]
    fn byte_order_marks_are_stepped_over_and_empty_histories_are_empty() {
        assert_eq!(collect("\u{feff}[{\"a\":1}]").unwrap(), vec![serde_json::json!({"a": 1})]);
        let err = collect("\u{feff}[{\"a\":}]").unwrap_err();
        assert!(err.message().contains("line 1 column 7"), "columns count from after the mark: {}", err.message());
        // A mark split over reads is still one.
        assert_eq!(collect_from(Uneven("\u{feff}[1]".as_bytes(), 0), MAX_VALUE_BYTES).unwrap().len(), 1);
        // Top-level files must hold a document; a history file may be empty.
        assert!(collect("").is_err() && collect(" \n").is_err());
        for empty in ["", " \n\t", "\u{feff}"] {
            let mut seen = 0;
            let held = for_each_prefix(Uneven(empty.as_bytes(), 0), "h.json", MAX_VALUE_BYTES, &mut |_| {
                seen += 1;
                Ok(None)
            });
            assert_eq!((held.unwrap(), seen), (false, 0), "{empty:?}");
        }
        assert!(for_each_prefix("[]".as_bytes(), "h.json", MAX_VALUE_BYTES, &mut |_| Ok(None)).unwrap());
    }

    /// A window kept from file to file holds the last file's bytes past its end:
    /// the next file reads as if its window were fresh, a damaged one included.
    #[test]
    fn a_kept_window_reads_each_file_as_a_fresh_one() {
        let read = |window: &mut Vec<u8>, text: &str| -> Result<Vec<Value>> {
            let mut out = Vec::new();
            for_each_prefix_in(window, Uneven(text.as_bytes(), 0), "h.json", MAX_VALUE_BYTES, &mut |element| match element.parse_prefix::<Value>().map_err(|e| element.error("h.json", &e))? {
                Some((v, used)) => {
                    out.push(v);
                    Ok(Some(used))
                }
                None => Ok(None),
            })?;
            Ok(out)
        };
        let long = format!("[{}]", (0..5000).map(|i| format!("{{\"id\": {i}, \"message\": \"{}\"}}", "x".repeat(i % 300))).collect::<Vec<_>>().join(","));
        let mut window = Vec::new();
        for text in [long.as_str(), r#"[{"a": 1}, {"b": "two"}]"#, "[1, 2", r#"[{"c": 3}]"#, " ", &long] {
            let fresh = read(&mut Vec::new(), text).map_err(|e| e.to_string());
            assert_eq!(read(&mut window, text).map_err(|e| e.to_string()), fresh, "{}", &text[..text.len().min(40)]);
            assert!(!window.is_empty(), "the window is kept");
        }
    }

    #[test]
    fn walks_plain_nested_and_keyed_arrays() {
        assert_eq!(collect(r#"[{"a":1},{"b":2}]"#).unwrap().len(), 2);
        assert_eq!(collect(r#"[[{"a":1},{"b":2}],[{"c":3}]]"#).unwrap().len(), 3);
        assert_eq!(collect(r#"{"Emoticons":[{"a":1},{"b":2}]}"#).unwrap().len(), 2);
        let single = collect(r#"{"UserMessage":{"id":"x"}}"#).unwrap();
        assert_eq!(single[0]["UserMessage"]["id"], "x");
        assert_eq!(collect(r#"{"n": 3, "s": "x", "list": [1, "two"]}"#).unwrap(), vec![Value::from(1), Value::from("two")]);
        assert!(collect("null").unwrap().is_empty());
        assert!(collect(" [ ] \n").unwrap().is_empty());
        assert!(collect("[[], [[]]]").unwrap().is_empty());
    }

    #[test]
    fn strings_with_brackets_quotes_and_escapes_stay_whole() {
        let json = r#"[{"m":"a ] } [ { \" \\"}, "x\"]", {"n":"\\\\"}]"#;
        let got = collect(json).unwrap();
        assert_eq!(got, serde_json::from_str::<Vec<Value>>(json).unwrap());
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let err = collect("[{\"a\":1},\n{\"b\":}]").unwrap_err();
        assert!(err.message().contains("t.json"), "{}", err.message());
        assert!(err.message().contains("line 2 column 6"), "{}", err.message());
        for (bad, expected) in [
            ("", "EOF while parsing a value at line 1 column 1"),
            ("[{\"a\":1}", "EOF while parsing a list"),
            ("[{\"a\":1},]", "trailing comma at line 1 column 10"),
            ("[{\"a\":1} {\"b\":2}]", "expected `,` or `]` at line 1 column 10"),
            ("[{\"a\":1}] x", "trailing characters"),
            ("[{\"a\":\"open", "EOF while parsing a value"),
            ("[tru]", "malformed JSON: EOF while parsing a value at line 1 column 4"),
            ("7", "expected a JSON array or an object of arrays"),
            ("{\"k\": [1], \"j\" 2}", "expected `:`"),
            ("{\"k\": tru}", "malformed JSON"),
        ] {
            let err = collect(bad).unwrap_err();
            assert!(err.message().starts_with("t.json: malformed JSON") && err.message().contains(expected), "{bad:?}: {}", err.message());
        }
    }

    /// A reader that hands out one byte per call.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn one_oversized_value_is_refused_but_many_small_ones_are_fine() {
        let small = format!("[{}]", vec!["{\"a\":\"xxxxxxxxxx\"}"; 200].join(","));
        assert_eq!(collect_from(OneByte(small.as_bytes()), 64).unwrap().len(), 200);
        let huge = format!("[{{\"a\":\"{}\"}}]", "x".repeat(1000));
        for err in [collect_from(OneByte(huge.as_bytes()), 64).unwrap_err(), collect_from(huge.as_bytes(), 64).unwrap_err()] {
            assert!(err.message().contains("t.json: a single JSON value is larger than 64 bytes"), "{}", err.message());
        }
    }

    #[test]
    fn positions_survive_chunk_boundaries() {
        // The damage sits past the first read chunk, on line 40002.
        let mut json = String::from("[\n");
        for i in 0..40_000 {
            json.push_str(&format!("{{\"i\":{i},\"pad\":\"{}\"}},\n", "p".repeat(i % 13)));
        }
        json.push_str("{\"bad\": }\n]");
        let err = collect(&json).unwrap_err();
        assert!(err.message().contains("line 40002 column 9"), "{}", err.message());
    }

    /// Hands out the bytes in uneven pieces, as a decompressor does.
    struct Uneven<'a>(&'a [u8], usize);

    impl Read for Uneven<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 += 1;
            let n = buf.len().min(1 + self.1 * 7919 % 9000).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_large_document_read_in_uneven_pieces_is_cut_correctly() {
        // Several times the read chunk, so the window is reused and moved many times;
        // quotes, escapes and brackets inside strings everywhere.
        let items: Vec<Value> = (0..20_000)
            .map(|i| serde_json::json!({"UserMessage": {"id": i, "message": format!("m{i} \"q\" ] }} {}", "[{".repeat(i % 9)), "sender": {"id": i % 7}}}))
            .collect();
        let text = serde_json::to_string(&items).unwrap();
        assert!(text.len() > 4 * CHUNK);
        assert_eq!(collect_from(Uneven(text.as_bytes(), 0), MAX_VALUE_BYTES).unwrap(), items);
    }

    /// Prefix mode: the handler parses off the front of the window, asks for the
    /// whole element when the window ends inside it, and positions still add up.
    #[test]
    fn prefix_mode_reads_every_element_once_across_windows() {
        let items: Vec<Value> = (0..20_000).map(|i| serde_json::json!({"id": i, "pad": "x]\"".repeat(i % 50)})).collect();
        let text = serde_json::to_string_pretty(&items).unwrap();
        for limit in [MAX_VALUE_BYTES, 200] {
            let mut got = Vec::new();
            let mut incomplete = 0;
            let outcome = for_each_prefix(Uneven(text.as_bytes(), 0), "t.json", limit, &mut |element| match element.parse_prefix::<Value>().map_err(|e| element.error("t.json", &e))? {
                Some((v, used)) => {
                    got.push(v);
                    Ok(Some(used))
                }
                None => {
                    incomplete += 1;
                    Ok(None)
                }
            });
            if limit == MAX_VALUE_BYTES {
                outcome.unwrap();
                assert_eq!(got, items);
                assert!(incomplete > 10, "the windows should have cut elements ({incomplete})");
            } else {
                assert!(outcome.unwrap_err().message().contains("larger than 200 bytes"));
            }
        }
        let damaged = text.replacen("\"id\": 19000", "\"id\": 19000,,", 1);
        let err = for_each_prefix(Uneven(damaged.as_bytes(), 0), "t.json", MAX_VALUE_BYTES, &mut |element| {
            Ok(element.parse_prefix::<Value>().map_err(|e| element.error("t.json", &e))?.map(|(_, used)| used))
        })
        .unwrap_err();
        let line = damaged.lines().position(|l| l.contains("19000,,")).unwrap() + 1;
        assert!(err.message().contains(&format!("line {line} column 17")), "{} (expected line {line})", err.message());
    }

    #[test]
    fn handler_errors_pass_through_unchanged() {
        let err = for_each_element(&b"[1,2]"[..], "t.json", &mut |_| Err(Error::usage("stop"))).unwrap_err();
        assert_eq!(err.message(), "stop");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~\\\\\"\\[\\]{}\u{e9}\u{1F600}\n]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The word-at-a-time search finds what a byte-by-byte one finds.
        #[test]
        fn first_string_special_is_the_first_special_byte(bytes in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(0x7f), Just(0x80)], 0..40)) {
            prop_assert_eq!(first_string_special(&bytes), bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20));
        }

        /// Whatever the elements and however the bytes arrive, the walk yields what
        /// parsing the whole array would (nested arrays flattened).
        #[test]
        fn elements_match_a_whole_document_parse(items in proptest::collection::vec(json_value(), 0..12), pretty: bool, one_byte: bool) {
            let doc = Value::from(items.clone());
            let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { serde_json::to_string(&doc).unwrap() };
            let got = if one_byte { collect_from(OneByte(text.as_bytes()), MAX_VALUE_BYTES) } else { collect(&text) }.unwrap();
            fn flatten(v: Value, out: &mut Vec<Value>) {
                match v {
                    Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
                    other => out.push(other),
                }
            }
            let mut expected = Vec::new();
            items.into_iter().for_each(|i| flatten(i, &mut expected));
            prop_assert_eq!(got, expected);
        }

        /// Any bytes at all: an error or elements, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(prop_oneof![Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b'\\'), Just(b','), Just(b':'), Just(b' '), any::<u8>()], 0..64)) {
            let _ = collect_from(&bytes[..], 16);
            let _ = collect_from(OneByte(&bytes), 16);
        }
    }
}
