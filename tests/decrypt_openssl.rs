//! Byte compatibility with the real `openssl enc -aes-256-cbc`: vectors OpenSSL 3 made
//! (fixtures/openssl/, commands in its README), and, when `openssl` is installed, files
//! it encrypts at test time with a fresh random password.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use hcconv::archive::crypto::{self, DecryptError, Kdf};
use hcconv::testkit::Container;

use common::*;

/// (file, the derivation OpenSSL used, the flags that force it, hcconv's name for it).
const VECTORS: &[(&str, Kdf, &[&str], &str)] = &[
    ("quirks.md5.tar.gz.aes", Kdf::Md5, &["--kdf", "md5"], "md5"),
    ("quirks.sha256.tar.gz.aes", Kdf::Sha256, &["--kdf", "sha256"], "sha256"),
    ("quirks.pbkdf2.tar.gz.aes", Kdf::Pbkdf2(10_000), &["--kdf", "pbkdf2"], "pbkdf2 (10000 iterations)"),
    ("quirks.pbkdf2-iter2000.tar.gz.aes", Kdf::Pbkdf2(2000), &["--kdf", "pbkdf2", "--iter", "2000"], "pbkdf2 (2000 iterations)"),
];

fn vector(name: &str) -> PathBuf {
    repo("fixtures/openssl").join(name)
}

/// Runs inspect with the vectors' password in the environment.
fn inspect(path: &Path, args: &[&str]) -> std::process::Output {
    hcconv().args(["inspect", "--json", "--verbose"]).args(args).arg(path).env("HCCONV_PASSWORD", VECTOR_PASSWORD).output().unwrap()
}

#[test]
fn readme_states_the_password() {
    let readme = std::fs::read_to_string(vector("README.md")).unwrap();
    assert!(readme.contains(&format!("'{VECTOR_PASSWORD}'")), "README.md and the tests disagree on the password");
    for (name, ..) in VECTORS {
        assert!(readme.contains(name), "README.md does not describe {name}");
    }
}

#[test]
fn openssl_vectors_are_detected_and_give_the_manifest_counts() {
    let manifest = committed_manifest();
    for (name, _, _, kdf_name) in VECTORS {
        // Detection only tries the --iter count given (default 10000): the file does
        // not record it, so the 2000-iteration vector needs --iter, but not --kdf.
        let args: &[&str] = if name.contains("iter2000") { &["--iter", "2000"] } else { &[] };
        let out = inspect(&vector(name), args);
        let (stdout, stderr) = outputs(&out);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(&format!("decrypting with key derivation {kdf_name}\n")), "{name}: {stderr}");
        let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_manifest_counts(&inv, &manifest);
        assert_clean_read(&inv, "encrypted");
    }
}

#[test]
fn forcing_the_right_kdf_works() {
    let manifest = committed_manifest();
    for (name, _, force, kdf_name) in VECTORS {
        let out = inspect(&vector(name), force);
        let (stdout, stderr) = outputs(&out);
        assert!(out.status.success(), "{name} {force:?}: {stderr}");
        assert!(stderr.contains(&format!("decrypting with key derivation {kdf_name}\n")), "{name}: {stderr}");
        assert_manifest_counts(&serde_json::from_str(&stdout).unwrap(), &manifest);
    }
}

#[test]
fn forcing_a_wrong_kdf_is_exit_3() {
    for (name, _, right, _) in VECTORS {
        let wrongs: &[&[&str]] = &[&["--kdf", "md5"], &["--kdf", "sha256"], &["--kdf", "pbkdf2"], &["--kdf", "pbkdf2", "--iter", "2000"], &["--kdf", "pbkdf2", "--iter", "9999"]];
        for wrong in wrongs.iter().filter(|w| *w != right) {
            let out = inspect(&vector(name), wrong);
            let (stdout, stderr) = outputs(&out);
            assert_eq!(out.status.code(), Some(3), "{name} {wrong:?}: {stderr}");
            assert!(stderr.contains("wrong password"), "{name} {wrong:?}: {stderr}");
            assert!(stderr.contains(name), "the message names the file: {stderr}");
            assert!(stdout.is_empty(), "no inventory on failure: {stdout}");
        }
    }
}

#[test]
fn wrong_iteration_count_is_exit_3_and_hints_at_iter() {
    let out = inspect(&vector("quirks.pbkdf2-iter2000.tar.gz.aes"), &[]);
    let (_, stderr) = outputs(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("wrong password") && stderr.contains("--iter"), "{stderr}");
}

#[test]
fn library_decrypts_the_vectors_to_the_openssl_input() {
    let plain = read(&vector("quirks.tar.gz"));
    assert!(crypto::is_gzip(&plain));
    for (name, kdf, ..) in VECTORS {
        let iter = match kdf {
            Kdf::Pbkdf2(n) => *n,
            _ => 10_000,
        };
        // Detected…
        let file = std::fs::File::open(vector(name)).unwrap();
        let mut reader = crypto::open_encrypted(file, VECTOR_PASSWORD.as_bytes(), None, iter).unwrap();
        assert_eq!(reader.kdf(), Some(*kdf), "{name}");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert!(out == plain, "{name}: detected decryption differs from the openssl input ({} vs {} bytes)", out.len(), plain.len());
        // …and forced, read in small pieces to cross every block and chunk boundary.
        let file = std::fs::File::open(vector(name)).unwrap();
        let mut reader = crypto::open_encrypted(file, VECTOR_PASSWORD.as_bytes(), Some(*kdf), iter).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == plain, "{name}: forced decryption differs");
        // A wrong password is told apart from damage.
        let file = std::fs::File::open(vector(name)).unwrap();
        let err = crypto::open_encrypted(file, b"not the password", None, iter).err().expect("wrong password must fail");
        assert_eq!(crypto::decrypt_error(&err), Some(&DecryptError::WrongPassword), "{name}");
    }
}

