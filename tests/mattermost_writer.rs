//! The Mattermost writer on the quirks fixture: every line against FORMATS.md's
//! rules (tests/mattermost_rules), the fixture's traps one by one, accounting,
//! determinism, the zip layout and the flags' ranges.

mod mattermost_rules;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use mattermost_rules::{check_folder, files_under};

const FIXTURE: &str = "fixtures/quirks.tar.gz.aes";
const PASSWORD_FILE: &str = "fixtures/quirks.password";

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string("fixtures/quirks.manifest.json").unwrap()).unwrap()
}

/// Runs hcconv on the fixture into `dir/out` (or `dir/out.zip`) and returns that path.
fn convert(dir: &Path, extra: &[&str]) -> PathBuf {
    let zip = extra.contains(&"--zip");
    let out = dir.join(if zip { "out.zip" } else { "out" });
    let report = dir.join("report.json");
    Command::cargo_bin("hcconv")
        .unwrap()
        .args([FIXTURE, "--to", "mattermost", "--password-file", PASSWORD_FILE, "-q", "-o"])
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .assert()
        .success()
        .stdout("");
    out
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn lines_of<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).map(|l| &l[kind]).collect()
}

fn find<'a>(items: &[&'a Value], key: &str, value: &str) -> &'a Value {
    items.iter().find(|i| i[key] == value).unwrap_or_else(|| panic!("no line with {key} = {value}"))
}

#[test]
fn every_line_passes_the_import_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let out = convert(tmp.path(), &[]);
    let (errors, referenced, lines) = check_folder(&out, 4000);
    assert!(errors.is_empty(), "rule violations:\n{}", errors.join("\n"));
    assert!(lines.len() > 40);
    // Nothing under data/ that no line uses (mmctl validate lists unused files).
    assert_eq!(files_under(&out.join("data")), referenced);
    assert_eq!(files_under(&out), std::iter::once("import.jsonl".to_string()).chain(referenced.iter().map(|r| format!("data/{r}"))).collect());
}

