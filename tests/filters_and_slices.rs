//! Filters and export slices, at the library level: what is left out is reported as
//! `filtered`, slices merge with each message once and the newest users win.

use std::path::{Path, PathBuf};

use hcconv::archive::OpenOptions;
use hcconv::storage::files::FileStore;
use hcconv::filter::{parse_date, Filters};
use hcconv::hipchat::{read_slices, Export, ReadOptions};
use hcconv::model::{Conversation, Message};
use hcconv::report::{Entity, Report, SkipReason};
use hcconv::testkit::{quirks_fixture, write_export, Container, Entry};

fn write(dir: &Path, name: &str, entries: &[Entry]) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    write_export(entries, Container::TarGz, "", file).unwrap();
    path
}

fn read(inputs: &[PathBuf], scratch: &Path, report: &mut Report) -> Export {
    let no_password = || Err(hcconv::error::Error::usage("no password"));
    let opts = ReadOptions {
        open: OpenOptions::new(&no_password),
        skip_damaged: false,
        spool_dir: scratch.to_path_buf(),
        files: FileStore::measured(),
        spool_budget: 1024,
    };
    read_slices(inputs, opts, report).unwrap()
}

fn drain(export: &mut Export, report: &mut Report) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(m) = export.messages.next(report).unwrap() {
        out.push(m.clone());
    }
    out
}

#[test]
fn filters_leave_out_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks_fixture();
    let input = write(dir.path(), "q.tar.gz", &entries);
    let mut report = Report::new();
    let mut export = read(&[input], dir.path(), &mut report);
    let filters = Filters {
        since: Some(parse_date("2018-04-02T15:00:00Z", false).unwrap()),
        until: Some(parse_date("2018-04-03", true).unwrap()),
        rooms: vec!["Default".into(), "2".into()],
        no_private: true,
        no_files: true,
    };
    filters.apply(&mut export, &mut report).unwrap();
    let kept = drain(&mut export, &mut report);
    assert!(!kept.is_empty());
    for m in &kept {
        assert!(matches!(m.conversation, Conversation::Room(1) | Conversation::Room(2)), "{:?}", m.conversation);
        assert!(m.time >= filters.since.unwrap() && m.time < filters.until.unwrap());
        assert!(m.attachment.as_ref().is_none_or(|a| a.file.is_none() && a.left_out), "marked as left out, not as missing");
    }
    assert!(kept.iter().any(|m| m.attachment.is_some()), "the window holds attachments");
    // Room 2's messages are on 2018-04-03, inside --until's whole day.
    assert!(kept.iter().any(|m| m.conversation == Conversation::Room(2)));
    assert!(export.catalog.conversations.is_empty());
    assert_eq!(export.catalog.rooms.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    let filtered = report.skipped_for(Entity::Message, SkipReason::Filtered);
    let dups = report.skipped_for(Entity::Message, SkipReason::Duplicate);
    assert_eq!(kept.len() as u64 + filtered + dups, manifest.messages_raw);
    assert_eq!(report.skipped_for(Entity::Room, SkipReason::Filtered), 3, "rooms 3, 4 and 5 (6 is a placeholder)");
    assert!(report.skipped_for(Entity::Attachment, SkipReason::Filtered) >= 3);
}

#[test]
fn unknown_room_selector_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks_fixture();
    let input = write(dir.path(), "q.tar.gz", &entries);
    let mut report = Report::new();
    let mut export = read(&[input], dir.path(), &mut report);
    let err = Filters { rooms: vec!["No Such Room".into()], ..Default::default() }.apply(&mut export, &mut report).unwrap_err();
    assert_eq!(err.kind().exit_code(), 2);
    assert!(err.message().contains("No Such Room"));
}

