//! Who is who in Qiscus: one e-mail per author, and the credentials Qiscus needs.
//!
//! Qiscus identifies users by e-mail only: rooms and comments refer to `Email`, which
//! must be unique. Hipchat has users without an address (guests, some deleted users),
//! users sharing one, integrations with no user at all, and senders users.json lacks;
//! each gets a stable address here, and every address that is not the user's own is
//! reported as a rename. Hipchat exports no passwords, so passwords and authentication
//! tokens are derived from a secret the administrator keeps: unguessable without it,
//! reproducible with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::convert::email::{is_valid_email, EmailRule};
use crate::convert::names::{placeholder_email, slug};
use crate::error::{Error, Result};
use crate::model::{Catalog, Conversation, Timestamp, User, UserId};
use crate::report::{Entity, Report};

use super::rows::{rfc3339_seconds, UserRow};

/// The `UniqueId` of the room a conversation becomes: stable and derived from Hipchat
/// ids, with a distinct prefix per kind so no two can be equal.
pub fn room_unique_id(conversation: Conversation) -> String {
    match conversation {
        Conversation::Room(id) => format!("hipchat-room-{id}"),
        Conversation::Direct { low, high } if low == high => format!("hipchat-notes-{low}"),
        Conversation::Direct { low, high } => format!("hipchat-dm-{low}-{high}"),
    }
}

/// Fewer secret bytes than this are refused: the secret is all that keeps the
/// derived passwords from being guessed.
pub const MIN_SECRET_BYTES: usize = 16;

/// The administrator's secret (`--secret-file`). Never printed.
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl Secret {
    /// Reads the secret: the whole file, trailing line breaks removed.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw = std::fs::read(path).map_err(|e| Error::usage(format!("--secret-file {}: cannot read: {e}", path.display())))?;
        Self::from_bytes(&raw).map_err(|e| Error::usage(format!("--secret-file {}: {}", path.display(), e.message())))
    }

    /// The secret from bytes, refused when too short to be unguessable.
    pub fn from_bytes(raw: &[u8]) -> Result<Self> {
        let mut end = raw.len();
        while end > 0 && matches!(raw[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if end < MIN_SECRET_BYTES {
            return Err(Error::usage(format!(
                "the secret is {end} bytes; at least {MIN_SECRET_BYTES} are needed (make one with: head -c 32 /dev/urandom | base64 > qiscus.secret)"
            )));
        }
        Ok(Secret(raw[..end].to_vec()))
    }

    /// HMAC-SHA256 of `purpose` and `email` under the secret, base64url without padding
    /// (43 characters, safe in JSON, URLs and headers).
    fn derive(&self, purpose: &str, email: &str) -> String {
        // The key length is unrestricted for HMAC; this never fails.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"hcconv qiscus ");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(email.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The password of the user with this (final) e-mail.
    pub fn password(&self, email: &str) -> String {
        self.derive("password", email)
    }

    /// The authentication token of the user with this (final) e-mail.
    pub fn token(&self, email: &str) -> String {
        self.derive("token", email)
    }
}

/// Where a Qiscus user comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A Hipchat user (placeholders for unknown senders included).
    Hipchat(UserId),
    /// An integration (a sender with no user id), by the name it posted under.
    Integration(String),
    /// The stand-in creator of rooms that have no owner and no member.
    Importer,
}

/// One Qiscus user to write.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Unique, lowercase.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Account creation time, if known.
    pub created: Option<Timestamp>,
    /// Where it comes from.
    pub origin: Origin,
    /// Avatar link, empty if none.
    pub avatar_url: String,
}

/// Every author and participant, by Hipchat id or integration name, with unique e-mails.
#[derive(Debug)]
pub struct Directory {
    users: BTreeMap<UserId, Identity>,
    integrations: BTreeMap<String, Identity>,
    importer: Option<Identity>,
    taken: BTreeSet<String>,
    domain: String,
}