#[test]
fn checker_catches_broken_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checker = mattermost_rules::Checker::new(tmp.path(), 4000);
    checker.check_all(concat!(
        "{\"type\":\"team\",\"team\":{\"name\":\"helpdesk\",\"display_name\":\"x\",\"type\":\"O\"}}\n",
        "{\"type\":\"post\",\"post\":{\"team\":\"helpdesk\",\"channel\":\"nope\",\"user\":\"ghost\",\"message\":\"\",\"create_at\":0}}\n",
        "{\"type\":\"channel\",\"channel\":{\"team\":\"helpdesk\",\"name\":\"0123456789abcdef0123456789abcdef01234567\",\"display_name\":\"x\",\"type\":\"X\"}}\n",
    ));
    let all = checker.errors.join("\n");
    for expected in ["first line must be", "team name", "allow_open_invite", "undefined channel", "author", "create_at", "after a later segment", "channel name", "type must be O or P"] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn fixture_quirks_come_out_right() {
    let tmp = tempfile::tempdir().unwrap();
    let out = convert(tmp.path(), &[]);
    let (_, _, lines) = check_folder(&out, 4000);
    assert_eq!(lines[0], serde_json::json!({"type": "version", "version": 1, "info": {"generator": "hcconv", "version": env!("CARGO_PKG_VERSION")}}));

    // Team defaults.
    let team = lines_of(&lines, "team");
    assert_eq!(team.len(), 1);
    assert_eq!(team[0]["name"], "hipchat");

    // Channels: "Dev Ops" and "dev-ops" must not collide; "#####" gets a name; deleted/archived rooms archived.
    let channels = lines_of(&lines, "channel");
    assert_eq!(find(&channels, "display_name", "Dev Ops")["name"], "dev-ops");
    assert_eq!(find(&channels, "display_name", "Dev Ops")["type"], "P");
    assert_eq!(find(&channels, "display_name", "dev-ops")["name"], "dev-ops-2");
    assert!(find(&channels, "display_name", "dev-ops")["deleted_at"].as_i64().unwrap() > 0, "archived by its last ArchiveRoomMessage");
    assert!(find(&channels, "display_name", "Deleted room")["deleted_at"].as_i64().unwrap() > 0);
    assert!(find(&channels, "display_name", "Default").get("deleted_at").is_none());
    assert_eq!(find(&channels, "display_name", "#####")["name"], "hashes");
    assert_eq!(channels.len(), 6, "5 rooms + placeholder room 6");

    // Users: case twins are two users; shared e-mail made unique; null e-mails get placeholders.
    let users = lines_of(&lines, "user");
    let bob = find(&users, "username", "bob");
    let bob2 = find(&users, "username", "bob-2");
    assert_eq!(bob["email"], "bob@example.com");
    assert_ne!(bob2["email"], "bob@example.com");
    assert_eq!(find(&users, "username", "hcdcuser")["email"], "user@example.com", "lowercased");
    assert_eq!(find(&users, "username", "hcdcuser")["roles"], "system_admin system_user");
    let guest = find(&users, "username", "guesty");
    assert_eq!(guest["roles"], "system_guest");
    assert_eq!(guest["teams"][0]["roles"], "team_guest");
    assert!(guest["email"].as_str().unwrap().ends_with(".invalid"));
    assert!(find(&users, "username", "goneperson")["delete_at"].as_i64().unwrap() > 0, "deleted user deactivated");
    let ghost = users.iter().find(|u| u["email"].as_str().unwrap().starts_with("hipchat-user-99@")).expect("placeholder for sender 99");
    assert!(ghost["delete_at"].as_i64().unwrap() > 0, "placeholder deactivated");
    assert!(find(&users, "username", "hcdcuser")["profile_image"].is_string());
    assert!(find(&users, "username", "otheruser")["profile_image"].is_string(), "inline avatar");
    // Room admin of Dev Ops (member object with room_admin) and room_admins list.
    let devops_roles = |u: &Value, ch: &str| u["teams"][0]["channels"].as_array().unwrap().iter().find(|c| c["name"] == ch).map(|c| c["roles"].as_str().unwrap().to_string());
    assert_eq!(devops_roles(find(&users, "username", "hcdcuser"), "default").as_deref(), Some("channel_admin channel_user"));
    assert_eq!(devops_roles(bob2, "dev-ops").as_deref(), Some("channel_user"), "member of the private room");
    assert_eq!(devops_roles(ghost, "default").as_deref(), Some("channel_user"), "posters are members");
    // Integrations become users.
    assert!(users.iter().any(|u| u["username"] == "jira"));
    assert!(users.iter().any(|u| u["username"] == "bitbucket"));

    // Emoji: the one with images, not the missing one.
    let emoji = lines_of(&lines, "emoji");
    assert_eq!(emoji.len(), 1);
    assert_eq!(emoji[0]["name"], "hcdc");
    assert!(emoji[0]["image"].as_str().unwrap().ends_with("@4x.png"), "largest size that fits");

    let posts = lines_of(&lines, "post");
    let texts: Vec<&str> = posts.iter().map(|p| p["message"].as_str().unwrap()).collect();
    // Same text, same millisecond, different messages: two posts, distinct create_at.
    let plus_one: Vec<&&Value> = posts.iter().filter(|p| p["message"] == "+1").collect();
    assert_eq!(plus_one.len(), 2);
    assert_ne!(plus_one[0]["create_at"], plus_one[1]["create_at"]);
    // Mentions and emoticons rewritten.
    assert!(texts.contains(&"anyone here? @otheruser :hcdc:"));
    // Deleted messages are not posts.
    assert!(!texts.iter().any(|t| t.is_empty()));
    // Unknown kind kept; notification converted with its card; tags in plain text kept.
    assert!(texts.contains(&"lunch?"));
    assert!(texts.iter().any(|t| t.contains("**Sample link card**") && t.contains("Two lines")));
    assert_eq!(find(&posts, "message", "Card **Sample link card** & [link](http://www.website.com/some-article)\n\nTwo lines\nof text")["user"], "jira");
    assert!(texts.contains(&"keep <username> and </rant> as text"));
    assert!(texts.iter().any(|t| t.starts_with("```\nfn main()")));
    // Events as posts, with system types that pass Post.IsValid.
    let topic = posts.iter().find(|p| p["type"] == "system_header_change").unwrap();
    assert_eq!(topic["props"]["new_header"], "this is the purpose of the room");
    assert_eq!(posts.iter().filter(|p| p["type"] == "system_channel_deleted").count(), 2);
    assert!(texts.iter().any(|t| t.contains("enabled guest access")));
    // Missing attachment: post kept, note in text; shared file placed once, referenced twice.
    assert!(texts.iter().any(|t| t.starts_with("lost file")));
    let shared: Vec<&&Value> = posts.iter().filter(|p| p.get("attachments").is_some()).collect();
    assert_eq!(shared.len(), 2);
    assert_eq!(shared[0]["attachments"], shared[1]["attachments"]);
    // Unknown sender's post kept.
    assert!(posts.iter().any(|p| p["user"] == ghost["username"]));

    // Direct channels: 5 conversations incl. a self-chat; the PM copies imported once.
    let dcs = lines_of(&lines, "direct_channel");
    assert_eq!(dcs.len(), 5);
    assert!(dcs.iter().any(|d| d["members"] == serde_json::json!(["hcdcuser", "hcdcuser"])));
    let dps = lines_of(&lines, "direct_post");
    assert_eq!(dps.len(), 7, "8 unique PMs minus 1 deleted");
    assert_eq!(dps.iter().filter(|d| d["message"] == "nice picture!").count(), 1);
    assert!(dps.iter().any(|d| d.get("attachments").is_some_and(|a| a[0]["path"].as_str().unwrap().ends_with("notes.txt"))));
}

