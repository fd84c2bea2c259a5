//! Arbitrary bytes as a history.json: streaming parse and message parsing never panic.
#![no_main]

use std::collections::BTreeMap;

use hcconv::hipchat::json::for_each_element;
use hcconv::hipchat::messages::{parse_message, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut unknown = BTreeMap::new();
    let mut seq = 0;
    let _ = for_each_element(data, "rooms/1/history.json", &mut |v| {
        seq += 1;
        let _ = parse_message(&v, Origin::Room(1), seq, "rooms/1/history.json", &mut unknown);
        let _ = parse_message(&v, Origin::User(2), seq, "users/2/history.json", &mut unknown);
        Ok(())
    });
});
