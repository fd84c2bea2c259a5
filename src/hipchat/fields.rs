//! Tolerant field access on JSON objects.
//!
//! Real exports disagree on types (ids as numbers or strings, null where the document
//! says string), so every read goes through these helpers instead of strict serde
//! structs that would reject a whole file for one odd field.

use serde_json::{Map, Value};

/// The string at `key`; empty for null, missing or non-string (numbers are printed).
pub fn text(obj: &Map<String, Value>, key: &str) -> String {
    match obj.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// The string at `key`, `None` when null, missing or blank.
pub fn opt_text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    let s = text(obj, key);
    (!s.trim().is_empty()).then_some(s)
}

/// An id: a non-negative integer, or a string of digits.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The id at `key`.
pub fn id(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    obj.get(key).and_then(id_of)
}

/// A boolean at `key`: JSON true/false, `"true"`/`"false"`, or 0/1. Missing → false.
pub fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    match obj.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// User ids from a list of ids or of objects with an `id` (room members come both ways).
pub fn id_list(obj: &Map<String, Value>, key: &str) -> Vec<u64> {
    match obj.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Object(o) => id(o, "id"),
                other => id_of(other),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The object inside a one-key wrapper (`{"User": {...}}`), or the object itself
/// when it is not wrapped. The wrapper key is returned when there was one.
pub fn unwrap(value: &Value) -> Option<(Option<&str>, &Map<String, Value>)> {
    let obj = value.as_object()?;
    if obj.len() == 1 {
        let (k, v) = obj.iter().next()?;
        if let Value::Object(inner) = v {
            return Some((Some(k.as_str()), inner));
        }
    }
    Some((None, obj))
}

/// A value that may hold JSON as a string (`card`, autojoin `data`, user `metadata`).
pub fn embedded_json(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))),
        Value::Null => None,
        other => Some(other.clone()),
    }
}
