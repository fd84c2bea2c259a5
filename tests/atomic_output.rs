//! A conversion either finishes or leaves nothing: no OUT that looks complete, no
//! hidden folders, nothing outside OUT; an existing OUT is kept without --force.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{fixture_password, hcconv, names, quirks, repo, write_container};
use hcconv::testkit::{write_scaled_export, Container, ScaleShape, ScaleSpec};

#[test]
fn a_failed_conversion_leaves_no_output_and_no_hidden_folders() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo("fixtures/quirks.tar.gz.aes")).unwrap();
    let cut = dir.path().join("cut.tar.gz.aes");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    for target in ["mattermost", "pixtoome"] {
        let out = dir.path().join(format!("out-{target}"));
        let assert = hcconv().arg(&cut).args(["--to", target, "-q", "-o"]).arg(&out).env("HCCONV_PASSWORD", fixture_password()).assert();
        let output = assert.get_output();
        assert_eq!(output.status.code(), Some(4), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(!out.exists(), "{target}: no OUT after a failure");
    }
    assert_eq!(names(dir.path()), vec!["cut.tar.gz.aes"], "no hidden staging folders are left");
}

#[test]
fn an_existing_output_is_kept_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let fixture = repo("fixtures/quirks.tar.gz.aes");
    let run = |force: bool| {
        let mut cmd = hcconv();
        cmd.arg(&fixture).args(["--to", "mattermost", "-q", "-o"]).arg(&out).env("HCCONV_PASSWORD", fixture_password());
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "precious");
    assert!(run(true).status.success());
    assert!(!out.join("keep.txt").exists());
    assert!(out.join("import.jsonl").is_file());
    assert_eq!(names(dir.path()), vec!["out"]);
}

#[test]
fn an_output_symlink_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = dir.path().join("out");
    std::os::unix::fs::symlink(&elsewhere, &out).unwrap();
    let output = hcconv()
        .arg(repo("fixtures/quirks.tar.gz.aes"))
        .args(["--to", "mattermost", "-q", "--force", "-o"])
        .arg(&out)
        .env("HCCONV_PASSWORD", fixture_password())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    assert!(names(&elsewhere).is_empty());
}

#[test]
fn max_entry_size_refuses_large_entries_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = quirks();
    let export = write_container(dir.path(), "q.tar", &entries, hcconv::testkit::Container::Tar, "");
    let out = dir.path().join("out");
    let report = dir.path().join("report.json");
    hcconv().arg(&export).args(["--to", "mattermost", "-q", "--max-entry-size", "200", "-o"]).arg(&out).arg("--report").arg(&report).assert().success();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let too_large = report["skip_reasons"]["entry"]["too_large"].as_u64().unwrap_or(0);
    assert!(too_large > 0, "{}", report["skip_reasons"]);
    assert_eq!(report["status"], "ok");
    let t = &report["timings"];
    let secs = |k: &str| t[k].as_f64().unwrap_or_else(|| panic!("timings.{k} missing: {t}"));
    assert!(secs("total") + 0.002 >= secs("read") + secs("write"), "the phases fit in the total: {t}");
}

/// A failed run still writes its report: the outcome, the error naming the export,
/// and how long it ran (runbooks look at the report, not only the exit code).
#[test]
fn a_failed_conversion_still_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo("fixtures/quirks.tar.gz.aes")).unwrap();
    let cut = dir.path().join("cut.tar.gz.aes");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let report = dir.path().join("report.json");
    let out = dir.path().join("out");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a test secret of at least 32 bytes!!\n").unwrap();
    hcconv().arg(&cut).args(["--to", "qiscus", "-q", "--secret-file"]).arg(&secret).arg("-o").arg(&out).arg("--report").arg(&report).env("HCCONV_PASSWORD", fixture_password()).assert().code(4);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["exit_code"], 4);
    assert!(report["error"].as_str().unwrap().contains("cut.tar.gz.aes"), "{}", report["error"]);
    assert!(report["timings"]["total"].as_f64().is_some(), "{}", report["timings"]);
    assert!(report["timings"].get("write").is_none(), "the run never got to writing: {}", report["timings"]);
}

/// Interrupts a run `delay` after its hidden folders appeared; returns whether the
/// run finished first (nothing to check then).
fn interrupt_run(export: &Path, target: &str, out_dir: &Path, delay: Duration) -> bool {
    let out = out_dir.join("out");
    let report = out_dir.with_extension("report.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hcconv"));
    cmd.arg(export).args(["--to", target, "-q", "-o"]).arg(&out).arg("--report").arg(&report).stderr(std::process::Stdio::null());
    if target == "qiscus" {
        let secret = out_dir.parent().unwrap().join("secret");
        std::fs::write(&secret, "a test secret of thirty-two bytes").unwrap();
        cmd.arg("--secret-file").arg(&secret);
    }
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while names(out_dir).len() < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(delay);
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    if status.success() {
        return true;
    }
    assert_eq!(status.code(), Some(130), "{target} after {delay:?}");
    assert!(!out.exists(), "{target} after {delay:?}: no OUT");
    assert_eq!(names(out_dir), Vec::<String>::new(), "{target} after {delay:?}: hidden folders removed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!((&report["status"], &report["exit_code"]), (&serde_json::json!("interrupted"), &serde_json::json!(130)), "{target} after {delay:?}: the report says so");
    false
}

