//! `realm.json`: every table the Zulip importer reads, built from the [`Plan`].
//!
//! Written last, after the messages, because integration senders met while
//! streaming become users too. Facts (Zulip 3.4 `import_realm.py`): mirror-dummy
//! users go in their own table and are merged into the user table on import; every
//! user needs a personal recipient and a subscription to it; `groups` and
//! `user_permissions` are deleted from each user row (so must be present);
//! `authentication_methods` is a list of `[name, enabled]` pairs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::error::Result;

use super::files::{fitted, write_json, RowStream};
use super::messages::SENDING_CLIENT;
use super::plan::{Origin, Plan, ZUser, REALM_ID};
use super::profile::FormatProfile;
use super::UserMessagePolicy;

/// Writes `realm.json` with `emoji` as the realm emoji rows.
pub fn write_realm(out: &Path, plan: &Plan, emoji: Vec<Value>, profile: &FormatProfile) -> Result<()> {
    let mut tables: BTreeMap<String, Table> = profile.all_realm_tables().map(|t| (t.to_string(), Table::Ready(json!([])))).collect();
    let realm = fitted(profile, "zerver_realm", Value::Object(profile.realm_row(REALM_ID, "Organization imported from Hipchat!", plan.epoch)))?;
    tables.insert("zerver_realm".into(), Table::Ready(json!([realm])));
    if profile.authentication_table {
        let methods = profile.authentication_flags.iter().enumerate().map(|(i, name)| json!({"id": i + 1, "realm": REALM_ID, "name": name}));
        let rows = methods.map(|row| fitted(profile, "zerver_realmauthenticationmethod", row)).collect::<Result<Vec<Value>>>()?;
        tables.insert("zerver_realmauthenticationmethod".into(), Table::Ready(Value::Array(rows)));
    }
    tables.insert("zerver_userprofile".into(), Table::rows(user_rows(plan, profile, false)));
    tables.insert("zerver_userprofile_mirrordummy".into(), Table::rows(user_rows(plan, profile, true)));
    tables.insert("zerver_stream".into(), Table::rows(stream_rows(plan, profile)));
    tables.insert("zerver_recipient".into(), Table::rows(recipient_rows(plan, profile)));
    tables.insert("zerver_subscription".into(), Table::rows(subscription_rows(plan, profile)));
    tables.insert("zerver_defaultstream".into(), Table::rows(default_stream_rows(plan, profile)));
    tables.insert("zerver_client".into(), Table::Ready(json!([{"id": SENDING_CLIENT, "name": "populate_db"}])));
    tables.insert("zerver_realmemoji".into(), Table::Ready(Value::Array(emoji)));
    tables.insert("sort_by_date".into(), Table::Ready(json!(true)));
    if let Some(source) = profile.import_source {
        tables.insert("import_source".into(), Table::Ready(json!(source)));
    }
    write_json(&out.join("realm.json"), &tables)?;
    write_migration_status(out, profile)
}

/// `migration_status.json`, for releases that check it (see
/// [`FormatProfile::zulip_version`]): the release's major version and no app's
/// migrations.
fn write_migration_status(out: &Path, profile: &FormatProfile) -> Result<()> {
    match profile.zulip_version {
        Some(version) => write_json(&out.join("migration_status.json"), &json!({"migrations_by_app": {}, "zulip_version": version})),
        None => Ok(()),
    }
}

/// A checked row, or why it does not fit the profile.
type Row = std::result::Result<Value, String>;

/// A realm.json table: built (the small ones), or produced one row at a time while
/// it is written, so memory holds one row instead of the whole table. Users,
/// streams, recipients and subscriptions stream: they grow with the users and rooms
/// (subscriptions as rooms × subscribers), and an export has a room per thousand
/// messages or so.
enum Table<'a> {
    Ready(Value),
    Rows(RowStream<Box<dyn Iterator<Item = Row> + 'a>>),
}

impl<'a> Table<'a> {
    fn rows(rows: impl Iterator<Item = Row> + 'a) -> Self {
        Table::Rows(RowStream::new(Box::new(rows)))
    }
}

impl Serialize for Table<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Table::Ready(v) => v.serialize(serializer),
            Table::Rows(rows) => rows.serialize(serializer),
        }
    }
}

/// `row` as the profile's `table` has it, if it fits.
fn checked(profile: &FormatProfile, table: &str, row: Value) -> Row {
    fitted(profile, table, row).map_err(|e| e.to_string())
}

/// The user rows, or with `dummies` the mirror-dummy rows.
/// Each row has its table's key set: a mirror dummy's lacks the keys the importer
/// only strips from `zerver_userprofile` rows.
fn user_rows<'a>(plan: &'a Plan, profile: &'a FormatProfile, dummies: bool) -> impl Iterator<Item = Row> + 'a {
    let table = if dummies { "zerver_userprofile_mirrordummy" } else { "zerver_userprofile" };
    let without = profile.keys(table).map_or(&[][..], |t| t.without);
    plan.users.iter().filter(move |u| u.is_mirror_dummy == dummies).map(move |u| {
        let mut row = user_row(u, plan.usermessages, profile);
        for key in without {
            row.remove(*key);
        }
        checked(profile, table, Value::Object(row))
    })
}

