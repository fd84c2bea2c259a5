//! The Pixtoome writer on the quirks fixture: layout, exact key sets of the Zulip
//! 3.4 profile, references between rows, content rules, accounting, determinism.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use hcconv::writers::pixtoome::profile::{FormatProfile, ZULIP_10, ZULIP_11, ZULIP_12, ZULIP_3_4, ZULIP_9_0};

/// Every `--pixtoome-format` value and its profile.
const FORMATS: [(&str, &FormatProfile); 5] = [("3.4", &ZULIP_3_4), ("9.0", &ZULIP_9_0), ("10.x", &ZULIP_10), ("11.x", &ZULIP_11), ("12.x", &ZULIP_12)];
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn manifest() -> Value {
    serde_json::from_str(&fs::read_to_string(fixture().join("quirks.manifest.json")).unwrap()).unwrap()
}

/// Runs the conversion with `extra` flags; returns the output folder and the report.
fn convert(dir: &Path, extra: &[&str]) -> (PathBuf, Value) {
    let out = dir.join("out");
    let report = dir.join("report.json");
    Command::cargo_bin("hcconv")
        .unwrap()
        .arg(fixture().join("quirks.tar.gz.aes"))
        .args(["--to", "pixtoome", "-o"])
        .arg(&out)
        .arg("--password-file")
        .arg(fixture().join("quirks.password"))
        .arg("--report")
        .arg(&report)
        .args(extra)
        .assert()
        .success();
    (out, serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap())
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

struct Output {
    realm: Value,
    messages: Vec<Value>,
    usermessages: Vec<Value>,
    attachments: Vec<Value>,
    uploads: Vec<Value>,
    avatars: Vec<Value>,
    emoji: Vec<Value>,
}

fn load(out: &Path) -> Output {
    let mut messages = Vec::new();
    let mut usermessages = Vec::new();
    for n in 1.. {
        let p = out.join(format!("messages-{n:06}.json"));
        if !p.exists() {
            break;
        }
        let v = json(&p);
        messages.extend(v["zerver_message"].as_array().unwrap().clone());
        usermessages.extend(v["zerver_usermessage"].as_array().unwrap().clone());
    }
    Output {
        realm: json(&out.join("realm.json")),
        messages,
        usermessages,
        attachments: json(&out.join("attachment.json"))["zerver_attachment"].as_array().unwrap().clone(),
        uploads: json(&out.join("uploads/records.json")).as_array().unwrap().clone(),
        avatars: json(&out.join("avatars/records.json")).as_array().unwrap().clone(),
        emoji: json(&out.join("emoji/records.json")).as_array().unwrap().clone(),
    }
}

fn table<'a>(o: &'a Output, name: &str) -> &'a Vec<Value> {
    o.realm[name].as_array().unwrap_or_else(|| panic!("realm.json lacks {name}"))
}

fn users(o: &Output) -> Vec<&Value> {
    table(o, "zerver_userprofile").iter().chain(table(o, "zerver_userprofile_mirrordummy")).collect()
}

fn user_by_name<'a>(o: &'a Output, name: &str) -> &'a Value {
    users(o).into_iter().find(|u| u["full_name"] == name).unwrap_or_else(|| panic!("no user {name}"))
}

fn stream_by_name<'a>(o: &'a Output, name: &str) -> &'a Value {
    table(o, "zerver_stream").iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no stream {name}"))
}

fn message_with<'a>(o: &'a Output, text: &str) -> &'a Value {
    o.messages.iter().find(|m| m["content"].as_str().unwrap().contains(text)).unwrap_or_else(|| panic!("no message containing {text:?}"))
}

fn rows_of(o: &Output, message_id: &Value) -> BTreeMap<u64, u64> {
    o.usermessages.iter().filter(|r| r["message"] == *message_id).map(|r| (r["user_profile"].as_u64().unwrap(), r["flags_mask"].as_u64().unwrap())).collect()
}

