//! The neutral model: what a Hipchat export holds, in a shape no target dictates.
//!
//! The reader ([`crate::hipchat`]) fills it; every writer consumes it. It carries no
//! field that exists only for one target, so a new writer never needs a reader change.
//! Messages never sit here as one big collection: they flow one at a time through
//! [`crate::hipchat::MessageStream`] in conversation and time order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A Hipchat user id (users.json `id`).
pub type UserId = u64;
/// A Hipchat room id (rooms.json `id`, and the `rooms/<id>/` folder name).
pub type RoomId = u64;

/// An instant in UTC with the microseconds Hipchat records.
///
/// Microseconds matter: they are the only thing that orders messages sent within
/// one second, and targets with millisecond clocks need them to break ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded down (Mattermost's `create_at`).
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Seconds since the Unix epoch as a float, microseconds kept (Zulip's `date_sent`).
    pub fn seconds_f64(self) -> f64 {
        self.0.div_euclid(1_000_000) as f64 + self.0.rem_euclid(1_000_000) as f64 / 1e6
    }

    /// The chrono value, for formatting.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2018-04-02T14:54:04.777248Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A file that is present in the export, named by its normalised path inside it.
///
/// Writers get the bytes through [`crate::storage::files::FileStore`]; the path is also a
/// stable, deterministic key for naming the copy in the output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileRef {
    /// Path inside the export, `/`-separated, relative to the export root.
    pub path: String,
    /// Size in bytes as stored in the archive (more trustworthy than JSON `size`).
    pub size: u64,
}

impl FileRef {
    /// The last path component, the name a person would recognise.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Hipchat's `account_type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AccountType {
    /// A system administrator.
    Admin,
    /// A regular user.
    #[default]
    User,
    /// A guest (invited through a room's guest-access URL).
    Guest,
    /// A value the document does not list, kept verbatim.
    Other(String),
}

/// A person from users.json, or a placeholder for a sender users.json lacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Hipchat user id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// `@mention_name`, without the `@`; may be empty.
    pub mention_name: String,
    /// E-mail address; `None` for guests and some deactivated users.
    pub email: Option<String>,
    /// Job title.
    pub title: String,
    /// Avatar image, largest found, when the export has one.
    pub avatar: Option<FileRef>,
    /// When the account was created.
    pub created: Option<Timestamp>,
    /// Deleted (deactivated) in Hipchat; their messages still belong to the history.
    pub is_deleted: bool,
    /// IANA timezone name, as Hipchat stored it.
    pub timezone: Option<String>,
    /// Account type.
    pub account_type: AccountType,
    /// Roles: always `user`, maybe `owner`, `admin`, `moderator`.
    pub roles: Vec<String>,
    /// True when this user is not in users.json and was made up for a sender id.
    pub is_placeholder: bool,
    /// A username the operator chose (`--user-map`); writers use it, made valid for
    /// the target, instead of deriving one from `mention_name`.
    pub username: Option<String>,
}

impl User {
    /// An active regular user with nothing else known: the base of the reader's
    /// placeholders, and of users made in tests.
    pub fn regular(id: UserId, name: &str, mention_name: &str, email: Option<&str>) -> User {
        User {
            id,
            name: name.to_string(),
            mention_name: mention_name.to_string(),
            email: email.map(str::to_string),
            title: String::new(),
            avatar: None,
            created: None,
            is_deleted: false,
            timezone: None,
            account_type: AccountType::User,
            roles: vec!["user".into()],
            is_placeholder: false,
            username: None,
        }
    }

    /// Owner of the Hipchat instance (the `owner` role).
    pub fn is_owner(&self) -> bool {
        self.roles.iter().any(|r| r == "owner")
    }

    /// System administrator (account type `admin`, or the `admin`/`owner` role).
    pub fn is_admin(&self) -> bool {
        self.account_type == AccountType::Admin
            || self.roles.iter().any(|r| r == "admin" || r == "owner")
    }

    /// Guest account.
    pub fn is_guest(&self) -> bool {
        self.account_type == AccountType::Guest
    }
}

/// Room visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Privacy {
    /// Anyone in the organisation can join.
    #[default]
    Public,
    /// Members only.
    Private,
}

