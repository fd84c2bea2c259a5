//! Arbitrary bytes as an encrypted export: must end in Ok or a classified error, never a panic.
#![no_main]

use std::io::Read;

use hcconv::archive::crypto::{open_encrypted, Kdf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = b"Salted__".to_vec();
    input.extend_from_slice(data);
    for kdf in [None, Some(Kdf::Md5)] {
        if let Ok(mut reader) = open_encrypted(&input[..], b"pw", kdf, 1) {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        }
    }
});
