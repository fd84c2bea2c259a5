//! The organisation as Zulip will hold it: users, streams, recipients and who is
//! subscribed where, decided from the catalog before any message is read.
//!
//! Ids are handed out in a fixed order (users by Hipchat id, then integration
//! bots by name; streams by room id; personal recipients, then stream recipients),
//! so the same export always gives the same ids. The importer replaces every id
//! anyway; ours only need to be unique per table and consistent between files.

use std::collections::{BTreeMap, BTreeSet};

use crate::convert::email::{is_valid_email, EmailRule};
use crate::convert::names::{placeholder_email, slug, truncate_chars, UniqueNames};
use crate::convert::text::TextRewriter;
use crate::model::{Catalog, Privacy, RoomId, User, UserId};
use crate::report::{Entity, Report, SkipReason};

use super::html::LinkTargets;
use super::profile::FormatProfile;
use super::{PixtoomeOptions, UserMessagePolicy};

/// The realm id used inside the files (the importer allocates the real one).
pub const REALM_ID: u64 = 1;

/// Where a Zulip user came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A users.json entry.
    Hipchat(UserId),
    /// A sender users.json lacks (a mirror-dummy user).
    Placeholder(UserId),
    /// An integration (sender without a user), as a deactivated bot.
    Integration(String),
}

/// One Zulip user.
#[derive(Debug, Clone)]
pub struct ZUser {
    /// Zulip id in the files.
    pub id: u64,
    /// Where the user came from.
    pub origin: Origin,
    /// Address (unique ignoring case, valid).
    pub email: String,
    /// Display name (at most 100 characters).
    pub full_name: String,
    /// Role value of the profile.
    pub role: u16,
    /// Can log in.
    pub is_active: bool,
    /// Integration bot.
    pub is_bot: bool,
    /// Mirror dummy (unknown sender).
    pub is_mirror_dummy: bool,
    /// IANA timezone or empty.
    pub timezone: String,
    /// When the account was created (seconds).
    pub date_joined: f64,
    /// An uploaded avatar was written for this user.
    pub has_avatar: bool,
    /// Personal recipient id.
    pub recipient: u64,
}

impl ZUser {
    /// Whether this user's copies of stream messages are written under `policy`.
    pub fn gets_stream_rows(&self, policy: UserMessagePolicy) -> bool {
        match policy {
            UserMessagePolicy::All => true,
            UserMessagePolicy::Active => self.is_active && !self.is_bot && !self.is_mirror_dummy,
            UserMessagePolicy::Participants | UserMessagePolicy::Idle => false,
        }
    }

    /// Whether this user is imported soft-deactivated under `policy`: a person
    /// (not a bot or mirror dummy), whose missing stream rows the server builds
    /// when they first log in.
    pub fn is_long_term_idle(&self, policy: UserMessagePolicy) -> bool {
        policy == UserMessagePolicy::Idle && !self.is_bot && !self.is_mirror_dummy
    }
}

/// One stream made from a room.
#[derive(Debug, Clone)]
pub struct ZStream {
    /// Zulip id in the files.
    pub id: u64,
    /// The Hipchat room.
    pub room: RoomId,
    /// Unique name, at most 60 characters.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Private room.
    pub invite_only: bool,
    /// Archived or deleted in Hipchat.
    pub deactivated: bool,
    /// Creation time (seconds).
    pub date_created: f64,
    /// Stream recipient id.
    pub recipient: u64,
    /// Subscribed Zulip user ids, sorted.
    pub subscribers: Vec<u64>,
    /// A default stream for new users.
    pub is_default: bool,
}

