//! Where the password comes from, in the documented order, and that it never shows:
//! not in stdout, not in stderr, not with --verbose, not in error messages.

mod common;

use std::path::{Path, PathBuf};

use hcconv::archive::crypto::Kdf;
use hcconv::testkit::Container;

use common::*;

/// A password distinctive enough that finding it in output cannot be a coincidence.
const WRONG: &str = "Wr0ng-pa55word-zebra-7781";

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    export: PathBuf,
    right_file: PathBuf,
    wrong_file: PathBuf,
    password: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let password = fixture_password();
    let right_file = path.join("right.pw");
    // openssl's `-pass file:` rule: the first line, without its line ending.
    std::fs::write(&right_file, format!("{password}\r\nsecond line is ignored\n")).unwrap();
    let wrong_file = path.join("wrong.pw");
    std::fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    Setup { export: repo("fixtures/quirks.tar.gz.aes"), right_file, wrong_file, password, dir: path, _dir: dir }
}

/// Asserts neither password shows up anywhere in what the run printed.
fn assert_no_secret(out: &std::process::Output, secrets: &[&str], what: &str) {
    let (stdout, stderr) = outputs(out);
    for s in secrets {
        assert!(!stdout.contains(s), "{what}: password {s:?} in stdout:\n{stdout}");
        assert!(!stderr.contains(s), "{what}: password {s:?} in stderr:\n{stderr}");
    }
}

fn assert_ok_inventory(out: &std::process::Output, what: &str) {
    let (stdout, stderr) = outputs(out);
    assert!(out.status.success(), "{what}: exit {:?}: {stderr}", out.status.code());
    let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_manifest_counts(&inv, &committed_manifest());
}

fn inspect(export: &Path) -> assert_cmd::Command {
    let mut cmd = hcconv();
    cmd.args(["inspect", "--json"]).arg(export);
    cmd
}

#[test]
fn password_file_first_line() {
    let s = setup();
    for verbose in [false, true] {
        let mut cmd = inspect(&s.export);
        cmd.arg("--password-file").arg(&s.right_file);
        if verbose {
            cmd.arg("--verbose");
        }
        let out = cmd.output().unwrap();
        assert_ok_inventory(&out, "--password-file");
        assert_no_secret(&out, &[&s.password], "--password-file");
        assert!(!outputs(&out).1.contains("visible"), "no --password warning without --password");
    }
}

#[test]
fn environment_variable() {
    let s = setup();
    let out = inspect(&s.export).arg("--verbose").env("HCCONV_PASSWORD", &s.password).output().unwrap();
    assert_ok_inventory(&out, "HCCONV_PASSWORD");
    assert_no_secret(&out, &[&s.password], "HCCONV_PASSWORD");
    assert!(!outputs(&out).1.contains("visible"));
}

#[test]
fn literal_password_warns_that_it_is_visible() {
    let s = setup();
    let out = inspect(&s.export).arg("--password").arg(&s.password).arg("--verbose").output().unwrap();
    assert_ok_inventory(&out, "--password");
    let (_, stderr) = outputs(&out);
    assert!(stderr.contains("warning: --password is visible to other users"), "{stderr}");
    assert!(stderr.contains("--password-file") && stderr.contains("HCCONV_PASSWORD"), "the warning names the alternatives: {stderr}");
    assert_no_secret(&out, &[&s.password], "--password");
    // --quiet silences the warning but not the result.
    let out = inspect(&s.export).arg("--password").arg(&s.password).arg("--quiet").output().unwrap();
    assert_ok_inventory(&out, "--password --quiet");
    assert_eq!(outputs(&out).1, "", "--quiet prints nothing but errors");
}