impl Directory {
    /// Assigns e-mails to every user of the catalog: first every usable own address,
    /// in user-id order (so the lowest id keeps a shared address), then placeholders
    /// for the rest. Each placeholder is reported as a rename.
    pub fn new(catalog: &Catalog, domain: &str, report: &mut Report) -> Self {
        let mut dir = Directory { users: BTreeMap::new(), integrations: BTreeMap::new(), importer: None, taken: BTreeSet::new(), domain: domain.to_string() };
        let mut need_placeholder = Vec::new();
        for user in catalog.users.values() {
            let own = user.email.as_deref().map(|e| e.trim().to_lowercase()).filter(|e| is_valid_email(e, EmailRule::Qiscus));
            match own {
                Some(email) if dir.taken.insert(email.clone()) => {
                    dir.users.insert(user.id, identity_of(user, email));
                }
                Some(email) => need_placeholder.push((user, format!("e-mail {email} is already used by another user"))),
                None if user.email.as_deref().is_some_and(|e| !e.trim().is_empty()) => need_placeholder.push((user, "not a usable e-mail address".to_string())),
                None => need_placeholder.push((user, "no e-mail in the export".to_string())),
            }
        }
        for (user, why) in need_placeholder {
            let email = dir.claim(&placeholder_email(user.id, domain));
            let from = user.email.clone().unwrap_or_else(|| "(none)".into());
            report.rename(Entity::User, user.id.to_string(), from, email.clone(), format!("Qiscus needs a unique e-mail: {why}; placeholder given"));
            dir.users.insert(user.id, identity_of(user, email));
        }
        dir
    }

    /// Claims `wanted`, or `local-2@domain`, `local-3@domain`, … if taken.
    fn claim(&mut self, wanted: &str) -> String {
        let (local, domain) = wanted.rsplit_once('@').unwrap_or((wanted, &self.domain));
        let (local, domain) = (local.to_string(), domain.to_string());
        let mut candidate = wanted.to_string();
        let mut n = 1;
        while !self.taken.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{local}-{n}@{domain}");
        }
        candidate
    }

    /// The e-mail of Hipchat user `id` when the directory has one already: for
    /// callers that copy it into a buffer of their own instead of a new `String`.
    pub fn known_user_email(&self, id: UserId) -> Option<&str> {
        self.users.get(&id).map(|found| found.email.as_str())
    }

    /// The e-mail of Hipchat user `id`; a placeholder user is made (and reported) if
    /// the catalog does not know the id, so no comment ever names a missing user.
    pub fn user_email(&mut self, id: UserId, name_hint: &str, report: &mut Report) -> String {
        if let Some(found) = self.users.get(&id) {
            return found.email.clone();
        }
        let email = self.claim(&placeholder_email(id, &self.domain.clone()));
        let name = if name_hint.trim().is_empty() { format!("Hipchat user {id}") } else { name_hint.trim().to_string() };
        report.warn(format!("qiscus: sender {id} is not in the catalog; placeholder user {email} written"));
        report.add_extra("qiscus_placeholder_users", 1);
        self.users.insert(id, Identity { email: email.clone(), name, created: None, origin: Origin::Hipchat(id), avatar_url: String::new() });
        email
    }

    /// The e-mail of the integration that posted as `name` (made on first use).
    pub fn integration_email(&mut self, name: &str, report: &mut Report) -> String {
        let name = if name.trim().is_empty() { "Integration" } else { name.trim() };
        if let Some(found) = self.integrations.get(name) {
            return found.email.clone();
        }
        let local = slug(name, |c| c.is_ascii_alphanumeric(), '-');
        let local = if local.is_empty() { "hipchat-integration".to_string() } else { format!("hipchat-integration-{}", crate::convert::names::truncate_bytes(&local, 40)) };
        let email = self.claim(&format!("{local}@{}", self.domain));
        report.add_extra("qiscus_integration_users", 1);
        self.integrations.insert(name.to_string(), Identity { email: email.clone(), name: name.to_string(), created: None, origin: Origin::Integration(name.to_string()), avatar_url: String::new() });
        email
    }

    /// The stand-in creator for rooms with no owner and no member (made on first use).
    pub fn importer_email(&mut self, report: &mut Report) -> String {
        if let Some(found) = &self.importer {
            return found.email.clone();
        }
        let email = self.claim(&format!("hipchat-import@{}", self.domain));
        report.add_extra("qiscus_importer_users", 1);
        self.importer = Some(Identity { email: email.clone(), name: "Hipchat import".into(), created: None, origin: Origin::Importer, avatar_url: String::new() });
        email
    }

    /// The identity of Hipchat user `id`, if known.
    pub fn user(&self, id: UserId) -> Option<&Identity> {
        self.users.get(&id)
    }

    /// Sets the avatar link of Hipchat user `id`.
    pub fn set_avatar_url(&mut self, id: UserId, url: String) {
        if let Some(found) = self.users.get_mut(&id) {
            found.avatar_url = url;
        }
    }

    /// Every identity in output order: Hipchat users by id, integrations by name, the importer.
    pub fn all(&self) -> impl Iterator<Item = &Identity> {
        self.users.values().chain(self.integrations.values()).chain(self.importer.iter())
    }

    /// The import row of `identity`; `default_created` when Hipchat has no creation time.
    pub fn row(identity: &Identity, secret: &Secret, default_created: Timestamp) -> UserRow {
        UserRow {
            email: identity.email.clone(),
            name: identity.name.clone(),
            avatar_url: identity.avatar_url.clone(),
            authentication_token: secret.token(&identity.email),
            password: secret.password(&identity.email),
            create_at: rfc3339_seconds(identity.created.unwrap_or(default_created)),
        }
    }
}

