//! Mattermost's naming rules (FORMATS.md 1.3, 1.4, 1.6) and the deterministic
//! repairs hcconv applies when a Hipchat name breaks them.
//!
//! Every check here mirrors a server rule, so a name that leaves this module
//! passes the importer's validators; the tests pin each rule.

use crate::convert::names::{slug, truncate_bytes};

/// Longest team, channel and user name, in bytes.
pub const NAME_MAX_BYTES: usize = 64;
/// Longest channel and team display name, in runes.
pub const DISPLAY_NAME_MAX_RUNES: usize = 64;
/// Longest channel header, in runes.
pub const HEADER_MAX_RUNES: usize = 1024;
/// Longest channel purpose, in runes.
pub const PURPOSE_MAX_RUNES: usize = 250;
/// Longest first/last name and nickname, in runes.
pub const PERSON_NAME_MAX_RUNES: usize = 64;
/// Longest position, in runes.
pub const POSITION_MAX_RUNES: usize = 128;
/// Longest emoji name, in bytes.
pub const EMOJI_NAME_MAX_BYTES: usize = 64;
/// Largest emoji image the server reads (`MaxEmojiFileSize`, 512 KiB).
pub const EMOJI_MAX_BYTES: u64 = 512 * 1024;

/// Team-name prefixes the server refuses (`IsReservedTeamName` matches prefixes).
pub const RESERVED_TEAM_PREFIXES: &[&str] = &[
    "admin", "api", "boards", "channel", "claim", "error", "files", "help", "landing", "login", "mfa", "oauth", "playbooks", "plug", "plugins", "post", "signup",
];

/// Usernames the server refuses (`all`, `channel`, `matterbot`, `system`), the
/// `@here` mention, and the bot accounts bundled plugins create on current servers
/// (an imported user of that name would update the bot instead of being created).
pub const RESERVED_USERNAMES: &[&str] = &[
    "all", "channel", "here", "matterbot", "system", "system-bot", "surveybot", "feedbackbot", "playbooks", "boards", "calls", "appsbot",
];

/// Channels every team already has: a room slugged to one of these would be
/// merged into it (and a private room would try to make it private).
pub const RESERVED_CHANNELS: &[&str] = &["town-square", "off-topic"];

/// True for a character Mattermost allows in a team or channel name (after lowercasing).
fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// True when `name` passes the team rules: 2–64 bytes of `[a-z0-9-]`, starting and
/// ending alphanumeric, no `__`, and no reserved prefix.
pub fn is_valid_team_name(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| is_name_char(c) || c == '-');
    let ends_ok = name.starts_with(is_name_char) && name.ends_with(is_name_char);
    (2..=NAME_MAX_BYTES).contains(&name.len()) && ok_chars && ends_ok && !RESERVED_TEAM_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// True when `name` passes the channel rules in their strictest (older server)
/// form: 2–64 bytes of `[a-z0-9_-]`, alphanumeric at both ends, not 40 hex
/// characters (a DM id pair) and not `<26>__<26>` (also reserved for DMs).
pub fn is_valid_channel_name(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| is_name_char(c) || c == '-' || c == '_');
    let ends_ok = name.starts_with(is_name_char) && name.ends_with(is_name_char);
    let dm_like = (name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit())) || (name.len() == 54 && name.get(26..28) == Some("__"));
    (2..=NAME_MAX_BYTES).contains(&name.len()) && ok_chars && ends_ok && !dm_like
}

/// True when `name` is a valid username: 1–64 bytes of `[a-z0-9._-]`, not reserved.
/// hcconv also requires a leading letter, which every client accepts.
pub fn is_valid_username(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    (1..=NAME_MAX_BYTES).contains(&name.len()) && ok_chars && name.starts_with(|c: char| c.is_ascii_lowercase()) && !RESERVED_USERNAMES.contains(&name)
}

/// True when `name` is a valid custom emoji name: 1–64 bytes of `[a-z0-9_-]`
/// (hcconv emits lowercase; the server also allows upper case and `+`) and not a
/// system emoji.
pub fn is_valid_emoji_name(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    (1..=EMOJI_NAME_MAX_BYTES).contains(&name.len()) && ok_chars && !super::system_emoji::is_system_emoji(name)
}

/// The base channel name for a room: its name slugged, else its canonical name
/// slugged, else `room-<id>`; cut to 64 bytes at an alphanumeric end; a 40-hex
/// result gets `-room` so it cannot pass for a DM channel id.
pub fn channel_base(name: &str, canonical: &str, id: u64) -> String {
    let candidates = [channel_slug(name), channel_slug(canonical)];
    let mut base = candidates.into_iter().find(|s| s.len() >= 2).unwrap_or_else(|| format!("room-{id}"));
    if !is_valid_channel_name(&base) {
        base.push_str("-room");
    }
    base
}

