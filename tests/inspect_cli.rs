//! `hcconv inspect` against the quirks fixture's manifest (counted while the fixture
//! was built, not by reading it back), for every way an export can be packaged, in
//! any entry order, and run after run.

mod common;

use std::path::Path;

use hcconv::archive::crypto::Kdf;
use hcconv::archive::OpenOptions;
use hcconv::storage::files::FileStore;
use hcconv::hipchat::{read_export, ReadOptions};
use hcconv::inspect::Inventory;
use hcconv::report::Report;
use hcconv::testkit::{Container, Entry};
use proptest::prelude::*;
use serde_json::Value;

use common::*;

/// The inventory without the one field that names the packaging.
fn without_kind(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("input_kind");
    v
}

#[test]
fn committed_manifest_matches_the_generator() {
    // The committed archives are described by the committed manifest; if the generator
    // changed without remaking them, say so here rather than in a puzzling count.
    let (_, live) = quirks();
    assert_eq!(live, committed_manifest(), "fixtures/quirks.manifest.json is stale: remake it with examples/gen_fixture");
}

#[test]
fn committed_fixture_gives_the_manifest_counts() {
    let inv = inspect_json(&repo("fixtures/quirks.tar.gz.aes"), &["--password-file", repo("fixtures/quirks.password").to_str().unwrap()], None);
    assert_manifest_counts(&inv, &committed_manifest());
    assert_clean_read(&inv, "encrypted");
}

/// Two slices are counted as a conversion merges them: every message twice in
/// input, each once after de-duplication.
#[test]
fn slices_are_counted_merged() {
    let fixture = repo("fixtures/quirks.tar.gz.aes");
    let password = repo("fixtures/quirks.password");
    let out = hcconv().arg("inspect").arg(&fixture).arg(&fixture).arg("--json").arg("--password-file").arg(&password).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inv: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = committed_manifest();
    assert_eq!(num(&inv, "/messages/raw"), 2 * num(&m, "/messages_raw"));
    assert_eq!(num(&inv, "/messages/unique"), num(&m, "/messages_unique"));
    assert_eq!(num(&inv, "/users/total"), num(&m, "/users_distinct"));
}

#[test]
fn every_packaging_gives_the_manifest_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks();
    let password = "pack ag1ng";
    let mut inventories = Vec::new();
    for (name, container, kind, kdf) in [
        ("md5.tar.gz.aes", Container::Encrypted(Kdf::Md5), "encrypted", Some("md5")),
        ("sha256.tar.gz.aes", Container::Encrypted(Kdf::Sha256), "encrypted", Some("sha256")),
        ("pbkdf2.tar.gz.aes", Container::Encrypted(Kdf::Pbkdf2(10_000)), "encrypted", Some("pbkdf2 (10000 iterations)")),
        ("plain.tar.gz", Container::TarGz, "tar_gz", None),
        ("plain.tar", Container::Tar, "tar", None),
    ] {
        let path = write_container(dir.path(), name, &entries, container, password);
        let out = hcconv().args(["inspect", "--json", "--verbose"]).arg(&path).env("HCCONV_PASSWORD", password).output().unwrap();
        let (stdout, stderr) = outputs(&out);
        assert!(out.status.success(), "{name}: {stderr}");
        match kdf {
            Some(k) => assert!(stderr.contains(&format!("decrypting with key derivation {k}\n")), "{name}: kdf not reported: {stderr}"),
            None => assert!(!stderr.contains("key derivation"), "{name}: not encrypted, yet: {stderr}"),
        }
        let inv: Value = serde_json::from_str(&stdout).unwrap();
        assert_manifest_counts(&inv, &manifest);
        assert_clean_read(&inv, kind);
        assert_eq!(num(&inv, "/entries"), entries.len() as u64, "{name}");
        inventories.push((name, inv));
    }

    // The same export unpacked into a folder, as `tar x` leaves it.
    let folder = dir.path().join("unpacked");
    unpack(&tar_bytes(&entries), &folder);
    assert!(folder.join("users.json").is_file() && folder.join("rooms/1/history.json").is_file());
    let inv = inspect_json(&folder, &[], None);
    assert_manifest_counts(&inv, &manifest);
    assert_clean_read(&inv, "folder");
    assert_eq!(num(&inv, "/entries"), entries.len() as u64);
    inventories.push(("folder", inv));

    // And wrapped in one top folder, as some people re-pack it.
    let wrapped: Vec<Entry> = entries.iter().map(|e| Entry { path: format!("hipchat_export/{}", e.path), bytes: e.bytes.clone() }).collect();
    let path = write_container(dir.path(), "wrapped.tar.gz", &wrapped, Container::TarGz, "");
    let inv = inspect_json(&path, &[], None);
    assert_manifest_counts(&inv, &manifest);
    assert_clean_read(&inv, "tar_gz");
    inventories.push(("wrapped", inv));

    // Beyond the manifest's numbers: every packaging gives the very same inventory.
    let (first_name, first) = &inventories[0];
    for (name, inv) in &inventories[1..] {
        assert_eq!(without_kind(inv.clone()), without_kind(first.clone()), "{name} differs from {first_name}");
    }
}

