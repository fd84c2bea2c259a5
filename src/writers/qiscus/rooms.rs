//! Rooms and private conversations → `rooms-NNNN.json`.
//!
//! Every Hipchat room becomes a `group` room; every private conversation between two
//! people a `single` room with exactly those two, the creator among them (the API
//! replaces a single room's name and requires exactly two participants). A
//! conversation with oneself cannot be `single` (two distinct users are required), so
//! it becomes a one-member `group` room named "Notes of <name>", which keeps its
//! messages visible to that user only. Written after the comments, because every
//! comment author must be a participant of the room the comment is in.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::Result;
use crate::model::{Catalog, Conversation, Privacy, Room, RoomId, Timestamp, UserId};
use crate::report::{Entity, Report, SkipReason};

use super::chunks::{ChunkedArrays, FileSummary};
use super::comments::{ConversationSummary, Summaries};
use super::identity::room_unique_id;
use super::identity::Directory;
use super::rows::{rfc3339_seconds, RoomRow};
use super::Settings;


/// What Qiscus has no field for, kept as the `Options` JSON text.
#[derive(Serialize, Default)]
struct RoomOptions<'a> {
    source: &'static str,
    hipchat_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hipchat_room_id: Option<RoomId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hipchat_user_ids: Option<[UserId; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    canonical_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privacy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_access_url: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    not_in_rooms_json: bool,
}

impl RoomOptions<'_> {
    fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Writes every room row; returns the files written.
pub fn write_rooms(catalog: &Catalog, summaries: &Summaries, settings: &Settings, directory: &mut Directory, report: &mut Report) -> Result<Vec<FileSummary>> {
    let mut arrays = ChunkedArrays::new(&settings.out, "rooms", settings.max_file_bytes);
    let mut room_ids: BTreeSet<RoomId> = catalog.rooms.keys().copied().collect();
    room_ids.extend(summaries.rooms());
    for id in room_ids {
        let summary = &summaries.get(&catalog.conversations, Conversation::Room(id));
        match catalog.rooms.get(&id) {
            Some(room) if room.is_deleted && settings.skip_deleted_rooms && !room.is_placeholder => {
                report.skip(Entity::Room, id.to_string(), SkipReason::DeletedRoom, "deleted in Hipchat; left out by --skip-deleted-rooms");
            }
            Some(room) => {
                let row = group_row(catalog, room, summary, settings, directory, report);
                arrays.push_json(|out| row.write_json(out))?;
                count_room(room.is_placeholder, report);
            }
            None => {
                let stand_in = Room::placeholder(id);
                let row = group_row(catalog, &stand_in, summary, settings, directory, report);
                arrays.push_json(|out| row.write_json(out))?;
                count_room(true, report);
            }
        }
    }
    // The export's conversations and those with comments, in order, each once,
    // without a copy of either set (hundreds of thousands of private conversations
    // in an export made that copy a third of a run's peak memory).
    let direct = summaries.unlisted_private();
    let conversations = merge_sorted(catalog.conversations.iter().copied(), direct);
    // One row for all single rooms, refilled: an export has one per private
    // conversation, tens of thousands (a dozen allocations each were most of
    // their cost).
    let mut single = RoomRow::default();
    for conversation in conversations {
        let summary = &summaries.get(&catalog.conversations, conversation);
        if let Conversation::Direct { low, high } = conversation {
            if low == high {
                let row = notes_row(catalog, low, summary, settings, directory, report);
                arrays.push_json(|out| row.write_json(out))?;
                report.add_extra("qiscus_notes_rooms", 1);
            } else {
                single_row_into(&mut single, low, high, summary, settings, directory, report);
                arrays.push_json(|out| single.write_json(out))?;
                report.add_extra("qiscus_single_rooms", 1);
            }
        }
    }
    arrays.finish()
}

/// The union of two ascending iterators, ascending, each item once.
fn merge_sorted<T: Ord + Copy>(a: impl Iterator<Item = T>, b: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some(x), Some(y)) if x == y => {
            b.next();
            a.next()
        }
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

fn count_room(placeholder: bool, report: &mut Report) {
    report.add_extra("qiscus_group_rooms", 1);
    if placeholder {
        report.add_extra("qiscus_placeholder_rooms", 1);
    } else {
        report.written(Entity::Room);
    }
}