fn ids(rows: &[Value]) -> BTreeSet<u64> {
    rows.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

#[test]
fn layout_has_every_file_and_no_gap_in_message_files() {
    for (format, profile) in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = convert(dir.path(), &["--pixtoome-format", format]);
        for f in ["realm.json", "attachment.json", "uploads/records.json", "avatars/records.json", "emoji/records.json", "messages-000001.json"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        assert!(!out.join("messages-000002.json").exists(), "36 messages fit one file");
        let o = load(&out);
        assert_eq!(o.realm["sort_by_date"], true);
        let keys: BTreeSet<&str> = o.realm.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected: BTreeSet<&str> = profile.all_realm_tables().collect();
        expected.insert("sort_by_date");
        if let Some(source) = profile.import_source {
            assert_eq!(o.realm["import_source"], source);
            expected.insert("import_source");
        }
        assert_eq!(keys, expected, "realm.json holds exactly the {format} tables");
        // Zulip 10 and later compare the major release, and take an empty app list.
        match profile.zulip_version {
            Some(version) => assert_eq!(json(&out.join("migration_status.json")), serde_json::json!({"migrations_by_app": {}, "zulip_version": version})),
            None => assert!(!out.join("migration_status.json").exists()),
        }
        for record in o.uploads.iter() {
            assert!(out.join("uploads").join(record["path"].as_str().unwrap()).is_file());
        }
        for record in o.avatars.iter().chain(&o.emoji) {
            let folder = if record.get("user_profile_id").is_some() { "avatars" } else { "emoji" };
            assert!(out.join(folder).join(record["path"].as_str().unwrap()).is_file(), "{record}");
        }
    }
}

#[test]
fn every_row_has_exactly_the_profile_keys() {
    for (format, profile) in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = convert(dir.path(), &["--pixtoome-format", format]);
        let o = load(&out);
        let check = |table: &str, rows: &[Value]| {
            for row in rows {
                profile.check_row(table, row.as_object().unwrap()).unwrap_or_else(|e| panic!("{e}: {row}"));
            }
        };
        for t in ["zerver_realm", "zerver_userprofile", "zerver_userprofile_mirrordummy", "zerver_stream", "zerver_recipient", "zerver_subscription", "zerver_defaultstream", "zerver_realmemoji", "zerver_client"] {
            check(t, table(&o, t));
        }
        check("zerver_message", &o.messages);
        check("zerver_usermessage", &o.usermessages);
        check("zerver_attachment", &o.attachments);
        assert_eq!(table(&o, "zerver_realm").len(), 1);
        for u in users(&o) {
            assert_eq!(u["groups"], serde_json::json!([]));
            assert_eq!(u["user_permissions"], serde_json::json!([]));
        }
    }
}

/// Zulip 3.4: login methods as `[name, enabled]` pairs on the realm row.
#[test]
fn zulip_3_4_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &["--pixtoome-format", "3.4"]);
    let o = load(&out);
    let methods = table(&o, "zerver_realm")[0]["authentication_methods"].as_array().unwrap();
    assert!(methods.iter().all(|p| p.as_array().is_some_and(|p| p.len() == 2 && p[1] == true)));
    assert!(o.messages.iter().all(|m| m.get("realm").is_none()));
}

/// Each rule Zulip 9.x's importer enforced on the 3.4 rows (main of 2024-05-21,
/// `manage.py import` run on this output: exit 0, every count equal).
#[test]
fn zulip_9_0_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &["--pixtoome-format", "9.0"]);
    let o = load(&out);
    let realm = &table(&o, "zerver_realm")[0];
    // Renamed announcement streams, and the new one the importer re-maps by key.
    for key in ["new_stream_announcements_stream", "signup_announcements_stream", "zulip_update_announcements_stream"] {
        assert!(realm.get(key).is_some_and(Value::is_null), "{key}");
    }
    // Fields the model no longer has (`Realm(**row)` fails on them).
    for key in ["notifications_stream", "signup_notifications_stream", "add_emoji_by_admins_only", "allow_community_topic_editing", "allow_message_deleting", "create_stream_policy", "default_twenty_four_hour_time", "email_address_visibility", "invite_by_admins_only", "upload_quota_gb", "authentication_methods"] {
        assert!(realm.get(key).is_none(), "{key}");
    }
    assert_eq!(realm["default_code_block_language"], "", "NOT NULL in 9.x");
    // Login methods are rows of their own.
    let methods = table(&o, "zerver_realmauthenticationmethod");
    assert_eq!(methods.len(), ZULIP_9_0.authentication_flags.len());
    assert!(methods.iter().all(|m| m["realm"] == realm["id"] && m["name"].is_string() && m.as_object().unwrap().len() == 3));
    for u in users(&o) {
        assert!(u.get("is_api_super_user").is_none() && u.get("realm_name_in_notifications").is_none(), "{u}");
    }
    assert!(table(&o, "zerver_stream").iter().all(|s| s.get("creator").is_some_and(Value::is_null)));
    for t in ["zerver_realmplayground", "zerver_scheduledmessage"] {
        assert_eq!(table(&o, t).len(), 0, "{t}");
    }
    assert!(o.attachments.iter().all(|a| a["scheduled_messages"] == serde_json::json!([])));
    assert!(o.messages.iter().all(|m| m["realm"] == realm["id"]));
    // 9.x renders mentions and realm emoji itself on import.
    assert!(o.messages.iter().all(|m| m["rendered_content"].is_null() && m["rendered_content_version"].is_null()));
    assert_eq!(message_with(&o, "anyone here?")["content"], "anyone here? @**Other User** :hcdc:");
}

