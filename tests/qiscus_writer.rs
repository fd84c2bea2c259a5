//! The Qiscus writer, end to end: run the binary on the quirks fixture (and on a
//! synthetic export for file rollover), parse every output file, and check each rule
//! of the import API (FORMATS.md section 3) and of the accounting contract.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::DateTime;
use serde_json::Value;

const FIXTURE: &str = "fixtures/quirks.tar.gz.aes";
const PASSWORD_FILE: &str = "fixtures/quirks.password";
const BASE: &str = "https://files.example.com/hc";
const API_FILE_LIMIT: u64 = 4_000_000;

fn manifest() -> Value {
    serde_json::from_slice(&fs::read("fixtures/quirks.manifest.json").unwrap()).unwrap()
}

/// A secret file in `dir`.
fn secret(dir: &Path, content: &str) -> PathBuf {
    let p = dir.join(format!("secret-{}", content.len()));
    fs::write(&p, content).unwrap();
    p
}

struct Run {
    out: PathBuf,
    report: Value,
}

/// Converts `input` to Qiscus into `dir/name` with `extra` flags; asserts success.
fn convert(dir: &Path, name: &str, input: &str, secret: &Path, extra: &[&str]) -> Run {
    let out = dir.join(name);
    let report = dir.join(format!("{name}.report.json"));
    let mut cmd = Command::cargo_bin("hcconv").unwrap();
    cmd.arg(input).args(["--to", "qiscus", "-o"]).arg(&out).arg("--secret-file").arg(secret).arg("--report").arg(&report).arg("--quiet");
    if input == FIXTURE {
        cmd.args(["--password-file", PASSWORD_FILE]);
    }
    cmd.args(extra).assert().success();
    Run { out, report: serde_json::from_slice(&fs::read(report).unwrap()).unwrap() }
}

fn fixture_run(dir: &Path, extra: &[&str]) -> Run {
    let s = secret(dir, "correct horse battery staple 42\n");
    let mut flags = vec!["--files-base-url", BASE];
    flags.extend_from_slice(extra);
    convert(dir, "out", FIXTURE, &s, &flags)
}

/// The files of one kind in upload order: (name, size, rows).
fn files_of(out: &Path, kind: &str) -> Vec<(String, u64, Vec<Value>)> {
    let mut names: Vec<String> = fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&format!("{kind}-")) && n.ends_with(".json")).collect();
    names.sort();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n, &format!("{kind}-{:04}.json", i + 1), "files are numbered without gaps");
    }
    names
        .into_iter()
        .map(|n| {
            let bytes = fs::read(out.join(&n)).unwrap();
            let rows: Vec<Value> = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{n} is not a JSON array: {e}"));
            assert!(!rows.is_empty(), "{n} is an empty array");
            (n, bytes.len() as u64, rows)
        })
        .collect()
}

fn rows_of(out: &Path, kind: &str) -> Vec<Value> {
    files_of(out, kind).into_iter().flat_map(|(_, _, rows)| rows).collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn comments_by_base_id(comments: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for c in comments {
        let id = s(c, "UniqueId");
        let base = id.rsplit_once("-part").filter(|(_, n)| n.parse::<u32>().is_ok()).map_or(id, |(b, _)| b);
        out.entry(base.to_string()).or_default().push(c);
    }
    out
}

fn comment_with<'a>(comments: &'a [Value], needle: &str) -> &'a Value {
    let found: Vec<&Value> = comments.iter().filter(|c| s(c, "Message").contains(needle)).collect();
    assert_eq!(found.len(), 1, "expected one comment containing {needle:?}, found {}", found.len());
    found[0]
}

