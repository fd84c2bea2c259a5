//! Release-specific facts of the Zulip data-import format, kept in one place.
//!
//! The Zulip importer builds database rows with `Model(**row)`: a key the model does
//! not have crashes the import, a key it indexes directly (`row["date_sent"]`) must be
//! present. So every table's key set depends on the server release. Everything that
//! would change with a newer release lives here: table names, the exact key set and
//! model defaults of each row, limits and flag bits. A later profile (say Zulip 4.x)
//! is a second [`FormatProfile`] value; the writer code does not change.
//!
//! Source of the 3.4 facts (tag 3.4, commit 974b95b): `zerver/models.py` (fields,
//! defaults, limits, `UserMessage.ALL_FLAGS` order), `zerver/lib/import_realm.py`
//! (tables read unconditionally, keys deleted or renamed on import, DATE_FIELDS use),
//! `zerver/lib/export.py` (`DATE_FIELDS`), `zerver/data_import/import_util.py`
//! (converter conventions: clients, `authentication_methods` as pairs).

use clap::ValueEnum;
use serde_json::{json, Map, Value};

/// The import formats `--pixtoome-format` accepts.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormatVersion {
    /// Zulip 3.4 (the release Pixtoome's documented commands match).
    #[value(name = "3.4")]
    Zulip3_4,
    /// Zulip 9.x (written from and checked in Zulip's main branch of 2024-05-21,
    /// 9.0-dev).
    #[value(name = "9.0", alias = "9.x", alias = "9")]
    Zulip9_0,
    /// Zulip 10.x (written from Zulip 10.0's own tree, checked in its importer).
    #[value(name = "10.x", alias = "10.0", alias = "10")]
    Zulip10,
    /// Zulip 11.x (written from Zulip's main branch just after 11.0; not run).
    #[value(name = "11.x", alias = "11.0", alias = "11")]
    Zulip11,
    /// Zulip 12.x, the current release line (written from Zulip's main branch of
    /// the 12.0 beta; not run): the default, since a Hipchat archive is mostly
    /// imported into a server installed now.
    #[default]
    #[value(name = "12.x", alias = "12.0", alias = "12")]
    Zulip12,
}

/// A table's keys: the ones every row carries, and those left out on purpose so
/// the server fills them (random secrets, values rendered on import).
#[derive(Debug)]
pub struct TableKeys {
    /// Table name as in the export files.
    pub table: &'static str,
    /// Keys every row of this table carries, no more, no fewer.
    pub keys: &'static [&'static str],
    /// Model fields deliberately not written (the server computes them).
    pub server_filled: &'static [&'static str],
    /// Keys of `keys` this table's rows must not carry (a table that shares another's
    /// key set but is read differently).
    pub without: &'static [&'static str],
}

/// How a release's rows of one table differ from the 3.4 rows the writer builds:
/// keys it no longer has, keys it renamed, keys it added (or whose 3.4 value it
/// no longer accepts) with their value as JSON text.
#[derive(Debug)]
pub struct TableChanges {
    /// Table name.
    pub table: &'static str,
    /// Keys the release's model does not have (a `Model(**row)` crash).
    pub drop: &'static [&'static str],
    /// `(3.4 name, new name)`.
    pub rename: &'static [(&'static str, &'static str)],
    /// `(key, JSON value)`: added, or set over the 3.4 value.
    pub set: &'static [(&'static str, &'static str)],
}