/// Everything decided before the messages.
#[derive(Debug)]
pub struct Plan {
    /// All users: Hipchat users and placeholders by Hipchat id, then integration bots.
    pub users: Vec<ZUser>,
    /// Streams by room id.
    pub streams: Vec<ZStream>,
    /// Hipchat user id → index in `users`.
    pub by_hipchat: BTreeMap<UserId, usize>,
    /// Integration name → index in `users`.
    pub by_integration: BTreeMap<String, usize>,
    /// Room id → index in `streams` (absent when the room is left out).
    pub by_room: BTreeMap<RoomId, usize>,
    /// Rooms left out (`--skip-deleted-rooms`).
    pub skipped_rooms: BTreeSet<RoomId>,
    /// `@mention_name` → `@**Full Name**`, `(shortcut)` → `:name:`.
    pub rewriter: TextRewriter,
    /// The users an `@**Full Name**` the rewriter writes links to, for the HTML.
    pub link_targets: LinkTargets,
    /// Earliest known time, used where Hipchat gives none (deterministic, never "now").
    pub epoch: f64,
    /// Who gets usermessage rows, and who is imported soft-deactivated.
    pub usermessages: UserMessagePolicy,
    /// Used e-mail addresses (lowercased).
    emails: UniqueNames,
    /// Used stream names (lowercased).
    stream_names: UniqueNames,
    /// Domain for made-up addresses.
    pub email_domain: String,
    next_recipient: u64,
}

impl Plan {
    /// Builds users and streams from the catalog, recording renames and counts.
    pub fn build(catalog: &Catalog, first_message: Option<f64>, opts: &PixtoomeOptions, skip_deleted_rooms: bool, profile: &FormatProfile, report: &mut Report) -> Plan {
        let epoch = earliest(catalog, first_message);
        let mut plan = Plan {
            users: Vec::new(),
            streams: Vec::new(),
            by_hipchat: BTreeMap::new(),
            by_integration: BTreeMap::new(),
            by_room: BTreeMap::new(),
            skipped_rooms: BTreeSet::new(),
            rewriter: TextRewriter::new(),
            link_targets: LinkTargets::default(),
            epoch,
            usermessages: opts.usermessages,
            emails: UniqueNames::new(),
            stream_names: UniqueNames::new(),
            email_domain: opts.email_domain.clone().unwrap_or_else(|| "example.com".to_string()),
            next_recipient: 1,
        };
        for user in catalog.users.values() {
            plan.add_hipchat_user(user, profile, report);
        }
        for name in &catalog.integrations {
            plan.integration_user(name, profile, report);
        }
        plan.ensure_owner(profile, report);
        plan.set_mention_names(catalog, profile, report);
        for room in catalog.rooms.values() {
            plan.stream_names.expect(&stream_base(room, profile));
        }
        for room in catalog.rooms.values() {
            plan.add_room(room, catalog, skip_deleted_rooms, profile, report);
        }
        plan.number_stream_recipients();
        plan.set_default_streams(catalog, profile);
        plan
    }

    fn add_hipchat_user(&mut self, user: &User, profile: &FormatProfile, report: &mut Report) {
        let id = self.users.len() as u64 + 1;
        let email = self.email_for(user, report);
        let full_name = self.full_name_for(user, profile, report);
        let role = if user.is_owner() {
            profile.roles.owner
        } else if user.is_admin() {
            profile.roles.admin
        } else if user.is_guest() {
            profile.roles.guest
        } else {
            profile.roles.member
        };
        let timezone = user.timezone.clone().unwrap_or_default();
        let timezone = if timezone.chars().count() > profile.max_timezone {
            report.warn(format!("user {}: timezone {timezone:?} is longer than {} characters and was left out", user.id, profile.max_timezone));
            String::new()
        } else {
            timezone
        };
        let recipient = self.take_recipient();
        self.by_hipchat.insert(user.id, self.users.len());
        self.users.push(ZUser {
            id,
            origin: if user.is_placeholder { Origin::Placeholder(user.id) } else { Origin::Hipchat(user.id) },
            email,
            full_name,
            role: if user.is_placeholder { profile.roles.member } else { role },
            is_active: !user.is_deleted && !user.is_placeholder,
            is_bot: false,
            is_mirror_dummy: user.is_placeholder,
            timezone,
            date_joined: user.created.map_or(self.epoch, |t| t.seconds_f64()),
            has_avatar: false,
            recipient,
        });
        if user.is_placeholder {
            report.add_extra("pixtoome_mirror_dummy_users", 1);
        } else {
            report.written(Entity::User);
        }
    }