#[test]
fn every_row_has_exactly_the_api_keys_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    let set = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for u in rows_of(&run.out, "users") {
        assert_eq!(keys(&u), set(&["Email", "Name", "AvatarUrl", "AuthenticationToken", "Password", "CreateAt"]), "{u}");
        DateTime::parse_from_rfc3339(s(&u, "CreateAt")).unwrap();
        assert!(!s(&u, "Name").is_empty());
    }
    for r in rows_of(&run.out, "rooms") {
        assert_eq!(keys(&r), set(&["Name", "Type", "Options", "CreatorEmail", "CreatedAt", "AvatarUrl", "UniqueId", "ParticipantEmails"]), "{r}");
        DateTime::parse_from_rfc3339(s(&r, "CreatedAt")).unwrap();
        let options: Value = serde_json::from_str(s(&r, "Options")).expect("Options is JSON text");
        assert_eq!(options["source"], "hipchat");
    }
    for c in rows_of(&run.out, "comments") {
        assert_eq!(keys(&c), set(&["Message", "DisableLinkPreview", "Type", "UniqueId", "CreatorEmail", "RoomUniqueId", "CreatedAt", "Payload", "ParentCommentUniqueId"]), "{c}");
        assert_eq!(c["Type"], "text");
        assert_eq!(c["Payload"], Value::Null);
        assert_eq!(c["ParentCommentUniqueId"], "");
        assert_eq!(c["DisableLinkPreview"], false);
        DateTime::parse_from_rfc3339(s(&c, "CreatedAt")).unwrap();
    }
}

#[test]
fn ids_emails_and_credentials_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let users = rows_of(&run.out, "users");
    for key in ["Email", "AuthenticationToken", "Password"] {
        let all: Vec<&str> = users.iter().map(|u| s(u, key)).collect();
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len(), "{key} not unique");
        assert!(all.iter().all(|v| !v.is_empty()));
    }
    for u in &users {
        let email = s(u, "Email");
        assert_eq!(email, email.to_lowercase(), "e-mails are lowercase");
        assert!(s(u, "Password").len() >= 43 && s(u, "AuthenticationToken").len() >= 43, "credentials are long random-looking strings");
    }
    let rooms = rows_of(&run.out, "rooms");
    assert_eq!(rooms.iter().map(|r| s(r, "UniqueId")).collect::<BTreeSet<_>>().len(), rooms.len());
    let comments = rows_of(&run.out, "comments");
    assert_eq!(comments.iter().map(|c| s(c, "UniqueId")).collect::<BTreeSet<_>>().len(), comments.len());
}

#[test]
fn references_resolve_in_upload_order_and_authors_are_participants() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let mut emails = BTreeSet::new();
    for (_, _, rows) in files_of(&run.out, "users") {
        emails.extend(rows.iter().map(|u| s(u, "Email").to_string()));
    }
    let mut rooms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, _, rows) in files_of(&run.out, "rooms") {
        for r in rows {
            for e in r["ParticipantEmails"].as_array().unwrap() {
                assert!(emails.contains(e.as_str().unwrap()), "{name}: participant {e} is not an uploaded user");
            }
            assert!(emails.contains(s(&r, "CreatorEmail")), "{name}: creator of {} unknown", s(&r, "UniqueId"));
            let participants: BTreeSet<String> = r["ParticipantEmails"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
            assert!(participants.contains(s(&r, "CreatorEmail")), "creator is a participant of {}", s(&r, "UniqueId"));
            rooms.insert(s(&r, "UniqueId").to_string(), participants);
        }
    }
    for (name, _, rows) in files_of(&run.out, "comments") {
        for c in rows {
            let room = rooms.get(s(&c, "RoomUniqueId")).unwrap_or_else(|| panic!("{name}: room {} not uploaded before", s(&c, "RoomUniqueId")));
            assert!(emails.contains(s(&c, "CreatorEmail")));
            assert!(room.contains(s(&c, "CreatorEmail")), "{} posts in {} without being a participant", s(&c, "CreatorEmail"), s(&c, "RoomUniqueId"));
        }
    }
}

