//! Every name the import uses, decided once from the catalog before any line is
//! written: team, channels, usernames, e-mails, emoji, integration users.
//!
//! Deciding up front means a post line can only ever refer to a name that an
//! earlier line defines, and every rename is reported exactly once. Claims run in
//! Hipchat id order, so the same export always gives the same names.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;

use crate::convert::email::{is_valid_email, EmailRule};
use crate::convert::names::{placeholder_email, truncate_chars, UniqueNames};
use crate::convert::text::TextRewriter;
use crate::storage::files::FileStore;
use crate::model::{Catalog, Emoticon, FileRef, Privacy, Room, RoomId, Sender, User, UserId};
use crate::report::{Entity, Report, SkipReason};

use super::naming::*;

/// Domain of the made-up addresses for users Hipchat exported without a usable
/// one (`.invalid` can never deliver mail to a stranger).
pub const PLACEHOLDER_EMAIL_DOMAIN: &str = "hipchat-import.invalid";
/// Username of the deactivated account that authors posts whose sender is unknown.
pub const FALLBACK_USERNAME: &str = "hipchat-import";

/// A room as a channel.
#[derive(Debug, Clone)]
pub struct ChannelPlan {
    /// URL name.
    pub name: String,
    /// Shown name (≤ 64 runes).
    pub display_name: String,
    /// Full room name when the display name was shortened (≤ 250 runes).
    pub purpose: String,
    /// Topic (≤ 1024 runes).
    pub header: String,
    /// `P` instead of `O`.
    pub private: bool,
    /// Archived (archived or deleted room).
    pub archived: bool,
    /// Made up for history without a rooms.json entry.
    pub is_placeholder: bool,
}

/// A user as a Mattermost account.
#[derive(Debug, Clone)]
pub struct UserPlan {
    /// Login name.
    pub username: String,
    /// Unique lowercase address.
    pub email: String,
}

/// A custom emoticon as a Mattermost emoji.
#[derive(Debug, Clone)]
pub struct EmojiPlan {
    /// Emoji name.
    pub name: String,
    /// The Hipchat shortcut it replaces in text.
    pub shortcut: String,
    /// The image that fits the size limit.
    pub image: FileRef,
}

/// All names, decided.
pub struct Directory {
    /// Team name.
    pub team: String,
    /// Written rooms.
    pub channels: BTreeMap<RoomId, ChannelPlan>,
    /// Rooms left out (deleted, with `--skip-deleted-rooms`).
    pub skipped_rooms: BTreeSet<RoomId>,
    /// Every catalog user (people and placeholders).
    pub users: BTreeMap<UserId, UserPlan>,
    /// Integration (sender without a user) name → user.
    pub integrations: BTreeMap<String, UserPlan>,
    /// The account for senders that resolve to nobody.
    pub fallback: UserPlan,
    /// Emoji to write, in emoticons.json order.
    pub emoji: Vec<EmojiPlan>,
    /// `@mention` and `(emoticon)` rewriting for message text.
    pub rewriter: TextRewriter,
    /// Users whose mention name equals another user's after lowercasing: for a
    /// message that lists one of them in `mentions`, that user wins the name.
    pub ambiguous_mentions: BTreeSet<UserId>,
    mention_pairs: Vec<(UserId, String, String)>,
}