    /// The index of the bot standing for integration `name`, made on first use.
    pub fn integration_user(&mut self, name: &str, profile: &FormatProfile, report: &mut Report) -> usize {
        if let Some(i) = self.by_integration.get(name) {
            return *i;
        }
        let shown = if name.trim().is_empty() { "Unknown integration" } else { name.trim() };
        let base = slug(shown, |c| c.is_ascii_alphanumeric(), '-');
        let base = if base.is_empty() { "integration".to_string() } else { base };
        let email = self.claim_email(&format!("{}-bot", truncate_chars(&base, 40)));
        let recipient = self.take_recipient();
        let index = self.users.len();
        self.users.push(ZUser {
            id: index as u64 + 1,
            origin: Origin::Integration(name.to_string()),
            email,
            full_name: truncate_chars(shown, profile.max_full_name).to_string(),
            role: profile.roles.member,
            is_active: false,
            is_bot: true,
            is_mirror_dummy: false,
            timezone: String::new(),
            date_joined: self.epoch,
            has_avatar: false,
            recipient,
        });
        self.by_integration.insert(name.to_string(), index);
        report.add_extra("pixtoome_integration_bots", 1);
        index
    }

    fn take_recipient(&mut self) -> u64 {
        let r = self.next_recipient;
        self.next_recipient += 1;
        r
    }

    fn email_for(&mut self, user: &User, report: &mut Report) -> String {
        let given = user.email.as_deref().map(str::trim).unwrap_or("");
        if is_valid_email(given, EmailRule::Zulip) && !self.emails.is_taken(given) {
            self.emails.reserve(given);
            return given.to_string();
        }
        let placeholder = self.placeholder_for(user.id);
        let why = if given.is_empty() {
            "no e-mail address in the export"
        } else if is_valid_email(given, EmailRule::Zulip) {
            "e-mail address already used by another user"
        } else {
            "e-mail address is not valid"
        };
        report.rename(Entity::User, user.id.to_string(), given, &placeholder, why);
        placeholder
    }

    fn placeholder_for(&mut self, user_id: UserId) -> String {
        let first = placeholder_email(user_id, &self.email_domain);
        if !self.emails.is_taken(&first) {
            self.emails.reserve(&first);
            return first;
        }
        self.claim_email(&format!("hipchat-user-{user_id}"))
    }

    /// `local@domain`, or `local-2@domain`, … whichever is free.
    fn claim_email(&mut self, local: &str) -> String {
        let mut n = 1u64;
        loop {
            let candidate = if n == 1 { format!("{local}@{}", self.email_domain) } else { format!("{local}-{n}@{}", self.email_domain) };
            if !self.emails.is_taken(&candidate) {
                self.emails.reserve(&candidate);
                return candidate;
            }
            n += 1;
        }
    }

    fn full_name_for(&mut self, user: &User, profile: &FormatProfile, report: &mut Report) -> String {
        let given = user.name.trim();
        let base = if given.is_empty() {
            if user.mention_name.is_empty() { format!("Hipchat user {}", user.id) } else { user.mention_name.clone() }
        } else {
            given.to_string()
        };
        let name = truncate_chars(&base, profile.max_full_name).to_string();
        if name != user.name {
            report.rename(Entity::User, user.id.to_string(), &user.name, &name, "display name empty or longer than the target allows");
        }
        name
    }