#[test]
fn overlapping_slices_merge_once_and_newest_users_win() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks_fixture();
    // The older slice: the same export, but user 1 had another name then.
    let mut older = entries.clone();
    for e in older.iter_mut().filter(|e| e.path == "users.json") {
        e.bytes = String::from_utf8(e.bytes.clone()).unwrap().replace("\"HCDC User\"", "\"Old Name\"").into_bytes();
    }
    let a = write(dir.path(), "a.tar.gz", &older);
    let b = write(dir.path(), "b.tar.gz", &entries);
    let mut report = Report::new();
    let mut export = read(&[a, b], dir.path(), &mut report);
    assert_eq!(export.catalog.users[&1].name, "HCDC User");
    let kept = drain(&mut export, &mut report);
    assert_eq!(kept.len() as u64, manifest.messages_unique, "each message once across overlapping slices");
    assert_eq!(report.counts_of(Entity::Message).input, 2 * manifest.messages_raw);
    assert_eq!(report.skipped_for(Entity::Message, SkipReason::Duplicate), manifest.messages_raw + manifest.duplicates);
}

/// A message deleted (or edited) in the newer slice comes through in its newest
/// state: the older slice's copy gives way instead of bringing the text back.
#[test]
fn the_newest_slice_decides_a_changed_message() {
    let dir = tempfile::tempdir().unwrap();
    let users = Entry { path: "users.json".into(), bytes: br#"[{"id": 1, "name": "Ann", "mention_name": "ann", "email": "ann@example.com"}]"#.to_vec() };
    let rooms = Entry { path: "rooms.json".into(), bytes: br#"[{"id": 5, "name": "Ops", "owner": 1, "privacy": "public", "members": [1]}]"#.to_vec() };
    let history = |messages: &str| Entry { path: "rooms/5/history.json".into(), bytes: format!("[{messages}]").into_bytes() };
    let msg = |id: &str, text: &str, extra: &str| format!(r#"{{"UserMessage": {{"id": "{id}", "sender": {{"id": 1, "name": "Ann"}}, "message": "{text}", "timestamp": "2018-04-02T14:54:04Z 000001"{extra}}}}}"#);
    let older = [users.clone(), rooms.clone(), history(&[msg("m1", "secret password is hunter2", ""), msg("m2", "first draft", ""), msg("m3", "unchanged", "")].join(","))];
    let deleted = r#", "deleted": {"user_id": 1, "date": "2018-05-01T00:00:00Z"}"#;
    let newer = [users, rooms, history(&[msg("m1", "", deleted), msg("m2", "final text", ""), msg("m3", "unchanged", "")].join(","))];
    let a = write(dir.path(), "a.tar.gz", &older);
    let b = write(dir.path(), "b.tar.gz", &newer);
    let mut report = Report::new();
    let mut export = read(&[a.clone(), b.clone()], dir.path(), &mut report);
    let kept = drain(&mut export, &mut report);
    let mut texts: Vec<(&str, &str, bool)> = kept.iter().map(|m| (m.id.as_str(), m.text.as_str(), m.deleted.is_some())).collect();
    texts.sort();
    assert_eq!(texts, vec![("m1", "", true), ("m2", "final text", false), ("m3", "unchanged", false)]);
    assert_eq!(report.skipped_for(Entity::Message, SkipReason::Duplicate), 3, "two replaced, one identical copy");
    // Given the other way round, the newer file is the older slice's: its state wins.
    let mut report = Report::new();
    let mut export = read(&[b, a], dir.path(), &mut report);
    let kept = drain(&mut export, &mut report);
    let mut texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
    texts.sort();
    assert_eq!(texts, vec!["first draft", "secret password is hunter2", "unchanged"]);
}

/// Filters that could only give an empty migration, or none at all from an empty
/// list (`--rooms "$ROOMS"` with the variable unset), are usage errors up front.
#[test]
fn impossible_or_empty_filters_are_usage_errors() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for args in [&["--since", "2018-03-01", "--until", "2018-02-01"][..], &["--since", "2018-03-01", "--until", "2018-03-01T00:00:00Z"], &["--rooms="], &["--rooms", " , "]] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_hcconv"))
            .arg(fixture.join("quirks.tar.gz.aes"))
            .args(["--to", "mattermost", "-q", "--password-file"])
            .arg(fixture.join("quirks.password"))
            .args(args)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
        assert!(!out.exists());
    }
}

/// Every slice lists the instance's custom emoticons: one each, the newest entry.
#[test]
fn emoticons_listed_by_every_slice_are_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks_fixture();
    let a = write(dir.path(), "a.tar.gz", &entries);
    let b = write(dir.path(), "b.tar.gz", &entries);
    let mut one = Report::new();
    let single = read(std::slice::from_ref(&a), dir.path(), &mut one);
    let mut report = Report::new();
    let export = read(&[a, b], dir.path(), &mut report);
    assert_eq!(export.catalog.emoticons.len(), single.catalog.emoticons.len());
    let listed = manifest.emoticons_listed;
    assert_eq!(report.counts_of(Entity::Emoticon).input, 2 * listed);
    assert_eq!(report.skipped_for(Entity::Emoticon, SkipReason::Duplicate), listed);
}

