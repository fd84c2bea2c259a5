//! Hostile archive entries: climbing and absolute paths, symlinks, hard links, devices,
//! long-name and PAX tricks. They are refused and reported, never followed, and nothing
//! is ever created outside the places hcconv owns.

mod common;

use std::path::{Path, PathBuf};

use hcconv::archive::crypto::{self, Kdf};
use hcconv::archive::OpenOptions;
use hcconv::storage::files::FileStore;
use hcconv::hipchat::{read_export, ReadOptions};
use hcconv::inspect::Inventory;
use hcconv::report::{Entity, Report, SkipReason};
use tar::{EntryType, Header};

use common::*;

/// A header written field by field, so nothing checks (or "fixes") the path.
fn raw_header(name: &[u8], kind: EntryType, size: u64, link: &[u8]) -> Header {
    let mut h = Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_522_683_094);
    h.set_cksum();
    h
}

/// What the hostile archive holds beyond the quirks fixture.
struct Hostile {
    tar: Vec<u8>,
    /// Raw paths that must be refused as unsafe paths.
    unsafe_paths: Vec<String>,
    /// Raw paths that must be refused as links or special files.
    links: Vec<String>,
    /// Regular files added (safe, inside the layout).
    extra_files: u64,
}

/// The quirks fixture with hostile entries mixed in (some before, some after the real
/// files), naming `outside` (a folder that must stay empty) and `token` (unique names).
fn hostile_tar(outside: &Path, token: &str) -> Hostile {
    let (entries, _) = quirks();
    let mut b = tar::Builder::new(Vec::new());
    let mut unsafe_paths = Vec::new();
    let mut links = Vec::new();
    let regular = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        b.append(&raw_header(name.as_bytes(), EntryType::Regular, data.len() as u64, b""), data).unwrap();
    };
    let payload = b"[{\"UserMessage\": {\"id\": \"evil\", \"message\": \"pwned\", \"timestamp\": \"2018-01-01T00:00:00Z\"}}]";

    // Climbing out of the current folder, absolute paths (Unix and Windows style).
    for name in [
        format!("../../evil-{token}.json"),
        "/etc/abs.json".to_string(),
        format!("{}/evil-abs-{token}.json", outside.display()),
        format!("rooms/1/../../../evil-mid-{token}.json"),
        format!("C:\\evil-{token}.json"),
        format!("\\\\server\\share\\evil-{token}.json"),
    ] {
        regular(&mut b, &name, payload);
        unsafe_paths.push(name);
    }
    // A symlink to a system file, and a hard link to one.
    b.append(&raw_header(b"rooms/1/files/x/link", EntryType::Symlink, 0, b"/etc/passwd"), &b""[..]).unwrap();
    links.push("rooms/1/files/x/link".to_string());
    b.append(&raw_header(b"rooms/1/files/x/hard", EntryType::Link, 0, b"/etc/passwd"), &b""[..]).unwrap();
    links.push("rooms/1/files/x/hard".to_string());
    // The classic two-step: a symlinked folder pointing outside, then a file "inside" it.
    b.append(&raw_header(b"rooms/1/files/dir", EntryType::Symlink, 0, outside.as_os_str().as_encoded_bytes()), &b""[..]).unwrap();
    links.push("rooms/1/files/dir".to_string());
    regular(&mut b, "rooms/1/files/dir/pwn.txt", b"pwned");
    // A symlinked users.json before the real one: refused, the real one still read.
    b.append(&raw_header(b"users.json", EntryType::Symlink, 0, b"/etc/passwd"), &b""[..]).unwrap();
    links.push("users.json".to_string());
    // Devices and FIFOs.
    b.append(&raw_header(b"rooms/1/files/x/tty", EntryType::Char, 0, b""), &b""[..]).unwrap();
    links.push("rooms/1/files/x/tty".to_string());
    b.append(&raw_header(b"rooms/1/files/x/disk", EntryType::Block, 0, b""), &b""[..]).unwrap();
    links.push("rooms/1/files/x/disk".to_string());
    b.append(&raw_header(b"rooms/1/files/x/fifo", EntryType::Fifo, 0, b""), &b""[..]).unwrap();
    links.push("rooms/1/files/x/fifo".to_string());

    // Half of the real export, then long-name and PAX tricks, then the rest.
    let half = entries.len() / 2;
    for e in &entries[..half] {
        regular(&mut b, &e.path, &e.bytes);
    }
    // A GNU long name (over 100 bytes) that climbs out.
    let long = format!("{}/../../../../../../evil-long-{token}.json", "a".repeat(120));
    let mut data = long.clone().into_bytes();
    data.push(0);
    b.append(&raw_header(b"././@LongLink", EntryType::GNULongName, data.len() as u64, b""), data.as_slice()).unwrap();
    regular(&mut b, "innocent-long.json", payload);
    unsafe_paths.push(long);
    // A PAX path that overrides a harmless header name.
    let pax = format!("../evil-pax-{token}.json");
    b.append_pax_extensions([("path", pax.as_bytes())]).unwrap();
    regular(&mut b, "innocent-pax.json", payload);
    unsafe_paths.push(pax);
    for e in &entries[half..] {
        regular(&mut b, &e.path, &e.bytes);
    }
    b.finish().unwrap();
    Hostile { tar: b.into_inner().unwrap(), unsafe_paths, links, extra_files: 1 }
}

