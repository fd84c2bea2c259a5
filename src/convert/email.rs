//! Whether an e-mail address passes a target importer's check: one function, one
//! rule per importer, so the differences between them stand side by side.
//!
//! An address a target refuses is replaced by a made-up one (and the rename
//! reported), so each rule must be exactly as strict as its importer: stricter
//! loses real addresses, looser makes the import fail.

/// Whose check an address must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRule {
    /// Mattermost: a bare address Go's `mail.ParseAddress` accepts and the user
    /// validator's 128-byte limit allows (ASCII; one `@`; a dotted domain; no
    /// spaces, quotes, brackets, commas, semicolons or colons; no empty dot-atoms).
    Mattermost,
    /// Zulip (Pixtoome): Django's `EmailValidator` for plain addresses: a dot-atom
    /// local part of at most 64 characters, ASCII domain labels of at most 63
    /// characters not starting or ending with `-`, a top-level domain of at least
    /// two characters, at most 254 characters in all.
    Zulip,
    /// Qiscus: the address is the user's unique key: one `@` with something on
    /// both sides, no white space or control characters, at most 254 bytes (the
    /// SMTP path limit).
    Qiscus,
    /// `--user-map`: what every target asks at the least (one `@`, a non-empty
    /// local part, a dotted domain, no spaces, quotes, angle brackets, commas or
    /// semicolons). The operator typed it, so a typo stops the run instead of
    /// becoming a made-up address.
    Typed,
}

/// Mattermost's `UserEmailMaxLength`.
pub const MATTERMOST_EMAIL_MAX_BYTES: usize = 128;

/// True when `email` passes `rule`.
pub fn is_valid_email(email: &str, rule: EmailRule) -> bool {
    match rule {
        EmailRule::Mattermost => mattermost(email),
        EmailRule::Zulip => zulip(email),
        EmailRule::Qiscus => qiscus(email),
        EmailRule::Typed => typed(email),
    }
}

/// No leading, trailing or doubled dot.
fn dot_atoms_ok(s: &str) -> bool {
    !s.starts_with('.') && !s.ends_with('.') && !s.contains("..")
}

fn mattermost(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '[' | ']' | '@');
    email.len() <= MATTERMOST_EMAIL_MAX_BYTES
        && email.is_ascii()
        && !local.is_empty()
        && domain.contains('.')
        && !local.chars().any(bad)
        && !domain.chars().any(bad)
        && dot_atoms_ok(local)
        && dot_atoms_ok(domain)
}

fn zulip(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let local_ok = !local.is_empty() && local.len() <= 64 && dot_atoms_ok(local) && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let domain_ok = labels.len() >= 2 && labels.iter().all(label_ok) && labels.last().is_some_and(|t| t.len() >= 2);
    local_ok && domain_ok && email.len() <= 254
}

fn qiscus(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    !local.is_empty() && !domain.is_empty() && !domain.contains('@') && email.len() <= 254 && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn typed(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | ',' | ';'))
}

#[cfg(test)]
mod tests {
    use super::EmailRule::*;
    use super::*;

    /// Each address against each rule: `M`attermost, `Z`ulip, `Q`iscus, `T`yped.
    #[test]
    fn each_rule_where_the_importers_differ() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let cases: &[(&str, [bool; 4])] = &[
            ("user@example.com", [true, true, true, true]),
            ("User@Example.com", [true, true, true, true]),
            ("a.b+c@sub.example.org", [true, true, true, true]),
            ("bob+hipchat-6@example.com", [true, true, true, true]),
            ("", [false, false, false, false]),
            ("no-at-sign", [false, false, false, false]),
            ("a@localhost", [false, false, true, false]),
            ("a@b", [false, false, true, false]),
            ("a b@example.com", [false, false, false, false]),
            ("@example.com", [false, false, false, false]),
            ("a@", [false, false, false, false]),
            // Qiscus only needs a unique key with an `@`: it takes the last one.
            ("two@@example.com", [false, false, true, false]),
            ("a..b@example.com", [false, false, true, true]),
            ("Ann <a@b.cd>", [false, false, false, false]),
            ("a@-x.com", [true, false, true, true]),
            ("a@example.c", [true, false, true, true]),
            ("é@example.com", [false, false, true, true]),
            ("a:b@example.com", [false, false, true, true]),
            (&long_local, [true, false, true, true]),
        ];
        for (email, [m, z, q, t]) in cases {
            let got = [is_valid_email(email, Mattermost), is_valid_email(email, Zulip), is_valid_email(email, Qiscus), is_valid_email(email, Typed)];
            assert_eq!(got, [*m, *z, *q, *t], "{email:?}: [Mattermost, Zulip, Qiscus, Typed]");
        }
        let at_limit = format!("{}@example.com", "a".repeat(MATTERMOST_EMAIL_MAX_BYTES - 12));
        assert!(is_valid_email(&at_limit, Mattermost));
        assert!(!is_valid_email(&format!("a{at_limit}"), Mattermost));
    }
}