    /// Zulip needs an owner to administer the organisation, and its importers
    /// insist: realm emoji get an active owner as author (10.x and later stop
    /// without one), and 12.x asserts that some owner exists. When Hipchat named
    /// no active owner, the first active administrator becomes one; without one,
    /// the first active person; without any, the first person (deactivated).
    fn ensure_owner(&mut self, profile: &FormatProfile, report: &mut Report) {
        if self.users.iter().any(|u| u.is_active && u.role == profile.roles.owner) {
            return;
        }
        let person = |u: &ZUser| !u.is_bot && !u.is_mirror_dummy;
        let admin = self.users.iter().position(|u| u.is_active && u.role == profile.roles.admin);
        let chosen = admin
            .map(|i| (i, "no active Hipchat owner"))
            .or_else(|| self.users.iter().position(|u| u.is_active && person(u)).map(|i| (i, "no active Hipchat owner or administrator")))
            .or_else(|| self.users.iter().position(person).map(|i| (i, "no active Hipchat user at all")));
        match chosen {
            Some((i, why)) => {
                let u = &mut self.users[i];
                u.role = profile.roles.owner;
                report.warn(format!("{why}: {} ({}) becomes the organization owner; change it after the import with ./manage.py change_user_role", u.full_name, u.email));
            }
            None => report.warn("the export has no users: the imported organization has no owner"),
        }
    }

    /// Registers every user's `@mention_name` (first user by Hipchat id wins a
    /// case-insensitive clash, the same rule as the rewriter), then `@all`/`@here`.
    /// `@mention_name` becomes `@**Full Name**`, which the server resolves by name
    /// when it renders the message (3.4: among active users only; 9.x and later:
    /// all users, a deactivated one's mention silent). Where that cannot name the
    /// right person (a deactivated user 3.4 cannot find; a name with `*`, which the
    /// syntax cannot hold; a name two users share, so the server could pick
    /// either; an `|id` suffix would carry an id the importer renumbers), the
    /// mention is plain text `@Full Name`, and nobody's `mentioned` flag is set for
    /// it (the flags follow what the message shows: [`super::mentions`]).
    fn set_mention_names(&mut self, catalog: &Catalog, profile: &FormatProfile, report: &mut Report) {
        let mut holders: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for u in &self.users {
            holders.entry(u.full_name.trim().to_lowercase()).or_default().push(u.id);
        }
        for (name, ids) in holders.iter().filter(|(_, ids)| ids.len() > 1) {
            report.warn(format!("users {ids:?} share the full name {name:?} (ignoring case and spaces around it): mentions of them are written as plain text, not as a link to one of them"));
        }
        for user in catalog.users.values() {
            let Some(index) = self.by_hipchat.get(&user.id).copied() else { continue };
            if user.mention_name.is_empty() {
                continue;
            }
            let ZUser { full_name, is_active, id, .. } = &self.users[index];
            let shared = holders.get(&full_name.trim().to_lowercase()).is_some_and(|ids| ids.len() > 1);
            let linkable = (*is_active || profile.links_inactive_mentions) && !shared && !full_name.contains('*');
            // Plain text without backslashes: 3.4's Markdown has no escapes and
            // would show them.
            let replacement = if linkable { format!("@**{full_name}**") } else { format!("@{full_name}") };
            if linkable {
                self.link_targets.add_user(full_name, *id, *is_active);
            }
            self.rewriter.mention(&user.mention_name, replacement);
        }
        for wildcard in ["all", "here"] {
            self.rewriter.mention(wildcard, "@**all**".to_string());
        }
    }

