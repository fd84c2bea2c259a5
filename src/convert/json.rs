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

/// [`field`] for a string: the bytes serde_json writes, with its escaping done
/// only for strings that need it. Most texts hold no quote, backslash or control
/// character, and for them serde_json still looks up every byte in its escape
/// table and writes the string in pieces (perf: 7 % of the Mattermost and Qiscus
/// writers' threads); here they are found eight bytes at a time and written whole.
pub fn str_field(w: &mut impl Write, key: &[u8], value: &str) -> io::Result<()> {
    if needs_escape(value.as_bytes()) {
        return field(w, key, value);
    }
    w.write_all(key)?;
    w.write_all(b"\"")?;
    w.write_all(value.as_bytes())?;
    w.write_all(b"\"")
}

/// Whether serde_json escapes any byte of `bytes`: a control character (below
/// 0x20), `"` or `\`.
fn needs_escape(bytes: &[u8]) -> bool {
    crate::hipchat::json::first_string_special(bytes).is_some()
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

    /// Strings come out as serde_json writes them, whatever bytes they hold and
    /// wherever in a word the one to escape falls.
    #[test]
    fn str_fields_are_serde_bytes() {
        let mut texts: Vec<String> = vec![String::new(), "plain text of some length, no escapes".into(), "é😀 ünïcödé \u{7f}".into()];
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}', '\t'] {
            for at in 0..20 {
                let mut t: String = "abcdefghijklmnopqrst".chars().take(at).collect();
                t.push(special);
                t.push_str("tail é");
                texts.push(t);
            }
        }
        for t in &texts {
            let (mut ours, mut serde) = (Vec::new(), Vec::new());
            str_field(&mut ours, b",\"k\":", t).unwrap();
            field(&mut serde, b",\"k\":", t.as_str()).unwrap();
            assert_eq!(ours, serde, "{t:?}");
            assert_eq!(needs_escape(t.as_bytes()), t.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'), "{t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_written_as_serde_writes_it(t in ".*", bytes in proptest::collection::vec(0u8..0x80, 0..40)) {
            let ascii = String::from_utf8(bytes).unwrap();
            for t in [t, ascii] {
                let (mut ours, mut serde) = (Vec::new(), Vec::new());
                str_field(&mut ours, b"", &t).unwrap();
                field(&mut serde, b"", t.as_str()).unwrap();
                proptest::prop_assert_eq!(ours, serde);
            }
        }
    }

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