/// The base username for a Hipchat user: the mention name lowercased with
/// disallowed characters dropped, else the display name slugged with `.`, else
/// `user-<id>`; a leading letter is guaranteed by a `u` prefix.
pub fn username_base(mention_name: &str, display_name: &str, fallback: &str) -> String {
    let from_mention: String = mention_name.chars().flat_map(char::to_lowercase).filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')).collect();
    let from_name = slug(display_name, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), '.');
    let trimmed = |s: String| s.trim_end_matches(['.', '-', '_']).to_string();
    let mut base = [trimmed(from_mention), trimmed(from_name)].into_iter().find(|s| s.chars().any(|c| c.is_ascii_alphanumeric())).unwrap_or_else(|| fallback.to_string());
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert(0, 'u');
    }
    let mut base = truncate_bytes(&base, NAME_MAX_BYTES).trim_end_matches(['.', '-', '_']).to_string();
    if RESERVED_USERNAMES.contains(&base.as_str()) {
        base.push_str("-hipchat");
    }
    base
}

/// The base emoji name for a shortcut: lowercased, `[a-z0-9_-]` only, at most 64
/// bytes; a system emoji name gets the prefix `hc-` so the custom image survives.
pub fn emoji_base(shortcut: &str, id: u64) -> String {
    let cleaned: String = shortcut.chars().flat_map(char::to_lowercase).filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')).collect();
    let mut base = if cleaned.is_empty() { format!("emoticon-{id}") } else { cleaned };
    if super::system_emoji::is_system_emoji(&base) {
        base.insert_str(0, "hc-");
    }
    truncate_bytes(&base, EMOJI_NAME_MAX_BYTES).to_string()
}

/// A room or canonical name as a channel slug: `[a-z0-9]` runs joined by `-`,
/// cut to 64 bytes without a trailing `-`.
pub fn channel_slug(s: &str) -> String {
    let full = slug(s, is_name_char, '-');
    truncate_bytes(&full, NAME_MAX_BYTES).trim_end_matches('-').to_string()
}

/// Splits a display name into first and last name at the first space, each cut
/// to the server's 64 runes.
pub fn split_person_name(name: &str) -> (String, String) {
    let name = name.trim();
    let (first, last) = name.split_once(char::is_whitespace).unwrap_or((name, ""));
    let cut = |s: &str| crate::convert::names::truncate_chars(s.trim(), PERSON_NAME_MAX_RUNES).to_string();
    (cut(first), cut(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names() {
        assert!(is_valid_team_name("hipchat"));
        assert!(!is_valid_team_name("helpdesk"), "reserved prefix");
        assert!(!is_valid_team_name("postgres"), "reserved prefix");
        assert!(!is_valid_team_name("Team"), "upper case");
        assert!(!is_valid_team_name("a"), "too short");
        assert!(!is_valid_team_name("-ab"), "leading dash");
        assert!(!is_valid_team_name(&"a".repeat(65)));
    }

    #[test]
    fn channel_names_and_bases() {
        assert_eq!(channel_base("Dev Ops", "dev_ops", 2), "dev-ops");
        assert_eq!(channel_base("#####", "hashes", 5), "hashes");
        assert_eq!(channel_base("#####", "", 5), "room-5");
        assert_eq!(channel_base("x", "", 7), "room-7");
        let hex = "0123456789abcdef0123456789abcdef01234567";
        assert!(!is_valid_channel_name(hex));
        assert_eq!(channel_base(hex, "", 1), format!("{hex}-room"));
        let long = channel_base(&"ab ".repeat(40), "", 1);
        assert!(long.len() <= 64 && is_valid_channel_name(&long), "{long}");
        assert!(!is_valid_channel_name("ends-"));
    }

    #[test]
    fn usernames() {
        assert_eq!(username_base("HCDCUser", "HCDC User", "user-1"), "hcdcuser");
        assert_eq!(username_base("", "Jürgen Müller", "user-1"), "j.rgen.m.ller");
        assert_eq!(username_base("", "###", "user-9"), "user-9");
        assert_eq!(username_base("123", "", "user-9"), "u123");
        assert_eq!(username_base("All", "", "user-9"), "all-hipchat");
        assert_eq!(username_base("here", "", "user-9"), "here-hipchat");
        for name in ["hcdcuser", "u123", "all-hipchat", "a.b_c-d"] {
            assert!(is_valid_username(name), "{name}");
        }
        for name in ["all", "system", "Bob", "1abc", "", "a b"] {
            assert!(!is_valid_username(name), "{name}");
        }
    }

    #[test]
    fn emoji_names() {
        assert_eq!(emoji_base("hcdc", 1), "hcdc");
        assert_eq!(emoji_base("Party Parrot", 1), "partyparrot");
        assert_eq!(emoji_base("(((", 4), "emoticon-4");
        assert_eq!(emoji_base("smile", 1), "hc-smile");
        assert!(is_valid_emoji_name("hc-smile"));
        assert!(!is_valid_emoji_name("smile"));
    }

    #[test]
    fn person_names() {
        assert_eq!(split_person_name("HCDC User"), ("HCDC".into(), "User".into()));
        assert_eq!(split_person_name("Cher"), ("Cher".into(), String::new()));
        assert_eq!(split_person_name("Anne Marie Smith"), ("Anne".into(), "Marie Smith".into()));
    }
}