/// A room from rooms.json (or a placeholder for a history folder rooms.json lacks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    /// Hipchat room id.
    pub id: RoomId,
    /// Display name.
    pub name: String,
    /// The JID local part; may be empty.
    pub canonical_name: String,
    /// When the room was created.
    pub created: Option<Timestamp>,
    /// Creator.
    pub owner: Option<UserId>,
    /// Public or private.
    pub privacy: Privacy,
    /// Archived: the rooms.json flag, or the last ArchiveRoomMessage if later.
    pub is_archived: bool,
    /// Deleted in Hipchat.
    pub is_deleted: bool,
    /// Current topic (rooms.json; see the TopicRoomMessage history for changes).
    pub topic: String,
    /// Guest-access URL; `None` when guest access is off.
    pub guest_access_url: Option<String>,
    /// Members (private rooms; public rooms usually export none).
    pub members: Vec<UserId>,
    /// Legacy participants list.
    pub participants: Vec<UserId>,
    /// Room administrators.
    pub admins: Vec<UserId>,
    /// Users whose autojoins.json entry names this room (public-room membership).
    pub autojoined_by: Vec<UserId>,
    /// True when rooms.json lacks this room and it was made up for its history.
    pub is_placeholder: bool,
}

impl Room {
    /// A private stand-in for a room whose history exists but which rooms.json lacks,
    /// so its messages still have somewhere to go.
    pub fn placeholder(id: RoomId) -> Room {
        Room {
            id,
            name: format!("Hipchat room {id}"),
            canonical_name: String::new(),
            created: None,
            owner: None,
            privacy: Privacy::Private,
            is_archived: false,
            is_deleted: false,
            topic: String::new(),
            guest_access_url: None,
            members: Vec::new(),
            participants: Vec::new(),
            admins: Vec::new(),
            autojoined_by: Vec::new(),
            is_placeholder: true,
        }
    }
}

/// A custom emoticon with every image size the export holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Emoticon {
    /// Hipchat emoticon id.
    pub id: u64,
    /// What people type between parentheses, e.g. `hcdc` for `(hcdc)`.
    pub shortcut: String,
    /// Uploader.
    pub user_id: Option<UserId>,
    /// Declared width and height of the standard image.
    pub width: Option<u32>,
    /// Declared height.
    pub height: Option<u32>,
    /// The path as emoticons.json gives it.
    pub declared_path: String,
    /// Images found, smallest scale first (`x.jpg`, `x@2x.jpg`, `x@3x.jpg`, `x@4x.jpg`).
    pub images: Vec<FileRef>,
}

/// Where a message was posted: a room, or a one-to-one conversation.
///
/// The derived order (rooms by id, then conversations by user pair) is the order
/// in which [`crate::hipchat::MessageStream`] yields messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Conversation {
    /// A room's history.
    Room(RoomId),
    /// A private conversation between two users, `low <= high`; equal for a self-chat.
    Direct {
        /// The smaller user id.
        low: UserId,
        /// The larger user id.
        high: UserId,
    },
}

impl Conversation {
    /// The direct conversation between `a` and `b`, in canonical order.
    pub fn direct(a: UserId, b: UserId) -> Self {
        Conversation::Direct { low: a.min(b), high: a.max(b) }
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conversation::Room(id) => write!(f, "room {id}"),
            Conversation::Direct { low, high } => write!(f, "private {low}-{high}"),
        }
    }
}

/// Who sent a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sender {
    /// User id; `None` for integrations (id 0, a bare name, or no id at all).
    pub id: Option<UserId>,
    /// Display name as the message gives it (the integration's name for add-ons).
    pub name: String,
}

/// A file attached to a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name to show.
    pub name: String,
    /// Path as the JSON gives it (`attachment.path` or `attachment_path`).
    pub declared_path: String,
    /// Declared size (not always trustworthy).
    pub declared_size: Option<u64>,
    /// Thumbnail path as the JSON gives it.
    pub declared_thumbnail: Option<String>,
    /// The file in the export, if it could be found.
    pub file: Option<FileRef>,
    /// The thumbnail in the export, if any was declared and found.
    pub thumbnail: Option<FileRef>,
    /// Left out of the conversion on purpose (`--no-files`), so `file` is `None`
    /// though the export may hold it. Set after reading; never stored in the spool.
    #[serde(default)]
    pub left_out: bool,
}

/// Present when a message was deleted in Hipchat (its text is then empty).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    /// Who deleted it.
    pub user_id: Option<UserId>,
    /// When.
    pub date: Option<Timestamp>,
}