/// Everything release-specific about the format.
#[derive(Debug)]
pub struct FormatProfile {
    /// Shown in reports and docs, e.g. `3.4`.
    pub name: &'static str,
    /// Every table the importer reads from realm.json without checking it exists,
    /// as 3.4 has them ...
    pub realm_tables: &'static [&'static str],
    /// ... and those this release reads too.
    pub more_realm_tables: &'static [&'static str],
    /// Key sets per table (realm tables, message files, attachment.json), as 3.4
    /// has them.
    pub tables: &'static [TableKeys],
    /// Tables this release has that 3.4 has not.
    pub new_tables: &'static [TableKeys],
    /// The release whose rows this one's changes apply to (none: 3.4's rows).
    pub base: Option<&'static FormatProfile>,
    /// How this release's rows differ from its base's.
    pub changes: &'static [TableChanges],
    /// `Stream.MAX_NAME_LENGTH` (a `varchar`, counted in characters).
    pub max_stream_name: usize,
    /// `Stream.MAX_DESCRIPTION_LENGTH`.
    pub max_stream_description: usize,
    /// `MAX_TOPIC_NAME_LENGTH`.
    pub max_topic: usize,
    /// `MAX_MESSAGE_LENGTH` (characters).
    pub max_message: usize,
    /// `UserProfile.MAX_NAME_LENGTH`.
    pub max_full_name: usize,
    /// `UserProfile.timezone` max_length.
    pub max_timezone: usize,
    /// `UserMessage` flag bits.
    pub flags: Flags,
    /// `UserProfile` role values.
    pub roles: Roles,
    /// `UserProfile.INCOMING_WEBHOOK_BOT`.
    pub incoming_webhook_bot: u8,
    /// `Recipient` type values.
    pub recipient_types: RecipientTypes,
    /// `RealmEmoji.PATH_ID_TEMPLATE` without the placeholders: `<realm>/emoji/images/`.
    pub emoji_dir: &'static str,
    /// Colours the server assigns to subscriptions (`STREAM_ASSIGNMENT_COLORS`).
    pub stream_colors: &'static [&'static str],
    /// `Realm.AUTHENTICATION_FLAGS`, in bit order.
    pub authentication_flags: &'static [&'static str],
    /// Whether hcconv writes `rendered_content` (see [`super::html`]): the release's
    /// importer renders without a message, so mentions would not link.
    pub writes_html: bool,
    /// Whether the realm's login methods are a `zerver_realmauthenticationmethod`
    /// table (one row a name) instead of the realm row's `[name, enabled]` pairs.
    pub authentication_table: bool,
    /// Whether the server's Markdown finds deactivated users too and shows their
    /// mention silent (9.x: `MentionBackend` keeps inactive users, and
    /// `UserMentionPattern` silences them); 3.4 finds only active users, so their
    /// mention can only be plain text.
    pub links_inactive_mentions: bool,
    /// The `zulip_version` of `migration_status.json`, which Zulip 10 and later
    /// require and compare by major release (the part before the first `.`) with
    /// their own; its app list stays empty, which they take with a warning per
    /// app, since a list must equal the server's exact migrations. 9.x ignores the
    /// file, but a 10+ server then refuses the folder with Zulip's own clear
    /// "different Zulip major version" instead of "Missing migration_status.json".
    /// `None`: no file (3.4).
    pub zulip_version: Option<&'static str>,
    /// realm.json's top-level `import_source` (11.x pops it; anything but `zulip`
    /// is a third-party import).
    pub import_source: Option<&'static str>,
    /// The topic of a direct message (`Message.DM_TOPIC`: `\u{7}` from 11.x on).
    pub dm_topic: &'static str,
    /// Whether an archived stream keeps its name, privacy and subscriptions, as
    /// Zulip 10.0 and later archive a channel (`do_deactivate_stream`; archived
    /// channels stay readable by their subscribers). Before, Zulip renamed it
    /// `!DEACTIVATED:…`, made it invite-only and ended its subscriptions.
    pub archives_in_place: bool,
    /// Whether an upload's `path_id` ends with Zulip's `sanitize_name` of its file
    /// name (12.x asserts it; 10.x and 11.x rename uploads to it on import anyway)
    /// instead of hcconv's ASCII-only safe name.
    pub sanitized_upload_names: bool,
}

/// `UserMessage.flags` bits, from the order of `ALL_FLAGS`.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// `read`.
    pub read: u32,
    /// `mentioned`.
    pub mentioned: u32,
    /// `wildcard_mentioned` (`@**all**`).
    pub wildcard_mentioned: u32,
    /// `is_private`.
    pub is_private: u32,
}

/// `UserProfile.role` values.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Organization owner.
    pub owner: u16,
    /// Organization administrator.
    pub admin: u16,
    /// Member.
    pub member: u16,
    /// Guest.
    pub guest: u16,
}

/// `Recipient.type` values.
#[derive(Debug, Clone, Copy)]
pub struct RecipientTypes {
    /// One user (private messages go to the receiver's personal recipient).
    pub personal: u8,
    /// A stream.
    pub stream: u8,
}

/// Picks the profile for a `--pixtoome-format` value.
pub fn profile(version: FormatVersion) -> &'static FormatProfile {
    match version {
        FormatVersion::Zulip3_4 => &ZULIP_3_4,
        FormatVersion::Zulip9_0 => &ZULIP_9_0,
        FormatVersion::Zulip10 => &ZULIP_10,
        FormatVersion::Zulip11 => &ZULIP_11,
        FormatVersion::Zulip12 => &ZULIP_12,
    }
}