#[test]
fn long_message_is_split_losslessly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = convert(tmp.path(), &["--max-post-runes", "1000"]);
    let (errors, _, lines) = check_folder(&out, 1000);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let parts: Vec<&Value> = lines_of(&lines, "post").into_iter().filter(|p| p["message"].as_str().unwrap().starts_with("word")).collect();
    // 13500 characters, broken after the last space before each 1000th: 13 × 999 + 513.
    assert_eq!(parts.len(), 14);
    assert!(parts.iter().all(|p| p["message"].as_str().unwrap().chars().count() <= 1000));
    let whole: String = parts.iter().map(|p| p["message"].as_str().unwrap()).collect();
    let expected: String = (0..1500).map(|i| format!("word{i:04} ")).collect();
    assert_eq!(whole, expected);
    let times: Vec<i64> = parts.iter().map(|p| p["create_at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[1] == w[0] + 1), "consecutive milliseconds: {times:?}");
    let r = report(tmp.path());
    assert_eq!(r["extra"]["mattermost_parts_extra"], 13);
}

#[test]
fn accounting_balances_against_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = convert(tmp.path(), &[]);
    let m = manifest();
    let r = report(tmp.path());
    let counts = &r["counts"];
    for entity in ["user", "room", "message", "attachment", "emoticon", "avatar"] {
        let c = &counts[entity];
        assert_eq!(c["input"].as_u64().unwrap(), c["written"].as_u64().unwrap() + c["skipped"].as_u64().unwrap(), "{entity} unbalanced: {c}");
    }
    let unique = m["messages_unique"].as_u64().unwrap();
    let deleted = m["deleted"].as_u64().unwrap();
    assert_eq!(counts["message"]["input"], m["messages_raw"]);
    assert_eq!(counts["message"]["written"].as_u64().unwrap(), unique - deleted);
    assert_eq!(r["skip_reasons"]["message"]["deleted"].as_u64().unwrap(), deleted);
    assert_eq!(r["skip_reasons"]["message"]["duplicate"], m["duplicates"]);
    // Every written message is at least one post line; parts are counted apart.
    let (_, _, lines) = check_folder(&out, 4000);
    let post_lines = lines.iter().filter(|l| l["type"] == "post" || l["type"] == "direct_post").count() as u64;
    let parts_extra = r["extra"]["mattermost_parts_extra"].as_u64().unwrap_or(0);
    assert_eq!(post_lines, unique - deleted + parts_extra);
    assert_eq!(counts["room"]["written"], m["rooms_listed"]);
    assert_eq!(counts["user"]["written"], m["users_distinct"]);
    assert_eq!(counts["emoticon"]["written"].as_u64().unwrap(), m["emoticons_listed"].as_u64().unwrap() - m["emoticons_missing"].as_u64().unwrap());
    assert_eq!(counts["avatar"]["written"], m["avatars"]);
    assert_eq!(r["extra"]["mattermost_placeholder_users"], 1);
    assert_eq!(r["extra"]["mattermost_placeholder_channels"], 1);
    // The renames a runbook must see.
    let renames = r["renames"].as_array().unwrap();
    let renamed_to = |to: &str| renames.iter().any(|x| x["to"] == to);
    assert!(renamed_to("dev-ops-2") && renamed_to("bob-2") && renamed_to("hashes"), "{renames:?}");
}