#[test]
fn inventory_details_of_the_quirks_fixture() {
    // Numbers the manifest does not state but HIPCHAT.md's deviations imply.
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    let path = write_container(dir.path(), "q.tar", &entries, Container::Tar, "");
    let inv = inspect_json(&path, &[], None);
    assert_eq!(num(&inv, "/rooms/total"), 5);
    assert_eq!(num(&inv, "/rooms/unknown"), 1, "room 6 has history but is not in rooms.json");
    assert_eq!(num(&inv, "/rooms/archived"), 1, "room 3 is archived by its last ArchiveRoomMessage");
    assert_eq!(num(&inv, "/rooms/deleted"), 1);
    assert_eq!(num(&inv, "/rooms/private"), 1);
    assert_eq!(num(&inv, "/users/guests"), 1);
    assert_eq!(num(&inv, "/users/deleted"), 1);
    assert_eq!(num(&inv, "/users/without_email"), 2);
    assert_eq!(num(&inv, "/messages/self_messages"), 1);
    assert_eq!(num(&inv, "/messages/from_integrations"), 3);
    assert_eq!(at(&inv, "/messages/integrations"), &serde_json::json!(["Bitbucket", "JIRA"]));
    assert_eq!(at(&inv, "/messages/unknown_kinds"), &serde_json::json!({"PollMessage": 1}));
    assert_eq!(at(&inv, "/messages/unknown_fields"), &serde_json::json!({"UserMessage.reactions": 1}));
    assert_eq!(num(&inv, "/messages/in_rooms") + num(&inv, "/messages/private"), num(&inv, "/messages/unique"));
    assert_eq!(at(&inv, "/messages/first"), "2018-04-02T14:54:04.777248Z");
    assert_eq!(at(&inv, "/messages/last"), "2018-04-05T10:00:00.000000Z");
    assert_eq!(num(&inv, "/files/attachment_files"), 3, "one file is referenced twice");
    assert_eq!(num(&inv, "/autojoin_memberships"), 2);
    assert_eq!(num(&inv, "/preference_entries"), 1);
}

#[test]
fn text_output_states_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, m) = quirks();
    let path = write_container(dir.path(), "q.tar.gz", &entries, Container::TarGz, "");
    let out = hcconv().arg("inspect").arg(&path).output().unwrap();
    let (stdout, stderr) = outputs(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with(&format!("input           tar_gz, {} entries\n", entries.len())), "{stdout}");
    let messages = format!("messages        {} unique of {} raw ({} duplicates, 0 unreadable, {} deleted)", num(&m, "/messages_unique"), num(&m, "/messages_raw"), num(&m, "/duplicates"), num(&m, "/deleted"));
    assert!(stdout.contains(&messages), "missing {messages:?} in:\n{stdout}");
    assert!(stdout.contains("unknown senders (not in users.json): 1 [99]"), "{stdout}");
    assert!(stdout.contains(&format!("attachments     {} referenced, 4 found, {} missing", num(&m, "/attachments_referenced"), num(&m, "/attachments_missing"))), "{stdout}");
    assert!(stdout.contains("emoticons       2 (1 with images, 4 image files, 1 without images)"), "{stdout}");
    assert!(stdout.contains("  PrivateUserMessage             8  (raw 11)"), "{stdout}");
}

