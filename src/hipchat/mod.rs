//! The Hipchat (hc-migrate) export reader: archive entries in, neutral model out.
//!
//! One pass over the archive, in whatever order its entries come: users.json,
//! rooms.json and the other small files go into the [`Catalog`]; history files are
//! handed to a thread of their own (`history.rs`) that parses them element by
//! element into an on-disk [`SpoolWriter`] while this thread reads on; attachment,
//! avatar and emoticon files go into the [`FileStore`]. Only when the pass is over (and so
//! every user, room and file is known) are messages handed out, sorted, de-duplicated
//! and with their attachments resolved, by [`MessageStream`].
//!
//! Why spool rather than read the archive twice: a second pass costs a second full
//! decryption and decompression (the slowest part of the pipeline), while the spool
//! writes only the messages, compactly, and usually fits in memory for small exports.

mod borrowed;
mod conversations;
mod fields;
mod history;
pub mod json;
pub mod messages;
pub mod records;
mod scan;
mod stream;
pub mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::archive::{self, EntryEvent, InputKind, OpenOptions};
use crate::error::Result;
use crate::storage::files::FileStore;
use crate::model::{Catalog, Emoticon, Room, RoomId, Timestamp, User, UserId};
use crate::report::{Entity, Report, SkipReason};
use crate::storage::spool::{HistoryFile, SpoolWriter};

use history::{History, HistoryReader};
use messages::Origin;
use records::AvatarSource;

pub use stream::{MessageFilter, MessageStream};

/// How to read an export.
pub struct ReadOptions<'a> {
    /// How to open and decrypt it.
    pub open: OpenOptions<'a>,
    /// Keep going past a history file with damaged JSON (report it) instead of failing.
    pub skip_damaged: bool,
    /// A private folder for the message spool.
    pub spool_dir: PathBuf,
    /// Where file contents go: staged, measured, or (for folders) used in place.
    pub files: FileStore,
    /// Memory budget of the spool in bytes.
    pub spool_budget: usize,
}

/// Facts about the raw input that only the reader sees (for `inspect` and reports).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadStats {
    /// What the input was.
    pub input_kind: Option<InputKind>,
    /// Archive entries seen (files, not folders).
    pub entries: u64,
    /// History files read.
    pub history_files: u64,
    /// Raw messages per kind, before de-duplication.
    pub raw_kinds: BTreeMap<String, u64>,
    /// Undocumented `Kind.field` names and how often they appeared.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Sender or receiver ids that users.json lacks.
    pub unknown_senders: BTreeSet<UserId>,
    /// Rooms with history but no rooms.json entry.
    pub unknown_rooms: BTreeSet<RoomId>,
    /// Number of export slices read.
    pub slices: u64,
    /// Whether each of the documented top-level files was present.
    pub top_level_files: BTreeMap<String, bool>,
    /// Earliest and latest message time.
    pub first_message: Option<crate::model::Timestamp>,
    /// Latest message time.
    pub last_message: Option<crate::model::Timestamp>,
}

/// A read export: the catalog, the files, and the messages waiting in order.
pub struct Export {
    /// Users, rooms, emoticons and the rest.
    pub catalog: Catalog,
    /// The export's files.
    pub files: Arc<FileStore>,
    /// Raw-input facts.
    pub stats: ReadStats,
    /// The messages, to be drained once.
    pub messages: MessageStream,
    /// A folder private to this run where writers may keep scratch files (the
    /// spool's folder; names must not start with `messages-` or `files`).
    pub scratch: PathBuf,
}

const TOP_LEVEL_FILES: &[&str] = &["users.json", "rooms.json", "emoticons.json", "autojoins.json", "preferences.json", "metadata.json"];
/// Small files read whole into memory; larger ones are refused as implausible.
const SMALL_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads the export at `input` in one pass. Skips and warnings go into `report`.
pub fn read_export(input: &Path, opts: ReadOptions, report: &mut Report) -> Result<Export> {
    read_slices(&[input.to_path_buf()], opts, report)
}