/// A report that cannot be written fails the run before any work, so no complete
/// OUT is left behind a non-zero exit (a retry would then need --force).
#[test]
fn an_unwritable_report_fails_before_the_output_exists() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = dir.path().join("missing-folder").join("report.json");
    let run = hcconv().arg(repo("fixtures/quirks.tar.gz.aes")).args(["--to", "mattermost", "-q", "-o"]).arg(&out).arg("--report").arg(&report).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
    assert_eq!(run.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&run.stderr).contains("report.json"), "names the report");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "no OUT, no hidden folders");
}

/// Ctrl-C at several moments of every writer's run: exit 130, no OUT, and no hidden
/// folder, even while other threads are still creating files in them (CI once
/// caught a staging thread recreating the work folder after the handler removed it).
#[test]
fn ctrl_c_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("big.tar.gz");
    let spec = ScaleSpec { messages: 60_000, rooms: 20, users: 100, attachment_every: 50, attachment_bytes: 2000, private_percent: 10, shape: Default::default() };
    write_scaled_export(spec, Container::TarGz, "", std::fs::File::create(&export).unwrap()).unwrap();
    let mut finished = 0;
    for target in ["mattermost", "pixtoome", "qiscus"] {
        for delay_ms in [0, 40, 150, 400] {
            let out_dir = dir.path().join(format!("{target}-{delay_ms}"));
            std::fs::create_dir(&out_dir).unwrap();
            if interrupt_run(&export, target, &out_dir, Duration::from_millis(delay_ms)) {
                finished += 1;
            }
        }
    }
    if finished > 0 {
        // A fast machine can finish a run before the signal arrives: nothing to test there.
        eprintln!("note: {finished} of 12 conversions finished before Ctrl-C could be sent");
    }
}

/// A finished run leaves OUT and nothing else beside it: the scratch folder (staged
/// attachments, and spool runs, several at this size) is removed on a thread of its
/// own while the report is written, and the process waits for it before it exits.
#[test]
fn a_finished_run_leaves_only_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("big.tar.gz");
    // Text-heavy: 24 MB of messages, more than the history threads' spool budgets.
    let spec = ScaleSpec { messages: 60_000, rooms: 20, users: 100, attachment_every: 25, attachment_bytes: 0, private_percent: 10, shape: ScaleShape::TextHeavy };
    write_scaled_export(spec, Container::TarGz, "", std::fs::File::create(&export).unwrap()).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a test secret of thirty-two bytes").unwrap();
    for target in ["mattermost", "pixtoome", "qiscus"] {
        let out_dir = dir.path().join(target);
        std::fs::create_dir(&out_dir).unwrap();
        let mut cmd = hcconv();
        cmd.arg(&export).args(["--to", target, "-q", "-o"]).arg(out_dir.join("out")).arg("--report").arg(out_dir.join("report.json"));
        if target == "qiscus" {
            cmd.arg("--secret-file").arg(&secret);
        }
        cmd.assert().success();
        assert_eq!(names(&out_dir), vec!["out", "report.json"], "{target}: only OUT and the report");
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
        let attachments = &report["counts"]["attachment"];
        assert!(attachments["input"].as_u64() > Some(2000) && attachments["written"] == attachments["input"], "{target}: {}", report["counts"]);
    }
}

/// `-o NAME.zip` never makes a folder called NAME.zip: Mattermost writes the zip
/// (tests/mattermost_writer.rs), the two folder targets refuse before reading.
#[test]
fn an_output_named_zip_for_a_folder_target_is_a_usage_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "a secret of thirty-two bytes!!!!\n").unwrap();
    for (target, name) in [("pixtoome", "out.zip"), ("qiscus", "OUT.ZIP")] {
        let out = tmp.path().join(name);
        let run = hcconv()
            .arg(repo("fixtures/quirks.tar.gz.aes"))
            .args(["--to", target, "--password-file"])
            .arg(repo("fixtures/quirks.password"))
            .arg("--secret-file")
            .arg(&secret)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains("writes a folder, not a zip file"), "{target}: {stderr}");
        assert_eq!(names(tmp.path()), vec!["secret".to_string()], "{target}: nothing written");
    }
}