impl Directory {
    /// Decides every name; records renames and the emoticons and rooms it leaves out.
    pub fn build(catalog: &Catalog, files: &FileStore, team: &str, skip_deleted_rooms: bool, report: &mut Report) -> Self {
        let (channels, skipped_rooms) = plan_channels(catalog, skip_deleted_rooms, report);
        let mut usernames = UniqueNames::new();
        for reserved in RESERVED_USERNAMES {
            usernames.reserve(reserved);
        }
        let mut emails = HashSet::new();
        let users = plan_users(catalog, &mut usernames, &mut emails, report);
        let integrations = plan_integrations(catalog, &mut usernames, &mut emails, report);
        let fallback = UserPlan { username: usernames.claim(FALLBACK_USERNAME, NAME_MAX_BYTES), email: unique_made_up_email("hipchat-import", &mut emails) };
        let emoji = plan_emoji(&catalog.emoticons, files, report);
        let mention_pairs: Vec<(UserId, String, String)> = catalog.users.values().filter(|u| !u.mention_name.is_empty()).map(|u| (u.id, u.mention_name.clone(), format!("@{}", users[&u.id].username))).collect();
        let ambiguous_mentions = ambiguous(&mention_pairs);
        let rewriter = make_rewriter(mention_pairs.iter().map(|(_, name, rep)| (name, rep)), &emoji);
        Directory { team: team.to_string(), channels, skipped_rooms, users, integrations, fallback, emoji, rewriter, ambiguous_mentions, mention_pairs }
    }

    /// A rewriter in which the users of `mentioned` own their mention names; only
    /// built when one of them shares a name with another user (rare).
    /// A name that differs from theirs only in case is theirs too here, even where
    /// another user has it exactly: the message's list is Hipchat's own reading.
    pub fn rewriter_preferring(&self, mentioned: &[UserId]) -> TextRewriter {
        let first: Vec<&(UserId, String, String)> = self.mention_pairs.iter().filter(|(id, ..)| mentioned.contains(id)).collect();
        let taken: HashSet<String> = first.iter().map(|(_, name, _)| name.to_lowercase()).collect();
        let rest = self.mention_pairs.iter().filter(|(id, name, _)| !mentioned.contains(id) && !taken.contains(&name.to_lowercase()));
        make_rewriter(first.into_iter().chain(rest).map(|(_, name, rep)| (name, rep)), &self.emoji)
    }

    /// The username that authors a message from `sender`.
    pub fn author(&self, sender: &Sender) -> &str {
        let by_id = sender.id.and_then(|id| self.users.get(&id));
        let by_name = || if sender.id.is_none() { self.integrations.get(&sender.name) } else { None };
        by_id.or_else(by_name).map_or(self.fallback.username.as_str(), |u| u.username.as_str())
    }

    /// The username of user `id` (the fallback account if the catalog lacks it).
    pub fn username(&self, id: UserId) -> &str {
        self.users.get(&id).map_or(self.fallback.username.as_str(), |u| u.username.as_str())
    }
}

fn plan_channels(catalog: &Catalog, skip_deleted_rooms: bool, report: &mut Report) -> (BTreeMap<RoomId, ChannelPlan>, BTreeSet<RoomId>) {
    let mut names = UniqueNames::new();
    for reserved in RESERVED_CHANNELS {
        names.reserve(reserved);
    }
    let mut channels = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for room in catalog.rooms.values() {
        names.expect(&channel_base(&room.name, &room.canonical_name, room.id));
    }
    for room in catalog.rooms.values() {
        if room.is_deleted && skip_deleted_rooms && !room.is_placeholder {
            report.skip(Entity::Room, room.id.to_string(), SkipReason::DeletedRoom, format!("room {:?} was deleted in Hipchat (--skip-deleted-rooms)", room.name));
            skipped.insert(room.id);
            continue;
        }
        channels.insert(room.id, plan_channel(room, &mut names, report));
    }
    (channels, skipped)
}