#[test]
fn references_between_rows_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &[]);
    let o = load(&out);
    let user_ids: BTreeSet<u64> = users(&o).iter().map(|u| u["id"].as_u64().unwrap()).collect();
    let stream_ids = ids(table(&o, "zerver_stream"));
    let recipients = table(&o, "zerver_recipient");
    let recipient_ids = ids(recipients);
    assert_eq!(recipient_ids.len(), recipients.len(), "recipient ids unique");
    // Every user has one personal recipient and a subscription to it.
    for u in users(&o) {
        let id = u["id"].as_u64().unwrap();
        let personal: Vec<&Value> = recipients.iter().filter(|r| r["type"] == 1 && r["type_id"] == id).collect();
        assert_eq!(personal.len(), 1, "user {id}");
        if u["is_mirror_dummy"] == true {
            // Zulip 3.4 strips `recipient` from user rows only before it merges the
            // dummies in: one left on a dummy aborts the whole import.
            assert!(u.get("recipient").is_none(), "mirror dummy {id} carries recipient");
        } else {
            assert_eq!(u["recipient"], personal[0]["id"]);
        }
        assert!(table(&o, "zerver_subscription").iter().any(|s| s["user_profile"] == id && s["recipient"] == personal[0]["id"]));
    }
    for s in table(&o, "zerver_stream") {
        let r: Vec<&Value> = recipients.iter().filter(|r| r["type"] == 2 && r["type_id"] == s["id"]).collect();
        assert_eq!(r.len(), 1);
        assert_eq!(s["recipient"], r[0]["id"]);
    }
    for r in recipients {
        let target = if r["type"] == 1 { &user_ids } else { &stream_ids };
        assert!(target.contains(&r["type_id"].as_u64().unwrap()), "{r}");
    }
    let mut pairs = BTreeSet::new();
    for s in table(&o, "zerver_subscription") {
        assert!(user_ids.contains(&s["user_profile"].as_u64().unwrap()));
        assert!(recipient_ids.contains(&s["recipient"].as_u64().unwrap()));
        assert!(pairs.insert((s["user_profile"].as_u64(), s["recipient"].as_u64())), "duplicate subscription {s}");
    }
    let message_ids = ids(&o.messages);
    assert_eq!(message_ids.len(), o.messages.len(), "message ids unique");
    for m in &o.messages {
        assert!(user_ids.contains(&m["sender"].as_u64().unwrap()));
        assert!(recipient_ids.contains(&m["recipient"].as_u64().unwrap()));
        assert_eq!(m["sending_client"], table(&o, "zerver_client")[0]["id"]);
        // HTML with its version, or neither (the server renders a notification's Markdown).
        assert_eq!(m["rendered_content"].is_null(), m["rendered_content_version"].is_null(), "{m}");
        assert!(m["content"].as_str().unwrap().chars().count() <= 10_000);
        let sender_rows = rows_of(&o, &m["id"]);
        assert!(sender_rows.contains_key(&m["sender"].as_u64().unwrap()), "sender sees own message {m}");
    }
    for r in &o.usermessages {
        assert!(message_ids.contains(&r["message"].as_u64().unwrap()));
        assert!(user_ids.contains(&r["user_profile"].as_u64().unwrap()));
        assert_eq!(r["flags_mask"].as_u64().unwrap() & 1, 1, "imported history is read");
    }
    // Attachments ↔ uploads ↔ messages.
    let s3: BTreeSet<&str> = o.uploads.iter().map(|u| u["s3_path"].as_str().unwrap()).collect();
    assert_eq!(o.attachments.len(), o.uploads.len());
    for a in &o.attachments {
        let path_id = a["path_id"].as_str().unwrap();
        assert!(s3.contains(path_id), "{path_id} has an upload record");
        assert!(user_ids.contains(&a["owner"].as_u64().unwrap()));
        for mid in a["messages"].as_array().unwrap() {
            let m = o.messages.iter().find(|m| m["id"] == *mid).expect("attachment message exists");
            assert_eq!(m["has_attachment"], true);
            assert!(m["content"].as_str().unwrap().contains(&format!("](/user_uploads/{path_id})")));
        }
    }
    for m in o.messages.iter().filter(|m| m["has_attachment"] == true) {
        assert!(o.attachments.iter().any(|a| a["messages"].as_array().unwrap().contains(&m["id"])));
    }
    for a in &o.avatars {
        assert!(user_ids.contains(&a["user_profile_id"].as_u64().unwrap()));
    }
    let emoji_ids: Vec<&Value> = table(&o, "zerver_realmemoji").iter().collect();
    assert_eq!(emoji_ids.len(), o.emoji.len());
}