#[test]
fn encryption_matches_openssl_given_the_same_salt() {
    // The vectors' salt is in their header; re-encrypting the plaintext with it must
    // give OpenSSL's bytes exactly.
    let plain = read(&vector("quirks.tar.gz"));
    for (name, kdf, ..) in VECTORS {
        let theirs = read(&vector(name));
        let salt: [u8; 8] = theirs[8..16].try_into().unwrap();
        let ours = crypto::encrypt(&plain, VECTOR_PASSWORD.as_bytes(), salt, *kdf);
        assert!(ours == theirs, "{name}: hcconv's encryption differs from openssl's");
    }
}

fn openssl_available() -> bool {
    match StdCommand::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => true,
        _ => {
            eprintln!("note: `openssl` is not on PATH; the live OpenSSL compatibility test is skipped (the committed vectors still ran)");
            false
        }
    }
}

/// A password nobody typed before: random letters, digits, punctuation and a space.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let mut noise = Noise(h.finish() | 1);
    let alphabet: Vec<char> = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%+,-.:=@_ ~".chars().collect();
    let body: String = (0..24).map(|_| alphabet[(noise.next() % alphabet.len() as u64) as usize]).collect();
    format!("rnd{body}z")
}

#[test]
fn live_openssl_encrypts_and_hcconv_decrypts() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (entries, manifest) = quirks();
    let plain = write_container(dir.path(), "q.tar.gz", &entries, Container::TarGz, "");
    let password = random_password();
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{password}\n")).unwrap();
    let cases: &[(&str, &[&str], &[&str], &str)] = &[
        ("md5", &["-md", "md5"], &[], "md5"),
        ("sha256", &["-md", "sha256"], &[], "sha256"),
        ("default", &[], &[], "sha256"), // OpenSSL >= 1.1 default
        ("pbkdf2", &["-pbkdf2"], &[], "pbkdf2 (10000 iterations)"),
        ("pbkdf2-1234", &["-pbkdf2", "-iter", "1234"], &["--iter", "1234"], "pbkdf2 (1234 iterations)"),
    ];
    for (label, openssl_args, hcconv_args, kdf_name) in cases {
        let enc = dir.path().join(format!("{label}.tar.gz.aes"));
        let status = StdCommand::new("openssl")
            .args(["enc", "-aes-256-cbc", "-salt"])
            .args(*openssl_args)
            .arg("-pass")
            .arg(format!("file:{}", pass_file.display()))
            .arg("-in")
            .arg(&plain)
            .arg("-out")
            .arg(&enc)
            .output()
            .unwrap();
        assert!(status.status.success(), "openssl {label}: {}", String::from_utf8_lossy(&status.stderr));
        assert!(read(&enc).starts_with(b"Salted__"));
        let out = hcconv()
            .args(["inspect", "--json", "--verbose", "--password-file"])
            .arg(&pass_file)
            .args(*hcconv_args)
            .arg(&enc)
            .output()
            .unwrap();
        let (stdout, stderr) = outputs(&out);
        assert!(out.status.success(), "{label}: {stderr}");
        assert!(stderr.contains(&format!("decrypting with key derivation {kdf_name}\n")), "{label}: {stderr}");
        assert!(!stdout.contains(&password) && !stderr.contains(&password), "{label}: the password was printed");
        assert_manifest_counts(&serde_json::from_str(&stdout).unwrap(), &manifest);
        // And the library gets openssl's input back exactly.
        let iter = if *label == "pbkdf2-1234" { 1234 } else { 10_000 };
        let mut back = Vec::new();
        crypto::open_encrypted(std::fs::File::open(&enc).unwrap(), password.as_bytes(), None, iter).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == read(&plain), "{label}: decrypted bytes differ");
    }
}

#[test]
fn live_openssl_decrypts_what_the_fixture_generator_encrypts() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    let password = random_password();
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, &password).unwrap();
    let plain = read(&write_container(dir.path(), "q.tar.gz", &entries, Container::TarGz, ""));
    for (kdf, args) in [(Kdf::Md5, &["-md", "md5"][..]), (Kdf::Sha256, &["-md", "sha256"][..]), (Kdf::Pbkdf2(3000), &["-pbkdf2", "-iter", "3000"][..])] {
        let enc = write_container(dir.path(), "q.aes", &entries, Container::Encrypted(kdf), &password);
        let out = StdCommand::new("openssl")
            .args(["enc", "-d", "-aes-256-cbc"])
            .args(args)
            .arg("-pass")
            .arg(format!("file:{}", pass_file.display()))
            .arg("-in")
            .arg(&enc)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl could not decrypt the {kdf} fixture: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == plain, "{kdf}: openssl decrypts the fixture to other bytes");
    }
}
