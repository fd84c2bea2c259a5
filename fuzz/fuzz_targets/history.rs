//! Arbitrary bytes as a history.json: the streaming walk and message parsing never
//! panic, and the borrowed fast path reads every element exactly as the `Value`
//! path does (a differential check).
#![no_main]

use std::collections::BTreeMap;

use hcconv::hipchat::json::{for_each_element, for_each_prefix, MAX_VALUE_BYTES};
use hcconv::hipchat::messages::{parse_element, parse_message, Origin};
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
    let _ = for_each_prefix(data, "users/2/history.json", MAX_VALUE_BYTES, &mut |element| {
        let mut fast_unknown = BTreeMap::new();
        let Some((fast, used)) = parse_element(&element, "users/2/history.json", "users/2/history.json", Origin::User(2), 1, &mut fast_unknown)? else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_slice(&element.json[..used]).expect("the fast path took valid JSON");
        let value = match element.key {
            Some(key) => serde_json::json!({ key: value }),
            None => value,
        };
        let mut slow_unknown = BTreeMap::new();
        let slow = parse_message(&value, Origin::User(2), 1, "users/2/history.json", &mut slow_unknown);
        assert_eq!(fast, slow);
        assert_eq!(fast_unknown, slow_unknown);
        Ok(Some(used))
    });
});
