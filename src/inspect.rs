//! `hcconv inspect`: an inventory of an export, for people and (with `--json`) scripts.
//!
//! It drains the same message stream the writers use, so its "unique" counts are
//! exactly what a conversion will see.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::Result;
use crate::hipchat::Export;
use crate::model::{Conversation, MessageKind, Privacy, Timestamp};
use crate::report::{reason_name, Entity, Report, SkipReason};

/// Users by kind.
#[derive(Debug, Default, Serialize)]
pub struct UserCounts {
    /// Entries in users.json (duplicates included).
    pub listed: u64,
    /// Distinct users from users.json.
    pub total: u64,
    /// Deleted (deactivated).
    pub deleted: u64,
    /// Guests.
    pub guests: u64,
    /// Admins and owners.
    pub admins: u64,
    /// Without an e-mail address.
    pub without_email: u64,
    /// Senders/receivers missing from users.json.
    pub unknown_senders: u64,
    /// Their ids.
    pub unknown_sender_ids: Vec<u64>,
}

/// Rooms by kind.
#[derive(Debug, Default, Serialize)]
pub struct RoomCounts {
    /// Entries in rooms.json (duplicates included).
    pub listed: u64,
    /// Distinct rooms from rooms.json.
    pub total: u64,
    /// Public rooms.
    pub public: u64,
    /// Private rooms.
    pub private: u64,
    /// Archived.
    pub archived: u64,
    /// Deleted.
    pub deleted: u64,
    /// Rooms with history.
    pub with_history: u64,
    /// Rooms with history but not in rooms.json.
    pub unknown: u64,
}

/// Messages, raw and after de-duplication.
#[derive(Debug, Default, Serialize)]
pub struct MessageCounts {
    /// Elements read from history files.
    pub raw: u64,
    /// Messages after de-duplication.
    pub unique: u64,
    /// Second copies removed.
    pub duplicates: u64,
    /// Unreadable elements (not objects, bad timestamps).
    pub unreadable: u64,
    /// Raw count per kind.
    pub raw_by_kind: BTreeMap<String, u64>,
    /// Unique count per kind.
    pub unique_by_kind: BTreeMap<String, u64>,
    /// Messages deleted in Hipchat.
    pub deleted: u64,
    /// Room messages (unique).
    pub in_rooms: u64,
    /// Private messages (unique).
    pub private: u64,
    /// Private conversations.
    pub private_conversations: u64,
    /// Messages to oneself.
    pub self_messages: u64,
    /// Sent by integrations (no user).
    pub from_integrations: u64,
    /// Integration names.
    pub integrations: Vec<String>,
    /// Kinds the format does not document.
    pub unknown_kinds: BTreeMap<String, u64>,
    /// Undocumented fields, `Kind.field` → count.
    pub unknown_fields: BTreeMap<String, u64>,
    /// History files read.
    pub history_files: u64,
    /// First message time.
    pub first: Option<String>,
    /// Last message time.
    pub last: Option<String>,
}

/// Attachments referenced by messages, and files in the export.
#[derive(Debug, Default, Serialize)]
pub struct FileCounts {
    /// Attachments referenced by unique messages.
    pub attachments_referenced: u64,
    /// Of those, found in the export.
    pub attachments_found: u64,
    /// Of those, missing.
    pub attachments_missing: u64,
    /// Distinct attachment files found, and their bytes.
    pub attachment_files: u64,
    /// Bytes of the distinct attachment files.
    pub attachment_bytes: u64,
    /// Files in the export (attachments, avatars, emoticon images…).
    pub files_in_export: u64,
    /// Their total bytes.
    pub bytes_in_export: u64,
    /// Users with an avatar image found.
    pub avatars: u64,
    /// Avatars named but missing or unreadable.
    pub avatars_missing: u64,
}

/// Emoticons.
#[derive(Debug, Default, Serialize)]
pub struct EmoticonCounts {
    /// Entries in emoticons.json.
    pub listed: u64,
    /// With at least one image found.
    pub with_images: u64,
    /// Image files (all sizes).
    pub images: u64,
    /// Without any image.
    pub missing_images: u64,
}

