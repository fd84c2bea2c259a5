//! The rows of the `10.x`, `11.x` and `12.x` formats against the facts read from
//! each Zulip release's source (none of these importers could be run here): every
//! key a row carries is a field of the release's model (or a key its importer
//! deletes before it builds the row), and every key the importer reads without a
//! default is there.
//!
//! Sources, read file by file (issue 22):
//! - 10.x: Zulip's own tree at "Release Zulip Server 10.0." (2025-03-20):
//!   `zerver/models/*.py` (field names), `zerver/lib/import_realm.py` (keys indexed,
//!   deleted, re-mapped).
//! - 11.x: `zerver/models/` of main three weeks after 10.0 for the unchanged models;
//!   `Realm` and `UserProfile` from post-11.0 copies (`topics_policy` replaces
//!   `mandatory_topics`); `Stream` from main just after 11.0 (channel folders);
//!   `import_realm.py` from main just after 11.0.
//! - 12.x: as 11.x, with `Stream` from a 12.x-era copy (`is_in_zephyr_realm` gone,
//!   `can_create_topic_group` added) and `import_realm.py` of the 12.0 beta
//!   (`SPECIAL_PERMISSIONS_TO_RESET_AT_IMPORT` deleted from every user row; its
//!   members could not be read and are taken as the model's three special
//!   permission flags).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The releases, the format that targets each, and its facts.
struct Release {
    format: &'static str,
    /// How its models differ from the release before (10.x: [`MODELS_10`]).
    model_changes: &'static [(&'static str, &'static [&'static str], &'static [&'static str])],
    /// `(table, keys the importer reads without a default)`.
    needed: &'static [(&'static str, &'static [&'static str])],
}