fn user_row(u: &ZUser, policy: UserMessagePolicy, profile: &FormatProfile) -> Map<String, Value> {
    let mut row = profile.user_row_defaults();
    let set = |row: &mut Map<String, Value>, k: &str, v: Value| {
        row.insert(k.to_string(), v);
    };
    set(&mut row, "id", json!(u.id));
    set(&mut row, "realm", json!(REALM_ID));
    set(&mut row, "recipient", json!(u.recipient));
    set(&mut row, "email", json!(u.email));
    set(&mut row, "delivery_email", json!(u.email));
    set(&mut row, "full_name", json!(u.full_name));
    set(&mut row, "date_joined", json!(u.date_joined));
    set(&mut row, "role", json!(u.role));
    set(&mut row, "is_active", json!(u.is_active));
    set(&mut row, "is_mirror_dummy", json!(u.is_mirror_dummy));
    set(&mut row, "is_bot", json!(u.is_bot));
    set(&mut row, "bot_type", if u.is_bot { json!(profile.incoming_webhook_bot) } else { Value::Null });
    set(&mut row, "timezone", json!(u.timezone));
    set(&mut row, "avatar_source", json!(if u.has_avatar { "U" } else { "G" }));
    if let Origin::Integration(_) = u.origin {
        set(&mut row, "tutorial_status", json!("F"));
    }
    if u.is_long_term_idle(policy) {
        // Message ids start at 1 and the importer keeps an id it cannot map, so 0
        // makes the first login's catch-up (`add_missing_messages`: messages with a
        // greater id) cover the whole imported history.
        set(&mut row, "long_term_idle", json!(true));
        set(&mut row, "last_active_message_id", json!(0));
    }
    row
}

fn stream_rows<'a>(plan: &'a Plan, profile: &'a FormatProfile) -> impl Iterator<Item = Row> + 'a {
    plan.streams.iter().map(move |s| {
            let mut row = profile.stream_row_defaults();
            for (k, v) in [
                ("id", json!(s.id)),
                ("name", json!(s.name)),
                ("realm", json!(REALM_ID)),
                ("date_created", json!(s.date_created)),
                ("deactivated", json!(s.deactivated)),
                ("description", json!(s.description)),
                ("recipient", json!(s.recipient)),
                ("invite_only", json!(s.invite_only)),
                // Public streams always show history; private rooms' history is
                // visible to their members, as in Hipchat.
                ("history_public_to_subscribers", json!(true)),
            ] {
                row.insert(k.to_string(), v);
            }
            checked(profile, "zerver_stream", Value::Object(row))
        })
}

fn recipient_rows<'a>(plan: &'a Plan, profile: &'a FormatProfile) -> impl Iterator<Item = Row> + 'a {
    let personal = plan.users.iter().map(|u| (u.recipient, u.id, profile.recipient_types.personal));
    let streams = plan.streams.iter().map(|s| (s.recipient, s.id, profile.recipient_types.stream));
    let mut all: Vec<(u64, u64, u8)> = personal.chain(streams).collect();
    all.sort_unstable();
    all.into_iter().map(move |(id, type_id, kind)| checked(profile, "zerver_recipient", json!({"id": id, "type_id": type_id, "type": kind})))
}

/// Personal subscriptions first, then each stream's, numbered from 1.
fn subscription_rows<'a>(plan: &'a Plan, profile: &'a FormatProfile) -> impl Iterator<Item = std::result::Result<Value, String>> + 'a {
    let gray = "#c2c2c2";
    let personal = plan.users.iter().map(move |u| (u.id, u.recipient, gray, true));
    // A deactivated stream's subscriptions are inactive, as Zulip's own deactivation
    // left them before 10.0 (`do_deactivate_stream`); from 10.0 on they stay.
    let streams = plan.streams.iter().enumerate().flat_map(move |(i, s)| {
        let color = profile.stream_colors[i % profile.stream_colors.len()];
        let active = !s.deactivated || profile.archives_in_place;
        s.subscribers.iter().map(move |u| (*u, s.recipient, color, active))
    });
    personal.chain(streams).enumerate().map(move |(i, (user, recipient, color, active))| checked(profile, "zerver_subscription", Value::Object(profile.subscription_row(i as u64 + 1, user, recipient, color, active))))
}

fn default_stream_rows<'a>(plan: &'a Plan, profile: &'a FormatProfile) -> impl Iterator<Item = Row> + 'a {
    plan.streams.iter().filter(|s| s.is_default).enumerate().map(move |(i, s)| checked(profile, "zerver_defaultstream", json!({"id": i as u64 + 1, "realm": REALM_ID, "stream": s.id})))
}
