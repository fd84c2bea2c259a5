//! Names Mattermost reserves for its built-in emoji.
//!
//! The server refuses a custom emoji whose name is a system emoji (the import
//! skips it with a warning, `mmctl import validate` reports an error), and `:name:`
//! in a post would show the built-in picture instead of the Hipchat one. The list
//! is generated from the same public emoji data sets the server's list comes from
//! (see the header of `system_emoji_names.txt`); a name in it that the server does
//! not reserve only costs an `hc-` prefix, never a rejected line.

use std::collections::HashSet;
use std::sync::OnceLock;

const NAMES: &str = include_str!("system_emoji_names.txt");
const SKIN_TONES: &[&str] = &["_light_skin_tone", "_medium_light_skin_tone", "_medium_skin_tone", "_medium_dark_skin_tone", "_dark_skin_tone"];

fn names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| NAMES.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

/// True when `name` (lowercase) is a system emoji name or one of its skin-tone variants.
pub fn is_system_emoji(name: &str) -> bool {
    names().contains(name) || SKIN_TONES.iter().any(|tone| name.strip_suffix(tone).is_some_and(|base| names().contains(base)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names() {
        for name in ["smile", "+1", "thumbsup", "beer", "cake", "100", "rowing_woman", "woman-rowing-boat", "wave_dark_skin_tone", "mattermost"] {
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                assert!(is_system_emoji(name), "{name}");
            }
        }
        for name in ["hcdc", "allthethings", "smile_dark", "wave_skin_tone"] {
            assert!(!is_system_emoji(name), "{name}");
        }
    }
}