/// A `--rooms` entry that selects several rooms says so.
#[test]
fn an_ambiguous_room_selector_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let users = Entry { path: "users.json".into(), bytes: br#"[{"id": 1, "name": "Ann", "mention_name": "ann", "email": "ann@example.com"}]"#.to_vec() };
    let rooms = Entry { path: "rooms.json".into(), bytes: br#"[{"id": 2, "name": "Dup", "owner": 1, "privacy": "public"}, {"id": 3, "name": "dup", "owner": 1, "privacy": "public"}, {"id": 4, "name": "2", "owner": 1, "privacy": "public"}, {"id": 5, "name": "Other", "owner": 1, "privacy": "public"}]"#.to_vec() };
    let input = write(dir.path(), "r.tar.gz", &[users, rooms]);
    for (sel, kept) in [("dup", vec![2, 3]), ("2", vec![2, 4]), ("Other", vec![5])] {
        let mut report = Report::new();
        let mut export = read(std::slice::from_ref(&input), dir.path(), &mut report);
        Filters { rooms: vec![sel.into()], ..Default::default() }.apply(&mut export, &mut report).unwrap();
        assert_eq!(export.catalog.rooms.keys().copied().collect::<Vec<_>>(), kept, "{sel}");
        let warned = report.warnings.iter().map(Result::unwrap).filter(|w| w.contains(&format!("'{sel}' selects"))).count();
        assert_eq!(warned, usize::from(kept.len() > 1), "{sel}");
    }
}

/// Slices given newest first are named in a warning (the last one's state wins).
#[test]
fn slices_given_newest_first_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let users = Entry { path: "users.json".into(), bytes: br#"[{"id": 1, "name": "Ann", "mention_name": "ann", "email": "ann@example.com"}]"#.to_vec() };
    let slice = |day: &str| {
        let history = format!(r#"[{{"UserMessage": {{"id": "m{day}", "sender": {{"id": 1}}, "message": "hi", "timestamp": "2018-04-{day}T10:00:00Z"}}}}]"#);
        vec![users.clone(), Entry { path: "rooms/5/history.json".into(), bytes: history.into_bytes() }]
    };
    let old = write(dir.path(), "april-01.tar.gz", &slice("01"));
    let new = write(dir.path(), "april-20.tar.gz", &slice("20"));
    let warned = |inputs: &[PathBuf]| {
        let mut report = Report::new();
        read(inputs, dir.path(), &mut report);
        report.warnings.iter().map(Result::unwrap).filter(|w| w.contains("slices look newest first")).collect::<Vec<_>>()
    };
    assert!(warned(&[old.clone(), new.clone()]).is_empty());
    let reversed = warned(&[new, old]);
    assert_eq!(reversed.len(), 1);
    assert!(reversed[0].contains("april-01.tar.gz") && reversed[0].contains("april-20.tar.gz"), "{}", reversed[0]);
}