/// Reads several export slices (exports made for consecutive date ranges) as one,
/// each in one pass, **oldest first**: a user or room listed in several slices takes
/// its fields from the last slice given, and a message present in overlapping slices
/// is kept once (the copies are reported as duplicates).
pub fn read_slices(inputs: &[PathBuf], opts: ReadOptions, report: &mut Report) -> Result<Export> {
    let mut files = opts.files.with_scratch(&opts.spool_dir);
    // A single unpacked folder is used in place; with several slices its files are staged.
    if let [only] = inputs
        && only.is_dir() && files.has_contents() {
            files = FileStore::folder(only, &files);
        }
    // The history threads share the spool's memory budget, so peak memory does not
    // depend on how many there are.
    let workers = history::worker_count();
    let mut histories = Vec::new();
    for i in 0..workers {
        let dir = opts.spool_dir.join(format!("history-{i}"));
        crate::storage::output::create_dirs_below(&opts.spool_dir, &dir).map_err(|e| crate::error::Error::output(&dir, e))?;
        histories.push(History::new(SpoolWriter::new(&dir, opts.spool_budget / workers), opts.skip_damaged));
    }
    let mut reader = Reader {
        history: Some(HistoryReader::start(histories)?),
        scratch: opts.spool_dir.clone(),
        files,
        users: BTreeMap::new(),
        avatars: BTreeMap::new(),
        rooms: BTreeMap::new(),
        emoticons: Vec::new(),
        autojoins: Vec::new(),
        catalog: Catalog::default(),
        stats: ReadStats::default(),
        slice: 0,
        user_slice: BTreeMap::new(),
        room_slice: BTreeMap::new(),
        slice_has_layout: false,
        slice_strangers: Vec::new(),
        slice_layout_files: BTreeSet::new(),
        slice_starts: Vec::new(),
    };
    for name in TOP_LEVEL_FILES {
        reader.stats.top_level_files.insert((*name).to_string(), false);
    }
    for (slice, input) in inputs.iter().enumerate() {
        (reader.slice, reader.slice_has_layout) = (slice, false);
        let started = reader.history()?.files_started();
        reader.slice_starts.push((started, input.display().to_string()));
        reader.slice_strangers.clear();
        reader.slice_layout_files.clear();
        let walked = archive::walk(input, &opts.open, &mut |event| reader.on_entry(event, report));
        // History parsed behind the walk comes earlier in the archive than where
        // the walk stopped, so its error is the one to report.
        reader.drain_history(report)?;
        reader.stats.input_kind = Some(walked?);
        reader.require_layout(input)?;
    }
    reader.stats.slices = inputs.len() as u64;
    reader.finish(report)
}

/// Warns when a slice's newest message is older than the slice before it: slices
/// must come oldest first, since the last one's users and rooms win and a message's
/// copy in a later slice replaces an earlier one.
fn warn_if_slices_out_of_order(starts: &[(u64, String)], files: &[HistoryFile], report: &mut Report) {
    let newest = |i: usize| {
        let from = usize::try_from(starts[i].0).unwrap_or(usize::MAX);
        let to = starts.get(i + 1).map_or(files.len(), |(n, _)| usize::try_from(*n).unwrap_or(usize::MAX));
        files.get(from..to.min(files.len())).into_iter().flatten().filter_map(|f| f.newest).max()
    };
    let mut latest: Option<(usize, Timestamp)> = None;
    for i in 0..starts.len() {
        let Some(t) = newest(i) else { continue };
        match latest {
            Some((p, pt)) if t < pt => report.warn(format!(
                "export slices look newest first: the newest message of {} ({t}) is older than that of {} ({pt}), given before it; slices must be given oldest first (the last one's users, rooms and message copies win)",
                starts[i].1, starts[p].1
            )),
            _ => latest = Some((i, t)),
        }
    }
}

/// How much of an avatar is read to find its format and size: a JPEG's size
/// comes after its metadata segments, which are at most 64 KiB each.
const IMAGE_HEADER_BYTES: u64 = 256 * 1024;

/// State of the single pass.
struct Reader {
    /// The history thread (taken when the pass is over).
    history: Option<HistoryReader>,
    scratch: PathBuf,
    files: FileStore,
    users: BTreeMap<UserId, User>,
    avatars: BTreeMap<UserId, AvatarSource>,
    rooms: BTreeMap<RoomId, Room>,
    /// Emoticons with the slice each came from.
    emoticons: Vec<(usize, records::EmoticonRecord)>,
    autojoins: Vec<records::AutoJoinTarget>,
    catalog: Catalog,
    stats: ReadStats,
    /// Index of the slice being read.
    slice: usize,
    /// Which slice each kept user and room came from.
    user_slice: BTreeMap<UserId, usize>,
    room_slice: BTreeMap<RoomId, usize>,
    /// The slice being read had an entry of the hc-migrate layout.
    slice_has_layout: bool,
    /// Its first few entries that were not, to name in the error if none was.
    slice_strangers: Vec<String>,
    /// Its top-level and history files so far: one seen twice is reported.
    slice_layout_files: BTreeSet<String>,
    /// How many history files the slices before each had, and each input's name.
    slice_starts: Vec<(u64, String)>,
}