#[test]
fn users_roles_emails_avatars_and_dummies() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = convert(dir.path(), &[]);
    let o = load(&out);
    let hcdc = user_by_name(&o, "HCDC User");
    assert_eq!((hcdc["role"].as_u64(), hcdc["avatar_source"].as_str(), hcdc["timezone"].as_str()), (Some(100), Some("U"), Some("Europe/Berlin")));
    assert_eq!(user_by_name(&o, "Other User")["role"], 400);
    assert_eq!(user_by_name(&o, "Other User")["avatar_source"], "U");
    let guest = user_by_name(&o, "Guesty McGuest");
    assert_eq!(guest["role"], 600);
    assert_eq!(guest["email"], "hipchat-user-3@example.com");
    let gone = user_by_name(&o, "Gone Person");
    assert_eq!(gone["is_active"], false);
    assert_eq!(gone["email"], "hipchat-user-4@example.com");
    // Two users share bob@example.com: the later one gets a unique address.
    assert_eq!(user_by_name(&o, "Bob Builder")["email"], "bob@example.com");
    assert_eq!(user_by_name(&o, "Bob Twin")["email"], "hipchat-user-6@example.com");
    let emails: Vec<String> = users(&o).iter().map(|u| u["email"].as_str().unwrap().to_lowercase()).collect();
    assert_eq!(emails.iter().collect::<BTreeSet<_>>().len(), emails.len(), "emails unique ignoring case");
    for u in users(&o) {
        assert_eq!(u["email"], u["delivery_email"]);
        let e = u["email"].as_str().unwrap();
        assert!(e.contains('@') && e.rsplit('@').next().unwrap().contains('.'), "{e}");
    }
    let renames = report["renames"].as_array().unwrap();
    for id in ["3", "4", "6"] {
        assert!(renames.iter().any(|r| r["entity"] == "user" && r["id"] == id), "user {id} placeholder email reported");
    }
    // Unknown sender 99: a mirror dummy, inactive, in the mirror-dummy table.
    let dummy = &table(&o, "zerver_userprofile_mirrordummy")[0];
    assert_eq!((dummy["full_name"].as_str(), dummy["is_mirror_dummy"].as_bool(), dummy["is_active"].as_bool()), (Some("Ghost Writer"), Some(true), Some(false)));
    // Integrations: deactivated bots named after them.
    for name in ["JIRA", "Bitbucket"] {
        let bot = user_by_name(&o, name);
        assert_eq!((bot["is_bot"].as_bool(), bot["bot_type"].as_u64(), bot["is_active"].as_bool()), (Some(true), Some(2), Some(false)));
    }
    let jira = user_by_name(&o, "JIRA")["id"].clone();
    assert_eq!(message_with(&o, "Sample link card")["sender"], jira);
    // Avatars: the .original only, asking for thumbnails: the importer makes the
    // .png and -medium.png from it (a .png written here would be served as it is).
    let hcdc_id = hcdc["id"].as_u64().unwrap();
    let mine: Vec<&Value> = o.avatars.iter().filter(|a| a["user_profile_id"] == hcdc_id).collect();
    assert_eq!(mine.len(), 1);
    assert!(mine[0]["s3_path"].as_str().unwrap().ends_with(".original") && mine[0]["importer_should_thumbnail"] == true);
}

#[test]
fn streams_names_privacy_archiving_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &["--pixtoome-format", "9.0"]);
    let o = load(&out);
    let names: Vec<String> = table(&o, "zerver_stream").iter().map(|s| s["name"].as_str().unwrap().to_lowercase()).collect();
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), names.len(), "unique ignoring case");
    assert!(names.iter().all(|n| !n.is_empty() && n.chars().count() <= 60));
    let devops = stream_by_name(&o, "Dev Ops");
    assert_eq!((devops["invite_only"].as_bool(), devops["history_public_to_subscribers"].as_bool()), (Some(true), Some(true)));
    assert_eq!(devops["description"], "ops things");
    // Archived by its last ArchiveRoomMessage: deactivated as Zulip deactivates a
    // stream (prefixed name, invite-only, inactive subscriptions), so the name
    // "dev-ops" stays free for a new stream.
    let archived = stream_by_name(&o, "!DEACTIVATED:dev-ops");
    assert_eq!((archived["deactivated"].as_bool(), archived["invite_only"].as_bool()), (Some(true), Some(true)));
    let subs: Vec<&Value> = table(&o, "zerver_subscription").iter().filter(|s| s["recipient"] == archived["recipient"]).collect();
    assert!(!subs.is_empty() && subs.iter().all(|s| s["active"] == false), "{subs:?}");
    assert!(table(&o, "zerver_subscription").iter().filter(|s| s["recipient"] == devops["recipient"]).all(|s| s["active"] == true));
    assert_eq!(stream_by_name(&o, "Default")["deactivated"], false);
    assert_eq!(stream_by_name(&o, "Default")["description"], "this is the purpose of the room");
    assert!(stream_by_name(&o, "Hipchat room 6")["invite_only"].as_bool().unwrap());
    for s in table(&o, "zerver_stream") {
        assert!(!s["description"].as_str().unwrap().contains('\n'));
        assert!(s.get("email_token").is_none() && s.get("rendered_description").is_none(), "left to the server");
    }
    // Members, owner, posters and autojoiners are subscribed.
    let subscribed = |stream: &Value| -> BTreeSet<String> {
        let rid = &stream["recipient"];
        let uids: BTreeSet<u64> = table(&o, "zerver_subscription").iter().filter(|s| s["recipient"] == *rid).map(|s| s["user_profile"].as_u64().unwrap()).collect();
        users(&o).iter().filter(|u| uids.contains(&u["id"].as_u64().unwrap())).map(|u| u["full_name"].as_str().unwrap().to_string()).collect()
    };
    let devops_subs = subscribed(devops);
    for n in ["Bob Builder", "Bob Twin", "Guesty McGuest", "HCDC User"] {
        assert!(devops_subs.contains(n), "{n} in Dev Ops: {devops_subs:?}");
    }
    let default_subs = subscribed(stream_by_name(&o, "Default"));
    for n in ["HCDC User", "Other User", "Bob Builder", "Ghost Writer"] {
        assert!(default_subs.contains(n), "{n} in Default: {default_subs:?}");
    }
    // Default streams: autojoined by half of the active members, public.
    let defaults = table(&o, "zerver_defaultstream");
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["stream"], stream_by_name(&o, "Default")["id"]);
}