/// Model fields of Zulip 10.x, per table hcconv writes.
static MODELS_10: &[(&str, &[&str])] = &[
    (
        "zerver_realm",
        &[
            "_max_invites", "allow_message_editing", "avatar_changes_disabled", "can_access_all_users_group",
            "can_add_custom_emoji_group", "can_add_subscribers_group", "can_create_bots_group",
            "can_create_groups", "can_create_private_channel_group", "can_create_public_channel_group",
            "can_create_web_public_channel_group", "can_create_write_only_bots_group",
            "can_delete_any_message_group", "can_delete_own_message_group", "can_invite_users_group",
            "can_manage_all_groups", "can_manage_billing_group", "can_mention_many_users_group",
            "can_move_messages_between_channels_group", "can_move_messages_between_topics_group",
            "can_resolve_topics_group", "can_summarize_topics_group", "create_multiuse_invite_group",
            "custom_upload_quota_gb", "date_created", "deactivated", "deactivated_redirect",
            "default_code_block_language", "default_language", "demo_organization_scheduled_deletion_date",
            "description", "digest_emails_enabled", "digest_weekday", "direct_message_initiator_group",
            "direct_message_permission_group", "disallow_disposable_email_addresses", "email_changes_disabled",
            "emails_restricted_to_domains", "enable_guest_user_dm_warning", "enable_guest_user_indicator",
            "enable_read_receipts", "enable_spectator_access", "first_visible_message_id", "giphy_rating",
            "icon_source", "icon_version", "id", "inline_image_preview", "inline_url_embed_preview",
            "invite_required", "jitsi_server_url", "logo_source", "logo_version", "mandatory_topics",
            "message_content_allowed_in_email_notifications", "message_content_delete_limit_seconds",
            "message_content_edit_limit_seconds", "message_edit_history_visibility_policy",
            "message_retention_days", "message_visibility_limit", "moderation_request_channel",
            "move_messages_between_streams_limit_seconds", "move_messages_within_stream_limit_seconds", "name",
            "name_changes_disabled", "new_stream_announcements_stream", "night_logo_source", "night_logo_version",
            "org_type", "plan_type", "push_notifications_enabled", "push_notifications_enabled_end_timestamp",
            "require_unique_names", "scheduled_deletion_date", "send_welcome_emails",
            "signup_announcements_stream", "string_id", "uuid", "uuid_owner_secret", "video_chat_provider",
            "waiting_period_threshold", "want_advertise_in_communities_directory",
            "zulip_update_announcements_level", "zulip_update_announcements_stream",
        ],
    ),
    (
        "zerver_userprofile",
        &[
            "allow_private_data_export", "api_key", "automatically_follow_topics_policy",
            "automatically_follow_topics_where_mentioned", "automatically_unmute_topics_in_muted_streams_policy",
            "avatar_hash", "avatar_source", "avatar_version", "bot_owner", "bot_type", "can_change_user_emails",
            "can_create_users", "can_forge_sender", "color_scheme", "date_joined", "default_all_public_streams",
            "default_events_register_stream", "default_language", "default_sending_stream", "delivery_email",
            "demote_inactive_streams", "desktop_icon_count_display", "display_emoji_reaction_users", "email",
            "email_address_visibility", "email_notifications_batching_period_seconds", "emojiset",
            "enable_desktop_notifications", "enable_digest_emails", "enable_drafts_synchronization",
            "enable_followed_topic_audible_notifications", "enable_followed_topic_desktop_notifications",
            "enable_followed_topic_email_notifications", "enable_followed_topic_push_notifications",
            "enable_followed_topic_wildcard_mentions_notify", "enable_login_emails", "enable_marketing_emails",
            "enable_offline_email_notifications", "enable_offline_push_notifications",
            "enable_online_push_notifications", "enable_sounds", "enable_stream_audible_notifications",
            "enable_stream_desktop_notifications", "enable_stream_email_notifications",
            "enable_stream_push_notifications", "enter_sends", "fluid_layout_width", "full_name", "groups",
            "hide_ai_features", "high_contrast_mode", "id", "is_active", "is_bot", "is_mirror_dummy", "is_staff",
            "is_superuser", "last_active_message_id", "last_login", "last_reminder", "left_side_userlist",
            "long_term_idle", "message_content_in_email_notifications", "notification_sound", "password",
            "pm_content_in_desktop_notifications", "presence_enabled", "rate_limits", "realm",
            "realm_name_in_email_notifications_policy", "receives_typing_notifications", "recipient", "role",
            "send_private_typing_notifications", "send_read_receipts", "send_stream_typing_notifications",
            "starred_message_counts", "timezone", "tos_version", "translate_emoticons", "twenty_four_hour_time",
            "user_list_style", "user_permissions", "uuid", "web_animate_image_previews",
            "web_channel_default_view", "web_escape_navigates_to_home_view", "web_font_size_px", "web_home_view",
            "web_line_height_percent", "web_mark_read_on_scroll_policy", "web_navigate_to_sent_message",
            "web_stream_unreads_count_display_policy", "web_suggest_update_timezone", "wildcard_mentions_notify",
            "zoom_token",
        ],
    ),
    (
        "zerver_stream",
        &[
            "can_add_subscribers_group", "can_administer_channel_group", "can_remove_subscribers_group",
            "can_send_message_group", "can_subscribe_group", "creator", "date_created", "deactivated",
            "description", "first_message_id", "history_public_to_subscribers", "id", "invite_only",
            "is_in_zephyr_realm", "is_recently_active", "is_web_public", "message_retention_days", "name", "realm",
            "recipient", "rendered_description",
        ],
    ),
    (
        "zerver_subscription",
        &[
            "active", "audible_notifications", "color", "desktop_notifications", "email_notifications", "id",
            "is_muted", "is_user_active", "pin_to_top", "push_notifications", "recipient", "user_profile",
            "wildcard_mentions_notify",
        ],
    ),
    (
        "zerver_recipient",
        &[
            "id", "type", "type_id",
        ],
    ),
    (
        "zerver_defaultstream",
        &[
            "id", "realm", "stream",
        ],
    ),
    (
        "zerver_realmemoji",
        &[
            "author", "deactivated", "file_name", "id", "is_animated", "name", "realm",
        ],
    ),
    (
        "zerver_realmauthenticationmethod",
        &[
            "id", "name", "realm",
        ],
    ),
    (
        "zerver_client",
        &[
            "id", "name",
        ],
    ),
    (
        "zerver_message",
        &[
            "content", "date_sent", "edit_history", "has_attachment", "has_image", "has_link", "id",
            "is_channel_message", "last_edit_time", "realm", "recipient", "rendered_content",
            "rendered_content_version", "search_tsvector", "sender", "sending_client", "subject", "type",
        ],
    ),
    (
        "zerver_usermessage",
        &[
            "flags", "id", "message", "user_profile",
        ],
    ),
    (
        "zerver_attachment",
        &[
            "content_type", "create_time", "file_name", "id", "is_realm_public", "is_web_public", "messages",
            "owner", "path_id", "realm", "scheduled_messages", "size",
        ],
    ),
];