/// What an archive path is, by the hc-migrate layout.
enum EntryRole {
    TopLevel(&'static str),
    RoomHistory(RoomId),
    UserHistory(UserId),
    File,
    Unrecognised,
}

fn role_of(path: &str) -> EntryRole {
    if let Some(name) = TOP_LEVEL_FILES.iter().find(|n| **n == path) {
        return EntryRole::TopLevel(name);
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["rooms", id, "history.json"] => id.parse().map_or(EntryRole::Unrecognised, EntryRole::RoomHistory),
        ["users", id, "history.json"] => id.parse().map_or(EntryRole::Unrecognised, EntryRole::UserHistory),
        ["rooms", _, "files", _, ..] | ["users", "files", _, ..] | ["users", _, "files", _, ..] | ["users", _, "avatars", _, ..] | ["files", _, ..] => {
            EntryRole::File
        }
        _ => EntryRole::Unrecognised,
    }
}

impl Reader {
    /// Fails a slice in which nothing had the hc-migrate layout (an empty archive,
    /// unrelated files, a layout this reader cannot find): converting it would
    /// "succeed" with an empty organization.
    fn require_layout(&self, input: &Path) -> Result<()> {
        if self.slice_has_layout {
            return Ok(());
        }
        let seen = if self.slice_strangers.is_empty() { "it has no files".to_string() } else { format!("its first files are {}", self.slice_strangers.join(", ")) };
        Err(crate::error::Error::input(
            input.display(),
            format!("not an hc-migrate export: no users.json, rooms.json, history.json or attachment, at the top or below wrapping folders; {seen}"),
        ))
    }

    fn on_entry(&mut self, event: EntryEvent, report: &mut Report) -> Result<()> {
        report.input(Entity::Entry);
        self.stats.entries += 1;
        let (path, size, reader) = match event {
            EntryEvent::Refused(r) => {
                self.drain_history(report)?;
                report.skip(Entity::Entry, r.path, r.reason, r.detail);
                return Ok(());
            }
            EntryEvent::File { path, size, reader } => (path, size, reader),
        };
        let role = role_of(&path);
        match role {
            EntryRole::Unrecognised if self.slice_strangers.len() < 3 => self.slice_strangers.push(format!("'{path}'")),
            EntryRole::Unrecognised => {}
            EntryRole::File => self.slice_has_layout = true,
            EntryRole::TopLevel(_) | EntryRole::RoomHistory(_) | EntryRole::UserHistory(_) => {
                self.slice_has_layout = true;
                if !self.slice_layout_files.insert(path.clone()) {
                    report.warn(format!("the archive holds {path} more than once; every copy is read (users, rooms and messages in several copies are kept once)"));
                }
            }
        }
        match role {
            EntryRole::TopLevel(name) => {
                self.drain_history(report)?;
                self.stats.top_level_files.insert(name.to_string(), true);
                self.read_top_level(name, &path, BufReader::with_capacity(256 * 1024, reader), report)?;
            }
            // Counted before the hand-over: damage the history thread finds later
            // moves the file from written to skipped (`Event::Damaged`).
            EntryRole::RoomHistory(rid) => {
                report.written(Entity::Entry);
                return self.read_history(&path, Origin::Room(rid), reader, report);
            }
            EntryRole::UserHistory(uid) => {
                report.written(Entity::Entry);
                return self.read_history(&path, Origin::User(uid), reader, report);
            }
            EntryRole::File => {
                self.history()?.poll(report)?;
                self.files.add(&path, reader, size)?
            }
            EntryRole::Unrecognised => {
                self.drain_history(report)?;
                report.skip(Entity::Entry, path, SkipReason::UnrecognisedEntry, "not part of the hc-migrate layout; not read");
                return Ok(());
            }
        }
        report.written(Entity::Entry);
        Ok(())
    }