/// Zulip 10.0 and later archive a channel in place (`do_deactivate_stream`: the
/// name, privacy and subscriptions stay, and subscribers keep reading it), and so
/// does the import from `10.x` on; a deactivated stream with the pre-10 prefix
/// would show it literally ("!DEACTIVATED:dev-ops", seen in the 10.0 importer).
#[test]
fn archived_rooms_stay_readable_from_10_on() {
    for format in ["10.x", "11.x", "12.x"] {
        let dir = tempfile::tempdir().unwrap();
        let (out, report) = convert(dir.path(), &["--pixtoome-format", format]);
        let o = load(&out);
        let archived = stream_by_name(&o, "dev-ops");
        assert_eq!((archived["deactivated"].as_bool(), archived["invite_only"].as_bool()), (Some(true), Some(false)), "{format}");
        let subs: Vec<&Value> = table(&o, "zerver_subscription").iter().filter(|s| s["recipient"] == archived["recipient"]).collect();
        assert!(!subs.is_empty() && subs.iter().all(|s| s["active"] == true), "{format}: {subs:?}");
        assert!(table(&o, "zerver_stream").iter().all(|s| !s["name"].as_str().unwrap().starts_with("!DEACTIVATED:")), "{format}");
        let renames = report["renames"].to_string();
        assert!(!renames.contains("DEACTIVATED"), "{format}: {renames}");
        // Still no default stream.
        assert!(table(&o, "zerver_defaultstream").iter().all(|d| d["stream"] != archived["id"]));
    }
}