/// Every file under `root`, recursively (symlinks listed, not followed).
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Files anywhere in `roots` whose name carries `token` (i.e. escaped hostile files).
fn escaped(roots: &[&Path], token: &str) -> Vec<PathBuf> {
    let mut hits: Vec<PathBuf> = roots.iter().flat_map(|r| files_under(r)).filter(|p| p.to_string_lossy().contains(token)).collect();
    // Also the folders a climbing path could reach from the temporary root.
    for r in roots {
        if let Some(parent) = r.parent() {
            for e in std::fs::read_dir(parent).unwrap().flatten() {
                if e.file_name().to_string_lossy().contains(token) {
                    hits.push(e.path());
                }
            }
        }
    }
    hits
}

struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cwd: PathBuf,
    outside: PathBuf,
    token: String,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cwd = root.join("a/b");
    let outside = root.join("outside");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let token = format!("hcconv-{}", root.file_name().unwrap().to_string_lossy().trim_start_matches('.'));
    Scene { _tmp: tmp, root, cwd, outside, token }
}

fn check_inventory(inv: &serde_json::Value, h: &Hostile) {
    assert_eq!(num(inv, "/entries_skipped/unsafe_path"), h.unsafe_paths.len() as u64, "{:#}", at(inv, "/entries_skipped"));
    assert_eq!(num(inv, "/entries_skipped/link_or_special_entry"), h.links.len() as u64, "{:#}", at(inv, "/entries_skipped"));
    // Only the two reasons: nothing else was refused or lost.
    assert_eq!(at(inv, "/entries_skipped").as_object().unwrap().len(), 2, "{:#}", at(inv, "/entries_skipped"));
    // The real export inside is read in full.
    assert_manifest_counts(inv, &quirks().1);
    assert_eq!(num(inv, "/messages/history_files"), 6, "no hostile entry was read as a history");
    let (entries, _) = quirks();
    assert_eq!(num(inv, "/entries"), entries.len() as u64 + h.unsafe_paths.len() as u64 + h.links.len() as u64 + h.extra_files);
}

#[test]
fn hostile_entries_are_refused_and_reported_by_inspect() {
    let etc_abs_existed = Path::new("/etc/abs.json").exists();
    let s = scene();
    let h = hostile_tar(&s.outside, &s.token);
    let tar = s.root.join("hostile.tar");
    std::fs::write(&tar, &h.tar).unwrap();
    let tgz = s.root.join("hostile.tar.gz");
    std::fs::write(&tgz, gzip(&h.tar)).unwrap();
    let aes = s.root.join("hostile.tar.gz.aes");
    std::fs::write(&aes, crypto::encrypt(&gzip(&h.tar), b"hostile", *b"01234567", Kdf::Md5)).unwrap();
    for (path, kind) in [(&tar, "tar"), (&tgz, "tar_gz"), (&aes, "encrypted")] {
        let out = hcconv().current_dir(&s.cwd).args(["inspect", "--json", "--verbose"]).arg(path).env("HCCONV_PASSWORD", "hostile").output().unwrap();
        let (stdout, stderr) = outputs(&out);
        assert!(out.status.success(), "{kind}: {stderr}");
        let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(at(&inv, "/input_kind"), kind);
        check_inventory(&inv, &h);
        assert!(!stderr.contains("pwned"));
    }
    assert_eq!(escaped(&[&s.root], &s.token), Vec::<PathBuf>::new(), "hostile entries escaped");
    assert_eq!(files_under(&s.outside), Vec::<PathBuf>::new(), "something was written through the symlinked folder");
    assert_eq!(files_under(&s.cwd), Vec::<PathBuf>::new(), "inspect wrote into the current folder");
    if !etc_abs_existed {
        assert!(!Path::new("/etc/abs.json").exists(), "an absolute entry path was written");
    }
}