#[test]
fn entry_order_does_not_matter_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks();
    // The fixture already has histories before users.json and rooms.json.
    let users_at = entries.iter().position(|e| e.path == "users.json").unwrap();
    let first_history = entries.iter().position(|e| e.path.ends_with("history.json")).unwrap();
    assert!(first_history < users_at, "the fixture should put histories first");
    let mut reversed = entries.clone();
    reversed.reverse();
    let mut catalog_first = entries.clone();
    catalog_first.sort_by_key(|e| (e.path.contains('/'), e.path.clone()));
    let a = inspect_json(&write_container(dir.path(), "a.tar", &entries, Container::Tar, ""), &[], None);
    for (name, order) in [("reversed.tar", &reversed), ("catalog_first.tar", &catalog_first)] {
        let b = inspect_json(&write_container(dir.path(), name, order, Container::Tar, ""), &[], None);
        assert_manifest_counts(&b, &manifest);
        assert_eq!(b, a, "{name}: inventory depends on entry order");
    }
}

#[test]
fn inspect_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    let path = write_container(dir.path(), "q.tar.gz.aes", &entries, Container::Encrypted(Kdf::Sha256), "det");
    for args in [&["--json"][..], &[][..]] {
        let run = || {
            let out = hcconv().arg("inspect").arg(&path).args(args).env("HCCONV_PASSWORD", "det").output().unwrap();
            assert!(out.status.success());
            out.stdout
        };
        let (one, two) = (run(), run());
        assert!(!one.is_empty());
        assert_eq!(String::from_utf8(one).unwrap(), String::from_utf8(two).unwrap(), "{args:?}");
    }
}

/// The inventory of `entries` packaged as a tar.gz, through the library.
fn library_inventory(entries: &[Entry], dir: &Path) -> Value {
    let path = write_container(dir, "p.tar.gz", entries, Container::TarGz, "");
    let no_password = || Err(hcconv::error::Error::usage("no password"));
    let opts = ReadOptions {
        open: OpenOptions::new(&no_password),
        skip_damaged: false,
        spool_dir: dir.to_path_buf(),
        files: FileStore::measured(),
        spool_budget: 2048,
    };
    let mut report = Report::new();
    let export = read_export(&path, opts, &mut report).unwrap();
    serde_json::to_value(Inventory::collect(export, &mut report).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any order of the archive's entries gives the same inventory.
    #[test]
    fn any_entry_order_gives_the_same_inventory(order in Just((0..hcconv::testkit::quirks_fixture().0.len()).collect::<Vec<usize>>()).prop_shuffle()) {
        let (entries, manifest) = quirks();
        let dir = tempfile::tempdir().unwrap();
        let base = library_inventory(&entries, dir.path());
        let shuffled: Vec<Entry> = order.iter().map(|i| entries[*i].clone()).collect();
        let inv = library_inventory(&shuffled, dir.path());
        assert_manifest_counts(&inv, &manifest);
        prop_assert_eq!(inv, base);
    }
}

/// The benchmark's text-heavy shape is what it says: each private message in both
/// participants' histories (read once), rooms of many posting members, users.json
/// and rooms.json last in the tar.
#[test]
fn text_heavy_bench_shape() {
    use hcconv::testkit::{write_scaled_export, ScaleShape, ScaleSpec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("th.tar");
    let spec = ScaleSpec { messages: 3000, rooms: 6, users: 120, attachment_every: 25, attachment_bytes: 0, private_percent: 20, shape: ScaleShape::TextHeavy };
    write_scaled_export(spec, Container::Tar, "", std::fs::File::create(&path).unwrap()).unwrap();
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&path).unwrap()).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names.split_off(names.len() - 2), vec!["users.json", "rooms.json"]);
    let out = assert_cmd::Command::cargo_bin("hcconv").unwrap().args(["inspect", "--json"]).arg(&path).assert().success().get_output().stdout.clone();
    let inv: Value = serde_json::from_slice(&out).unwrap();
    let m = &inv["messages"];
    assert_eq!((m["unique"].as_u64(), m["private"].as_u64(), m["duplicates"].as_u64()), (Some(3000), Some(600), Some(600)), "{m}");
    assert_eq!((inv["users"]["total"].as_u64(), inv["users"]["unknown_senders"].as_u64()), (Some(120), Some(0)));
    assert!(m["unknown_fields"].as_object().is_none_or(|o| o.is_empty()), "{m}");
    // 2 400 room messages from members of 30 users per room, a file on 1 in 25.
    assert_eq!((inv["files"]["attachments_referenced"].as_u64(), inv["files"]["attachments_missing"].as_u64()), (Some(96), Some(0)));
}