#[test]
fn message_content_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &["--pixtoome-format", "3.4"]);
    let o = load(&out);
    let first = message_with(&o, "anyone here?");
    assert_eq!(first["content"], "anyone here? @**Other User** :hcdc:");
    assert_eq!(first["subject"], "imported from hipchat");
    assert_eq!(first["date_sent"].as_f64().unwrap(), 1522683644.942827, "microseconds kept");
    let other = user_by_name(&o, "Other User")["id"].as_u64().unwrap();
    assert_eq!(rows_of(&o, &first["id"])[&other], 1 | 8, "mentioned flag");
    assert_eq!(message_with(&o, "Sample link card")["content"], "Card **Sample link card** & [link](http://www.website.com/some-article)\n\nTwo lines\nof text");
    assert_eq!(message_with(&o, "println")["content"], "```\nfn main() {\n    println!(\"hi\");\n}\n```");
    assert_eq!(message_with(&o, "to be or not")["content"], "> to be or not to be");
    // Zulip's own status message: shown as "Other User waves".
    assert_eq!(message_with(&o, "waves")["content"], "/me waves");
    // Zulip 3.4 renders nothing itself for a message with HTML: each gets 3.4's
    // HTML, mentions as spans the importer renumbers, realm emoji as text.
    let html = |needle: &str| message_with(&o, needle)["rendered_content"].as_str().map(str::to_string);
    assert_eq!(html("anyone here?").unwrap(), format!("<p>anyone here? <span class=\"user-mention\" data-user-id=\"{other}\">@Other User</span> :hcdc:</p>"));
    // It names a realm emoji: version 0 has 3.4 render it again, with the image, the
    // first time it is fetched.
    assert_eq!(first["rendered_content_version"], 0);
    assert_eq!(message_with(&o, "waves")["rendered_content_version"], 1);
    assert_eq!(html("waves").unwrap(), "<p>/me waves</p>");
    assert_eq!(html("println").unwrap(), "<div class=\"codehilite\"><pre><span></span><code>fn main() {\n    println!(&quot;hi&quot;);\n}\n</code></pre></div>");
    assert_eq!(html("to be or not").unwrap(), "<blockquote>\n<p>to be or not to be</p>\n</blockquote>");
    assert_eq!(html("keep <username>").unwrap(), "<p>keep &lt;username&gt; and &lt;/rant&gt; as text</p>");
    assert_eq!(html("lost file").unwrap(), "<p>lost file</p>\n<p><em>[attachment \"report.pdf\" is missing from the Hipchat export]</em></p>");
    assert_eq!(html("Sample link card"), None, "a notification's Markdown is rendered by the server");
    message_with(&o, "keep <username> and </rant> as text");
    message_with(&o, "HCDC User changed the room topic to: this is the purpose of the room");
    message_with(&o, "HCDC User enabled guest access: https://hipchat.example.com/gQ82tnQz5");
    assert_eq!(o.messages.iter().filter(|m| m["content"] == "HCDC User archived the room").count(), 2);
    message_with(&o, "lunch?");
    // The 15000-character message: split into consecutive messages, nothing lost.
    let parts: Vec<&Value> = o.messages.iter().filter(|m| m["content"].as_str().unwrap().starts_with("word") || m["content"].as_str().unwrap().contains("word1499")).collect();
    assert_eq!(parts.len(), 2);
    let joined: String = parts.iter().map(|m| m["content"].as_str().unwrap()).collect();
    let expected: String = (0..1500).map(|i| format!("word{i:04} ")).collect();
    assert_eq!(joined, expected);
    assert_eq!(parts[1]["id"].as_u64().unwrap(), parts[0]["id"].as_u64().unwrap() + 1);
    // Private messages: once, to the receiver's personal recipient, is_private flag.
    let pm = message_with(&o, "have you heard of");
    assert_eq!(o.messages.iter().filter(|m| m["content"].as_str().unwrap().contains("have you heard of")).count(), 1);
    assert_eq!(pm["subject"], "");
    assert_eq!(pm["recipient"], user_by_name(&o, "HCDC User")["recipient"]);
    let rows = rows_of(&o, &pm["id"]);
    assert_eq!(rows.len(), 2);
    assert!(rows.values().all(|f| f & 2048 == 2048));
    let note = message_with(&o, "note to self");
    assert_eq!(rows_of(&o, &note["id"]).len(), 1, "self-chat: one row");
    // Attachments: link to the upload, has_attachment.
    let pic = message_with(&o, "same picture again");
    assert!(pic["content"].as_str().unwrap().contains("[GOPR4259.png](/user_uploads/1/"));
    assert_eq!((pic["has_attachment"].as_bool(), pic["has_image"].as_bool()), (Some(true), Some(true)));
    // 3.4's inline image preview, as its renderer adds one after the paragraph.
    let path = pic["content"].as_str().unwrap().split("](").nth(1).unwrap().trim_end_matches(')').to_string();
    assert!(pic["rendered_content"].as_str().unwrap().ends_with(&format!("</p>\n<div class=\"message_inline_image\"><a href=\"{path}\" title=\"GOPR4259.png\"><img src=\"{path}\"></a></div>")), "{pic}");
    let logo = message_with(&o, "https://example.com/logo.png");
    assert_eq!(logo["rendered_content"], "<div class=\"message_inline_image\"><a href=\"https://example.com/logo.png\"><img src=\"https://example.com/logo.png\"></a></div>");
    assert_eq!((logo["has_link"].as_bool(), logo["has_image"].as_bool()), (Some(true), Some(true)));
    assert_eq!(o.attachments.iter().find(|a| a["file_name"] == "GOPR4259.png").unwrap()["messages"].as_array().unwrap().len(), 2, "one file, two messages");
    assert_eq!(message_with(&o, "lost file")["has_attachment"], false);
    // Ids increase with time inside each conversation (the importer orders by
    // whole seconds, then id). A private conversation is the pair of people.
    let personal: BTreeMap<u64, u64> = table(&o, "zerver_recipient").iter().filter(|r| r["type"] == 1).map(|r| (r["id"].as_u64().unwrap(), r["type_id"].as_u64().unwrap())).collect();
    let mut last: BTreeMap<(u64, u64), (f64, u64)> = BTreeMap::new();
    for m in &o.messages {
        let (t, id) = (m["date_sent"].as_f64().unwrap(), m["id"].as_u64().unwrap());
        let recipient = m["recipient"].as_u64().unwrap();
        let key = match personal.get(&recipient) {
            Some(receiver) => {
                let sender = m["sender"].as_u64().unwrap();
                (sender.min(*receiver), sender.max(*receiver))
            }
            None => (0, recipient),
        };
        if let Some((pt, pid)) = last.insert(key, (t, id)) {
            assert!(t >= pt && id > pid, "order within conversation {key:?}");
        }
    }
}

#[test]
fn month_topics_and_usermessage_policies() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = convert(dir.path(), &["--pixtoome-topic", "month", "--pixtoome-usermessages", "participants"]);
    let o = load(&out);
    assert_eq!(message_with(&o, "anyone here?")["subject"], "2018-04");
    // Stream messages by month; direct messages have the release's DM topic
    // (`Message.DM_TOPIC` from 11.x on, the default 12.x here), and only they are
    // no channel messages.
    for m in &o.messages {
        let direct = m["is_channel_message"] == false;
        assert_eq!(m["subject"], if direct { ZULIP_12.dm_topic } else { "2018-04" }, "{m}");
    }
    assert_eq!(ZULIP_12.dm_topic, "\u{7}");
    assert!(o.messages.iter().any(|m| m["is_channel_message"] == false) && o.messages.iter().any(|m| m["is_channel_message"] == true));
    let first = message_with(&o, "anyone here?");
    assert_eq!(rows_of(&o, &first["id"]).len(), 2, "sender and the mentioned user only");
    let dir2 = tempfile::tempdir().unwrap();
    let (full, _) = convert(dir2.path(), &[]);
    assert!(load(&full).usermessages.len() > o.usermessages.len());
}