fn identity_of(user: &User, email: String) -> Identity {
    Identity { email, name: display_name(user), created: user.created, origin: Origin::Hipchat(user.id), avatar_url: String::new() }
}

/// The name people knew: the display name, else the mention name, else the id.
pub fn display_name(user: &User) -> String {
    [user.name.trim(), user.mention_name.trim()].into_iter().find(|s| !s.is_empty()).map(str::to_string).unwrap_or_else(|| format!("Hipchat user {}", user.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_long_and_derivations_differ() {
        assert!(Secret::from_bytes(b"short\n").is_err());
        let s = Secret::from_bytes(b"0123456789abcdef\n").unwrap();
        let again = Secret::from_bytes(b"0123456789abcdef").unwrap();
        assert_eq!(s.password("a@b.c"), again.password("a@b.c"));
        assert_ne!(s.password("a@b.c"), s.token("a@b.c"));
        assert_ne!(s.password("a@b.c"), s.password("b@b.c"));
        assert_eq!(s.password("a@b.c").len(), 43);
        let other = Secret::from_bytes(b"0123456789abcdeF").unwrap();
        assert_ne!(s.password("a@b.c"), other.password("a@b.c"));
        assert_eq!(format!("{s:?}"), "Secret(<hidden>)");
    }


    #[test]
    fn claims_get_suffixes() {
        let mut report = Report::new();
        let mut d = Directory::new(&Catalog::default(), "x.invalid", &mut report);
        assert_eq!(d.integration_email("JIRA", &mut report), "hipchat-integration-jira@x.invalid");
        assert_eq!(d.integration_email("jira!", &mut report), "hipchat-integration-jira-2@x.invalid");
        assert_eq!(d.integration_email("JIRA", &mut report), "hipchat-integration-jira@x.invalid");
        assert_eq!(d.integration_email("", &mut report), "hipchat-integration-integration@x.invalid");
        assert_eq!(d.user_email(7, "", &mut report), "hipchat-user-7@x.invalid");
        assert_eq!(d.importer_email(&mut report), "hipchat-import@x.invalid");
        assert_eq!(d.all().count(), 5);
    }
}