/// Keys Zulip 10.x's importer reads without a default.
static NEEDED_10: &[(&str, &[&str])] = &[
    ("zerver_realm", &["id", "date_created", "deactivated", "new_stream_announcements_stream", "signup_announcements_stream", "zulip_update_announcements_stream", "moderation_request_channel"]),
    ("zerver_userprofile", &["id", "realm", "bot_owner", "default_sending_stream", "default_events_register_stream", "last_active_message_id", "date_joined", "last_login", "last_reminder", "user_permissions", "groups", "is_bot", "translate_emoticons", "email", "delivery_email"]),
    ("zerver_stream", &["id", "realm", "creator", "date_created", "description", "name"]),
    ("zerver_message", &["id", "sender", "recipient", "sending_client", "date_sent", "last_edit_time", "has_attachment", "realm", "rendered_content", "content"]),
    ("zerver_usermessage", &["message", "user_profile", "flags_mask"]),
    ("zerver_attachment", &["id", "path_id", "messages", "scheduled_messages", "owner", "realm", "create_time", "content_type"]),
];

/// How Zulip 11.x's models differ from 10.x's: `(table, fields added, fields removed)`.
static MODEL_CHANGES_11: &[(&str, &[&str], &[&str])] = &[
    (
        "zerver_realm",
        &["can_set_delete_message_policy_group", "can_set_topics_policy_group", "require_e2ee_push_notifications", "send_channel_events_messages", "topics_policy", "welcome_message_custom_text"],
        &["mandatory_topics"],
    ),
    ("zerver_userprofile", &["resolved_topic_notice_auto_read_policy", "web_left_sidebar_show_channel_folders", "web_left_sidebar_unreads_count_summary"], &[]),
    (
        "zerver_stream",
        &["can_delete_any_message_group", "can_delete_own_message_group", "can_move_messages_out_of_channel_group", "can_move_messages_within_channel_group", "can_resolve_topics_group", "folder", "subscriber_count", "topics_policy"],
        &[],
    ),
];

/// Keys Zulip 11.x's importer reads without a default.
static NEEDED_11: &[(&str, &[&str])] = &[
    ("zerver_realm", &["id", "date_created", "deactivated", "new_stream_announcements_stream", "signup_announcements_stream", "zulip_update_announcements_stream", "moderation_request_channel"]),
    ("zerver_userprofile", &["id", "realm", "bot_owner", "default_sending_stream", "default_events_register_stream", "last_active_message_id", "date_joined", "last_login", "last_reminder", "user_permissions", "groups", "is_bot", "translate_emoticons", "email", "delivery_email"]),
    ("zerver_stream", &["id", "realm", "creator", "date_created", "description", "name", "folder"]),
    ("zerver_message", &["id", "sender", "recipient", "sending_client", "date_sent", "last_edit_time", "has_attachment", "realm", "rendered_content", "content"]),
    ("zerver_usermessage", &["message", "user_profile", "flags_mask"]),
    ("zerver_attachment", &["id", "path_id", "messages", "scheduled_messages", "owner", "realm", "create_time", "content_type"]),
];

/// How Zulip 12.x's models differ from 11.x's.
static MODEL_CHANGES_12: &[(&str, &[&str], &[&str])] = &[("zerver_stream", &["can_create_topic_group"], &["is_in_zephyr_realm"])];