#[test]
fn single_rooms_have_two_participants_and_self_chat_becomes_notes() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let rooms = rows_of(&run.out, "rooms");
    let singles: Vec<&Value> = rooms.iter().filter(|r| r["Type"] == "single").collect();
    // Five conversations in the fixture, one of them with oneself.
    assert_eq!(singles.len() as u64, manifest()["private_conversations"].as_u64().unwrap() - 1);
    for r in &singles {
        let p: Vec<&str> = r["ParticipantEmails"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        assert_eq!(p.len(), 2, "{r}");
        assert_ne!(p[0], p[1]);
        assert!(p.contains(&s(r, "CreatorEmail")));
    }
    let dm = rooms.iter().find(|r| r["UniqueId"] == "hipchat-dm-1-2").unwrap();
    assert_eq!(dm["Type"], "single");
    let notes = rooms.iter().find(|r| r["UniqueId"] == "hipchat-notes-1").expect("self-chat room");
    assert_eq!(notes["Type"], "group");
    assert_eq!(notes["Name"], "Notes of HCDC User");
    assert_eq!(notes["ParticipantEmails"], serde_json::json!(["user@example.com"]));
    let comments = rows_of(&run.out, "comments");
    assert_eq!(comment_with(&comments, "note to self")["RoomUniqueId"], "hipchat-notes-1");
    assert_eq!(rooms.iter().filter(|r| r["Type"] == "group").count(), 7, "rooms 1-6 and the notes room");
}

#[test]
fn created_at_strictly_increases_within_each_room() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let mut last: BTreeMap<String, DateTime<chrono::FixedOffset>> = BTreeMap::new();
    for c in rows_of(&run.out, "comments") {
        let t = DateTime::parse_from_rfc3339(s(&c, "CreatedAt")).unwrap();
        assert_eq!(t.timestamp_subsec_micros() % 1000, 0, "millisecond precision");
        if let Some(prev) = last.insert(s(&c, "RoomUniqueId").to_string(), t) {
            assert!(t > prev, "{} at {t} is not after {prev}", s(&c, "UniqueId"));
        }
    }
    // The two "+1" messages 800 µs apart in the same millisecond stay two, in order.
    let comments = rows_of(&run.out, "comments");
    let plus: Vec<&Value> = comments.iter().filter(|c| c["Message"] == "+1").collect();
    assert_eq!(plus.len(), 2);
    assert_eq!((s(plus[0], "CreatedAt"), s(plus[1], "CreatedAt")), ("2018-04-02T15:42:00.100Z", "2018-04-02T15:42:00.101Z"));
    assert!(run.report["extra"]["qiscus_created_at_shifted"].as_u64().unwrap() >= 1);
}

#[test]
fn long_message_is_split_losslessly_within_the_send_limit() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let comments = rows_of(&run.out, "comments");
    for c in &comments {
        let m = s(c, "Message");
        assert!(m.len() <= 4000 && m.chars().count() <= 4000, "{} is {} bytes", s(c, "UniqueId"), m.len());
    }
    let long: String = (0..1500).map(|i| format!("word{i:04} ")).collect();
    let groups = comments_by_base_id(&comments);
    let parts = groups.iter().find(|(id, _)| id.ends_with("-long1")).map(|(_, p)| p).expect("long message written");
    assert!(parts.len() > 1);
    assert_eq!(parts.iter().map(|c| s(c, "Message")).collect::<String>(), long);
    assert_eq!(run.report["extra"]["qiscus_parts_extra"].as_u64().unwrap(), parts.len() as u64 - 1);
}

#[test]
fn text_rules_slash_commands_mentions_notifications_events() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let c = rows_of(&run.out, "comments");
    assert_eq!(s(comment_with(&c, "println"), "Message"), "fn main() {\n    println!(\"hi\");\n}");
    assert_eq!(s(comment_with(&c, "to be or not"), "Message"), "> to be or not to be");
    assert_eq!(s(comment_with(&c, "waves"), "Message"), "Other User waves");
    assert_eq!(s(comment_with(&c, "anyone here?"), "Message"), "anyone here? @Other User (hcdc)");
    assert_eq!(s(comment_with(&c, "thanks"), "Message"), "thanks @Other User");
    assert_eq!(s(comment_with(&c, "<username>"), "Message"), "keep <username> and </rant> as text");
    let card = comment_with(&c, "Sample link card");
    assert_eq!(s(card, "Message"), "Card Sample link card & link (http://www.website.com/some-article)\n\nTwo lines\nof text");
    assert_eq!(card["CreatorEmail"], "hipchat-integration-jira@hipchat.invalid");
    assert!(c.iter().any(|x| x["Message"] == "build passed"), "html notification converted");
    assert!(c.iter().any(|x| x["Message"] == "build <i>passed</i>"), "text notification kept verbatim");
    assert_eq!(s(comment_with(&c, "topic"), "Message"), "HCDC User changed the room topic to: this is the purpose of the room");
    assert_eq!(s(comment_with(&c, "guest access"), "Message"), "HCDC User enabled guest access: https://hipchat.example.com/gQ82tnQz5");
    assert_eq!(c.iter().filter(|x| x["Message"] == "HCDC User archived the room").count(), 2);
    assert_eq!(c.iter().filter(|x| x["Message"] == "HCDC User unarchived the room").count(), 1);
    assert_eq!(s(comment_with(&c, "lunch?"), "Message"), "[Hipchat PollMessage] lunch?");
    assert!(!c.iter().any(|x| s(x, "UniqueId").contains("pmdel") || s(x, "UniqueId").ends_with("-d1")), "deleted messages are not comments");
    let ghost = comment_with(&c, "ghost PM");
    assert_eq!(ghost["CreatorEmail"], "hipchat-user-99@hipchat.invalid");
}

