//! A tar entry may carry a file name longer than any Linux filesystem takes (255
//! bytes); an independent export had one, and copying it as it was stopped the
//! Mattermost and Qiscus conversions ("File name too long"). The name is cut to fit,
//! the same way in the folder, the zip and the links, and the bytes arrive whole.

mod common;

use std::fs;
use std::path::Path;

use hcconv::testkit::Container;

/// The quirks fixture with its `notes.txt` attachment renamed to a 300-byte name.
fn export_with_a_long_name(dir: &Path) -> (std::path::PathBuf, String) {
    let (mut entries, _) = common::quirks();
    let long = format!("k9k9k9k9/{}.txt", "n".repeat(296));
    for entry in &mut entries {
        entry.path = entry.path.replace("k9k9k9k9/notes.txt", &long);
        if entry.path.ends_with(".json") {
            entry.bytes = String::from_utf8(entry.bytes.clone()).unwrap().replace("k9k9k9k9/notes.txt", &long).into_bytes();
        }
    }
    (common::write_container(dir, "long.tar.gz", &entries, Container::TarGz, ""), long)
}

/// The one file below `root` whose name ends with `.txt` and holds `~` (the cut name).
fn cut_file(root: &Path) -> std::path::PathBuf {
    let found: Vec<_> = walkdir::WalkDir::new(root).into_iter().map(|e| e.unwrap().into_path()).filter(|p| p.file_name().unwrap().to_string_lossy().contains('~')).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn a_name_too_long_for_the_filesystem_is_cut_to_fit_in_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let (export, long) = export_with_a_long_name(dir.path());
    let secret = dir.path().join("secret");
    fs::write(&secret, "a secret of thirty-two bytes!!!!\n").unwrap();
    let runs: [(&str, &[&str]); 3] = [("mm", &["--to", "mattermost"]), ("mm.zip", &["--to", "mattermost", "--zip"]), ("q", &["--to", "qiscus", "--secret-file", secret.to_str().unwrap()])];
    for (name, flags) in runs {
        let out = dir.path().join(name);
        common::hcconv().arg(&export).args(flags).arg("-o").arg(&out).arg("--quiet").assert().success();
        if name.ends_with(".zip") {
            let zip = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
            let cut: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).filter(|n| n.contains('~')).collect();
            assert_eq!(cut.len(), 1, "{cut:?}");
            let last = cut[0].rsplit('/').next().unwrap();
            assert!(last.len() <= 255 && last.starts_with("nnnn") && last.ends_with(".txt"), "{last}");
            continue;
        }
        let file = cut_file(&out);
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(file_name.len() <= 255 && file_name.ends_with(".txt"), "{file_name}");
        assert_eq!(fs::read(&file).unwrap(), b"hello notes");
        let rel = file.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        let texts: String = fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).map(|p| fs::read_to_string(p).unwrap_or_default()).collect();
        // The output refers to the file by its cut path, and never by the long one.
        let referred = if name == "mm" { rel.trim_start_matches("data/").to_string() } else { rel.clone() };
        assert!(texts.contains(&referred), "{name}: no reference to {referred}");
        assert!(!texts.contains(&format!("/{long}")), "{name}: the long path is still referred to");
    }
}