fn plan_channel(room: &Room, names: &mut UniqueNames, report: &mut Report) -> ChannelPlan {
    let base = channel_base(&room.name, &room.canonical_name, room.id);
    let name = names.claim(&base, NAME_MAX_BYTES);
    let id = room.id.to_string();
    if name != base {
        report.rename(Entity::Room, &id, &base, &name, "channel name already taken after normalisation (lowercase, [a-z0-9-]); numbered suffix added");
    } else if base != channel_slug(&room.name) {
        report.rename(Entity::Room, &id, &room.name, &name, "room name gives no valid channel name (too few allowed characters, or 40 hex digits)");
    }
    let full_name = room.name.trim();
    let display_name = if full_name.is_empty() { name.clone() } else { truncate_chars(full_name, DISPLAY_NAME_MAX_RUNES).to_string() };
    let purpose = if display_name.len() < full_name.len() {
        report.rename(Entity::Room, &id, full_name, &display_name, format!("name longer than {DISPLAY_NAME_MAX_RUNES} characters shortened in the channel's display name; the full name is kept in its purpose"));
        truncate_chars(full_name, PURPOSE_MAX_RUNES).to_string()
    } else {
        String::new()
    };
    let header = truncate_chars(&room.topic, HEADER_MAX_RUNES).to_string();
    if header.len() < room.topic.len() {
        report.warn(format!("room {id}: topic longer than {HEADER_MAX_RUNES} characters shortened in the channel header (the topic-change posts keep it whole)"));
    }
    ChannelPlan { name, display_name, purpose, header, private: room.privacy == Privacy::Private, archived: room.is_archived || room.is_deleted, is_placeholder: room.is_placeholder }
}

fn plan_users(catalog: &Catalog, usernames: &mut UniqueNames, emails: &mut HashSet<String>, report: &mut Report) -> BTreeMap<UserId, UserPlan> {
    let mut plans = BTreeMap::new();
    // Usernames the operator chose (--user-map) are claimed first, so a derived name
    // never takes one of them.
    let (mapped, derived): (Vec<&User>, Vec<&User>) = catalog.users.values().partition(|u| u.username.is_some());
    for user in catalog.users.values() {
        usernames.expect(&username_base_of(user));
    }
    for user in mapped.into_iter().chain(derived) {
        let username = claim_username(user, usernames, report);
        let email = claim_email(user, emails, report);
        plans.insert(user.id, UserPlan { username, email });
    }
    plans
}

/// The username `user` asks for: the mapped one, else from the mention name.
fn username_base_of(user: &User) -> String {
    username_base(user.username.as_deref().unwrap_or(&user.mention_name), &user.name, &format!("user-{}", user.id))
}

fn claim_username(user: &User, usernames: &mut UniqueNames, report: &mut Report) -> String {
    let fallback = format!("user-{}", user.id);
    let wanted = user.username.as_deref().unwrap_or(&user.mention_name);
    let base = username_base_of(user);
    let mut username = usernames.claim(&base, NAME_MAX_BYTES);
    if !is_valid_username(&username) {
        username = usernames.claim(&fallback, NAME_MAX_BYTES);
    }
    let id = user.id.to_string();
    if user.is_placeholder {
        report.rename(Entity::User, &id, &user.name, &username, "sender not in users.json: imported as a deactivated placeholder user");
    } else if username != wanted.to_lowercase() {
        let why = if username != base { "username already taken (usernames are case-insensitive); numbered suffix added" } else { "mention name empty, reserved or not valid as a Mattermost username" };
        report.rename(Entity::User, &id, wanted, &username, why);
    }
    username
}

fn claim_email(user: &User, emails: &mut HashSet<String>, report: &mut Report) -> String {
    let id = user.id.to_string();
    let given = user.email.as_deref().map(|e| e.trim().to_lowercase()).unwrap_or_default();
    if given.is_empty() || !is_valid_email(&given, EmailRule::Mattermost) {
        let made_up = unique_made_up_email(&format!("hipchat-user-{}", user.id), emails);
        let why = if given.is_empty() { "no e-mail address in the export: placeholder address" } else { "e-mail address not valid for Mattermost: placeholder address" };
        if !user.is_placeholder {
            report.rename(Entity::User, &id, user.email.clone().unwrap_or_default(), &made_up, why);
        }
        return made_up;
    }
    if emails.insert(given.clone()) {
        return given;
    }
    let (local, domain) = given.split_once('@').unwrap_or((&given, PLACEHOLDER_EMAIL_DOMAIN));
    let tagged = format!("{local}+hipchat-{}@{domain}", user.id);
    let unique = if is_valid_email(&tagged, EmailRule::Mattermost) && emails.insert(tagged.clone()) { tagged } else { unique_made_up_email(&format!("hipchat-user-{}", user.id), emails) };
    report.rename(Entity::User, &id, &given, &unique, "e-mail address shared with another user (Mattermost needs unique addresses)");
    unique
}