#[test]
fn attachments_are_copied_and_linked() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let c = rows_of(&run.out, "comments");
    let link = format!("{BASE}/rooms/1/files/BcudLU14VxUEeUK/img.png");
    assert!(s(comment_with(&c, "File uploaded"), "Message").ends_with(&format!("Attachment GOPR4259.png: {link}")));
    assert!(s(comment_with(&c, "same picture again"), "Message").ends_with(&link), "a shared file is linked from both messages");
    assert!(s(comment_with(&c, "nice picture!"), "Message").contains(&format!("{BASE}/users/files/0Lp9rkaHfzLpPow/img.png")));
    assert!(s(comment_with(&c, "see attached"), "Message").contains(&format!("{BASE}/users/5/files/k9k9k9k9/notes.txt")));
    assert_eq!(s(comment_with(&c, "lost file"), "Message"), "lost file\n\nAttachment report.pdf (not in the Hipchat export)");
    assert_eq!(fs::read(run.out.join("files/users/5/files/k9k9k9k9/notes.txt")).unwrap(), b"hello notes");
    for u in c.iter().flat_map(|x| s(x, "Message").split_whitespace().filter(|w| w.starts_with(BASE)).map(str::to_string).collect::<Vec<_>>()) {
        let rel = u.strip_prefix(&format!("{BASE}/")).unwrap();
        assert!(run.out.join("files").join(rel).is_file(), "link {u} has no file in OUT/files");
    }
    let users = rows_of(&run.out, "users");
    let avatar = |email: &str| users.iter().find(|u| u["Email"] == email).map(|u| s(u, "AvatarUrl").to_string()).unwrap();
    assert_eq!(avatar("user@example.com"), format!("{BASE}/users/1/avatars/PrypXtu4rN8sEFL.png"));
    assert!(avatar("other@example.com").starts_with("https://"));
    assert_eq!(avatar("bob@example.com"), "");
    for u in &users {
        let url = s(u, "AvatarUrl");
        assert!(url.is_empty() || (url.starts_with("https://") && run.out.join("files").join(url.strip_prefix(&format!("{BASE}/")).unwrap()).is_file()));
    }
}

