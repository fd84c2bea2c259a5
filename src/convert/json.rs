//! Rows written as JSON by hand, byte for byte as serde writes them.
//!
//! Every writer emits one row per message (millions), and through serde each row
//! paid for escaping its key names again: a fifth of a writer's time (perf, 500k).
//! The writers spell each row out with these helpers instead (key bytes written
//! as they are, values through serde_json, so strings, floats and options come out
//! exactly as before), and each keeps a test comparing its bytes with serde's.

use std::io::{self, Write};

use serde::Serialize;

/// `key` (the bytes before the value: the brace or comma, the quoted name and
/// the colon), then `value` as serde_json writes it.
pub fn field<T: Serialize + ?Sized>(w: &mut impl Write, key: &[u8], value: &T) -> io::Result<()> {
    w.write_all(key)?;
    serde_json::to_writer(w, value).map_err(io::Error::from)
}

/// [`field`] for an integer, written with itoa (what serde_json uses too).
pub fn integer_field(w: &mut impl Write, key: &[u8], value: impl itoa::Integer) -> io::Result<()> {
    w.write_all(key)?;
    w.write_all(itoa::Buffer::new().format(value).as_bytes())
}

/// [`field`] for a boolean.
pub fn bool_field(w: &mut impl Write, key: &[u8], value: bool) -> io::Result<()> {
    w.write_all(key)?;
    w.write_all(if value { b"true" } else { b"false" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_serde_bytes() {
        let mut out = Vec::new();
        field(&mut out, b"{\"a\":", "x\"\n\u{1}").unwrap();
        integer_field(&mut out, b",\"b\":", -12i64).unwrap();
        integer_field(&mut out, b",\"c\":", u64::MAX).unwrap();
        bool_field(&mut out, b",\"d\":", false).unwrap();
        field(&mut out, b",\"e\":", &Some(1.5f64)).unwrap();
        field(&mut out, b",\"f\":", &None::<String>).unwrap();
        out.push(b'}');
        let expected = serde_json::json!({"a": "x\"\n\u{1}", "b": -12, "c": u64::MAX, "d": false, "e": 1.5, "f": null});
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), expected);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"x\"\n\u0001","b":-12,"c":18446744073709551615,"d":false,"e":1.5,"f":null}"#);
    }
}
