//! Names that targets restrict: slugs, truncation at character boundaries, and
//! uniqueness with deterministic suffixes.

use std::collections::HashSet;

/// Lowercases `s`, keeps characters `allowed` accepts and turns every run of
/// others into one `sep`, trimming `sep` at both ends.
pub fn slug(s: &str, allowed: impl Fn(char) -> bool, sep: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if allowed(c) && c != sep {
            if pending_sep && !out.is_empty() {
                out.push(sep);
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
    }
    out
}

/// At most `max` characters (Unicode scalar values, Mattermost's "runes").
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// At most `max` bytes, cut at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Hands out names unique under a normalisation (lowercase by default): the first
/// claimant keeps its name, later ones get `-2`, `-3`, … (the base shortened so the
/// result still fits `max_bytes`). Claim in a deterministic order (by Hipchat id).
#[derive(Debug, Default, Clone)]
pub struct UniqueNames {
    taken: HashSet<String>,
    /// Names later claims will ask for as their own (lowercased, how many): a
    /// numbered suffix never takes one, so the user who was `ann-2` stays `ann-2`
    /// while the second `ann` becomes `ann-3`.
    expected: std::collections::HashMap<String, usize>,
}

impl UniqueNames {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `name` as taken without claiming it (reserved words, existing names).
    pub fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_lowercase());
    }

    /// True when `name` is taken.
    pub fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(&name.to_lowercase())
    }

    /// Announces that a later claim asks for `base`, so no numbered name made
    /// before it takes `base` (call once per claim, for all claims, before any).
    pub fn expect(&mut self, base: &str) {
        *self.expected.entry(base.to_lowercase()).or_default() += 1;
    }

    /// The claim of `base` announced by [`UniqueNames::expect`] is being made.
    fn settle(&mut self, base: &str) {
        let key = base.to_lowercase();
        if let Some(n) = self.expected.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.expected.remove(&key);
            }
        }
    }

    /// Takes a numbered `candidate` when it is neither taken nor expected.
    fn take_numbered(&mut self, candidate: &str) -> bool {
        let key = candidate.to_lowercase();
        !self.expected.contains_key(&key) && self.taken.insert(key)
    }

    /// Claims `base` or the first free `base-N`, each at most `max_bytes` long.
    pub fn claim(&mut self, base: &str, max_bytes: usize) -> String {
        self.claim_with(base, max_bytes, "-")
    }

    /// As [`UniqueNames::claim`], with `joiner` between base and number.
    pub fn claim_with(&mut self, base: &str, max_bytes: usize, joiner: &str) -> String {
        self.settle(base);
        let first = truncate_bytes(base, max_bytes).to_string();
        if self.taken.insert(first.to_lowercase()) {
            return first;
        }
        for n in 2u64.. {
            let suffix = format!("{joiner}{n}");
            let candidate = format!("{}{suffix}", truncate_bytes(base, max_bytes.saturating_sub(suffix.len())));
            if self.take_numbered(&candidate) {
                return candidate;
            }
        }
        unreachable!("an unused suffix always exists")
    }

    /// As [`UniqueNames::claim_with`], but the limit counts characters, not bytes:
    /// for targets whose limit is a database `varchar(N)` (Zulip's stream names), so
    /// a non-ASCII name is not cut shorter than it needs to be.
    pub fn claim_chars(&mut self, base: &str, max_chars: usize, joiner: &str) -> String {
        self.settle(base);
        let first = truncate_chars(base, max_chars).to_string();
        if self.taken.insert(first.to_lowercase()) {
            return first;
        }
        for n in 2u64.. {
            let suffix = format!("{joiner}{n}");
            let room = max_chars.saturating_sub(suffix.chars().count());
            let candidate = format!("{}{suffix}", truncate_chars(base, room));
            if self.take_numbered(&candidate) {
                return candidate;
            }
        }
        unreachable!("an unused suffix always exists")
    }
}

/// A stable placeholder address for a user Hipchat exported without one:
/// `hipchat-user-<id>@<domain>`.
pub fn placeholder_email(user_id: u64, domain: &str) -> String {
    format!("hipchat-user-{user_id}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-';
        assert_eq!(slug("Dev Ops", ok, '-'), "dev-ops");
        assert_eq!(slug("  #Dev--Ops!! ", ok, '-'), "dev-ops");
        assert_eq!(slug("#####", ok, '-'), "");
        assert_eq!(slug("Ünïcode Room", ok, '-'), "n-code-room");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }

    #[test]
    fn unique_names_are_case_insensitive_and_fit() {
        let mut u = UniqueNames::new();
        assert_eq!(u.claim("bob", 64), "bob");
        assert_eq!(u.claim("Bob", 64), "Bob-2");
        assert_eq!(u.claim("bob", 64), "bob-3");
        assert_eq!(u.claim("abcdef", 6), "abcdef");
        assert_eq!(u.claim("abcdef", 6), "abcd-2");
        u.reserve("all");
        assert_eq!(u.claim("ALL", 64), "ALL-2");
        // Names announced for later claims are skipped by numbered ones.
        let mut u = UniqueNames::new();
        for base in ["ann", "Ann", "ann-2"] {
            u.expect(base);
        }
        assert_eq!([u.claim("ann", 64), u.claim("Ann", 64), u.claim("ann-2", 64)], ["ann", "Ann-3", "ann-2"]);
        let mut s = UniqueNames::new();
        s.expect("General");
        s.expect("general");
        s.expect("General 2");
        assert_eq!([s.claim_chars("General", 60, " "), s.claim_chars("general", 60, " "), s.claim_chars("General 2", 60, " ")], ["General", "general 3", "General 2"]);
    }

    #[test]
    fn unique_names_by_characters() {
        let mut u = UniqueNames::new();
        let cyrillic = "Б".repeat(60);
        assert_eq!(u.claim_chars(&cyrillic, 60, "-"), cyrillic);
        let second = u.claim_chars(&cyrillic, 60, "-");
        assert_eq!(second.chars().count(), 60);
        assert!(second.ends_with("-2"));
        assert_eq!(u.claim_chars("Dev Ops", 60, "-"), "Dev Ops");
        assert_eq!(u.claim_chars("dev ops", 60, "-"), "dev ops-2");
    }
}