fn group_row(catalog: &Catalog, room: &Room, summary: &ConversationSummary, settings: &Settings, directory: &mut Directory, report: &mut Report) -> RoomRow {
    let mut emails = BTreeSet::new();
    let listed = room.owner.iter().chain(&room.admins).chain(&room.members).chain(&room.participants).chain(&room.autojoined_by);
    for uid in listed.chain(catalog.room_posters.get(&room.id).into_iter().flatten()) {
        match directory.user(*uid) {
            Some(identity) => {
                emails.insert(identity.email.clone());
            }
            None => report.warn(format!("qiscus: room {} lists user {uid}, who is not in users.json; left out of its participants", room.id)),
        }
    }
    emails.extend(summary.creators.iter().map(|e| e.to_string()));
    let creator = [room.owner].into_iter().flatten().chain(room.admins.iter().copied()).find_map(|u| directory.user(u).map(|i| i.email.clone()));
    let creator = creator.or_else(|| emails.iter().next().cloned()).unwrap_or_else(|| directory.importer_email(report));
    let name = match room.name.trim() {
        "" => format!("Hipchat room {}", room.id),
        n => n.to_string(),
    };
    let options = RoomOptions {
        source: "hipchat",
        hipchat_kind: "room",
        hipchat_room_id: Some(room.id),
        canonical_name: Some(room.canonical_name.as_str()).filter(|s| !s.is_empty()),
        topic: Some(room.topic.as_str()),
        privacy: Some(match room.privacy {
            Privacy::Public => "public",
            Privacy::Private => "private",
        }),
        archived: Some(room.is_archived),
        deleted: Some(room.is_deleted),
        guest_access_url: room.guest_access_url.as_deref(),
        not_in_rooms_json: room.is_placeholder,
        ..Default::default()
    };
    RoomRow {
        name,
        kind: "group",
        options: options.to_text(),
        created_at: created_at(room.created, summary, settings),
        avatar_url: String::new(),
        unique_id: room_unique_id(Conversation::Room(room.id)),
        participant_emails: creator_first(&creator, emails),
        creator_email: creator,
    }
}