#[test]
fn without_https_base_avatars_are_reported_not_linked() {
    let dir = tempfile::tempdir().unwrap();
    let s_ = secret(dir.path(), "correct horse battery staple 42");
    let run = convert(dir.path(), "plain", FIXTURE, &s_, &["--files-base-url", "http://intranet.example.com/hc/"]);
    assert!(rows_of(&run.out, "users").iter().all(|u| u["AvatarUrl"] == ""));
    assert_eq!(run.report["counts"]["avatar"]["skipped"], 2);
    let c = rows_of(&run.out, "comments");
    assert!(s(comment_with(&c, "see attached"), "Message").contains("http://intranet.example.com/hc/users/5/files/k9k9k9k9/notes.txt"));
    let run = convert(dir.path(), "nobase", FIXTURE, &s_, &[]);
    assert!(s(comment_with(&rows_of(&run.out, "comments"), "see attached"), "Message").ends_with("files/users/5/files/k9k9k9k9/notes.txt"));
    assert!(run.report["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("--files-base-url")));
}

#[test]
fn users_get_unique_lowercase_emails_and_placeholders_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let users = rows_of(&run.out, "users");
    let emails: BTreeSet<&str> = users.iter().map(|u| s(u, "Email")).collect();
    for e in ["user@example.com", "other@example.com", "bob@example.com", "hipchat-user-3@hipchat.invalid", "hipchat-user-4@hipchat.invalid", "hipchat-user-6@hipchat.invalid", "hipchat-user-99@hipchat.invalid", "hipchat-integration-jira@hipchat.invalid", "hipchat-integration-bitbucket@hipchat.invalid"] {
        assert!(emails.contains(e), "{e} missing from {emails:?}");
    }
    assert_eq!(users.len(), 9);
    let renamed: BTreeSet<&str> = run.report["renames"].as_array().unwrap().iter().filter(|r| r["entity"] == "user").map(|r| r["to"].as_str().unwrap()).collect();
    // Guest and deleted user without e-mail, the second user of bob@example.com, the unknown sender 99.
    assert_eq!(renamed, BTreeSet::from(["hipchat-user-3@hipchat.invalid", "hipchat-user-4@hipchat.invalid", "hipchat-user-6@hipchat.invalid", "hipchat-user-99@hipchat.invalid"]));
    assert_eq!(users.iter().find(|u| u["Email"] == "hipchat-user-6@hipchat.invalid").unwrap()["Name"], "Bob Twin");
}

#[test]
fn accounting_every_message_is_a_comment_or_a_reported_skip() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &[]);
    let m = manifest();
    let counts = &run.report["counts"];
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(n(&counts["message"]["input"]), n(&m["messages_raw"]));
    assert_eq!(n(&counts["message"]["written"]) + n(&counts["message"]["skipped"]), n(&m["messages_raw"]));
    assert_eq!(n(&run.report["skip_reasons"]["message"]["duplicate"]), n(&m["duplicates"]));
    assert_eq!(n(&run.report["skip_reasons"]["message"]["deleted"]), n(&m["deleted"]));
    let written = n(&m["messages_unique"]) - n(&m["deleted"]);
    assert_eq!(n(&counts["message"]["written"]), written);
    let comments = rows_of(&run.out, "comments");
    assert_eq!(comments_by_base_id(&comments).len() as u64, written, "one comment (or one split group) per written message");
    assert_eq!(comments.len() as u64, written + n(&run.report["extra"]["qiscus_parts_extra"]));
    for entity in ["user", "room", "attachment", "emoticon", "avatar", "message"] {
        let c = &counts[entity];
        assert_eq!(n(&c["input"]), n(&c["written"]) + n(&c["skipped"]), "{entity} unbalanced");
    }
    assert_eq!(n(&counts["attachment"]["written"]), n(&m["attachments_referenced"]) - n(&m["attachments_missing"]));
    assert_eq!(n(&counts["user"]["written"]), n(&m["users_distinct"]));
    assert_eq!(n(&counts["room"]["written"]), n(&m["rooms_listed"]));
    assert_eq!(n(&run.report["extra"]["qiscus_placeholder_rooms"]), 1);
    assert_eq!(n(&run.report["extra"]["qiscus_placeholder_users"]), 1);
    assert_eq!(n(&run.report["extra"]["qiscus_integration_users"]), 2);
}

#[test]
fn skip_deleted_rooms_leaves_room_4_out_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &["--skip-deleted-rooms"]);
    assert!(!rows_of(&run.out, "rooms").iter().any(|r| r["UniqueId"] == "hipchat-room-4"));
    assert_eq!(run.report["skip_reasons"]["room"]["deleted_room"], 1);
}

#[test]
fn output_is_byte_identical_with_the_same_secret_and_credentials_change_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = secret(dir.path(), "the same secret, twice over!");
    let a = convert(dir.path(), "a", FIXTURE, &s1, &["--files-base-url", BASE]);
    let b = convert(dir.path(), "b", FIXTURE, &s1, &["--files-base-url", BASE]);
    let (ta, tb) = (common::read_tree(&a.out), common::read_tree(&b.out));
    assert!(ta.len() >= 8);
    assert_eq!(ta, tb);
    let s2 = secret(dir.path(), "a different secret, not the same");
    let c = convert(dir.path(), "c", FIXTURE, &s2, &["--files-base-url", BASE]);
    let (ua, uc) = (rows_of(&a.out, "users"), rows_of(&c.out, "users"));
    for (x, y) in ua.iter().zip(&uc) {
        assert_eq!(x["Email"], y["Email"]);
        assert_ne!(x["Password"], y["Password"]);
        assert_ne!(x["AuthenticationToken"], y["AuthenticationToken"]);
    }
    assert_eq!(fs::read(a.out.join("comments-0001.json")).unwrap(), fs::read(c.out.join("comments-0001.json")).unwrap());
}

