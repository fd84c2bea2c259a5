//! Damaged input: every way it can break gives exit 4 (or 3 where a wrong password
//! cannot be told apart) with a message naming what is wrong, never a silent success.

mod common;

use std::path::{Path, PathBuf};

use hcconv::archive::crypto::Kdf;
use hcconv::archive::OpenOptions;
use hcconv::error::ErrorKind;
use hcconv::storage::files::FileStore;
use hcconv::hipchat::{read_export, ReadOptions};
use hcconv::inspect::Inventory;
use hcconv::report::Report;
use hcconv::testkit::{Container, Entry};
use proptest::prelude::*;

use common::*;

fn fixture() -> PathBuf {
    repo("fixtures/quirks.tar.gz.aes")
}

/// Runs inspect with the fixture password; returns (exit code, stdout, stderr).
fn run(export: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = hcconv().arg("inspect").arg(export).args(args).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
    let (o, e) = outputs(&out);
    (out.status.code(), o, e)
}

/// Reads and counts an export through the library, as inspect does.
fn library_read(path: &Path, password: &str, skip_damaged: bool) -> Result<Inventory, hcconv::error::Error> {
    let scratch = tempfile::tempdir().unwrap();
    let pw = password.as_bytes().to_vec();
    let password = move || Ok(pw.clone());
    let opts = ReadOptions {
        open: OpenOptions::new(&password),
        skip_damaged,
        spool_dir: scratch.path().to_path_buf(),
        files: FileStore::measured(),
        spool_budget: 4096,
    };
    let mut report = Report::new();
    let export = read_export(path, opts, &mut report)?;
    Inventory::collect(export, &mut report)
}

/// The fixture's entries with the one at `path` replaced by `bytes`.
fn with_entry(path: &str, bytes: &[u8]) -> Vec<Entry> {
    let (mut entries, _) = quirks();
    let e = entries.iter_mut().find(|e| e.path == path).unwrap_or_else(|| panic!("no {path}"));
    e.bytes = bytes.to_vec();
    entries
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.tar.gz.aes");
    std::fs::write(&path, b"").unwrap();
    let (code, stdout, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("empty"), "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.tar.gz.aes");
    std::fs::write(&path, Noise(0x9e37_79b9_7f4a_7c15).bytes(5000)).unwrap();
    let (code, _, stderr) = run(&path, &[]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("noise.tar.gz.aes") && stderr.contains("not an hc-migrate export"), "{stderr}");
}

#[test]
fn random_bytes_behind_a_salted_header_cannot_be_told_from_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("salted-noise.aes");
    let mut bytes = b"Salted__".to_vec();
    bytes.extend(Noise(77).bytes(4096));
    std::fs::write(&path, bytes).unwrap();
    let (code, _, stderr) = run(&path, &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("wrong password, or the file is not an hc-migrate archive"), "{stderr}");
}

#[test]
fn nonexistent_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("does-not-exist.tar.gz.aes");
    let (code, _, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("does-not-exist.tar.gz.aes") && stderr.contains("cannot open"), "{stderr}");
}

#[test]
fn truncated_encrypted_archive_is_damage_not_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let whole = read(&fixture());
    let len = whole.len();
    assert_eq!(len % 16, 0);
    // Inside the header, right after it, inside and at the end of the first cipher
    // block, inside the 528-byte detection window (block-aligned and not), just past
    // it, in the middle (aligned and not), and in the last blocks.
    let cuts = [10, 16, 20, 32, 33, 100, 256, 512, 528, 529, 543, 544, 545, 1000, len / 2 / 16 * 16, len / 2 + 7, len - 32, len - 17, len - 16, len - 8, len - 1];
    for cut in cuts {
        let path = dir.path().join(format!("cut-{cut}.tar.gz.aes"));
        std::fs::write(&path, &whole[..cut]).unwrap();
        for skip in [false, true] {
            let args: &[&str] = if skip { &["--json", "--skip-damaged"] } else { &["--json"] };
            let (code, stdout, stderr) = run(&path, args);
            assert_eq!(code, Some(4), "cut at {cut} of {len} (skip-damaged {skip}): {stderr}");
            assert!(stderr.contains("truncated") || stderr.contains("damaged"), "cut at {cut}: unclear message: {stderr}");
            assert!(!stderr.contains("wrong password"), "cut at {cut}: a truncated file is not a wrong password: {stderr}");
            assert!(stdout.is_empty(), "cut at {cut}: printed an inventory of a truncated export");
        }
    }
}