    fn read_top_level(&mut self, name: &str, path: &str, reader: impl std::io::Read, report: &mut Report) -> Result<()> {
        match name {
            "users.json" => json::for_each_element(reader, path, &mut |v| {
                self.add_user(&v, report);
                Ok(())
            }),
            "rooms.json" => json::for_each_element(reader, path, &mut |v| {
                self.add_room(&v, report);
                Ok(())
            }),
            "emoticons.json" => json::for_each_element(reader, path, &mut |v| {
                match records::parse_emoticon(&v) {
                    Some(e) => {
                        // A later slice lists the same emoticons again: its entry
                        // replaces the earlier slice's (reported once as a copy).
                        let earlier = self.emoticons.iter().position(|(s, old)| *s < self.slice && old.shortcut.eq_ignore_ascii_case(&e.shortcut));
                        if let Some(i) = earlier {
                            self.emoticons.remove(i);
                            report.input(Entity::Emoticon);
                            report.skip(Entity::Emoticon, format!("({})", e.shortcut), SkipReason::Duplicate, "also in a newer slice, whose entry is kept");
                        }
                        self.emoticons.push((self.slice, e));
                    }
                    None => report.warn(format!("{path}: an emoticon without shortcut or path was ignored: {}", clip(&v.to_string()))),
                }
                Ok(())
            }),
            "autojoins.json" => json::for_each_element(reader, path, &mut |v| {
                self.autojoins.extend(records::parse_autojoin(&v));
                Ok(())
            }),
            "preferences.json" => json::for_each_element(reader, path, &mut |_| {
                self.catalog.preference_entries += 1;
                Ok(())
            }),
            _ => {
                let mut r = reader;
                let bytes = archive::read_small(&mut r, SMALL_FILE_LIMIT, path)?;
                let value = serde_json::from_slice(&bytes).map_err(|e| json::json_error(path, &e))?;
                self.catalog.metadata = Some(value);
                Ok(())
            }
        }
    }

    fn add_user(&mut self, v: &serde_json::Value, report: &mut Report) {
        report.input(Entity::User);
        let Some((user, avatar)) = records::parse_user(v) else {
            report.skip(Entity::User, clip(&v.to_string()), SkipReason::Malformed, "users.json entry without a usable id");
            return;
        };
        if !claim(&mut self.user_slice, user.id, self.slice, Entity::User, report) {
            return;
        }
        self.avatars.remove(&user.id);
        if let Some(a) = avatar {
            self.avatars.insert(user.id, a);
        }
        self.users.insert(user.id, user);
    }

    fn add_room(&mut self, v: &serde_json::Value, report: &mut Report) {
        report.input(Entity::Room);
        let Some(room) = records::parse_room(v) else {
            report.skip(Entity::Room, clip(&v.to_string()), SkipReason::Malformed, "rooms.json entry without a usable id");
            return;
        };
        if !claim(&mut self.room_slice, room.id, self.slice, Entity::Room, report) {
            return;
        }
        self.rooms.insert(room.id, room);
    }

    /// Hands a history file to the history thread, which parses and spools it
    /// while the next entries are read.
    fn read_history(&mut self, path: &str, origin: Origin, reader: impl std::io::Read, report: &mut Report) -> Result<()> {
        self.stats.history_files += 1;
        self.history()?.read_file(path, origin, reader, report)
    }

    fn history(&mut self) -> Result<&mut HistoryReader> {
        self.history.as_mut().ok_or_else(|| crate::error::Error::new(crate::error::ErrorKind::Other, "the history thread was already stopped"))
    }

    /// Applies every report event of the history files handed over so far. Called
    /// before anything whose place in the report matters, so the report reads the
    /// same as when history was parsed inline.
    fn drain_history(&mut self, report: &mut Report) -> Result<()> {
        self.history()?.drain(report)
    }

    /// After the pass: fill in what needed the whole archive, and hand out the stream.
    fn finish(mut self, report: &mut Report) -> Result<Export> {
        let history = self.history.take().expect("finished once").finish(report)?;
        self.stats.raw_kinds = history.raw_kinds;
        for (name, count) in history.unknown_fields {
            *self.stats.unknown_fields.entry(name).or_default() += count;
        }
        self.stats.first_message = history.first_message;
        self.stats.last_message = history.last_message;
        self.catalog.integrations = history.integrations;
        self.catalog.room_posters = history.room_posters;
        self.catalog.conversations = history.conversations.into_sorted();
        self.files.seal()?;
        self.add_placeholder_users(&history.sender_names, report);
        self.add_placeholder_rooms(&history.history_rooms, report);
        self.resolve_avatars(report)?;
        self.resolve_emoticons(report)?;
        self.apply_autojoins(report);
        for (rid, (_, archived)) in &history.last_archive {
            if let Some(room) = self.rooms.get_mut(rid) {
                room.is_archived |= *archived;
            }
        }
        for (rid, (_, topic)) in &history.last_topic {
            if let Some(room) = self.rooms.get_mut(rid).filter(|r| r.topic.is_empty()) {
                room.topic = topic.clone();
            }
        }
        self.catalog.room_posters.values_mut().for_each(Vec::shrink_to_fit);
        self.catalog.users = self.users;
        self.catalog.rooms = self.rooms;
        let files = Arc::new(self.files);
        warn_if_slices_out_of_order(&self.slice_starts, &history.files, report);
        let spool = history.spool.finish()?.count_positions(&history.files);
        Ok(Export { catalog: self.catalog, messages: MessageStream::new(spool, Arc::clone(&files)), files, stats: self.stats, scratch: self.scratch })
    }