impl FormatProfile {
    /// Every table realm.json must hold.
    pub fn all_realm_tables(&self) -> impl Iterator<Item = &'static str> {
        self.realm_tables.iter().chain(self.more_realm_tables).copied()
    }

    /// The key set of `table` as 3.4 has it, or as this release added it.
    pub fn keys(&self, table: &str) -> Option<&'static TableKeys> {
        self.tables.iter().chain(self.new_tables).find(|t| t.table == table)
    }

    /// The changes of `table` from 3.4's rows to this release's, oldest release first.
    fn changes_of(&self, table: &str) -> Vec<&'static TableChanges> {
        let mut chain = Vec::new();
        let mut profile = Some(self);
        while let Some(p) = profile {
            chain.extend(p.changes.iter().filter(|c| c.table == table));
            profile = p.base;
        }
        chain.reverse();
        chain
    }

    /// The keys every row of `table` carries in this release.
    pub fn expected_keys(&self, table: &str) -> Option<Vec<&'static str>> {
        let spec = self.keys(table)?;
        let mut keys: Vec<&'static str> = spec.keys.iter().copied().filter(|k| !spec.without.contains(k)).collect();
        for c in self.changes_of(table) {
            keys.retain(|k| !c.drop.contains(k));
            for k in keys.iter_mut() {
                if let Some((_, new)) = c.rename.iter().find(|(old, _)| old == k) {
                    *k = new;
                }
            }
            for (k, _) in c.set {
                if !keys.contains(k) {
                    keys.push(k);
                }
            }
        }
        Some(keys)
    }

    /// Whether rows of `table` carry `key` in this release.
    pub fn has_key(&self, table: &str, key: &str) -> bool {
        self.expected_keys(table).is_some_and(|keys| keys.contains(&key))
    }

    /// `row`, built as 3.4 has it, changed into this release's row of `table`.
    pub fn fit(&self, table: &str, mut row: Map<String, Value>) -> Map<String, Value> {
        for c in self.changes_of(table) {
            for k in c.drop {
                row.remove(*k);
            }
            for (old, new) in c.rename {
                if let Some(v) = row.remove(*old) {
                    row.insert((*new).to_string(), v);
                }
            }
            for (k, json) in c.set {
                row.insert((*k).to_string(), serde_json::from_str(json).unwrap_or(Value::Null));
            }
        }
        row
    }

    /// Checks that `row` has exactly the keys this release's `table` has, so a
    /// writer bug shows as an error here instead of a crash in the middle of an import.
    pub fn check_row(&self, table: &str, row: &Map<String, Value>) -> Result<(), String> {
        let Some(keys) = self.expected_keys(table) else {
            return Err(format!("table {table} is not in the Zulip {} profile", self.name));
        };
        let missing: Vec<&str> = keys.iter().copied().filter(|k| !row.contains_key(*k)).collect();
        let unknown: Vec<&str> = row.keys().map(String::as_str).filter(|k| !keys.contains(k)).collect();
        if missing.is_empty() && unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("{table} row does not fit Zulip {}: missing {missing:?}, unknown {unknown:?}", self.name))
        }
    }

    /// The realm row at 3.4's model defaults, with the values a converter sets (the
    /// row builders give 3.4's rows; [`FormatProfile::fit`] makes them the release's,
    /// once, where they are checked). The importer replaces `name` and `string_id`
    /// by the subdomain it is given.
    pub fn realm_row(&self, id: u64, description: &str, date_created: f64) -> Map<String, Value> {
        let methods: Vec<Value> = self.authentication_flags.iter().map(|f| json!([f, true])).collect();
        merge(&[json!({ "id": id, "name": "", "description": description, "string_id": "", "date_created": date_created, "deactivated": false, "emails_restricted_to_domains": false, "invite_required": true, "invite_by_admins_only": false, "_max_invites": null, "disallow_disposable_email_addresses": true, "authentication_methods": methods, "inline_image_preview": true, "inline_url_embed_preview": false, "digest_emails_enabled": false, "digest_weekday": 1, "send_welcome_emails": true, "message_content_allowed_in_email_notifications": true, "mandatory_topics": false, "add_emoji_by_admins_only": false }),
            json!({ "name_changes_disabled": false, "email_changes_disabled": false, "avatar_changes_disabled": false, "create_stream_policy": 1, "invite_to_stream_policy": 1, "user_group_edit_policy": 1, "private_message_policy": 1, "email_address_visibility": 1, "waiting_period_threshold": 0, "allow_message_deleting": false, "message_content_delete_limit_seconds": 600, "allow_message_editing": true, "message_content_edit_limit_seconds": 600, "allow_edit_history": true, "allow_community_topic_editing": true, "default_twenty_four_hour_time": false, "default_language": "en", "notifications_stream": null, "signup_notifications_stream": null, "message_retention_days": -1 }),
            json!({ "message_visibility_limit": null, "first_visible_message_id": 0, "org_type": 1, "plan_type": 1, "bot_creation_policy": 1, "upload_quota_gb": null, "video_chat_provider": 1, "default_code_block_language": null, "icon_source": "G", "icon_version": 1, "logo_source": "D", "logo_version": 1, "night_logo_source": "D", "night_logo_version": 1 })])
    }

    /// A user row at the model's defaults; the caller sets identity, role and state.
    pub fn user_row_defaults(&self) -> Map<String, Value> {
        merge(&[json!({ "id": 0, "password": null, "last_login": null, "is_superuser": false, "delivery_email": "", "email": "", "realm": 0, "recipient": null, "full_name": "", "date_joined": 0.0, "tos_version": null, "api_key": "", "is_staff": false, "is_active": true, "is_billing_admin": false, "is_bot": false, "bot_type": null, "bot_owner": null, "role": self.roles.member, "long_term_idle": false }),
            json!({ "last_active_message_id": null, "is_mirror_dummy": false, "is_api_super_user": false, "enable_stream_desktop_notifications": false, "enable_stream_email_notifications": false, "enable_stream_push_notifications": false, "enable_stream_audible_notifications": false, "notification_sound": "zulip", "wildcard_mentions_notify": true, "enable_desktop_notifications": true, "pm_content_in_desktop_notifications": true, "enable_sounds": true, "enable_offline_email_notifications": true, "message_content_in_email_notifications": true, "enable_offline_push_notifications": true, "enable_online_push_notifications": true, "desktop_icon_count_display": 1, "enable_digest_emails": true, "enable_login_emails": true, "realm_name_in_notifications": false }),
            json!({ "presence_enabled": true, "last_reminder": null, "rate_limits": "", "default_sending_stream": null, "default_events_register_stream": null, "default_all_public_streams": false, "enter_sends": false, "left_side_userlist": false, "default_language": "en", "dense_mode": true, "fluid_layout_width": false, "high_contrast_mode": false, "translate_emoticons": false, "twenty_four_hour_time": false, "starred_message_counts": false, "color_scheme": 1, "demote_inactive_streams": 1, "timezone": "", "emojiset": "google-blob", "avatar_source": "G" }),
            json!({ "avatar_version": 1, "avatar_hash": null, "tutorial_status": "W", "onboarding_steps": "[]", "zoom_token": null, "groups": [], "user_permissions": [] })])
    }

    /// A stream row at the model's defaults (without the server-filled keys).
    pub fn stream_row_defaults(&self) -> Map<String, Value> {
        let row = json!({
            "id": 0, "name": "", "realm": 0, "date_created": 0.0, "deactivated": false, "description": "",
            "recipient": null, "invite_only": false, "history_public_to_subscribers": true, "is_web_public": false,
            "stream_post_policy": 1, "is_in_zephyr_realm": false, "message_retention_days": null,
            "first_message_id": null
        });
        into_map(row)
    }

    /// A subscription row at the model's defaults.
    pub fn subscription_row(&self, id: u64, user: u64, recipient: u64, color: &str, active: bool) -> Map<String, Value> {
        let row = json!({
            "id": id, "user_profile": user, "recipient": recipient, "active": active, "is_muted": false,
            "color": color, "pin_to_top": false, "desktop_notifications": null, "audible_notifications": null,
            "push_notifications": null, "email_notifications": null, "wildcard_mentions_notify": null
        });
        into_map(row)
    }
}