#[test]
fn truncated_plain_archives() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    for (name, container) in [("q.tar.gz", Container::TarGz), ("q.tar", Container::Tar)] {
        let whole = read(&write_container(dir.path(), name, &entries, container, ""));
        let len = whole.len();
        // A tar cut exactly between two members cannot be noticed (tar has no length
        // or checksum of the whole); cut inside members instead. A gzip always can.
        let cuts: Vec<usize> = match container {
            Container::Tar => vec![100, 700, len / 2 + 100, len - 1100],
            _ => vec![100, len / 2, len - 9, len - 4, len - 1],
        };
        for cut in cuts {
            let path = dir.path().join(format!("cut-{cut}-{name}"));
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (code, _, stderr) = run(&path, &["--json"]);
            assert_eq!(code, Some(4), "{name} cut at {cut} of {len}: {stderr}");
            assert!(["truncated", "damaged", "malformed", "not an hc-migrate export"].iter().any(|w| stderr.contains(w)), "{name} cut at {cut}: {stderr}");
        }
    }
}

#[test]
fn flipped_bytes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let whole = read(&fixture());
    let len = whole.len();
    // Salt, first block, detection window, middle, penultimate and last block, and two
    // spots whose damage only the gzip checksum reveals (the tar walk alone missed them).
    for pos in [12, 20, 30, 300, 600, len / 2, 3311, 3361, len - 20, len - 3] {
        let mut bytes = whole.clone();
        bytes[pos] ^= 0x01;
        let path = dir.path().join(format!("flip-{pos}.tar.gz.aes"));
        std::fs::write(&path, bytes).unwrap();
        let (code, stdout, stderr) = run(&path, &["--json"]);
        assert!(matches!(code, Some(3) | Some(4)), "flip at {pos}: exit {code:?}: {stderr}");
        let clear = ["damaged", "truncated", "malformed", "wrong password", "checksum", "not an hc-migrate"];
        assert!(clear.iter().any(|w| stderr.contains(w)), "flip at {pos}: unclear message: {stderr}");
        assert!(stdout.is_empty(), "flip at {pos}: printed an inventory of a damaged export");
    }
}