    /// A deactivated placeholder for every sender or receiver users.json lacks;
    /// `sender_names` holds the first name the history gave each id.
    fn add_placeholder_users(&mut self, sender_names: &BTreeMap<UserId, (u64, String)>, report: &mut Report) {
        for (id, (_, name)) in sender_names {
            if self.users.contains_key(id) {
                continue;
            }
            self.stats.unknown_senders.insert(*id);
            report.add_extra("placeholder_users", 1);
            report.warn(format!("user {id} sent or received messages but is not in users.json; a deactivated placeholder user stands in"));
            self.users.insert(*id, placeholder_user(*id, name));
        }
    }

    /// A private placeholder for every room with history that rooms.json lacks.
    fn add_placeholder_rooms(&mut self, history_rooms: &BTreeSet<RoomId>, report: &mut Report) {
        for rid in history_rooms.iter().copied() {
            if self.rooms.contains_key(&rid) {
                continue;
            }
            self.stats.unknown_rooms.insert(rid);
            report.add_extra("placeholder_rooms", 1);
            report.warn(format!("room {rid} has history but is not in rooms.json; a private placeholder room stands in"));
            self.rooms.insert(rid, Room::placeholder(rid));
        }
    }

    fn resolve_avatars(&mut self, report: &mut Report) -> Result<()> {
        let ids: Vec<UserId> = self.users.keys().copied().collect();
        for uid in ids {
            let source = self.avatars.remove(&uid);
            let found = match source {
                Some(AvatarSource::Path(p)) => {
                    report.input(Entity::Avatar);
                    let hit = match self.files.find(&records::avatar_candidates(uid, &p))? {
                        Some(hit) => Some(hit),
                        None => self.largest_avatar(uid)?,
                    };
                    if hit.is_none() {
                        report.skip(Entity::Avatar, uid.to_string(), SkipReason::MissingFile, format!("avatar {p} is not in the export"));
                    }
                    hit
                }
                Some(AvatarSource::Inline(bytes)) => {
                    report.input(Entity::Avatar);
                    let path = format!("users/{uid}/avatars/inline-avatar.{}", records::image_extension(&bytes));
                    self.files.add_bytes(&path, &bytes)?;
                    self.files.get(&path)?
                }
                Some(AvatarSource::Invalid(why)) => {
                    report.input(Entity::Avatar);
                    report.skip(Entity::Avatar, uid.to_string(), SkipReason::Invalid, why);
                    None
                }
                None => {
                    let hit = self.largest_avatar(uid)?;
                    if hit.is_some() {
                        report.input(Entity::Avatar);
                    }
                    hit
                }
            };
            let found = match found {
                Some(file) if !self.is_usable_image(&file)? => {
                    let why = format!("{} is not a PNG, JPEG or GIF image with a size (Mattermost's import stops at a profile image it cannot decode)", file.path);
                    report.skip(Entity::Avatar, uid.to_string(), SkipReason::Invalid, why);
                    None
                }
                other => other,
            };
            if let Some(user) = self.users.get_mut(&uid) {
                user.avatar = found;
            }
        }
        Ok(())
    }

    /// Whether `file`'s header is a PNG, JPEG or GIF with a width and height: the
    /// formats every target decodes (Mattermost checks each profile image's size and
    /// fails the whole import on one it cannot read). Only the header is read, as the
    /// importers' own checks do. True when the bytes are not kept (`inspect`).
    fn is_usable_image(&self, file: &crate::model::FileRef) -> Result<bool> {
        use std::io::Read as _;
        let Some(path) = self.files.disk_path(file) else { return Ok(true) };
        let mut head = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(IMAGE_HEADER_BYTES).read_to_end(&mut head))
            .map_err(|e| crate::error::Error::input(&file.path, format!("cannot read the avatar: {e}")))?;
        let known = matches!(imagesize::image_type(&head), Ok(imagesize::ImageType::Png | imagesize::ImageType::Jpeg | imagesize::ImageType::Gif));
        Ok(known && imagesize::blob_size(&head).is_ok_and(|s| s.width > 0 && s.height > 0))
    }