/// `idle` writes exactly the rows of `participants`, and marks people (not bots or
/// mirror dummies) soft-deactivated from before the first message, so the server's
/// first-login catch-up adds everything else.
#[test]
fn idle_policy_marks_people_soft_deactivated() {
    let (dir, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (idle, _) = convert(dir.path(), &["--pixtoome-usermessages", "idle"]);
    let (participants, _) = convert(dir2.path(), &["--pixtoome-usermessages", "participants"]);
    let (idle, participants) = (load(&idle), load(&participants));
    assert_eq!(idle.usermessages, participants.usermessages);
    let mut people = 0;
    for u in users(&idle) {
        let person = u["is_bot"] == false && u["is_mirror_dummy"] == false;
        assert_eq!(u["long_term_idle"], person, "{}", u["full_name"]);
        assert_eq!(u["last_active_message_id"], if person { serde_json::json!(0) } else { Value::Null }, "{}", u["full_name"]);
        people += usize::from(person);
    }
    assert!(people > 1 && people < users(&idle).len(), "the fixture has people, bots and dummies");
    assert!(users(&participants).iter().all(|u| u["long_term_idle"] == false && u["last_active_message_id"].is_null()));
    assert!(idle.messages.iter().all(|m| m["id"].as_u64().unwrap() > 0), "0 is below every message id");
}

/// Another target's options do nothing here, and the run says so.
#[test]
fn another_targets_options_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = convert(dir.path(), &["--zip", "--team", "x", "--pixtoome-topic", "month"]);
    let warnings: Vec<&str> = report["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).filter(|w| w.contains("is not an option of --to pixtoome")).collect();
    assert_eq!(warnings, ["--zip is not an option of --to pixtoome; it was ignored", "--team is not an option of --to pixtoome; it was ignored"]);
}

#[test]
fn bad_format_version_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("hcconv")
        .unwrap()
        .arg(fixture().join("quirks.tar.gz.aes"))
        .args(["--to", "pixtoome", "--pixtoome-format", "8.0", "-o"])
        .arg(dir.path().join("out"))
        .arg("--password-file")
        .arg(fixture().join("quirks.password"))
        .assert()
        .code(2);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn accounting_every_message_written_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = convert(dir.path(), &[]);
    let m = manifest();
    let counts = &report["counts"];
    let msg = &counts["message"];
    assert_eq!(msg["input"], m["messages_raw"]);
    let unique = m["messages_unique"].as_u64().unwrap();
    let deleted = m["deleted"].as_u64().unwrap();
    assert_eq!(msg["written"].as_u64().unwrap(), unique - deleted);
    assert_eq!(report["skip_reasons"]["message"]["duplicate"], m["duplicates"]);
    assert_eq!(report["skip_reasons"]["message"]["deleted"].as_u64().unwrap(), deleted);
    let o = load(&out);
    let extra_parts = report["extra"]["pixtoome_parts_extra"].as_u64().unwrap_or(0);
    assert_eq!(o.messages.len() as u64, unique - deleted + extra_parts, "rows = written messages + extra parts");
    assert_eq!(counts["attachment"]["written"].as_u64().unwrap(), m["attachments_referenced"].as_u64().unwrap() - m["attachments_missing"].as_u64().unwrap());
    let noted = o.messages.iter().filter(|r| r["content"].as_str().unwrap().contains("\"report.pdf\" is missing from the Hipchat export")).count();
    assert_eq!(noted as u64, m["attachments_missing"].as_u64().unwrap(), "a missing file is noted in its message");
    assert_eq!(counts["emoticon"]["written"].as_u64().unwrap(), table(&o, "zerver_realmemoji").len() as u64);
    assert_eq!(counts["avatar"]["written"], m["avatars"]);
    assert_eq!(counts["user"]["written"], m["users_distinct"]);
    assert_eq!(counts["room"]["written"], m["rooms_listed"]);
    for (entity, c) in counts.as_object().unwrap() {
        if entity != "entry" {
            assert_eq!(c["input"].as_u64().unwrap(), c["written"].as_u64().unwrap() + c["skipped"].as_u64().unwrap(), "{entity}");
        }
    }
    assert_eq!(users(&o).len() as u64, m["users_distinct"].as_u64().unwrap() + 1 + 2, "users + one mirror dummy + two integration bots");
}

#[test]
fn skipping_deleted_rooms_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = convert(dir.path(), &["--skip-deleted-rooms"]);
    let o = load(&out);
    assert!(!table(&o, "zerver_stream").iter().any(|s| s["name"] == "Deleted room"));
    assert_eq!(report["skip_reasons"]["room"]["deleted_room"], 1);
}

#[test]
fn output_is_byte_identical_across_runs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (out_a, _) = convert(a.path(), &[]);
    let (out_b, _) = convert(b.path(), &[]);
    let (fa, fb) = (common::read_tree(&out_a), common::read_tree(&out_b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs", k.display());
    }
}