/// Keys Zulip 12.x's importer reads without a default.
static NEEDED_12: &[(&str, &[&str])] = &[
    ("zerver_realm", &["id", "date_created", "deactivated", "new_stream_announcements_stream", "signup_announcements_stream", "zulip_update_announcements_stream", "moderation_request_channel", "push_notifications_enabled_end_timestamp", "scheduled_deletion_date", "demo_organization_scheduled_deletion_date"]),
    ("zerver_userprofile", &["id", "realm", "bot_owner", "default_sending_stream", "default_events_register_stream", "last_active_message_id", "date_joined", "last_login", "last_reminder", "user_permissions", "groups", "is_bot", "translate_emoticons", "email", "delivery_email", "can_forge_sender", "can_create_users", "can_change_user_emails"]),
    ("zerver_stream", &["id", "realm", "creator", "date_created", "description", "name", "folder"]),
    ("zerver_message", &["id", "sender", "recipient", "sending_client", "date_sent", "last_edit_time", "has_attachment", "realm", "rendered_content", "content"]),
    ("zerver_usermessage", &["message", "user_profile", "flags_mask"]),
    ("zerver_attachment", &["id", "path_id", "messages", "scheduled_messages", "owner", "realm", "create_time", "content_type"]),
];

/// Oldest first: each release's models are the one before's with its changes.
static RELEASES: &[Release] = &[
    Release { format: "10.x", model_changes: &[], needed: NEEDED_10 },
    Release { format: "11.x", model_changes: MODEL_CHANGES_11, needed: NEEDED_11 },
    Release { format: "12.x", model_changes: MODEL_CHANGES_12, needed: NEEDED_12 },
];

/// Keys every release's importer deletes from a row before it builds the model
/// (`groups`, `user_permissions`, `recipient` of users; `stream_post_policy` of
/// streams, turned into a permission group; `flags_mask`, renamed `flags`; the
/// attachment's many-to-many lists).
fn importer_removes(table: &str) -> &'static [&'static str] {
    match table {
        "zerver_userprofile" => &["user_permissions", "groups", "recipient"],
        "zerver_stream" => &["stream_post_policy", "recipient"],
        "zerver_usermessage" => &["flags_mask"],
        "zerver_attachment" => &["messages", "scheduled_messages"],
        _ => &[],
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Every row of `table` in the converted folder `out`.
fn rows(out: &Path, table: &str) -> Vec<Value> {
    let take = |v: &Value| v[table].as_array().cloned().unwrap_or_default();
    match table {
        "zerver_message" | "zerver_usermessage" => (1..).map(|n| out.join(format!("messages-{n:06}.json"))).take_while(|p| p.exists()).flat_map(|p| take(&json(&p))).collect(),
        "zerver_attachment" => take(&json(&out.join("attachment.json"))),
        "zerver_userprofile" => {
            let realm = json(&out.join("realm.json"));
            take(&realm).into_iter().chain(realm["zerver_userprofile_mirrordummy"].as_array().cloned().unwrap_or_default()).collect()
        }
        _ => take(&json(&out.join("realm.json"))),
    }
}

#[test]
fn every_key_is_a_model_field_and_every_needed_key_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut models: BTreeMap<&str, BTreeSet<&str>> = MODELS_10.iter().map(|(t, f)| (*t, f.iter().copied().collect())).collect();
    for release in RELEASES {
        for (table, added, removed) in release.model_changes {
            let fields = models.get_mut(table).unwrap();
            fields.extend(added.iter().copied());
            fields.retain(|f| !removed.contains(f));
        }
        let out = dir.path().join(release.format);
        common::hcconv()
            .arg(common::repo("fixtures/quirks.tar.gz.aes"))
            .arg("--password-file")
            .arg(common::repo("fixtures/quirks.password"))
            .args(["--to", "pixtoome", "--quiet", "--pixtoome-format", release.format, "-o"])
            .arg(&out)
            .assert()
            .success();
        for (table, fields) in &models {
            let rows = rows(&out, table);
            assert!(!rows.is_empty(), "{}: no {table} rows to check", release.format);
            let allowed: BTreeSet<&str> = fields.iter().copied().chain(importer_removes(table).iter().copied()).collect();
            let needed = release.needed.iter().find(|(t, _)| t == table).map_or(&[][..], |(_, k)| k);
            for row in &rows {
                let keys: BTreeSet<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
                let unknown: Vec<&&str> = keys.difference(&allowed).collect();
                let missing: Vec<&&str> = needed.iter().filter(|k| !keys.contains(**k)).collect();
                assert!(unknown.is_empty() && missing.is_empty(), "{} {table}: unknown {unknown:?}, missing {missing:?}", release.format);
            }
        }
    }
}