    /// The biggest image under `users/<id>/avatars/` (the unsuffixed original, normally).
    fn largest_avatar(&self, uid: UserId) -> Result<Option<crate::model::FileRef>> {
        let prefix = format!("users/{uid}/avatars/");
        Ok(self.files.under(&prefix)?.into_iter().max_by(|a, b| a.size.cmp(&b.size).then_with(|| b.path.cmp(&a.path))))
    }

    fn resolve_emoticons(&mut self, report: &mut Report) -> Result<()> {
        for (_, rec) in std::mem::take(&mut self.emoticons) {
            report.input(Entity::Emoticon);
            let Some(base) = self.files.find(&records::emoticon_candidates(&rec.path))? else {
                report.skip(Entity::Emoticon, format!("({})", rec.shortcut), SkipReason::MissingFile, format!("image {} is not in the export", rec.path));
                continue;
            };
            let (dir, file) = base.path.rsplit_once('/').unwrap_or(("", &base.path));
            let (stem, _) = records::emoticon_scale(file);
            let mut images: Vec<(u32, crate::model::FileRef)> = self
                .files
                .under(&format!("{dir}/"))?
                .into_iter()
                .filter(|f| !f.path[dir.len() + 1..].contains('/'))
                .filter_map(|f| {
                    let (s, scale) = records::emoticon_scale(f.file_name());
                    (s == stem).then_some((scale, f))
                })
                .collect();
            images.sort();
            self.catalog.emoticons.push(Emoticon {
                id: rec.id,
                shortcut: rec.shortcut,
                user_id: rec.user_id,
                width: rec.width,
                height: rec.height,
                declared_path: rec.path,
                images: images.into_iter().map(|(_, f)| f).collect(),
            });
        }
        Ok(())
    }

    fn apply_autojoins(&mut self, report: &mut Report) {
        for target in std::mem::take(&mut self.autojoins) {
            let Some(jid_name) = records::room_jid_name(&target.jid) else { continue };
            let room = self
                .rooms
                .values_mut()
                .find(|r| !r.canonical_name.is_empty() && r.canonical_name.eq_ignore_ascii_case(jid_name))
                .map(|r| r.id)
                .or_else(|| self.rooms.values().find(|r| r.name == target.name).map(|r| r.id));
            match room.and_then(|id| self.rooms.get_mut(&id)) {
                Some(r) => {
                    if !r.autojoined_by.contains(&target.user_id) {
                        r.autojoined_by.push(target.user_id);
                        r.autojoined_by.sort_unstable();
                    }
                }
                None => report.warn(format!("autojoins.json: user {} auto-joins {} ({}), which is not in rooms.json", target.user_id, target.jid, target.name)),
            }
        }
    }
}

/// Decides whether a users.json / rooms.json entry read from `slice` replaces an
/// earlier one with the same id: within one slice the first entry wins, across
/// slices the later (newer) slice wins. The losing entry is reported as a duplicate.
fn claim(owners: &mut BTreeMap<u64, usize>, id: u64, slice: usize, entity: Entity, report: &mut Report) -> bool {
    let file = if entity == Entity::User { "users.json" } else { "rooms.json" };
    match owners.get(&id) {
        Some(s) if *s == slice => {
            report.skip(entity, id.to_string(), SkipReason::Duplicate, format!("{file} lists this id twice; the first entry is kept"));
            return false;
        }
        Some(_) => report.skip(entity, id.to_string(), SkipReason::Duplicate, "also in a newer slice, whose entry is kept"),
        None => {}
    }
    owners.insert(id, slice);
    true
}

fn placeholder_user(id: UserId, name: &str) -> User {
    let name = if name.trim().is_empty() { format!("Unknown user {id}") } else { name.to_string() };
    User { is_deleted: true, is_placeholder: true, ..User::regular(id, &name, "", None) }
}

/// Shortens a value for a report line.
fn clip(s: &str) -> String {
    if s.chars().count() <= 120 { s.to_string() } else { format!("{}…", s.chars().take(120).collect::<String>()) }
}