/// `<local>@hipchat-import.invalid`, numbered if that is taken already.
fn unique_made_up_email(local: &str, emails: &mut HashSet<String>) -> String {
    let first = if local.starts_with("hipchat-user-") {
        placeholder_email(local.trim_start_matches("hipchat-user-").parse().unwrap_or(0), PLACEHOLDER_EMAIL_DOMAIN)
    } else {
        format!("{local}@{PLACEHOLDER_EMAIL_DOMAIN}")
    };
    if emails.insert(first.clone()) {
        return first;
    }
    (2u64..).map(|n| format!("{local}-{n}@{PLACEHOLDER_EMAIL_DOMAIN}")).find(|e| emails.insert(e.clone())).unwrap_or(first)
}

fn plan_integrations(catalog: &Catalog, usernames: &mut UniqueNames, emails: &mut HashSet<String>, report: &mut Report) -> BTreeMap<String, UserPlan> {
    let mut plans = BTreeMap::new();
    for name in &catalog.integrations {
        let base = username_base("", name, "integration");
        let username = usernames.claim(&base, NAME_MAX_BYTES);
        let email = unique_made_up_email(&format!("integration-{username}"), emails);
        report.rename(Entity::User, format!("integration:{name}"), name, &username, "integration (sender without a user): imported as a deactivated user");
        plans.insert(name.clone(), UserPlan { username, email });
    }
    plans
}

fn plan_emoji(emoticons: &[Emoticon], files: &FileStore, report: &mut Report) -> Vec<EmojiPlan> {
    let mut names = UniqueNames::new();
    let mut plans = Vec::new();
    for e in emoticons {
        let id = e.id.to_string();
        let Some(image) = pick_emoji_image(e, files) else {
            report.skip(Entity::Emoticon, &id, SkipReason::ImageTooLarge, format!("({}): no image of at most {EMOJI_MAX_BYTES} bytes in a format Mattermost reads (png, gif, jpeg, webp, svg)", e.shortcut));
            continue;
        };
        let base = emoji_base(&e.shortcut, e.id);
        let name = names.claim(&base, EMOJI_NAME_MAX_BYTES);
        if !is_valid_emoji_name(&name) {
            report.skip(Entity::Emoticon, &id, SkipReason::ReservedName, format!("({}): no valid emoji name could be made", e.shortcut));
            continue;
        }
        if name != e.shortcut {
            let why = if super::system_emoji::is_system_emoji(&e.shortcut.to_lowercase()) { "a Mattermost system emoji has this name" } else { "emoji names are lowercase [a-z0-9_-] and unique" };
            report.rename(Entity::Emoticon, &id, &e.shortcut, &name, why);
        }
        plans.push(EmojiPlan { name, shortcut: e.shortcut.clone(), image });
    }
    plans
}

/// The largest image of `e` within the size limit whose bytes look like a format
/// the server decodes.
fn pick_emoji_image(e: &Emoticon, files: &FileStore) -> Option<FileRef> {
    e.images.iter().rev().find(|f| f.size <= EMOJI_MAX_BYTES && looks_like_image(f, files)).cloned()
}

fn looks_like_image(file: &FileRef, files: &FileStore) -> bool {
    let mut head = [0u8; 16];
    let Ok(mut f) = files.open(file) else { return false };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(b"\x89PNG")
        || head.starts_with(b"GIF8")
        || head.starts_with(&[0xFF, 0xD8, 0xFF])
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
        || head.trim_ascii_start().starts_with(b"<")
}

fn make_rewriter<'a>(mentions: impl Iterator<Item = (&'a String, &'a String)>, emoji: &[EmojiPlan]) -> TextRewriter {
    let mut rewriter = TextRewriter::new();
    for (name, replacement) in mentions {
        rewriter.mention(name, replacement.clone());
    }
    for plan in emoji {
        rewriter.emoticon(&plan.shortcut, format!(":{}:", plan.name));
    }
    rewriter
}