/// The headline numbers, flat, for scripts that want one level of keys.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Distinct users in users.json.
    pub users: u64,
    /// Distinct rooms in rooms.json.
    pub rooms: u64,
    /// Messages after de-duplication.
    pub messages: u64,
    /// Messages as read, copies included.
    pub messages_raw: u64,
    /// Duplicate copies.
    pub duplicates: u64,
    /// Messages deleted in Hipchat.
    pub deleted_messages: u64,
    /// Private messages (unique).
    pub private_messages: u64,
    /// Sender ids missing from users.json.
    pub unknown_senders: u64,
    /// Attachments referenced by unique messages.
    pub attachments: u64,
    /// Attachments whose file is in the export.
    pub attachments_found: u64,
    /// Attachments whose file is missing.
    pub attachments_missing: u64,
    /// Bytes of distinct attachment files found.
    pub attachment_bytes: u64,
    /// Emoticons listed.
    pub emoticons: u64,
    /// Users with an avatar image.
    pub avatars: u64,
    /// Messages of undocumented kinds.
    pub unknown_kinds: u64,
    /// First message (RFC 3339).
    pub first_message: Option<String>,
    /// Last message (RFC 3339).
    pub last_message: Option<String>,
}

/// The whole inventory.
#[derive(Debug, Default, Serialize)]
pub struct Inventory {
    /// Headline numbers.
    pub summary: Summary,
    /// `encrypted`, `tar_gz`, `tar` or `folder`.
    pub input_kind: Option<crate::archive::InputKind>,
    /// Archive entries (files).
    pub entries: u64,
    /// Entries refused or not read, with reasons.
    pub entries_skipped: BTreeMap<String, u64>,
    /// History files skipped as damaged (`--skip-damaged`), with what was wrong.
    pub damaged_files: Vec<String>,
    /// Which top-level files were present.
    pub top_level_files: BTreeMap<String, bool>,
    /// Users.
    pub users: UserCounts,
    /// Rooms.
    pub rooms: RoomCounts,
    /// Messages.
    pub messages: MessageCounts,
    /// Files.
    pub files: FileCounts,
    /// Emoticons.
    pub emoticons: EmoticonCounts,
    /// Users with autojoin entries resolved to rooms.
    pub autojoin_memberships: u64,
    /// Entries in preferences.json.
    pub preference_entries: u64,
    /// Warnings from reading.
    pub warnings: u64,
}

