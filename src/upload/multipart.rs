//! The `multipart/form-data` body of an upload (RFC 7578).
//!
//! Hand-rolled, about twenty lines: ureq's own multipart support lives in its
//! `unversioned` module (outside its semver promise) and brings two more crates
//! (mime_guess, getrandom) for what is here one text field and one file whose name
//! and content type are known. Building the body from the bytes already in memory
//! also means the bytes sent are exactly the bytes whose checksum the journal holds.

use sha2::{Digest, Sha256};

/// One field of a form.
pub enum Field<'a> {
    /// `name=value`.
    Text { name: &'a str, value: &'a str },
    /// A file part: field name, file name, content type, content.
    File { name: &'a str, file_name: &'a str, content_type: &'a str, bytes: &'a [u8] },
}

/// A body and the `Content-Type` header that names its boundary.
pub struct Body {
    /// `multipart/form-data; boundary=…`.
    pub content_type: String,
    /// The encoded form.
    pub bytes: Vec<u8>,
}

/// Encodes `fields`. The boundary is derived from the content (so the same upload
/// is the same body, byte for byte) and checked not to occur in it. Names must be
/// plain (no quote, backslash or line break): they are written as they are.
pub fn encode(fields: &[Field<'_>]) -> Body {
    let boundary = boundary_for(fields);
    let mut bytes = Vec::with_capacity(fields.iter().map(|f| field_bytes(f).len() + 200).sum());
    for field in fields {
        bytes.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match field {
            Field::Text { name, value } => {
                assert!(is_plain(name) && is_plain(value), "multipart text field {name:?} needs escaping");
                bytes.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes());
            }
            Field::File { name, file_name, content_type, bytes: content } => {
                assert!(is_plain(name) && is_plain(file_name) && is_plain(content_type), "multipart file field {name:?} needs escaping");
                bytes.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
                bytes.extend_from_slice(content);
            }
        }
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Body { content_type: format!("multipart/form-data; boundary={boundary}"), bytes }
}

fn field_bytes<'a>(field: &'a Field<'_>) -> &'a [u8] {
    match field {
        Field::Text { value, .. } => value.as_bytes(),
        Field::File { bytes, .. } => bytes,
    }
}

/// A boundary that occurs in no field: `hcconv-` and 32 hex digits of a hash of
/// the content (and a counter, in the unlikely case that the content holds it).
fn boundary_for(fields: &[Field<'_>]) -> String {
    let mut hash = Sha256::new();
    for field in fields {
        hash.update(field_bytes(field));
    }
    first_absent(&hash.finalize(), fields)
}

/// The first candidate for `seed` that no field holds.
fn first_absent(seed: &[u8], fields: &[Field<'_>]) -> String {
    (0u32..).map(|n| candidate(seed, n)).find(|b| fields.iter().all(|f| memchr::memmem::find(field_bytes(f), b.as_bytes()).is_none())).expect("some counter gives a boundary the content lacks")
}

/// The `n`th boundary tried for content that hashes to `seed`.
fn candidate(seed: &[u8], n: u32) -> String {
    let digest = Sha256::new().chain_update(seed).chain_update(n.to_le_bytes()).finalize();
    format!("hcconv-{}", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn is_plain(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'"' | b'\\' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_with_a_text_field_and_a_file() {
        let body = encode(&[Field::Text { name: "type", value: "users" }, Field::File { name: "file", file_name: "users-0001.json", content_type: "application/json", bytes: b"[\n{\"a\":1}\n]\n" }]);
        let boundary = body.content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert!(boundary.starts_with("hcconv-") && boundary.len() == 39, "{boundary}");
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nusers\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"users-0001.json\"\r\nContent-Type: application/json\r\n\r\n[\n{{\"a\":1}}\n]\n\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8(body.bytes).unwrap(), expected);
    }

    #[test]
    fn the_boundary_never_occurs_in_the_content() {
        let seed = [7u8; 32];
        let content = format!("x--{}y", candidate(&seed, 0));
        let fields = [Field::Text { name: "t", value: &content }];
        assert_eq!(first_absent(&seed, &fields), candidate(&seed, 1), "the candidate the content holds is passed over");
        let body = encode(&fields);
        assert!(!content.contains(body.content_type.rsplit('=').next().unwrap()));
        assert_eq!(encode(&fields).bytes, body.bytes, "deterministic");
    }
}