/// What the targets show of a notification's card (a JSON object, stored by
/// Hipchat as a string): its `title`, `url` and `description`, each when the
/// card holds it as a string (NUL characters dropped, as everywhere). The other
/// members (style, icon, attributes, activity…) are written by no target, so they
/// are not kept: the card used to travel as a whole `Value`, parsed once when read
/// and twice more through the spool, a tenth of a run on an export full of
/// integrations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The card's `title`.
    pub title: Option<String>,
    /// The card's `url`.
    pub url: Option<String>,
    /// The card's `description`.
    pub description: Option<String>,
}

/// What kind of message this is, with the fields only that kind has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MessageKind {
    /// UserMessage: a person writing in a room.
    User,
    /// NotificationMessage: an integration card; `format` is `html` or `text`.
    Notification {
        /// `html` or `text`: how to read the message body.
        format: String,
        /// Card colour.
        color: String,
        /// What hcconv shows of the card, if the message has one.
        card: Option<Card>,
    },
    /// TopicRoomMessage: the room topic changed.
    Topic {
        /// The new topic.
        topic: String,
    },
    /// ArchiveRoomMessage: the room was archived or unarchived.
    Archive {
        /// New state.
        is_archived: bool,
    },
    /// GuestAccessMessage: guest access turned on or off.
    GuestAccess {
        /// New state.
        enabled: bool,
        /// The guest URL.
        url: String,
    },
    /// PrivateUserMessage: a one-to-one message.
    Private {
        /// The recipient.
        receiver: UserId,
    },
    /// A wrapper key the format does not document; kept so writers can decide.
    Unknown {
        /// The wrapper key, e.g. `PollMessage`.
        wrapper: String,
    },
}

impl MessageKind {
    /// Stable short name used in reports and counts.
    pub fn name(&self) -> &str {
        match self {
            MessageKind::User => "UserMessage",
            MessageKind::Notification { .. } => "NotificationMessage",
            MessageKind::Topic { .. } => "TopicRoomMessage",
            MessageKind::Archive { .. } => "ArchiveRoomMessage",
            MessageKind::GuestAccess { .. } => "GuestAccessMessage",
            MessageKind::Private { .. } => "PrivateUserMessage",
            MessageKind::Unknown { wrapper } => wrapper,
        }
    }
}

/// One message, in the order the stream yields them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Where it was posted.
    pub conversation: Conversation,
    /// Hipchat message id; `"0"` (integrations) is not unique.
    pub id: String,
    /// When it was sent.
    pub time: Timestamp,
    /// Order of appearance in the export; breaks timestamp ties deterministically.
    pub seq: u64,
    /// Who sent it.
    pub sender: Sender,
    /// Body exactly as exported (HTML for html notifications).
    pub text: String,
    /// Kind and kind-specific fields.
    pub kind: MessageKind,
    /// Attached file, if any.
    pub attachment: Option<Attachment>,
    /// User ids named in the legacy `mentions` list.
    pub mentions: Vec<UserId>,
    /// Set when Hipchat shows the message as deleted.
    pub deleted: Option<Deletion>,
    /// The `metadata` value (link previews and the like), verbatim.
    pub metadata: Option<serde_json::Value>,
    /// Archive entry the message came from, for reports. Empty for messages read
    /// from history files: the spool knows their file from their position
    /// ([`crate::storage::spool::SortedSpool::source_of`]) and does not store it per message.
    pub source: String,
}

/// Everything in an export except the messages: small enough to hold in memory,
/// because it grows with users, rooms and files, never with messages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalog {
    /// Users from users.json plus placeholders for unknown senders.
    pub users: BTreeMap<UserId, User>,
    /// Rooms from rooms.json plus placeholders for history without a room.
    pub rooms: BTreeMap<RoomId, Room>,
    /// Custom emoticons.
    pub emoticons: Vec<Emoticon>,
    /// Per room, the users who sent at least one message there, sorted, each once
    /// (a sorted list, not a set: an export has a room per thousand messages or so,
    /// and a set's tree nodes cost about three times the ids they hold).
    pub room_posters: BTreeMap<RoomId, Vec<UserId>>,
    /// Every private conversation that has at least one message, ascending, each
    /// once (a sorted list, not a set: an export can have hundreds of thousands, and
    /// a set's tree nodes cost twice the conversations they hold).
    pub conversations: Vec<Conversation>,
    /// Names of integrations (senders with no user) seen in notifications and messages.
    pub integrations: BTreeSet<String>,
    /// Number of entries in preferences.json (read, not converted).
    pub preference_entries: u64,
    /// metadata.json verbatim, when present.
    pub metadata: Option<serde_json::Value>,
}
