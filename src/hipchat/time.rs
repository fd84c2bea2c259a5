//! Hipchat timestamps in every shape exports use.
//!
//! Messages carry `2018-04-02T14:54:04Z 777248` (seconds, a space, then microseconds);
//! other records use RFC 3339 with `+00:00`, and some tools wrote fractions or no zone.
//! Cutting at the space or at `Z`, as several earlier tools did, loses the sub-second
//! order of a busy room, so the microseconds are always kept.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::model::Timestamp;

/// Parses a Hipchat timestamp; `None` when it is not a date at all.
///
/// Accepted: RFC 3339 (`Z` or an offset, optional fraction), the same followed by a
/// space and up to 9 fraction digits (hc-migrate's microseconds), and a date-time with
/// no zone (read as UTC, never as local time).
pub fn parse_timestamp(raw: &str) -> Option<Timestamp> {
    parse_message_time(raw).or_else(|| parse_any(raw))
}

/// `2018-04-02T14:54:04Z 777248` and `2018-04-02T14:54:04Z`, the shape of nearly every
/// message time, read digit by digit: chrono's general parser was a measurable part
/// of a conversion. Anything else (offsets, fractions, leap seconds, spaces around)
/// returns `None` and takes the general path, which gives the same result for these.
fn parse_message_time(raw: &str) -> Option<Timestamp> {
    let b = raw.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| b[from..to].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')));
    let second = num(17, 19).filter(|s| *s < 60)?;
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let whole = date.and_hms_opt(num(11, 13)?, num(14, 16)?, second)?.and_utc().timestamp_micros();
    let fraction = match &raw[20..] {
        "" => 0,
        rest => {
            let digits = rest.strip_prefix(' ')?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            fraction_micros(digits)
        }
    };
    Some(Timestamp(whole + fraction))
}

/// Every accepted shape, through chrono.
fn parse_any(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    let (main, fraction) = match raw.rsplit_once(' ') {
        Some((head, tail)) if !tail.is_empty() && tail.len() <= 9 && tail.bytes().all(|b| b.is_ascii_digit()) && head.len() >= 19 => {
            (head.trim_end(), Some(tail))
        }
        _ => (raw, None),
    };
    let base = parse_main(main)?;
    let micros = match fraction {
        // The suffix replaces any sub-second part: it is the precise one.
        Some(digits) => base.div_euclid(1_000_000) * 1_000_000 + fraction_micros(digits),
        None => base,
    };
    Some(Timestamp(micros))
}

/// Fraction digits (`777248`, `5`, `123456789`) as microseconds: the first six,
/// padded with zeros on the right; 0 if any of them is not a digit. Computed, not
/// built as a padded string (an allocation per message).
fn fraction_micros(digits: &str) -> i64 {
    let kept = &digits.as_bytes()[..digits.len().min(6)];
    if !kept.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let value = kept.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    value * 10_i64.pow(6 - kept.len() as u32)
}

fn parse_main(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    // `2018-04-02 15:31:34+00:00`: RFC 3339 with a space separator.
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let t = format!("{}T{}", &s[..10], &s[11..]);
        if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
            return Some(dt.timestamp_micros());
        }
    }
    // ISO 8601 offsets without a colon (`+0000`, Python's `%z`) or without minutes (`+00`).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.timestamp_micros());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    None
}

/// Reads a timestamp from JSON: a string as above, or a number of seconds (or
/// milliseconds, when it is too large to be seconds) since the epoch.
pub fn timestamp_from_json(v: &serde_json::Value) -> Option<Timestamp> {
    match v {
        serde_json::Value::String(s) => parse_timestamp(s),
        serde_json::Value::Number(n) => {
            let f = n.as_f64()?;
            let micros = if f.abs() > 1e11 { f * 1000.0 } else { f * 1e6 };
            Some(Timestamp(micros.round() as i64))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The digit-by-digit path agrees with chrono wherever it answers.
        #[test]
        fn message_time_fast_path_agrees_with_the_general_one(y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..25, mi in 0u32..61, s in 0u32..62, frac in "( [0-9]{0,10})?", junk in "[0-9TZ: +-]{0,2}") {
            let raw = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z{frac}{junk}");
            if let Some(fast) = parse_message_time(&raw) {
                prop_assert_eq!(Some(fast), parse_any(&raw), "{}", raw);
            }
            prop_assert_eq!(parse_timestamp(&raw), parse_any(&raw).or(parse_message_time(&raw)));
        }
    }

    #[test]
    fn message_time_fast_path_takes_the_common_shapes() {
        assert_eq!(parse_message_time("2018-04-02T14:54:04Z 777248"), parse_any("2018-04-02T14:54:04Z 777248"));
        assert!(parse_message_time("2018-04-02T14:54:04Z 777248").is_some());
        assert!(parse_message_time("2018-04-02T14:54:04Z").is_some());
        assert!(parse_message_time("2018-02-30T14:54:04Z").is_none());
        assert!(parse_message_time("2018-04-02T14:54:04+00:00").is_none());
    }

    #[test]
    fn fraction_digits_become_microseconds() {
        for (digits, micros) in [("777248", 777_248), ("5", 500_000), ("05", 50_000), ("123456789", 123_456), ("000001", 1), ("", 0), ("12a", 0), ("1234567x", 123_456)] {
            assert_eq!(fraction_micros(digits), micros, "{digits}");
        }
    }

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap_or_else(|| panic!("{s}")).micros()
    }

    #[test]
    fn hipchat_message_shape_keeps_microseconds() {
        assert_eq!(ts("2018-04-02T14:54:04Z 777248"), 1_522_680_844_777_248);
    }

    #[test]
    fn plain_and_offset_shapes() {
        assert_eq!(ts("2018-04-02T14:54:04Z"), 1_522_680_844_000_000);
        assert_eq!(ts("2018-04-02T14:54:04+00:00"), 1_522_680_844_000_000);
        assert_eq!(ts("2018-04-02T16:54:04+02:00"), 1_522_680_844_000_000);
        assert_eq!(ts("2018-04-02T14:54:04.5Z"), 1_522_680_844_500_000);
        assert_eq!(ts("2018-04-02T14:54:04+00:00 000001"), 1_522_680_844_000_001);
        assert_eq!(ts("2018-04-02 14:54:04"), 1_522_680_844_000_000);
        assert_eq!(ts("2018-04-02T14:54:04"), 1_522_680_844_000_000);
    }

    #[test]
    fn offsets_without_colon() {
        assert_eq!(ts("2018-04-02T14:54:05+0000"), ts("2018-04-02T14:54:05Z"));
        assert_eq!(ts("2018-04-02T16:54:06+0200"), ts("2018-04-02T14:54:06Z"));
        assert_eq!(ts("2018-04-02T14:54:07+00"), ts("2018-04-02T14:54:07Z"));
        assert_eq!(ts("2018-04-02T14:54:04+0000 777248"), ts("2018-04-02T14:54:04Z 777248"));
    }

    #[test]
    fn rejects_non_dates() {
        assert!(parse_timestamp("").is_none());
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2018-13-45T99:00:00Z").is_none());
    }

    #[test]
    fn numbers_are_epoch_seconds_or_millis() {
        assert_eq!(timestamp_from_json(&serde_json::json!(1522680844)).unwrap().micros(), 1_522_680_844_000_000);
        assert_eq!(timestamp_from_json(&serde_json::json!(1522680844123i64)).unwrap().micros(), 1_522_680_844_123_000);
    }
}