/// The users whose lowercased mention name another user also has.
fn ambiguous(pairs: &[(UserId, String, String)]) -> BTreeSet<UserId> {
    let mut by_name: BTreeMap<String, Vec<UserId>> = BTreeMap::new();
    for (id, name, _) in pairs {
        by_name.entry(name.to_lowercase()).or_default().push(*id);
    }
    by_name.into_values().filter(|ids| ids.len() > 1).flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: UserId, mention: &str, email: Option<&str>) -> User {
        User::regular(id, &format!("User {id}"), mention, email)
    }

    fn directory(users: Vec<User>) -> (Directory, Report) {
        let mut catalog = Catalog::default();
        for u in users {
            catalog.users.insert(u.id, u);
        }
        catalog.integrations.insert("JIRA".into());
        let mut report = Report::new();
        let dir = Directory::build(&catalog, &FileStore::measured(), "team", false, &mut report);
        (dir, report)
    }

    #[test]
    fn a_shortened_display_name_is_a_rename() {
        let mut room = Room::placeholder(8);
        room.name = "x".repeat(70);
        let mut report = Report::new();
        let plan = plan_channel(&room, &mut UniqueNames::new(), &mut report);
        assert_eq!((plan.display_name.chars().count(), plan.purpose.as_str()), (DISPLAY_NAME_MAX_RUNES, room.name.as_str()));
        assert_eq!(report.renames.iter().filter(|r| r.entity == Entity::Room && r.from == room.name && r.to == plan.display_name).count(), 1);
    }

    #[test]
    fn case_twins_get_distinct_names_and_addresses() {
        let (dir, report) = directory(vec![user(5, "Bob", Some("Bob@Example.com")), user(6, "bob", Some("bob@example.com")), user(7, "jira", None)]);
        assert_eq!(dir.users[&5].username, "bob");
        assert_eq!(dir.users[&6].username, "bob-2");
        assert_eq!(dir.users[&5].email, "bob@example.com");
        assert_eq!(dir.users[&6].email, "bob+hipchat-6@example.com");
        assert_eq!(dir.users[&7].email, "hipchat-user-7@hipchat-import.invalid");
        assert_eq!(dir.integrations["JIRA"].username, "jira-2", "people keep their names before integrations");
        assert_eq!(dir.fallback.username, FALLBACK_USERNAME);
        assert!(report.renames.iter().any(|r| r.to == "bob-2"));
        assert!(report.renames.iter().any(|r| r.to == "bob+hipchat-6@example.com"));
    }

    #[test]
    fn mentions_list_decides_between_case_twins() {
        let (dir, _) = directory(vec![user(5, "Bob", None), user(6, "bob", None)]);
        assert_eq!(dir.ambiguous_mentions, BTreeSet::from([5, 6]));
        // Without a list, the name as typed decides; a list wins over the case.
        assert_eq!(dir.rewriter.rewrite("hi @bob @Bob @BOB"), "hi @bob-2 @bob @bob");
        assert_eq!(dir.rewriter_preferring(&[6]).rewrite("hi @Bob"), "hi @bob-2");
        assert_eq!(dir.rewriter_preferring(&[5]).rewrite("hi @bob"), "hi @bob");
    }

    #[test]
    fn authors_resolve_to_people_integrations_or_the_fallback() {
        let (dir, _) = directory(vec![user(1, "Ann", None)]);
        assert_eq!(dir.author(&Sender { id: Some(1), name: "Ann".into() }), "ann");
        assert_eq!(dir.author(&Sender { id: None, name: "JIRA".into() }), "jira");
        assert_eq!(dir.author(&Sender { id: None, name: "Unknown bot".into() }), FALLBACK_USERNAME);
        assert_eq!(dir.author(&Sender { id: Some(42), name: "Nobody".into() }), FALLBACK_USERNAME);
    }
}