#[test]
fn output_is_byte_identical_across_runs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out_a = convert(a.path(), &[]);
    let out_b = convert(b.path(), &[]);
    let files = files_under(&out_a);
    assert_eq!(files, files_under(&out_b));
    for f in files {
        assert_eq!(std::fs::read(out_a.join(&f)).unwrap(), std::fs::read(out_b.join(&f)).unwrap(), "{f} differs");
    }
    let zip_a = convert(a.path(), &["--zip"]);
    let zip_b = convert(b.path(), &["--zip"]);
    assert_eq!(std::fs::read(zip_a).unwrap(), std::fs::read(zip_b).unwrap());
}

#[test]
fn zip_has_the_same_import_with_jsonl_at_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = convert(tmp.path(), &[]);
    let zip_path = convert(tmp.path(), &["--zip"]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(names[0], "import.jsonl");
    assert_eq!(names.iter().filter(|n| n.ends_with(".jsonl")).count(), 1);
    let expected: std::collections::BTreeSet<String> = files_under(&folder);
    assert_eq!(names.iter().cloned().collect::<std::collections::BTreeSet<_>>(), expected);
    for name in names {
        let mut entry = zip.by_name(&name).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        assert_eq!(bytes, std::fs::read(folder.join(&name)).unwrap(), "{name}");
    }
}

/// `-o NAME.zip` is a zip, as `--zip` makes it: a folder named `hipchat.zip` made
/// `mmctl import upload` fail far from the cause. Scripts that give both still work.
#[test]
fn an_output_named_zip_is_a_zip_with_or_without_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let flagged = std::fs::read(convert(tmp.path(), &["--zip"])).unwrap();
    assert_eq!(&flagged[..4], b"PK\x03\x04");
    for (name, extra) in [("implied.zip", &[][..]), ("SHOUTED.ZIP", &[][..]), ("both.zip", &["--zip"][..])] {
        let out = tmp.path().join(name);
        Command::cargo_bin("hcconv").unwrap().args([FIXTURE, "--to", "mattermost", "--password-file", PASSWORD_FILE, "-q", "-o"]).arg(&out).args(extra).assert().success();
        assert!(out.is_file(), "{name}: a file, not a folder");
        assert_eq!(std::fs::read(&out).unwrap(), flagged, "{name}: the same zip as --zip writes");
    }
}

#[test]
fn team_flags_and_skip_deleted_rooms() {
    let tmp = tempfile::tempdir().unwrap();
    let out = convert(tmp.path(), &["--team", "acme-chat", "--team-display-name", "ACME chat", "--skip-deleted-rooms", "--max-post-runes", "16383"]);
    let (errors, _, lines) = check_folder(&out, 16383);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(lines_of(&lines, "team")[0]["display_name"], "ACME chat");
    assert!(lines_of(&lines, "post").iter().all(|p| p["team"] == "acme-chat"));
    assert!(!lines_of(&lines, "channel").iter().any(|c| c["display_name"] == "Deleted room"));
    let r = report(tmp.path());
    assert_eq!(r["skip_reasons"]["room"]["deleted_room"], 1);
    assert!(lines_of(&lines, "post").iter().any(|p| p["message"].as_str().unwrap().chars().count() == 13500), "one post at 16383");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [&["--max-post-runes", "16384"][..], &["--max-post-runes", "0"], &["--team", "helpdesk"], &["--team", "Bad Name"], &["--team-display-name", ""]] {
        let tmp = tempfile::tempdir().unwrap();
        Command::cargo_bin("hcconv")
            .unwrap()
            .args([FIXTURE, "--to", "mattermost", "--password-file", PASSWORD_FILE, "-q", "-o"])
            .arg(tmp.path().join("out"))
            .args(args)
            .assert()
            .code(2);
        assert!(!tmp.path().join("out").exists(), "no output on a usage error ({args:?})");
    }
}