#[test]
fn every_flipped_byte_is_detected_through_the_library() {
    // Stronger than the CLI spot checks: a single flipped bit anywhere (sampled past the
    // first blocks) is never read as a good export, with or without --skip-damaged.
    let dir = tempfile::tempdir().unwrap();
    let whole = read(&fixture());
    let len = whole.len();
    let password = fixture_password();
    // Flips in the salt or first block make every key derivation (slow PBKDF2 too)
    // fail, so only a few of those; all of the second and the last blocks.
    // 3311 and 3361 are spots only the gzip checksum catches.
    let positions = (0..len).filter(|p| [8, 15, 16, 23, 31, 3311, 3361].contains(p) || (32..48).contains(p) || *p >= len - 48 || (*p > 48 && p % 31 == 0));
    for pos in positions {
        let mut bytes = whole.clone();
        bytes[pos] ^= 0x01;
        let path = dir.path().join("flip.aes");
        std::fs::write(&path, bytes).unwrap();
        for skip in [false, true] {
            match library_read(&path, &password, skip) {
                Ok(_) => panic!("a flipped bit at {pos} of {len} went unnoticed (skip_damaged {skip})"),
                Err(e) => assert!(matches!(e.kind(), ErrorKind::Input | ErrorKind::Decrypt), "flip at {pos}: {:?} {}", e.kind(), e.message()),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any cut of the encrypted fixture is damage (exit 4), never a wrong password.
    #[test]
    fn any_truncation_is_damage(cut in 0usize..7824) {
        let whole = read(&fixture());
        let cut = cut.min(whole.len() - 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.aes");
        std::fs::write(&path, &whole[..cut]).unwrap();
        for skip in [false, true] {
            let err = library_read(&path, &fixture_password(), skip).err();
            prop_assert!(err.is_some(), "cut at {} read as a good export", cut);
            let err = err.unwrap();
            prop_assert_eq!(err.kind(), ErrorKind::Input, "cut at {}: {}", cut, err.message());
        }
    }
}

#[test]
fn malformed_users_json_names_the_file_even_with_skip_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let entries = with_entry("users.json", b"[\n  {\"User\": {\"id\": 1, \"name\": \"A\"}},\n  {\"User\": {\"id\": 2,, }}\n]");
    let path = write_container(dir.path(), "badusers.tar.gz.aes", &entries, Container::Encrypted(Kdf::Md5), &fixture_password());
    for args in [&["--json"][..], &["--json", "--skip-damaged"][..]] {
        let (code, stdout, stderr) = run(&path, args);
        assert_eq!(code, Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains("users.json: malformed JSON"), "{stderr}");
        assert!(stderr.contains("line 3 column"), "{stderr}");
        assert!(stdout.is_empty());
    }
}

/// A room history with two good messages, then damage on line 4.
fn damaged_history() -> Vec<u8> {
    let good = |id: &str| format!("{{\"UserMessage\": {{\"id\": \"{id}\", \"sender\": {{\"id\": 1, \"name\": \"HCDC User\"}}, \"message\": \"fine\", \"timestamp\": \"2018-05-01T10:00:00Z\"}}}}");
    format!("[\n{},\n{},\n{{\"UserMessage\": {{\"id\": \"bad\", \"message\": \"unterminated}}}},\n{}\n]", good("ok1"), good("ok2"), good("lost")).into_bytes()
}

#[test]
fn malformed_history_names_entry_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (mut entries, _) = quirks();
    entries.insert(0, Entry { path: "rooms/7/history.json".into(), bytes: damaged_history() });
    let path = write_container(dir.path(), "badhistory.tar", &entries, Container::Tar, "");
    let (code, stdout, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("rooms/7/history.json: malformed JSON"), "{stderr}");
    assert!(stderr.contains("line ") && stderr.contains(" column "), "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn skip_damaged_keeps_going_and_reports_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut entries, m) = quirks();
    entries.insert(0, Entry { path: "rooms/7/history.json".into(), bytes: damaged_history() });
    let path = write_container(dir.path(), "badhistory.tar.gz.aes", &entries, Container::Encrypted(Kdf::Sha256), &fixture_password());
    let (code, stdout, stderr) = run(&path, &["--json", "--skip-damaged"]);
    assert_eq!(code, Some(0), "{stderr}");
    let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(at(&inv, "/entries_skipped"), &serde_json::json!({"damaged_file": 1}));
    // The two messages before the damage are kept; everything else is as in the manifest.
    assert_eq!(num(&inv, "/messages/raw"), num(&m, "/messages_raw") + 2);
    assert_eq!(num(&inv, "/messages/unique"), num(&m, "/messages_unique") + 2);
    assert_eq!(num(&inv, "/messages/duplicates"), num(&m, "/duplicates"));
    assert_eq!(num(&inv, "/users/total"), num(&m, "/users_distinct"));
    assert_eq!(num(&inv, "/files/attachments_referenced"), num(&m, "/attachments_referenced"));
    assert_eq!(num(&inv, "/messages/history_files"), 7);
    // The text form says so too.
    let (code, stdout, _) = run(&path, &["--skip-damaged"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("entries not read: 1 (damaged_file)"), "{stdout}");
    assert!(stdout.contains("damaged: rooms/7/history.json: malformed JSON"), "{stdout}");
    let damaged = inv["damaged_files"].as_array().unwrap();
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0].as_str().unwrap().starts_with("rooms/7/history.json: malformed JSON"), "{damaged:?}");
    // A conversion counts the damaged file as skipped, not also as written.
    let report = dir.path().join("report.json");
    let run = hcconv().arg(&path).args(["--to", "mattermost", "--skip-damaged", "-o"]).arg(dir.path().join("out")).arg("--report").arg(&report).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", outputs(&run).1);
    let report: serde_json::Value = serde_json::from_slice(&read(&report)).unwrap();
    let entries = at(&report, "/counts/entry");
    assert_eq!(num(entries, "/skipped"), 1);
    assert_eq!(num(entries, "/input"), num(entries, "/written") + 1, "{entries}");
}

#[test]
fn damaged_existing_history_with_skip_damaged_loses_only_that_file() {
    // Damage inside a real history (room 1, newest first): the messages before the
    // damage are kept, the file is reported, the other files are untouched.
    let dir = tempfile::tempdir().unwrap();
    let (entries, m) = quirks();
    let original = &entries.iter().find(|e| e.path == "rooms/1/history.json").unwrap().bytes;
    let text = String::from_utf8(original.clone()).unwrap();
    // Cut the file inside its third element.
    let third = text.match_indices("\n  {").nth(2).unwrap().0;
    let cut = format!("{}\n  {{\"UserMessage\": ", &text[..third]);
    let entries = with_entry("rooms/1/history.json", cut.as_bytes());
    let path = write_container(dir.path(), "cut1.tar", &entries, Container::Tar, "");
    let (code, _, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("rooms/1/history.json") && stderr.contains("line") && stderr.contains("column"), "{stderr}");
    let (code, stdout, stderr) = run(&path, &["--json", "--skip-damaged"]);
    assert_eq!(code, Some(0), "{stderr}");
    let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(num(&inv, "/entries_skipped/damaged_file"), 1);
    let room1_raw = serde_json::from_slice::<serde_json::Value>(original).unwrap().as_array().unwrap().len() as u64;
    assert_eq!(num(&inv, "/messages/raw"), num(&m, "/messages_raw") - room1_raw + 2, "two elements before the damage are kept");
}

#[test]
fn folder_with_malformed_json() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    let folder = dir.path().join("export");
    unpack(&tar_bytes(&entries), &folder);
    std::fs::write(folder.join("rooms.json"), b"{\"Rooms\": [ {\"Room\": {\"id\": 1}} ").unwrap();
    let (code, _, stderr) = run(&folder, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("rooms.json") && stderr.contains("line 1 column"), "{stderr}");
}

#[test]
fn gzip_framing_multi_member_padding_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, m) = quirks();
    let tar = tar_bytes(&entries);
    // The tar split over three gzip members (as parallel compressors write it).
    let (a, rest) = tar.split_at(1000);
    let (b, c) = rest.split_at(rest.len() / 2);
    let members = [gzip(a), gzip(b), gzip(c)].concat();
    // Zero padding after the stream (tape blocking), and junk after it: gzip -d
    // accepts both, and so does hcconv.
    let mut padded = gzip(&tar);
    padded.extend(std::iter::repeat_n(0u8, 512));
    let mut junk = gzip(&tar);
    junk.extend_from_slice(b"\ntrailing junk\n");
    for (name, bytes) in [("members.tar.gz", &members), ("padded.tar.gz", &padded), ("junk.tar.gz", &junk)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let inv = inspect_json(&path, &[], None);
        assert_manifest_counts(&inv, &m);
        assert_clean_read(&inv, "tar_gz");
        // The same inside encryption.
        let aes = dir.path().join(format!("{name}.aes"));
        std::fs::write(&aes, hcconv::archive::crypto::encrypt(bytes, b"pw", *b"saltsalt", Kdf::Sha256)).unwrap();
        let inv = inspect_json(&aes, &[], Some("pw"));
        assert_manifest_counts(&inv, &m);
        assert_clean_read(&inv, "encrypted");
    }
    // A wrong checksum on the last member, which holds only the tar's end-of-archive
    // blocks: the walk has everything it needs before it, so only the drain can tell.
    let mut bad = [gzip(&tar[..tar.len() - 1024]), gzip(&tar[tar.len() - 1024..])].concat();
    let n = bad.len();
    bad[n - 8] ^= 0x01; // the first byte of the last member's CRC-32
    let path = dir.path().join("badtail.tar.gz");
    std::fs::write(&path, &bad).unwrap();
    let (code, stdout, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("badtail.tar.gz") && stderr.contains("damaged") && stderr.contains("checksum"), "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn encrypted_plain_tar_is_read_and_its_padding_checked() {
    // hc-migrate always gzips, but a decrypted stream may be a plain tar.
    let dir = tempfile::tempdir().unwrap();
    let (entries, m) = quirks();
    let bytes = hcconv::archive::crypto::encrypt(&tar_bytes(&entries), b"pw", *b"saltsalt", Kdf::Md5);
    let path = dir.path().join("plain-tar.aes");
    std::fs::write(&path, &bytes).unwrap();
    let inv = inspect_json(&path, &[], Some("pw"));
    assert_manifest_counts(&inv, &m);
    // Cut off the last cipher block: the tar's end is still there, the padding is not.
    let cut = dir.path().join("plain-tar-cut.aes");
    std::fs::write(&cut, &bytes[..bytes.len() - 16]).unwrap();
    let out = hcconv().args(["inspect", "--json"]).arg(&cut).env("HCCONV_PASSWORD", "pw").output().unwrap();
    let (stdout, stderr) = outputs(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("damaged") && stderr.contains("padding"), "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn deeply_nested_and_invalid_utf8_history_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nested = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let mut invalid = b"[{\"UserMessage\": {\"id\": \"u\", \"message\": \"caf".to_vec();
    invalid.extend_from_slice(&[0xff, 0xfe]);
    invalid.extend_from_slice(b"\", \"timestamp\": \"2018-05-01T10:00:00Z\"}}]");
    for (name, bytes) in [("nested", nested.into_bytes()), ("utf8", invalid)] {
        let (mut entries, _) = quirks();
        entries.insert(0, Entry { path: "rooms/8/history.json".into(), bytes });
        let path = write_container(dir.path(), &format!("{name}.tar"), &entries, Container::Tar, "");
        let (code, stdout, stderr) = run(&path, &["--json"]);
        assert_eq!(code, Some(4), "{name}: {stderr}");
        assert!(stderr.contains("rooms/8/history.json: malformed JSON"), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(stdout.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Encrypt with each key derivation, then decrypt through the streaming reader
    /// (detected, not forced): the bytes come back unchanged.
    #[test]
    fn encrypt_then_decrypt_round_trips(body in proptest::collection::vec(any::<u8>(), 0..3000), salt in any::<[u8; 8]>(), kdf in 0u8..3, password in "[ -~]{0,20}") {
        use std::io::Read;
        use hcconv::archive::crypto::{encrypt, open_encrypted, Kdf};
        let kdf = [Kdf::Md5, Kdf::Sha256, Kdf::Pbkdf2(1000)][kdf as usize];
        // Detection needs a payload that starts like gzip; a gzip header then arbitrary bytes.
        let mut plain = vec![0x1f, 0x8b, 8, 0];
        plain.extend_from_slice(&body);
        let sealed = encrypt(&plain, password.as_bytes(), salt, kdf);
        let mut out = Vec::new();
        open_encrypted(&sealed[..], password.as_bytes(), None, 1000).unwrap().read_to_end(&mut out).unwrap();
        prop_assert_eq!(out, plain);
    }
}

#[test]
fn archives_that_are_not_exports_fail_instead_of_converting_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let unrelated = vec![Entry { path: "README.txt".into(), bytes: b"hello".to_vec() }, Entry { path: "photos/cat.jpg".into(), bytes: vec![0xff, 0xd8, 0xff] }];
    for (name, entries) in [("unrelated.tar.gz.aes", unrelated), ("empty.tar.gz.aes", Vec::new())] {
        let path = write_container(dir.path(), name, &entries, Container::Encrypted(Kdf::Md5), &fixture_password());
        let out = dir.path().join(format!("out-{name}"));
        let run = hcconv().arg(&path).args(["--to", "mattermost", "-o"]).arg(&out).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
        let (_, stderr) = outputs(&run);
        assert_eq!(run.status.code(), Some(4), "{name}: {stderr}");
        assert!(stderr.contains(&path.display().to_string()) && stderr.contains("not an hc-migrate export"), "{name}: {stderr}");
        assert!(!out.exists(), "{name}: no output");
    }
    let (code, _, stderr) = run(&write_container(dir.path(), "u.tar", &[Entry { path: "a/b.txt".into(), bytes: b"x".to_vec() }], Container::Tar, ""), &[]);
    assert_eq!(code, Some(4), "inspect too: {stderr}");
    assert!(stderr.contains("'a/b.txt'"), "names what it found: {stderr}");
}

#[test]
fn an_export_below_several_wrapping_folders_is_found() {
    // Untarred on the server and packed again from above: two folders deep.
    let dir = tempfile::tempdir().unwrap();
    let (entries, m) = quirks();
    let wrapped: Vec<Entry> = entries.into_iter().map(|e| Entry { path: format!("backup/hipchat-export/{}", e.path), bytes: e.bytes }).collect();
    let path = write_container(dir.path(), "wrapped.tar", &wrapped, Container::Tar, "");
    let (code, stdout, stderr) = run(&path, &["--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_manifest_counts(&inv, &m);
}

#[test]
fn a_file_the_archive_holds_twice_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut entries, m) = quirks();
    let again = entries.iter().find(|e| e.path == "rooms/1/history.json").unwrap().bytes.clone();
    entries.push(Entry { path: "rooms/1/history.json".into(), bytes: again });
    let path = write_container(dir.path(), "twice.tar", &entries, Container::Tar, "");
    let report = dir.path().join("report.json");
    let run = hcconv().arg(&path).args(["--to", "mattermost", "-q", "-o"]).arg(dir.path().join("out")).arg("--report").arg(&report).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", outputs(&run).1);
    let report: serde_json::Value = serde_json::from_slice(&read(&report)).unwrap();
    let warned = report["warnings"].as_array().unwrap().iter().filter(|w| w.as_str().unwrap().contains("holds rooms/1/history.json more than once")).count();
    assert_eq!(warned, 1);
    let room1 = serde_json::from_slice::<serde_json::Value>(&entries.last().unwrap().bytes).unwrap().as_array().unwrap().len() as u64;
    assert_eq!(num(&report, "/counts/message/input"), num(&m, "/messages_raw") + room1, "both copies read");
    assert_eq!(num(&report, "/skip_reasons/message/duplicate"), num(&m, "/duplicates") + room1, "the second copy's messages are duplicates");
}

/// An avatar that is not an image (text, a truncated download) is reported and left
/// out: Mattermost's import stops at a profile image it cannot decode.
#[test]
fn an_avatar_that_is_no_image_is_left_out() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let png = base64::engine::general_purpose::STANDARD.encode(hcconv::testkit::tiny_png(4, 4, [1, 2, 3]));
    let users = format!(
        r#"[{{"id": 1, "name": "Ann", "mention_name": "ann", "email": "ann@example.com", "avatar": "aGVsbG8gd29ybGQ="}},
            {{"id": 2, "name": "Bob", "mention_name": "bob", "email": "bob@example.com", "avatar": "{png}"}},
            {{"id": 3, "name": "Cy", "mention_name": "cy", "email": "cy@example.com", "avatar": "users/3/avatars/cy.png"}}]"#
    );
    let entries = vec![
        Entry { path: "users.json".into(), bytes: users.into_bytes() },
        Entry { path: "users/3/avatars/cy.png".into(), bytes: b"<html>not found</html>".to_vec() },
    ];
    let path = write_container(dir.path(), "avatars.tar", &entries, Container::Tar, "");
    let report = dir.path().join("report.json");
    let out = dir.path().join("out");
    let run = hcconv().arg(&path).args(["--to", "mattermost", "-q", "-o"]).arg(&out).arg("--report").arg(&report).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", outputs(&run).1);
    let report: serde_json::Value = serde_json::from_slice(&read(&report)).unwrap();
    assert_eq!(at(&report, "/counts/avatar"), &serde_json::json!({"input": 3, "written": 1, "skipped": 2}));
    assert_eq!(num(&report, "/skip_reasons/avatar/invalid"), 2);
    let jsonl = String::from_utf8(read(&out.join("import.jsonl"))).unwrap();
    let images: Vec<&str> = jsonl.lines().filter(|l| l.contains("\"profile_image\"")).collect();
    assert_eq!(images.len(), 1, "{images:?}");
    assert!(images[0].contains("\"bob\""), "{}", images[0]);
}