    fn add_room(&mut self, room: &crate::model::Room, catalog: &Catalog, skip_deleted_rooms: bool, profile: &FormatProfile, report: &mut Report) {
        if skip_deleted_rooms && room.is_deleted {
            self.skipped_rooms.insert(room.id);
            if !room.is_placeholder {
                report.skip(Entity::Room, room.id.to_string(), SkipReason::DeletedRoom, format!("{} was deleted in Hipchat (--skip-deleted-rooms)", room.name));
            }
            return;
        }
        let name = self.stream_name(room, profile, report);
        let description = one_line(&room.topic);
        let description = if description.chars().count() > profile.max_stream_description {
            report.warn(format!("room {}: topic longer than {} characters was shortened for the stream description", room.id, profile.max_stream_description));
            truncate_chars(&description, profile.max_stream_description).to_string()
        } else {
            description
        };
        let mut members: BTreeSet<UserId> = BTreeSet::new();
        members.extend(room.members.iter().chain(&room.participants).chain(&room.admins).chain(&room.autojoined_by));
        members.extend(room.owner);
        if let Some(posters) = catalog.room_posters.get(&room.id) {
            members.extend(posters);
        }
        let subscribers: Vec<u64> = members.iter().filter_map(|h| self.by_hipchat.get(h)).map(|i| self.users[*i].id).collect::<BTreeSet<_>>().into_iter().collect();
        self.by_room.insert(room.id, self.streams.len());
        self.streams.push(ZStream {
            id: self.streams.len() as u64 + 1,
            room: room.id,
            name,
            description,
            // Zulip before 10.0 made a stream it deactivated invite-only.
            invite_only: room.privacy == Privacy::Private || (is_deactivated(room) && !profile.archives_in_place),
            deactivated: is_deactivated(room),
            date_created: room.created.map_or(self.epoch, |t| t.seconds_f64()),
            recipient: 0, // numbered in `number_stream_recipients`
            subscribers,
            is_default: false,
        });
        if room.is_placeholder {
            report.add_extra("pixtoome_placeholder_streams", 1);
        } else {
            report.written(Entity::Room);
        }
    }

    fn stream_name(&mut self, room: &crate::model::Room, profile: &FormatProfile, report: &mut Report) -> String {
        let base = stream_base(room, profile);
        let name = self.stream_names.claim_chars(&base, profile.max_stream_name, " ");
        if name != room.name {
            let why = if is_deactivated(room) && !profile.archives_in_place {
                "archived or deleted in Hipchat: a deactivated stream, named as Zulip names one it deactivates (the name stays free for a new stream)"
            } else if base.chars().count() > profile.max_stream_name && !name.starts_with(truncate_chars(&base, profile.max_stream_name)) {
                "longer than 60 characters, and the shortened name was taken"
            } else if base.chars().count() > profile.max_stream_name {
                "longer than 60 characters"
            } else if name != base {
                "another stream has this name (ignoring case)"
            } else {
                "empty or with control characters"
            };
            report.rename(Entity::Room, room.id.to_string(), &room.name, &name, why);
        }
        name
    }

    /// Stream recipients come after every personal recipient; integration bots made
    /// while messages stream get personal recipients after those.
    fn number_stream_recipients(&mut self) {
        for s in &mut self.streams {
            s.recipient = self.next_recipient;
            self.next_recipient += 1;
        }
    }

    /// Public, active rooms that at least half of the active members auto-join in
    /// Hipchat become default streams (Zulip subscribes new users to those).
    fn set_default_streams(&mut self, catalog: &Catalog, profile: &FormatProfile) {
        let members: BTreeSet<u64> = self.users.iter().filter(|u| u.is_active && !u.is_bot && u.role != profile.roles.guest).map(|u| u.id).collect();
        if members.is_empty() {
            return;
        }
        for stream in &mut self.streams {
            if stream.invite_only || stream.deactivated {
                continue;
            }
            let Some(room) = catalog.rooms.get(&stream.room) else { continue };
            let joined = room.autojoined_by.iter().filter_map(|h| self.by_hipchat.get(h)).map(|i| self.users[*i].id).filter(|id| members.contains(id)).count();
            stream.is_default = joined > 0 && joined * 2 >= members.len();
        }
    }

    /// The user at `index`.
    pub fn user(&self, index: usize) -> &ZUser {
        &self.users[index]
    }

    /// The user with Zulip id `id` (ids are positions + 1 by construction).
    pub fn user_by_id(&self, id: u64) -> Option<&ZUser> {
        self.users.get(usize::try_from(id).ok()?.checked_sub(1)?)
    }
}