#[test]
fn unpacked_folder_input_keeps_inline_avatars_and_is_not_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let (entries, _) = hcconv::testkit::quirks_fixture();
    let mut tar = Vec::new();
    hcconv::testkit::write_export(&entries, hcconv::testkit::Container::Tar, "", &mut tar).unwrap();
    tar::Archive::new(&tar[..]).unpack(&export).unwrap();
    let before = files_under(&export);
    let out = dir.path().join("out");
    Command::cargo_bin("hcconv").unwrap().arg(&export).args(["--to", "mattermost", "-q", "-o"]).arg(&out).assert().success();
    assert_eq!(files_under(&export), before, "the export folder must not change");
    let jsonl = std::fs::read_to_string(out.join("import.jsonl")).unwrap();
    let users: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|l| l["type"] == "user").collect();
    let other = users.iter().find(|u| u["user"]["username"] == "otheruser").expect("user 2");
    let image = other["user"]["profile_image"].as_str().expect("inline avatar kept for a folder input");
    assert!(std::fs::read(out.join("data").join(image)).unwrap().starts_with(b"\x89PNG"));
}

/// `--mattermost-profile-images script`, for servers of the 7.x line (their zip
/// import checks `profile_image` outside the zip and stops; they ignore
/// `deleted_at`): no user line names an image, the images still ship, and
/// after-import.sh sets each one and archives each archived channel.
#[test]
fn profile_images_by_script_for_7x_servers() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["bulk", "script", "zip"] {
        std::fs::create_dir(tmp.path().join(sub)).unwrap();
    }
    let bulk = convert(&tmp.path().join("bulk"), &[]);
    let out = convert(&tmp.path().join("script"), &["--mattermost-profile-images", "script"]);
    let (errors, referenced, lines) = check_folder(&out, 4000);
    assert!(errors.is_empty(), "rule violations:\n{}", errors.join("\n"));
    let (_, _, bulk_lines) = check_folder(&bulk, 4000);
    let bulk_users = lines_of(&bulk_lines, "user");
    let with_image: Vec<&&Value> = bulk_users.iter().filter(|u| u.get("profile_image").is_some()).collect();
    let images: std::collections::BTreeSet<String> = with_image.iter().map(|u| format!("data/{}", u["profile_image"].as_str().unwrap())).collect();
    assert!(!with_image.is_empty(), "the fixture has avatars");
    assert!(lines_of(&lines, "user").iter().all(|u| u.get("profile_image").is_none()));
    let script = std::fs::read_to_string(out.join("after-import.sh")).unwrap();
    for u in with_image {
        let image = u["profile_image"].as_str().unwrap();
        assert!(out.join("data").join(image).is_file(), "{image} ships");
        assert!(script.contains(&format!("set_image '{}' 'data/{image}'\n", u["username"].as_str().unwrap())), "{script}");
    }
    for c in lines_of(&lines, "channel").iter().filter(|c| c.get("deleted_at").is_some()) {
        assert!(script.contains(&format!("archive 'hipchat' '{}'\n", c["name"].as_str().unwrap())), "{script}");
    }
    // Every file is a line's, an image or the script; the other lines are the default's.
    let expected: std::collections::BTreeSet<String> = ["import.jsonl".to_string(), "after-import.sh".to_string()].into_iter().chain(referenced.iter().map(|r| format!("data/{r}"))).chain(images).collect();
    assert_eq!(files_under(&out), expected);
    let strip = |ls: &[Value]| ls.iter().map(|l| { let mut l = l.clone(); if let Some(u) = l.get_mut("user").and_then(Value::as_object_mut) { u.remove("profile_image"); } l }).collect::<Vec<_>>();
    assert_eq!(strip(&lines), strip(&bulk_lines));
    // In a zip the script stands beside import.jsonl.
    let zip_path = convert(&tmp.path().join("zip"), &["--mattermost-profile-images", "script", "--zip"]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut entry = zip.by_name("after-import.sh").unwrap();
    let mut zipped = String::new();
    std::io::Read::read_to_string(&mut entry, &mut zipped).unwrap();
    assert_eq!(zipped, script);
}
