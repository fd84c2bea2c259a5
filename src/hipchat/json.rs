//! Streaming over the elements of a top-level JSON array, one element at a time.
//!
//! History files run to hundreds of megabytes; parsing one into a `Vec` (as every
//! earlier importer did) is what made them run out of memory. serde_json can pull
//! array elements lazily through a `SeqAccess`, which is all this module does, plus
//! the shapes real exports use: a bare array, an array nested in another array, and
//! an object whose values are arrays (`{"Emoticons": [...]}`) or a single wrapped item.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};

/// The largest single JSON value (one message, one user…) accepted: far beyond any
/// real chat message, small enough that a hostile export with one endless string
/// cannot exhaust memory. serde_json has its own nesting limit (128 levels).
pub const MAX_VALUE_BYTES: u64 = 512 * 1024 * 1024;

/// Calls `each` with every element of the top-level array in `reader`.
///
/// Errors from `each` stop the walk and are returned as they are; malformed JSON
/// becomes an input error naming `what` with line and column.
pub fn for_each_element(reader: impl Read, what: &str, each: &mut dyn FnMut(Value) -> Result<()>) -> Result<()> {
    for_each_element_limited(reader, what, MAX_VALUE_BYTES, each)
}

/// [`for_each_element`] with a chosen limit on the bytes of one element.
pub fn for_each_element_limited(reader: impl Read, what: &str, limit: u64, each: &mut dyn FnMut(Value) -> Result<()>) -> Result<()> {
    let failure: RefCell<Option<Error>> = RefCell::new(None);
    let since_last = Cell::new(0u64);
    // The guard sits under a buffer so it counts chunks, not every byte serde_json
    // pulls; the limit is then exact to within one buffer, which is plenty.
    let guarded = std::io::BufReader::with_capacity(64 * 1024, ValueGuard { inner: reader, since_last: &since_last, limit });
    let mut de = serde_json::Deserializer::from_reader(guarded);
    let outcome = TopSeed { each: &mut *each, failure: &failure, since_last: &since_last }.deserialize(&mut de).and_then(|_| de.end());
    if let Some(err) = failure.into_inner() {
        return Err(err);
    }
    outcome.map_err(|e| {
        if e.is_io() {
            let io: std::io::Error = e.into();
            if io.get_ref().is_some_and(|i| i.is::<ValueTooLarge>()) {
                return Error::input(what, format!("a single JSON value is larger than {limit} bytes; refusing it (a damaged or hostile export)"));
            }
            // The archive stream under the entry broke (truncated, corrupt, bad padding):
            // say so, without a JSON line and column that mean nothing here.
            crate::archive::classify(what, io)
        } else {
            json_error(what, &e)
        }
    })
}

/// Formats a serde_json error as `what: malformed JSON: … at line L column C`.
pub fn json_error(what: &str, e: &serde_json::Error) -> Error {
    if e.is_io() {
        Error::input(what, format!("cannot read: {e}"))
    } else {
        Error::input(what, format!("malformed JSON: {e}"))
    }
}

/// Counts the bytes read since the last delivered element and fails past the limit.
struct ValueGuard<'c, R> {
    inner: R,
    since_last: &'c Cell<u64>,
    limit: u64,
}

impl<R: Read> Read for ValueGuard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.since_last.get() + n as u64;
        self.since_last.set(total);
        if total > self.limit {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, ValueTooLarge));
        }
        Ok(n)
    }
}

/// The marker error of [`ValueGuard`].
#[derive(Debug)]
struct ValueTooLarge;

impl fmt::Display for ValueTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON value too large")
    }
}

impl std::error::Error for ValueTooLarge {}

struct TopSeed<'a, 'f> {
    each: &'a mut dyn FnMut(Value) -> Result<()>,
    failure: &'f RefCell<Option<Error>>,
    since_last: &'f Cell<u64>,
}

impl TopSeed<'_, '_> {
    fn deliver<E: de::Error>(&mut self, value: Value) -> Result<(), E> {
        self.since_last.set(0);
        (self.each)(value).map_err(|err| {
            *self.failure.borrow_mut() = Some(err);
            E::custom("stopped by the element handler")
        })
    }
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array or an object of arrays")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ElementSeed { top: &mut self })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(KeyedSeed { top: &mut self, key })?;
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // `null`: an empty file in all but name.
    }
}

/// An array element: a nested array is walked into, anything else delivered.
struct ElementSeed<'t, 'a, 'f> {
    top: &'t mut TopSeed<'a, 'f>,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array element")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ElementSeed { top: &mut *self.top })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize_from_map(map)?;
        self.top.deliver(value)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.top.deliver(Value::String(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.top.deliver(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.top.deliver(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.top.deliver(Value::from(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.top.deliver(Value::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.top.deliver(Value::Null)
    }
}

/// The value under a top-level key: an array is walked, anything else is delivered
/// as the one-key object `{key: value}` (a single wrapped item).
struct KeyedSeed<'t, 'a, 'f> {
    top: &'t mut TopSeed<'a, 'f>,
    key: String,
}

impl<'de> DeserializeSeed<'de> for KeyedSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyedSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ElementSeed { top: &mut *self.top })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize_from_map(map)?;
        let mut obj = serde_json::Map::new();
        obj.insert(self.key, value);
        self.top.deliver(Value::Object(obj))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Builds a `Value` from an already opened map.
trait FromMap: Sized {
    fn deserialize_from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl FromMap for Value {
    fn deserialize_from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        use serde::Deserialize;
        Value::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(json: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for_each_element(json.as_bytes(), "t.json", &mut |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn walks_plain_nested_and_keyed_arrays() {
        assert_eq!(collect(r#"[{"a":1},{"b":2}]"#).unwrap().len(), 2);
        assert_eq!(collect(r#"[[{"a":1},{"b":2}],[{"c":3}]]"#).unwrap().len(), 3);
        assert_eq!(collect(r#"{"Emoticons":[{"a":1},{"b":2}]}"#).unwrap().len(), 2);
        let single = collect(r#"{"UserMessage":{"id":"x"}}"#).unwrap();
        assert_eq!(single[0]["UserMessage"]["id"], "x");
        assert!(collect("null").unwrap().is_empty());
        assert!(collect("[]").unwrap().is_empty());
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let err = collect("[{\"a\":1},\n{\"b\":}]").unwrap_err();
        assert!(err.message().contains("t.json"), "{}", err.message());
        assert!(err.message().contains("line 2"), "{}", err.message());
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
        // Fed one byte per read, so the guard sees the stream as it is parsed.
        let small = format!("[{}]", vec!["{\"a\":\"xxxxxxxxxx\"}"; 200].join(","));
        let mut n = 0;
        for_each_element_limited(OneByte(small.as_bytes()), "t.json", 64, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 200);
        let huge = format!("[{{\"a\":\"{}\"}}]", "x".repeat(1000));
        let err = for_each_element_limited(OneByte(huge.as_bytes()), "t.json", 64, &mut |_| Ok(())).unwrap_err();
        assert!(err.message().contains("t.json: a single JSON value is larger than 64 bytes"), "{}", err.message());
    }

    #[test]
    fn handler_errors_pass_through_unchanged() {
        let err = for_each_element(&b"[1,2]"[..], "t.json", &mut |_| Err(Error::usage("stop"))).unwrap_err();
        assert_eq!(err.message(), "stop");
    }
}
