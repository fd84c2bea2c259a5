//! Helpers shared by the integration tests: running the binary, the fixture's known
//! counts, packaging exports and checking an inventory against a manifest.
#![allow(dead_code)] // each test file uses a different subset

use std::io::Read;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use hcconv::testkit::{self, Container, Entry};

/// Password of the vectors in `fixtures/openssl/` (see its README).
pub const VECTOR_PASSWORD: &str = "hcconv openssl vector 3.0";

/// The binary, with no password in its environment and stdin closed (not a terminal).
pub fn hcconv() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hcconv"));
    cmd.env_remove("HCCONV_PASSWORD");
    cmd
}

/// A path under the crate root.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The committed fixture's password (first line of fixtures/quirks.password).
pub fn fixture_password() -> String {
    let text = std::fs::read_to_string(repo("fixtures/quirks.password")).unwrap();
    text.lines().next().unwrap().to_string()
}

/// The committed manifest of the quirks fixture (what the committed archives hold).
pub fn committed_manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo("fixtures/quirks.manifest.json")).unwrap()).unwrap()
}

/// The quirks fixture's entries and its manifest as JSON, straight from the generator.
pub fn quirks() -> (Vec<Entry>, Value) {
    let (entries, m) = testkit::quirks_fixture();
    (entries, serde_json::to_value(m).unwrap())
}

/// Packages `entries` into `dir/name`.
pub fn write_container(dir: &Path, name: &str, entries: &[Entry], container: Container, password: &str) -> PathBuf {
    let path = dir.join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    testkit::write_export(entries, container, password, file).unwrap();
    path
}

/// The plain tar bytes of `entries`.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    testkit::write_export(entries, Container::Tar, "", &mut out).unwrap();
    out
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Unpacks a (safe) tar into `dir` with the tar crate, as a user would with `tar x`.
pub fn unpack(tar: &[u8], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    tar::Archive::new(tar).unpack(dir).unwrap();
}

/// Runs `hcconv inspect --json EXPORT ARGS…`, requires success and returns the JSON.
pub fn inspect_json(export: &Path, args: &[&str], env_password: Option<&str>) -> Value {
    let mut cmd = hcconv();
    cmd.arg("inspect").arg(export).arg("--json").args(args);
    if let Some(p) = env_password {
        cmd.env("HCCONV_PASSWORD", p);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "inspect {} {args:?} failed with {:?}: {}",
        export.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("inspect --json printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `value[pointer]` as u64, failing with the pointer's name when absent.
pub fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no number at {pointer} in {v:#}"))
}

/// `value[pointer]`, failing with the pointer's name when absent.
pub fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| panic!("nothing at {pointer} in {v:#}"))
}

/// Checks an inspect inventory against the quirks manifest, field by field.
pub fn assert_manifest_counts(inv: &Value, m: &Value) {
    let pairs: &[(&str, &str)] = &[
        ("/users/listed", "/users_listed"),
        ("/users/total", "/users_distinct"),
        ("/rooms/listed", "/rooms_listed"),
        ("/messages/raw", "/messages_raw"),
        ("/messages/unique", "/messages_unique"),
        ("/messages/duplicates", "/duplicates"),
        ("/messages/deleted", "/deleted"),
        ("/messages/private_conversations", "/private_conversations"),
        ("/files/attachments_referenced", "/attachments_referenced"),
        ("/files/attachments_missing", "/attachments_missing"),
        ("/files/avatars", "/avatars"),
        ("/emoticons/listed", "/emoticons_listed"),
        ("/emoticons/missing_images", "/emoticons_missing"),
        ("/emoticons/images", "/emoticon_images"),
        // The flat summary repeats the headline numbers.
        ("/summary/users", "/users_distinct"),
        ("/summary/messages", "/messages_unique"),
        ("/summary/messages_raw", "/messages_raw"),
        ("/summary/duplicates", "/duplicates"),
        ("/summary/deleted_messages", "/deleted"),
        ("/summary/attachments", "/attachments_referenced"),
        ("/summary/attachments_missing", "/attachments_missing"),
        ("/summary/emoticons", "/emoticons_listed"),
        ("/summary/avatars", "/avatars"),
    ];
    for (inv_ptr, m_ptr) in pairs {
        assert_eq!(num(inv, inv_ptr), num(m, m_ptr), "inventory {inv_ptr} vs manifest {m_ptr}");
    }
    assert_eq!(at(inv, "/messages/raw_by_kind"), at(m, "/raw_by_kind"), "raw per kind");
    assert_eq!(at(inv, "/messages/unique_by_kind"), at(m, "/unique_by_kind"), "unique per kind");
    assert_eq!(at(inv, "/users/unknown_sender_ids"), at(m, "/unknown_senders"), "unknown sender ids");
    let unknown = at(m, "/unknown_senders").as_array().unwrap().len() as u64;
    assert_eq!(num(inv, "/users/unknown_senders"), unknown);
    assert_eq!(num(inv, "/summary/unknown_senders"), unknown);
    assert_eq!(
        num(inv, "/files/attachments_found"),
        num(m, "/attachments_referenced") - num(m, "/attachments_missing"),
        "attachments found = referenced - missing"
    );
    assert_eq!(num(inv, "/emoticons/with_images"), num(m, "/emoticons_listed") - num(m, "/emoticons_missing"));
    // Raw = unique + duplicates: nothing unreadable in the fixture.
    assert_eq!(num(inv, "/messages/unreadable"), 0);
}

/// A clean export: every documented top-level file present, nothing refused.
pub fn assert_clean_read(inv: &Value, kind: &str) {
    assert_eq!(at(inv, "/input_kind"), kind, "input_kind");
    assert_eq!(at(inv, "/entries_skipped"), &serde_json::json!({}), "nothing refused");
    for (name, present) in at(inv, "/top_level_files").as_object().unwrap() {
        assert_eq!(present, &Value::Bool(true), "{name} present");
    }
    assert_eq!(num(inv, "/messages/history_files"), 6);
}

/// stdout and stderr of a finished command, as text.
pub fn outputs(out: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every name in `dir` (one level), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path).unwrap().read_to_end(&mut v).unwrap();
    v
}

/// A small deterministic pseudo-random generator (xorshift), for reproducible noise.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Every file under `root` with its bytes, keyed by its path relative to `root`:
/// two outputs are byte-identical exactly when these maps are equal.
pub fn read_tree(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