#[test]
fn staging_files_never_leaves_the_staging_folder() {
    // Conversion stages the export's files on disk: the place a path trick would bite.
    let s = scene();
    let h = hostile_tar(&s.outside, &s.token);
    let path = s.root.join("hostile.tar.gz");
    std::fs::write(&path, gzip(&h.tar)).unwrap();
    let stage = s.cwd.join("stage");
    let spool = s.cwd.join("spool");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::create_dir_all(&spool).unwrap();
    let no_password = || Err(hcconv::error::Error::usage("no password"));
    let opts = ReadOptions {
        open: OpenOptions::new(&no_password),
        skip_damaged: false,
        spool_dir: spool.clone(),
        files: FileStore::staged(&stage),
        spool_budget: 1024,
    };
    let mut report = Report::new();
    let export = read_export(&path, opts, &mut report).unwrap();
    let inv = serde_json::to_value(Inventory::collect(export, &mut report).unwrap()).unwrap();
    check_inventory(&inv, &h);

    // Each hostile entry is listed by its raw path, with its reason.
    let refused = |reason: SkipReason| -> Vec<String> {
        let mut v: Vec<String> = report.skipped.iter().map(Result::unwrap).filter(|k| k.entity == Entity::Entry && k.reason == reason).map(|k| k.id.clone()).collect();
        v.sort();
        v
    };
    let mut want_unsafe = h.unsafe_paths.clone();
    want_unsafe.sort();
    let mut want_links = h.links.clone();
    want_links.sort();
    assert_eq!(refused(SkipReason::UnsafePath), want_unsafe);
    assert_eq!(refused(SkipReason::LinkOrSpecialEntry), want_links);
    for k in report.skipped.iter().map(Result::unwrap).filter(|k| k.reason == SkipReason::LinkOrSpecialEntry && k.id.ends_with("link")) {
        assert!(k.detail.contains("/etc/passwd") && k.detail.contains("not followed"), "{}", k.detail);
    }

    // On disk: everything staged is a regular file directly in the staging folder,
    // named by a hash (never by a path from the archive), the "file inside the
    // symlinked folder" is among them, and nothing reached the outside folder, the
    // temporary root or its parent.
    let staged = files_under(&stage);
    assert!(!staged.is_empty());
    for f in &staged {
        let meta = std::fs::symlink_metadata(f).unwrap();
        assert!(meta.file_type().is_file(), "{} is not a regular file", f.display());
        assert_eq!(f.parent(), Some(stage.as_path()), "{} is not flat in the staging folder", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }
    assert!(staged.iter().any(|f| std::fs::read(f).unwrap() == b"pwned"), "pwn.txt was staged");
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    assert!(passwd.is_empty() || staged.iter().all(|f| std::fs::read(f).unwrap() != passwd), "a link's target was never staged");
    assert_eq!(files_under(&s.outside), Vec::<PathBuf>::new());
    assert_eq!(escaped(&[&s.root], &s.token), Vec::<PathBuf>::new(), "hostile entries escaped");
}

#[cfg(unix)]
#[test]
fn symlinks_in_an_unpacked_folder_are_not_followed() {
    let s = scene();
    let (entries, manifest) = quirks();
    let folder = s.root.join("export");
    unpack(&tar_bytes(&entries), &folder);
    // A history outside the export, reachable only through a symlinked room folder.
    std::fs::create_dir_all(s.outside.join("room9")).unwrap();
    std::fs::write(s.outside.join("room9/history.json"), b"[{\"UserMessage\": {\"id\": \"o\", \"sender\": {\"id\": 1}, \"message\": \"outside\", \"timestamp\": \"2018-01-01T00:00:00Z\"}}]").unwrap();
    std::os::unix::fs::symlink(s.outside.join("room9"), folder.join("rooms/9")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.join("rooms/1/files/link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.join("users/1/avatars/zzz-biggest.png")).unwrap();
    let inv = inspect_json(&folder, &[], None);
    assert_eq!(at(&inv, "/entries_skipped"), &serde_json::json!({"link_or_special_entry": 3}));
    assert_manifest_counts(&inv, &manifest);
    assert_eq!(num(&inv, "/messages/history_files"), 6, "the symlinked room was read");
    assert_eq!(at(&inv, "/input_kind"), "folder");
    // A symlinked top-level file is refused too, and then reported as absent.
    std::fs::rename(folder.join("rooms.json"), s.outside.join("rooms.json")).unwrap();
    std::os::unix::fs::symlink(s.outside.join("rooms.json"), folder.join("rooms.json")).unwrap();
    let inv = inspect_json(&folder, &[], None);
    assert_eq!(num(&inv, "/entries_skipped/link_or_special_entry"), 4);
    assert_eq!(at(&inv, "/top_level_files/rooms.json"), false);
    assert_eq!(num(&inv, "/rooms/listed"), 0);
}