/// An export built for the mention rules: an active user, a deactivated one, two
/// users who share a full name, and messages that mention them in every way.
fn mention_export(dir: &Path) -> PathBuf {
    use hcconv::testkit::{Container, Entry};
    use serde_json::json;
    let entry = |path: &str, v: Value| Entry { path: path.into(), bytes: serde_json::to_vec(&v).unwrap() };
    let user = |id: u64, name: &str, mention: &str, deleted: bool| {
        json!({"User": {"id": id, "name": name, "mention_name": mention, "email": format!("u{id}@example.com"), "title": "",
            "avatar": null, "created": "2018-01-01T00:00:00+00:00", "is_deleted": deleted, "timezone": "UTC",
            "account_type": if id == 1 { "admin" } else { "user" }, "roles": if id == 1 { json!(["user", "admin", "owner"]) } else { json!(["user"]) }, "rooms": []}})
    };
    let sender = |id: u64| json!({"id": id, "mention_name": "", "name": "", "version": ""});
    let message = |n: u64, text: &str, mentions: &[u64]| {
        json!({"UserMessage": {"id": format!("m{n}"), "type": "muc_message", "sender": sender(1), "message": text,
            "mentions": mentions.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "timestamp": format!("2018-02-01T10:00:{n:02}Z")}})
    };
    let texts: [(&str, &[u64]); 9] = [
        ("hi @ann", &[2]),
        ("/quote @ann said so", &[2]),
        ("ping @dana", &[3]),
        ("hello @sam1 and @sam2", &[4, 5]),
        ("no mention here", &[2]),
        ("@all look", &[]),
        ("/quote @all said", &[]),
        ("see `@ann` there", &[]),
        ("hey,@ann", &[]),
    ];
    let history: Vec<Value> = texts.iter().enumerate().map(|(i, (t, m))| message(i as u64 + 1, t, m)).collect();
    let entries = vec![
        entry("users.json", json!([user(1, "Owner One", "owner", false), user(2, "Ann Lee", "ann", false), user(3, "Dana Gone", "dana", true), user(4, "Sam Same", "sam1", false), user(5, "Sam Same", "sam2", false)])),
        entry("rooms.json", json!([{"Room": {"id": 1, "created": "2018-01-01T00:00:00+00:00", "guest_access_url": null, "is_archived": false, "members": [1, 2, 3, 4, 5],
            "canonical_name": "general", "name": "General", "owner": 1, "participants": [], "privacy": "public", "room_admins": [1], "topic": "", "is_deleted": false}}])),
        entry("rooms/1/history.json", Value::Array(history)),
    ];
    common::write_container(dir, "mentions.tar", &entries, Container::Tar, "")
}

/// The `mentioned` flag follows what the message shows, as each release renders
/// it: a plain-text name (a deactivated user on 3.4, a name two users share), a
/// mention in a quote (silent), a name Hipchat listed but the text does not show,
/// and (on 9.0, whose server renders Markdown) a mention in inline code or after a
/// character Zulip's look-behind refuses flag nobody.
#[test]
fn mentioned_flags_follow_what_the_message_shows() {
    let dir = tempfile::tempdir().unwrap();
    let export = mention_export(dir.path());
    for (format, deactivated, code_mentions, comma_mentions, quoted_wildcard) in [("3.4", "@Dana Gone", false, true, true), ("9.0", "@**Dana Gone**", false, false, false)] {
        let out = dir.path().join(format);
        common::hcconv().arg(&export).args(["--to", "pixtoome", "--pixtoome-format", format, "--quiet", "-o"]).arg(&out).assert().success();
        let o = load(&out);
        let id = |name: &str| user_by_name(&o, name)["id"].as_u64().unwrap();
        let ann = id("Ann Lee");
        // Users whose row of the message containing `needle` has the mentioned bit (8),
        // and whether every row has the wildcard bit (16).
        let flagged = |needle: &str| {
            let rows = rows_of(&o, &message_with(&o, needle)["id"]);
            let users: Vec<u64> = rows.iter().filter(|(_, f)| *f & 8 != 0).map(|(u, _)| *u).collect();
            (users, rows.values().all(|f| f & 16 != 0))
        };
        assert_eq!(flagged("hi @**Ann Lee**"), (vec![ann], false), "{format}");
        assert_eq!(flagged("said so"), (vec![], false), "{format}: a quoted mention is silent");
        assert_eq!(message_with(&o, "ping")["content"], format!("ping {deactivated}"), "{format}");
        assert_eq!(flagged("ping"), (vec![], false), "{format}: a deactivated user is not notified");
        assert_eq!(message_with(&o, "hello")["content"], "hello @Sam Same and @Sam Same", "{format}");
        assert_eq!(flagged("hello"), (vec![], false), "{format}: a shared name links nobody");
        assert_eq!(flagged("no mention here"), (vec![], false), "{format}: Hipchat's list alone flags nobody");
        assert_eq!(flagged("look"), (vec![], true), "{format}");
        assert_eq!(flagged("@**all** said"), (vec![], quoted_wildcard), "{format}: 3.4 notes a quoted wildcard, later releases do not");
        assert_eq!(flagged("there").0.contains(&ann), code_mentions, "{format}: inline code");
        assert_eq!(flagged("hey,").0.contains(&ann), comma_mentions, "{format}: look-behind");
        if format == "3.4" {
            let html = message_with(&o, "said so")["rendered_content"].as_str().unwrap().to_string();
            assert!(html.contains(&format!("<span class=\"user-mention silent\" data-user-id=\"{ann}\">Ann Lee</span>")), "{html}");
        }
    }
}