/// One object from several `json!` pieces (one literal would exceed the macro's
/// recursion limit).
fn merge(pieces: &[Value]) -> Map<String, Value> {
    let mut out = Map::new();
    for piece in pieces {
        out.extend(into_map(piece.clone()));
    }
    out
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const USER_KEYS: &[&str] = &[
    "id", "password", "last_login", "is_superuser", "delivery_email", "email", "realm", "recipient", "full_name",
    "date_joined", "tos_version", "api_key", "is_staff", "is_active", "is_billing_admin", "is_bot", "bot_type",
    "bot_owner", "role", "long_term_idle", "last_active_message_id", "is_mirror_dummy", "is_api_super_user",
    "enable_stream_desktop_notifications", "enable_stream_email_notifications", "enable_stream_push_notifications",
    "enable_stream_audible_notifications", "notification_sound", "wildcard_mentions_notify",
    "enable_desktop_notifications", "pm_content_in_desktop_notifications", "enable_sounds",
    "enable_offline_email_notifications", "message_content_in_email_notifications",
    "enable_offline_push_notifications", "enable_online_push_notifications", "desktop_icon_count_display",
    "enable_digest_emails", "enable_login_emails", "realm_name_in_notifications", "presence_enabled",
    "last_reminder", "rate_limits", "default_sending_stream", "default_events_register_stream",
    "default_all_public_streams", "enter_sends", "left_side_userlist", "default_language", "dense_mode",
    "fluid_layout_width", "high_contrast_mode", "translate_emoticons", "twenty_four_hour_time",
    "starred_message_counts", "color_scheme", "demote_inactive_streams", "timezone", "emojiset", "avatar_source",
    "avatar_version", "avatar_hash", "tutorial_status", "onboarding_steps", "zoom_token", "groups",
    "user_permissions",
];

/// The tables Zulip 3.4's importer reads from realm.json without checking they exist.
static REALM_TABLES_3_4: &[&str] = &[
        "zerver_realm", "zerver_userprofile", "zerver_userprofile_mirrordummy", "zerver_userprofile_crossrealm",
        "zerver_stream", "zerver_huddle", "zerver_client", "zerver_recipient", "zerver_subscription",
        "zerver_defaultstream", "zerver_realmemoji", "zerver_realmdomain", "zerver_realmfilter",
        "zerver_userpresence", "zerver_useractivity", "zerver_useractivityinterval", "zerver_customprofilefield",
        "zerver_customprofilefieldvalue", "zerver_reaction",
    ];

/// The key sets of Zulip 3.4's tables, the base every profile starts from.
static TABLES_3_4: &[TableKeys] = &[
        TableKeys {
            table: "zerver_realm",
            keys: &[
                "id", "name", "description", "string_id", "date_created", "deactivated", "emails_restricted_to_domains",
                "invite_required", "invite_by_admins_only", "_max_invites", "disallow_disposable_email_addresses",
                "authentication_methods", "inline_image_preview", "inline_url_embed_preview", "digest_emails_enabled",
                "digest_weekday", "send_welcome_emails", "message_content_allowed_in_email_notifications",
                "mandatory_topics", "add_emoji_by_admins_only", "name_changes_disabled", "email_changes_disabled",
                "avatar_changes_disabled", "create_stream_policy", "invite_to_stream_policy", "user_group_edit_policy",
                "private_message_policy", "email_address_visibility", "waiting_period_threshold",
                "allow_message_deleting", "message_content_delete_limit_seconds", "allow_message_editing",
                "message_content_edit_limit_seconds", "allow_edit_history", "allow_community_topic_editing",
                "default_twenty_four_hour_time", "default_language", "notifications_stream",
                "signup_notifications_stream", "message_retention_days", "message_visibility_limit",
                "first_visible_message_id", "org_type", "plan_type", "bot_creation_policy", "upload_quota_gb",
                "video_chat_provider", "default_code_block_language", "icon_source", "icon_version", "logo_source",
                "logo_version", "night_logo_source", "night_logo_version",
            ],
            server_filled: &[],
            without: &[],
        },
        TableKeys { table: "zerver_userprofile", keys: USER_KEYS, server_filled: &[], without: &[] },
        // 3.4 drops `recipient` from user rows before it merges the mirror dummies in
        // (`remove_denormalized_recipient_column_from_data`), so a dummy row that
        // carries it aborts the import: "UserProfile.recipient must be a Recipient".
        TableKeys { table: "zerver_userprofile_mirrordummy", keys: USER_KEYS, server_filled: &[], without: &["recipient"] },
        TableKeys {
            table: "zerver_stream",
            keys: &[
                "id", "name", "realm", "date_created", "deactivated", "description", "recipient", "invite_only",
                "history_public_to_subscribers", "is_web_public", "stream_post_policy", "is_in_zephyr_realm",
                "message_retention_days", "first_message_id",
            ],
            // rendered_description: rendered on import when absent; email_token: a
            // secret the model generates at random (a derived one would be guessable).
            server_filled: &["rendered_description", "email_token"],
            without: &[],
        },
        TableKeys { table: "zerver_recipient", keys: &["id", "type_id", "type"], server_filled: &[], without: &[] },
        TableKeys {
            table: "zerver_subscription",
            keys: &[
                "id", "user_profile", "recipient", "active", "is_muted", "color", "pin_to_top", "desktop_notifications",
                "audible_notifications", "push_notifications", "email_notifications", "wildcard_mentions_notify",
            ],
            server_filled: &[],
            without: &[],
        },
        TableKeys { table: "zerver_defaultstream", keys: &["id", "realm", "stream"], server_filled: &[], without: &[] },
        TableKeys { table: "zerver_realmemoji", keys: &["id", "author", "realm", "name", "file_name", "deactivated"], server_filled: &[], without: &[] },
        TableKeys { table: "zerver_client", keys: &["id", "name"], server_filled: &[], without: &[] },
        TableKeys {
            table: "zerver_message",
            keys: &[
                "id", "sender", "recipient", "subject", "content", "rendered_content", "rendered_content_version",
                "date_sent", "sending_client", "last_edit_time", "edit_history", "has_attachment", "has_image",
                "has_link",
            ],
            server_filled: &[],
            without: &[],
        },
        TableKeys { table: "zerver_usermessage", keys: &["id", "user_profile", "message", "flags_mask"], server_filled: &[], without: &[] },
        TableKeys {
            table: "zerver_attachment",
            keys: &["id", "file_name", "path_id", "owner", "realm", "create_time", "size", "is_realm_public", "messages"],
            server_filled: &[],
            without: &[],
        },
    ];

/// The Zulip 3.4 profile.
pub static ZULIP_3_4: FormatProfile = FormatProfile {
    name: "3.4",
    base: None,
    realm_tables: REALM_TABLES_3_4,
    more_realm_tables: &[],
    tables: TABLES_3_4,
    new_tables: &[],
    changes: &[],
    max_stream_name: 60,
    max_stream_description: 1024,
    max_topic: 60,
    max_message: 10_000,
    max_full_name: 100,
    max_timezone: 40,
    // ALL_FLAGS: read, starred, collapsed, mentioned, wildcard_mentioned, summarize_in_home,
    // summarize_in_stream, force_expand, force_collapse, has_alert_word, historical, is_private, …
    flags: Flags { read: 1, mentioned: 8, wildcard_mentioned: 16, is_private: 2048 },
    roles: Roles { owner: 100, admin: 200, member: 400, guest: 600 },
    incoming_webhook_bot: 2,
    recipient_types: RecipientTypes { personal: 1, stream: 2 },
    emoji_dir: "emoji/images",
    stream_colors: &[
        "#76ce90", "#fae589", "#a6c7e5", "#e79ab5", "#bfd56f", "#f4ae55", "#b0a5fd", "#addfe5", "#f5ce6e", "#c2726a",
        "#94c849", "#bd86e5", "#ee7e4a", "#a6dcbf", "#95a5fd", "#53a063", "#9987e1", "#e4523d", "#c2c2c2", "#4f8de4",
        "#c6a8ad", "#e7cc4d", "#c8bebf", "#a47462",
    ],
    authentication_flags: &["Google", "Email", "GitHub", "LDAP", "Dev", "RemoteUser", "AzureAD", "SAML", "GitLab", "Apple"],
    writes_html: true,
    authentication_table: false,
    links_inactive_mentions: false,
    zulip_version: None,
    import_source: None,
    dm_topic: "",
    archives_in_place: false,
    sanitized_upload_names: false,
};

/// The Zulip 9.x profile: 3.4's rows with the changes of Zulip's main branch of
/// 2024-05-21 (`zerver/models/`, `zerver/lib/import_realm.py`,
/// `zerver/data_import/import_util.py` there), each checked in that importer.
pub static ZULIP_9_0: FormatProfile = FormatProfile {
    name: "9.0",
    base: Some(&ZULIP_3_4),
    realm_tables: REALM_TABLES_3_4,
    more_realm_tables: &["zerver_realmplayground", "zerver_scheduledmessage", "zerver_realmauthenticationmethod"],
    tables: TABLES_3_4,
    new_tables: &[TableKeys { table: "zerver_realmauthenticationmethod", keys: &["id", "realm", "name"], server_filled: &[], without: &[] }],
    changes: &[
        TableChanges {
            table: "zerver_realm",
            // Gone from the model (login methods became their own table; the
            // e-mail visibility became a per-user setting whose default is the
            // 3.4 realm value, everyone).
            drop: &[
                "add_emoji_by_admins_only", "allow_community_topic_editing", "allow_message_deleting",
                "create_stream_policy", "default_twenty_four_hour_time", "email_address_visibility",
                "invite_by_admins_only", "upload_quota_gb", "authentication_methods",
            ],
            rename: &[("notifications_stream", "new_stream_announcements_stream"), ("signup_notifications_stream", "signup_announcements_stream")],
            // The importer re-maps this foreign key by indexing it; the code block
            // language is NOT NULL now.
            set: &[("zulip_update_announcements_stream", "null"), ("default_code_block_language", "\"\"")],
        },
        TableChanges { table: "zerver_userprofile", drop: &["is_api_super_user", "realm_name_in_notifications"], rename: &[], set: &[] },
        TableChanges { table: "zerver_userprofile_mirrordummy", drop: &["is_api_super_user", "realm_name_in_notifications"], rename: &[], set: &[] },
        // `creator` is popped by the importer without a default.
        TableChanges { table: "zerver_stream", drop: &[], rename: &[], set: &[("creator", "null")] },
        // The importer indexes both.
        TableChanges { table: "zerver_message", drop: &[], rename: &[], set: &[("realm", "1")] },
        TableChanges { table: "zerver_attachment", drop: &[], rename: &[], set: &[("scheduled_messages", "[]")] },
    ],
    max_stream_name: ZULIP_3_4.max_stream_name,
    max_stream_description: ZULIP_3_4.max_stream_description,
    max_topic: ZULIP_3_4.max_topic,
    max_message: ZULIP_3_4.max_message,
    max_full_name: ZULIP_3_4.max_full_name,
    max_timezone: ZULIP_3_4.max_timezone,
    flags: ZULIP_3_4.flags,
    roles: ZULIP_3_4.roles,
    incoming_webhook_bot: ZULIP_3_4.incoming_webhook_bot,
    recipient_types: ZULIP_3_4.recipient_types,
    emoji_dir: ZULIP_3_4.emoji_dir,
    stream_colors: ZULIP_3_4.stream_colors,
    // `AUTH_BACKEND_NAME_MAP`'s names; Zulip's converters enable them all.
    authentication_flags: &["Google", "Email", "GitHub", "LDAP", "Dev", "RemoteUser", "AzureAD", "SAML", "GitLab", "Apple", "OpenID Connect"],
    // Its importer renders mentions and realm emoji itself.
    writes_html: false,
    authentication_table: true,
    links_inactive_mentions: true,
    zulip_version: Some("9.0"),
    import_source: None,
    dm_topic: "",
    archives_in_place: false,
    sanitized_upload_names: false,
};

/// Zulip 10.x's rows: 9.0's, less the realm and user fields 10.0 removed (a
/// `Model(**row)` crash), with the foreign key and flags it added. Read from
/// Zulip 10.0's own tree ("Release Zulip Server 10.0.", 2025-03-20:
/// `zerver/models/`, `zerver/lib/import_realm.py`, `zerver/lib/export.py`,
/// `zerver/data_import/import_util.py`); a few keys that 12.x needs and 10.x has
/// with the same meaning are written here already, so one row shape serves 10 to 12.
static CHANGES_10: &[TableChanges] = &[
    TableChanges {
        table: "zerver_realm",
        drop: &[
            // Gone in 10.0 (group-based permissions replaced them; the importer sets
            // their successors to the system groups' defaults).
            "allow_edit_history", "bot_creation_policy", "invite_to_stream_policy", "private_message_policy",
            "user_group_edit_policy",
            // Gone in 11.x (`topics_policy` replaced it); its 10.x default is the
            // value hcconv wrote, false.
            "mandatory_topics",
        ],
        rename: &[],
        set: &[
            // A foreign key the importer re-maps by indexing it (10.0 on).
            ("moderation_request_channel", "null"),
            // Date fields 12.x reads from the model (null in every release's model).
            ("push_notifications_enabled_end_timestamp", "null"),
            ("scheduled_deletion_date", "null"),
            ("demo_organization_scheduled_deletion_date", "null"),
            // `OrgTypeEnum.Unspecified`; 3.4's 1 (business) is no choice since 9.0.
            ("org_type", "0"),
        ],
    },
    TableChanges { table: "zerver_userprofile", drop: USER_DROPS_10, rename: &[], set: USER_SETS_10 },
    TableChanges { table: "zerver_userprofile_mirrordummy", drop: USER_DROPS_10, rename: &[], set: USER_SETS_10 },
    // `is_in_zephyr_realm` is gone from 12.x's model; its default is the value
    // hcconv wrote, false.
    TableChanges { table: "zerver_stream", drop: &["is_in_zephyr_realm"], rename: &[], set: &[] },
    // `is_channel_message` (10.0, default true) is false on a direct message: the
    // writer sets it per row.
    TableChanges { table: "zerver_message", drop: &[], rename: &[], set: &[("is_channel_message", "true")] },
    // `content_type` (the file's MIME type, or null) is set per row: without the
    // key, a file that is not an image stops the import (`create_image_attachments`).
    TableChanges { table: "zerver_attachment", drop: &[], rename: &[], set: &[("content_type", "null")] },
];

/// User fields 10.0 removed.
const USER_DROPS_10: &[&str] = &["dense_mode", "is_billing_admin", "onboarding_steps", "tutorial_status"];

/// 12.x deletes `UserProfile.SPECIAL_PERMISSIONS_TO_RESET_AT_IMPORT` from every
/// user row without a default (a missing key is a KeyError); the list itself was
/// not readable, so every special permission flag the model has (all false,
/// their defaults, in 10.x and 11.x too) is written.
const USER_SETS_10: &[(&str, &str)] = &[("can_forge_sender", "false"), ("can_create_users", "false"), ("can_change_user_emails", "false")];

/// 11.x's changes to 10.x's rows: streams carry the channel folder foreign key
/// the importer re-maps (a crash on 10.x, which has no folders).
static CHANGES_11: &[TableChanges] = &[TableChanges { table: "zerver_stream", drop: &[], rename: &[], set: &[("folder", "null")] }];

/// Zulip 10.x's profile (see [`CHANGES_10`]).
pub static ZULIP_10: FormatProfile = FormatProfile {
    name: "10.x",
    base: Some(&ZULIP_9_0),
    changes: CHANGES_10,
    zulip_version: Some("10.0"),
    import_source: Some("hipchat"),
    archives_in_place: true,
    sanitized_upload_names: true,
    ..ZULIP_9_0
};

/// Zulip 11.x's profile: 10.x's rows with [`CHANGES_11`]; realm.json must name
/// its `import_source`; direct messages have `Message.DM_TOPIC`.
pub static ZULIP_11: FormatProfile = FormatProfile {
    name: "11.x",
    base: Some(&ZULIP_10),
    changes: CHANGES_11,
    zulip_version: Some("11.0"),
    dm_topic: "\u{7}",
    ..ZULIP_10
};

/// Zulip 12.x's profile: 11.x's rows (12.x asserts upload names, which every
/// profile from 10.x on meets, and an owner, which every folder has).
pub static ZULIP_12: FormatProfile = FormatProfile { name: "12.x", base: Some(&ZULIP_11), changes: &[], zulip_version: Some("12.0"), ..ZULIP_11 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rows_fit_their_key_sets() {
        for p in [&ZULIP_3_4, &ZULIP_9_0] {
            p.check_row("zerver_realm", &p.fit("zerver_realm", p.realm_row(1, "x", 0.0))).unwrap();
            p.check_row("zerver_userprofile", &p.fit("zerver_userprofile", p.user_row_defaults())).unwrap();
            p.check_row("zerver_stream", &p.fit("zerver_stream", p.stream_row_defaults())).unwrap();
            p.check_row("zerver_subscription", &p.fit("zerver_subscription", p.subscription_row(1, 1, 1, "#c2c2c2", true))).unwrap();
        }
        // The builders give 3.4's rows; a later release's need `fit`.
        assert!(ZULIP_9_0.check_row("zerver_realm", &ZULIP_9_0.realm_row(1, "x", 0.0)).is_err());
    }

    #[test]
    fn a_wrong_row_is_refused() {
        let p = &ZULIP_3_4;
        let mut row = p.stream_row_defaults();
        row.insert("creator".into(), Value::Null);
        row.remove("invite_only");
        let err = p.check_row("zerver_stream", &row).unwrap_err();
        assert!(err.contains("invite_only") && err.contains("creator"), "{err}");
    }

    #[test]
    fn flag_bits_follow_the_model_order() {
        let order = ["read", "starred", "collapsed", "mentioned", "wildcard_mentioned", "summarize_in_home", "summarize_in_stream", "force_expand", "force_collapse", "has_alert_word", "historical", "is_private"];
        let bit = |name: &str| 1u32 << order.iter().position(|f| *f == name).unwrap();
        let f = ZULIP_3_4.flags;
        assert_eq!((f.read, f.mentioned, f.wildcard_mentioned, f.is_private), (bit("read"), bit("mentioned"), bit("wildcard_mentioned"), bit("is_private")));
    }
}