#[test]
fn files_roll_over_below_the_limit_without_splitting_rows() {
    let dir = tempfile::tempdir().unwrap();
    let run = fixture_run(dir.path(), &["--qiscus-max-file-bytes", "4500"]);
    let mut total = 0;
    for kind in ["users", "rooms", "comments"] {
        for (name, size, rows) in files_of(&run.out, kind) {
            assert!(size <= 4500, "{name} is {size} bytes");
            total += rows.len();
        }
    }
    assert!(files_of(&run.out, "comments").len() >= 4, "the four ~4 KB parts cannot share files");
    // Same rows, same order as a run with the API's limit.
    let full = fixture_run(&dir.path().join("x").tap_mkdir(), &[]);
    for kind in ["users", "rooms", "comments"] {
        assert_eq!(rows_of(&run.out, kind), rows_of(&full.out, kind), "{kind}");
        for (name, size, _) in files_of(&full.out, kind) {
            assert!(size <= API_FILE_LIMIT, "{name}");
        }
    }
    assert!(total > 0);
}

#[test]
fn rollover_on_a_larger_synthetic_export_for_every_kind() {
    use hcconv::testkit::{write_scaled_export, Container, ScaleSpec};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scaled.tar");
    let spec = ScaleSpec { messages: 600, rooms: 12, users: 30, attachment_every: 50, attachment_bytes: 64, private_percent: 20, shape: Default::default() };
    write_scaled_export(spec, Container::Tar, "", fs::File::create(&input).unwrap()).unwrap();
    let s_ = secret(dir.path(), "0123456789abcdef0123456789abcdef");
    let run = convert(dir.path(), "scaled", input.to_str().unwrap(), &s_, &["--files-base-url", BASE, "--qiscus-max-file-bytes", "3000"]);
    let mut emails = BTreeSet::new();
    let mut rooms = BTreeSet::new();
    for kind in ["users", "rooms", "comments"] {
        let files = files_of(&run.out, kind);
        assert!(files.len() >= 2, "{kind} did not roll over");
        for (name, size, rows) in files {
            assert!(size <= 3000, "{name} is {size} bytes");
            for r in rows {
                match kind {
                    "users" => assert!(emails.insert(s(&r, "Email").to_string())),
                    "rooms" => {
                        assert!(emails.contains(s(&r, "CreatorEmail")));
                        assert!(rooms.insert(s(&r, "UniqueId").to_string()));
                    }
                    _ => assert!(rooms.contains(s(&r, "RoomUniqueId")) && emails.contains(s(&r, "CreatorEmail"))),
                }
            }
        }
    }
    let counts = &run.report["counts"]["message"];
    assert_eq!(counts["input"], counts["written"]);
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let short = secret(dir.path(), "short");
    let good = secret(dir.path(), "long enough secret for the test");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--secret-file"),
        (vec!["--secret-file".into(), short.display().to_string()], "at least 16"),
        (vec!["--secret-file".into(), good.display().to_string(), "--files-base-url".into(), "ftp://x.org".into()], "https://"),
        (vec!["--secret-file".into(), good.display().to_string(), "--files-base-url".into(), "files.example.com".into()], "https://"),
    ];
    for (i, (flags, needle)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("o{i}"));
        let assert = Command::cargo_bin("hcconv").unwrap().arg(FIXTURE).args(["--to", "qiscus", "--password-file", PASSWORD_FILE, "-o"]).arg(&out).args(&flags).assert().code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains(needle), "case {i}: {stderr}");
        assert!(!out.exists(), "case {i} left output behind");
    }
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        fs::create_dir_all(&self).unwrap();
        self
    }
}