#[test]
fn sources_are_taken_in_the_documented_order() {
    let s = setup();
    // --password-file beats HCCONV_PASSWORD and --password.
    let out = inspect(&s.export).arg("--password-file").arg(&s.right_file).arg("--password").arg(WRONG).env("HCCONV_PASSWORD", WRONG).output().unwrap();
    assert_ok_inventory(&out, "file over literal and env");
    assert_no_secret(&out, &[&s.password, WRONG], "file over literal and env");
    // --password beats HCCONV_PASSWORD.
    let out = inspect(&s.export).arg("--password").arg(&s.password).env("HCCONV_PASSWORD", WRONG).output().unwrap();
    assert_ok_inventory(&out, "literal over env");
    // And the other way round each time fails: the first source is really used.
    let out = inspect(&s.export).arg("--password-file").arg(&s.wrong_file).env("HCCONV_PASSWORD", &s.password).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = inspect(&s.export).arg("--password").arg(WRONG).env("HCCONV_PASSWORD", &s.password).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn no_password_and_no_terminal_is_a_usage_error() {
    let s = setup();
    // assert_cmd gives the child no terminal on stdin, so hcconv cannot prompt.
    let out = inspect(&s.export).output().unwrap();
    let (stdout, stderr) = outputs(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--password-file") && stderr.contains("HCCONV_PASSWORD"), "{stderr}");
    assert!(stderr.contains("encrypted") && stderr.contains("no password"), "{stderr}");
    assert!(stdout.is_empty());
    // The same with stdin explicitly a pipe carrying data: still never read as a password.
    let out = inspect(&s.export).write_stdin(format!("{}\n", s.password)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", outputs(&out).1);
}

#[test]
fn unencrypted_exports_need_no_password() {
    let s = setup();
    let (entries, manifest) = quirks();
    let plain = write_container(&s.dir, "plain.tar.gz", &entries, Container::TarGz, "");
    let out = inspect(&plain).output().unwrap();
    assert!(out.status.success(), "{}", outputs(&out).1);
    assert_manifest_counts(&serde_json::from_str(&outputs(&out).0).unwrap(), &manifest);
}

#[test]
fn wrong_password_is_exit_3_from_every_source_and_never_printed() {
    let s = setup();
    let sha = write_container(&s.dir, "sha.tar.gz.aes", &quirks().0, Container::Encrypted(Kdf::Sha256), &s.password);
    for export in [&s.export, &sha] {
        for verbose in [false, true] {
            let mut runs: Vec<(&str, assert_cmd::Command)> = Vec::new();
            let mut c = inspect(export);
            c.arg("--password-file").arg(&s.wrong_file);
            runs.push(("--password-file", c));
            let mut c = inspect(export);
            c.env("HCCONV_PASSWORD", WRONG);
            runs.push(("HCCONV_PASSWORD", c));
            let mut c = inspect(export);
            c.arg("--password").arg(WRONG);
            runs.push(("--password", c));
            let mut c = hcconv();
            c.arg("inspect").arg(export).env("HCCONV_PASSWORD", WRONG); // text mode too
            runs.push(("text mode", c));
            for (what, mut cmd) in runs {
                if verbose {
                    cmd.arg("--verbose");
                }
                let out = cmd.output().unwrap();
                let (stdout, stderr) = outputs(&out);
                assert_eq!(out.status.code(), Some(3), "{what} verbose={verbose}: {stderr}");
                assert!(stderr.contains("wrong password"), "{what}: {stderr}");
                assert!(stderr.contains(&export.display().to_string()), "{what}: the message names the export: {stderr}");
                assert!(stdout.is_empty(), "{what}: {stdout}");
                assert_no_secret(&out, &[WRONG, &s.password], what);
            }
        }
    }
}

#[test]
fn unreadable_password_file_is_a_usage_error() {
    let s = setup();
    let missing = s.dir.join("no-such.pw");
    let out = inspect(&s.export).arg("--password-file").arg(&missing).output().unwrap();
    let (_, stderr) = outputs(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--password-file") && stderr.contains("no-such.pw"), "{stderr}");
}

#[test]
fn empty_password_file_is_a_wrong_password() {
    let s = setup();
    let empty = s.dir.join("empty.pw");
    std::fs::write(&empty, "").unwrap();
    let out = inspect(&s.export).arg("--password-file").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outputs(&out).1);
}