/// Refills `row` with the single room of the conversation between `low` and
/// `high` (two distinct users): named after both, the first author (or `low`)
/// its creator and first participant.
fn single_row_into(row: &mut RoomRow, low: UserId, high: UserId, summary: &ConversationSummary, settings: &Settings, directory: &mut Directory, report: &mut Report) {
    use std::fmt::Write as _;
    for id in [low, high] {
        if directory.known_user_email(id).is_none() {
            directory.user_email(id, "", report);
        }
    }
    let (a, b) = (directory.known_user_email(low).unwrap_or_default(), directory.known_user_email(high).unwrap_or_default());
    let creator = summary.first_creator.filter(|c| *c == a || *c == b).unwrap_or(a);
    row.name.clear();
    let _ = write!(row.name, "{a} {b}");
    row.kind = "single";
    row.options.clear();
    // What `RoomOptions { hipchat_kind: "private", hipchat_user_ids, .. }` serializes to (tested).
    let _ = write!(row.options, r#"{{"source":"hipchat","hipchat_kind":"private","hipchat_user_ids":[{low},{high}]}}"#);
    row.created_at = created_at(None, summary, settings);
    row.avatar_url.clear();
    row.unique_id.clear();
    let _ = write!(row.unique_id, "hipchat-dm-{low}-{high}");
    row.creator_email.clear();
    row.creator_email.push_str(creator);
    // The creator, then the other participant (none when both share the address).
    let other = if creator == a { b } else { a };
    row.participant_emails.resize(if other == creator { 1 } else { 2 }, String::new());
    for (slot, email) in row.participant_emails.iter_mut().zip([creator, other]) {
        slot.clear();
        slot.push_str(email);
    }
}

fn notes_row(catalog: &Catalog, user: UserId, summary: &ConversationSummary, settings: &Settings, directory: &mut Directory, report: &mut Report) -> RoomRow {
    let email = directory.user_email(user, "", report);
    let name = catalog.users.get(&user).map(super::identity::display_name).or_else(|| directory.user(user).map(|i| i.name.clone())).unwrap_or_default();
    let options = RoomOptions { source: "hipchat", hipchat_kind: "self_conversation", hipchat_user_ids: Some([user, user]), ..Default::default() };
    RoomRow {
        name: format!("Notes of {name}"),
        kind: "group",
        options: options.to_text(),
        created_at: created_at(None, summary, settings),
        avatar_url: String::new(),
        unique_id: room_unique_id(Conversation::Direct { low: user, high: user }),
        participant_emails: vec![email.clone()],
        creator_email: email,
    }
}

/// Hipchat's creation time, else the first message's, else the run's default.
fn created_at(created: Option<Timestamp>, summary: &ConversationSummary, settings: &Settings) -> String {
    rfc3339_seconds(created.or(summary.first_time).unwrap_or(settings.default_created))
}

/// The creator, then everyone else in address order.
fn creator_first(creator: &str, mut emails: BTreeSet<String>) -> Vec<String> {
    emails.remove(creator);
    std::iter::once(creator.to_string()).chain(emails).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_conversations_are_each_once_in_order() {
        let merged: Vec<u32> = merge_sorted([1, 3, 5, 7].into_iter(), [2, 3, 8].into_iter()).collect();
        assert_eq!(merged, vec![1, 2, 3, 5, 7, 8]);
        assert_eq!(merge_sorted(std::iter::empty::<u32>(), [4].into_iter()).collect::<Vec<_>>(), vec![4]);
        assert_eq!(merge_sorted([4].into_iter(), std::iter::empty()).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn unique_ids_differ_by_kind() {
        let ids = [room_unique_id(Conversation::Room(12)), room_unique_id(Conversation::direct(1, 2)), room_unique_id(Conversation::direct(1, 1))];
        assert_eq!(ids, ["hipchat-room-12", "hipchat-dm-1-2", "hipchat-notes-1"]);
    }

    /// A single room's row as it was first built (serde, the options struct, the
    /// participants by address order), to hold the refilled one to.
    #[test]
    fn single_rows_are_what_serde_wrote() {
        let secret = super::super::identity::Secret::from_bytes(b"0123456789abcdef").unwrap();
        let settings = Settings { out: "out".into(), base_url: None, secret, domain: "x".into(), max_file_bytes: 1 << 20, skip_deleted_rooms: false, default_created: Timestamp(7_000_000) };
        let mut report = Report::default();
        let mut catalog = Catalog::default();
        for (id, email) in [(1, "b@x"), (2, "a@x"), (3, "A@x"), (40, "same@x"), (41, "same@x"), (42, "q\"uote@x")] {
            catalog.users.insert(id, crate::model::User::regular(id, &format!("User {id}"), "", Some(email)));
        }
        let mut directory = Directory::new(&catalog, "x", &mut report);
        let mut row = RoomRow::default();
        for (low, high, first, time) in [(1, 2, Some("a@x"), Some(1_522_684_244_000_000)), (1, 2, Some("b@x"), None), (1, 2, None, None), (2, 3, Some("elsewhere@x"), None), (1, 999, None, None), (40, 41, None, None), (41, 42, Some("q\"uote@x"), None), (1, 2, Some("a@x"), None)] {
            let summary = ConversationSummary { first_time: time.map(Timestamp), first_creator: first, creators: Vec::new() };
            single_row_into(&mut row, low, high, &summary, &settings, &mut directory, &mut report);
            let (a, b) = (directory.known_user_email(low).unwrap().to_string(), directory.known_user_email(high).unwrap().to_string());
            let creator = first.filter(|c| *c == a || *c == b).map_or_else(|| a.clone(), str::to_string);
            let options = RoomOptions { source: "hipchat", hipchat_kind: "private", hipchat_user_ids: Some([low, high]), ..Default::default() };
            let expected = RoomRow {
                name: format!("{a} {b}"),
                kind: "single",
                options: options.to_text(),
                created_at: created_at(None, &summary, &settings),
                avatar_url: String::new(),
                unique_id: room_unique_id(Conversation::Direct { low, high }),
                participant_emails: creator_first(&creator, BTreeSet::from([a, b])),
                creator_email: creator,
            };
            assert_eq!(row, expected);
        }
    }

    #[test]
    fn creator_comes_first_once() {
        let set = BTreeSet::from(["b@x".to_string(), "a@x".to_string(), "c@x".to_string()]);
        assert_eq!(creator_first("b@x", set), ["b@x", "a@x", "c@x"]);
    }
}