impl Inventory {
    /// Drains `export`'s messages and counts everything.
    pub fn collect(mut export: Export, report: &mut Report) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let mut kinds_unique: BTreeMap<String, u64> = BTreeMap::new();
        let mut attachment_files: BTreeSet<String> = BTreeSet::new();
        let (mut first, mut last): (Option<Timestamp>, Option<Timestamp>) = (None, None);
        while let Some(m) = export.messages.next(report)? {
            let m_ = &mut inv.messages;
            m_.unique += 1;
            *kinds_unique.entry(m.kind.name().to_string()).or_default() += 1;
            first = Some(first.map_or(m.time, |t| t.min(m.time)));
            last = Some(last.map_or(m.time, |t| t.max(m.time)));
            if m.deleted.is_some() {
                m_.deleted += 1;
            }
            if m.sender.id.is_none() {
                m_.from_integrations += 1;
            }
            match m.conversation {
                Conversation::Room(_) => m_.in_rooms += 1,
                Conversation::Direct { low, high } => {
                    m_.private += 1;
                    if low == high {
                        m_.self_messages += 1;
                    }
                }
            }
            if let MessageKind::Unknown { wrapper } = &m.kind {
                *m_.unknown_kinds.entry(wrapper.clone()).or_default() += 1;
            }
            if let Some(a) = &m.attachment {
                inv.files.attachments_referenced += 1;
                match &a.file {
                    Some(f) => {
                        inv.files.attachments_found += 1;
                        if attachment_files.insert(f.path.clone()) {
                            inv.files.attachment_bytes += f.size;
                        }
                    }
                    None => inv.files.attachments_missing += 1,
                }
            }
        }
        inv.files.attachment_files = attachment_files.len() as u64;
        let stats = &export.stats;
        let cat = &export.catalog;
        inv.input_kind = stats.input_kind;
        inv.entries = stats.entries;
        if let Some(reasons) = report.skip_reasons.get(&Entity::Entry) {
            inv.entries_skipped = reasons.iter().map(|(r, n)| (reason_name(*r), *n)).collect();
        }
        for s in report.skipped.iter() {
            let s = s.map_err(|e| crate::error::Error::new(crate::error::ErrorKind::Other, format!("the report's skip list cannot be read back: {e}")))?;
            if s.entity == Entity::Entry && s.reason == SkipReason::DamagedFile {
                inv.damaged_files.push(s.detail);
            }
        }
        inv.top_level_files = stats.top_level_files.clone();
        let real_users = cat.users.values().filter(|u| !u.is_placeholder);
        inv.users = UserCounts {
            listed: report.counts_of(Entity::User).input,
            total: real_users.clone().count() as u64,
            deleted: real_users.clone().filter(|u| u.is_deleted).count() as u64,
            guests: real_users.clone().filter(|u| u.is_guest()).count() as u64,
            admins: real_users.clone().filter(|u| u.is_admin()).count() as u64,
            without_email: real_users.filter(|u| u.email.is_none()).count() as u64,
            unknown_senders: stats.unknown_senders.len() as u64,
            unknown_sender_ids: stats.unknown_senders.iter().copied().collect(),
        };
        let real_rooms = cat.rooms.values().filter(|r| !r.is_placeholder);
        inv.rooms = RoomCounts {
            listed: report.counts_of(Entity::Room).input,
            total: real_rooms.clone().count() as u64,
            public: real_rooms.clone().filter(|r| r.privacy == Privacy::Public).count() as u64,
            private: real_rooms.clone().filter(|r| r.privacy == Privacy::Private).count() as u64,
            archived: real_rooms.clone().filter(|r| r.is_archived).count() as u64,
            deleted: real_rooms.filter(|r| r.is_deleted).count() as u64,
            with_history: 0,
            unknown: stats.unknown_rooms.len() as u64,
        };
        let m = &mut inv.messages;
        m.raw = report.counts_of(Entity::Message).input;
        m.duplicates = report.skipped_for(Entity::Message, SkipReason::Duplicate);
        m.unreadable = report.skipped_for(Entity::Message, SkipReason::Malformed) + report.skipped_for(Entity::Message, SkipReason::BadTimestamp);
        m.raw_by_kind = stats.raw_kinds.clone();
        m.unique_by_kind = kinds_unique;
        m.private_conversations = cat.conversations.len() as u64;
        m.integrations = cat.integrations.iter().cloned().collect();
        m.unknown_fields = stats.unknown_fields.clone();
        m.history_files = stats.history_files;
        m.first = first.map(|t| t.to_rfc3339());
        m.last = last.map(|t| t.to_rfc3339());
        (inv.files.files_in_export, inv.files.bytes_in_export) = export.files.totals()?;
        inv.files.avatars = cat.users.values().filter(|u| u.avatar.is_some()).count() as u64;
        inv.files.avatars_missing = report.counts_of(Entity::Avatar).skipped;
        inv.emoticons = EmoticonCounts {
            listed: report.counts_of(Entity::Emoticon).input,
            with_images: cat.emoticons.len() as u64,
            images: cat.emoticons.iter().map(|e| e.images.len() as u64).sum(),
            missing_images: report.counts_of(Entity::Emoticon).skipped,
        };
        inv.rooms.with_history = rooms_with_history(&export, report);
        inv.autojoin_memberships = cat.rooms.values().map(|r| r.autojoined_by.len() as u64).sum();
        inv.preference_entries = cat.preference_entries;
        inv.warnings = report.warnings.len() as u64 + report.warnings_not_listed;
        inv.summary = Summary {
            users: inv.users.total,
            rooms: inv.rooms.total,
            messages: inv.messages.unique,
            messages_raw: inv.messages.raw,
            duplicates: inv.messages.duplicates,
            deleted_messages: inv.messages.deleted,
            private_messages: inv.messages.private,
            unknown_senders: inv.users.unknown_senders,
            attachments: inv.files.attachments_referenced,
            attachments_found: inv.files.attachments_found,
            attachments_missing: inv.files.attachments_missing,
            attachment_bytes: inv.files.attachment_bytes,
            emoticons: inv.emoticons.listed,
            avatars: inv.files.avatars,
            unknown_kinds: inv.messages.unknown_kinds.values().sum(),
            first_message: inv.messages.first.clone(),
            last_message: inv.messages.last.clone(),
        };
        Ok(inv)
    }

    /// The inventory as aligned text lines.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let kind = self.input_kind.map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()).unwrap_or_default();
        let _ = writeln!(s, "input           {kind}, {} entries", self.entries);
        for (reason, n) in &self.entries_skipped {
            let _ = writeln!(s, "  entries not read: {n} ({reason})");
        }
        for damaged in &self.damaged_files {
            let _ = writeln!(s, "  damaged: {damaged}");
        }
        let missing: Vec<&str> = self.top_level_files.iter().filter(|(_, p)| !**p).map(|(n, _)| n.as_str()).collect();
        if !missing.is_empty() {
            let _ = writeln!(s, "  absent files: {}", missing.join(", "));
        }
        let u = &self.users;
        let _ = writeln!(s, "users           {} ({} deleted, {} guests, {} admins, {} without e-mail)", u.total, u.deleted, u.guests, u.admins, u.without_email);
        if u.unknown_senders > 0 {
            let _ = writeln!(s, "  unknown senders (not in users.json): {} {:?}", u.unknown_senders, u.unknown_sender_ids);
        }
        let r = &self.rooms;
        let _ = writeln!(s, "rooms           {} ({} public, {} private, {} archived, {} deleted, {} with history)", r.total, r.public, r.private, r.archived, r.deleted, r.with_history);
        if r.unknown > 0 {
            let _ = writeln!(s, "  rooms with history but not in rooms.json: {}", r.unknown);
        }
        let m = &self.messages;
        let _ = writeln!(s, "messages        {} unique of {} raw ({} duplicates, {} unreadable, {} deleted)", m.unique, m.raw, m.duplicates, m.unreadable, m.deleted);
        for (k, n) in &m.unique_by_kind {
            let _ = writeln!(s, "  {k:<22} {n:>9}  (raw {})", m.raw_by_kind.get(k).copied().unwrap_or(0));
        }
        let _ = writeln!(s, "  in rooms {}, private {} in {} conversations ({} to self), from integrations {}", m.in_rooms, m.private, m.private_conversations, m.self_messages, m.from_integrations);
        if let (Some(a), Some(b)) = (&m.first, &m.last) {
            let _ = writeln!(s, "  dates {a} .. {b}");
        }
        if !m.unknown_kinds.is_empty() {
            let _ = writeln!(s, "  unknown kinds: {:?}", m.unknown_kinds);
        }
        if !m.unknown_fields.is_empty() {
            let _ = writeln!(s, "  unknown fields: {:?}", m.unknown_fields);
        }
        let f = &self.files;
        let _ = writeln!(s, "attachments     {} referenced, {} found, {} missing; {} files, {} bytes", f.attachments_referenced, f.attachments_found, f.attachments_missing, f.attachment_files, f.attachment_bytes);
        let _ = writeln!(s, "files           {} in export, {} bytes; avatars {} ({} missing)", f.files_in_export, f.bytes_in_export, f.avatars, f.avatars_missing);
        let e = &self.emoticons;
        let _ = writeln!(s, "emoticons       {} ({} with images, {} image files, {} without images)", e.listed, e.with_images, e.images, e.missing_images);
        let _ = writeln!(s, "autojoins       {} room memberships; preferences {} entries", self.autojoin_memberships, self.preference_entries);
        if self.warnings > 0 {
            let _ = writeln!(s, "warnings        {} (see --verbose)", self.warnings);
        }
        s
    }
}

fn rooms_with_history(export: &Export, _report: &Report) -> u64 {
    // Rooms whose history produced at least one message, real or placeholder.
    let mut n = 0;
    for room in export.catalog.rooms.values() {
        if export.catalog.room_posters.contains_key(&room.id) || room.is_placeholder {
            n += 1;
        }
    }
    n
}