/// Newlines and tabs become spaces (Zulip descriptions are one line).
pub fn one_line(s: &str) -> String {
    let joined: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    joined.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Whether a room becomes a deactivated stream.
fn is_deactivated(room: &crate::model::Room) -> bool {
    room.is_archived || room.is_deleted
}

/// The stream name a room asks for: its name without control characters, with
/// the `!DEACTIVATED:` prefix that Zulip before 10.0 gave a stream it deactivated,
/// so the hidden stream does not hold the name: Zulip 3.4 finds streams by name
/// including deactivated ones, and one made later with that name would silently
/// be the hidden one. From 10.0 on an archived channel keeps its name.
fn stream_base(room: &crate::model::Room, profile: &FormatProfile) -> String {
    let cleaned: String = room.name.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let name = if cleaned.is_empty() { format!("Hipchat room {}", room.id) } else { cleaned.to_string() };
    if is_deactivated(room) && !profile.archives_in_place { format!("!DEACTIVATED:{name}") } else { name }
}

/// The earliest time the export knows, for rows that need a date Hipchat lacks.
fn earliest(catalog: &Catalog, first_message: Option<f64>) -> f64 {
    let users = catalog.users.values().filter_map(|u| u.created).map(|t| t.seconds_f64());
    let rooms = catalog.rooms.values().filter_map(|r| r.created).map(|t| t.seconds_f64());
    users.chain(rooms).chain(first_message).fold(None, |acc: Option<f64>, t| Some(acc.map_or(t, |a| a.min(t)))).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_that_cannot_name_one_person_are_plain_text() {
        let mut catalog = Catalog::default();
        for (id, name, mention) in [(1, "Bob Smith", "bob"), (2, "bob smith", "bobs"), (3, "Ann*Star_", "ann"), (4, "Carol", "carol"), (5, "Dana", "dana"), (6, "Eve", "eve"), (7, "Eve", "oldeve")] {
            let mut user = User::regular(id, name, mention, Some(&format!("u{id}@example.com")));
            user.is_deleted = id == 5 || id == 7;
            catalog.users.insert(id, user);
        }
        let mut report = Report::new();
        let plan = Plan::build(&catalog, None, &PixtoomeOptions::default(), false, &super::super::profile::ZULIP_3_4, &mut report);
        assert_eq!(plan.rewriter.rewrite("@bob @bobs @ann @carol"), "@Bob Smith @bob smith @Ann*Star_ @**Carol**");
        // The server finds only active users: a deactivated one cannot be linked, and
        // a deactivated namesake would make the link point at the wrong person.
        assert_eq!(plan.rewriter.rewrite("@dana @eve @oldeve"), "@Dana @Eve @Eve");
        // Only a link names someone (and so flags them).
        assert!(plan.link_targets.user("Carol").is_some_and(|(_, active)| active));
        assert_eq!(plan.link_targets.user("Bob Smith"), None);
        assert_eq!(plan.link_targets.user("Dana"), None);
        let warnings: Vec<String> = report.warnings.iter().map(Result::unwrap).collect();
        assert!(warnings.iter().any(|w| w.contains("share the full name \"bob smith\"")), "{warnings:?}");

        // 9.x finds deactivated users and shows their mention silent: Dana is
        // linked; a shared name still cannot be.
        let plan = Plan::build(&catalog, None, &PixtoomeOptions::default(), false, &super::super::profile::ZULIP_9_0, &mut Report::new());
        assert_eq!(plan.rewriter.rewrite("@dana @eve @oldeve @bobs @carol"), "@**Dana** @Eve @Eve @bob smith @**Carol**");
        assert_eq!(plan.link_targets.user("dana").map(|(_, active)| active), Some(false));
    }

    #[test]
    fn descriptions_are_one_line() {
        assert_eq!(one_line("a\nb\t c  "), "a b c");
    }
}
