//! `hcconv upload qiscus`, end to end against an emulation of the import API on
//! 127.0.0.1 (tests/common/qiscus_api.rs) that follows the seed document's
//! contract, enforces its rules, and misbehaves on purpose: slow imports, failed
//! imports, 500s, dropped connections, the upload's row on a later page, a client
//! killed mid-run and a server that dies. Every test ends with the emulator's
//! record of what a client must never do (a file sent twice, out of order, or
//! while another was still importing) empty, and every row of every file in its
//! database.

mod common;
#[path = "common/qiscus_api.rs"]
mod qiscus_api;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use qiscus_api::{FakeQiscus, Faults, APP_ID, SECRET};
use serde_json::Value;

const FIXTURE: &str = "fixtures/quirks.tar.gz.aes";
const PASSWORD_FILE: &str = "fixtures/quirks.password";

/// The fixture converted `--to qiscus` once (with small files, so that each kind
/// has several), copied into each test's folder.
fn fixture_folder(dir: &Path) -> PathBuf {
    static CONVERTED: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, source) = CONVERTED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = convert(dir.path(), FIXTURE, &["--password-file", PASSWORD_FILE, "--qiscus-max-file-bytes", "6000"]);
        (dir, out)
    });
    let copy = dir.join("qiscus");
    fs::create_dir(&copy).unwrap();
    for entry in fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    copy
}

fn convert(dir: &Path, input: &str, extra: &[&str]) -> PathBuf {
    let secret = dir.join("hmac.secret");
    fs::write(&secret, "correct horse battery staple 42\n").unwrap();
    let out = dir.join("converted");
    common::hcconv().arg(input).args(["--to", "qiscus", "--files-base-url", "https://files.example.com/hc", "--quiet", "-o"]).arg(&out).arg("--secret-file").arg(&secret).args(extra).assert().success();
    out
}

/// The import files of `folder` in upload order, with their rows.
fn import_files(folder: &Path) -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    for kind in ["users", "rooms", "comments"] {
        for n in 1.. {
            let name = format!("{kind}-{n:04}.json");
            let Ok(bytes) = fs::read(folder.join(&name)) else { break };
            files.push((name, serde_json::from_slice(&bytes).unwrap()));
        }
    }
    files
}

/// `hcconv upload qiscus FOLDER` against `server`, fast settings, secret in the
/// environment, a report beside the folder.
fn upload(folder: &Path, base_url: &str, extra: &[&str]) -> std::process::Command {
    upload_to(APP_ID, folder, base_url, extra)
}

/// [`upload`] to the app `app_id`.
fn upload_to(app_id: &str, folder: &Path, base_url: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hcconv"));
    cmd.args(["upload", "qiscus"])
        .arg(folder)
        .args(["--app-id", app_id, "--base-url", base_url, "--poll-interval", "0.002", "--retry-wait", "0.002", "--report"])
        .arg(report_path(folder))
        .args(extra)
        .env("QISCUS_SDK_SECRET", SECRET)
        .env_remove("HCCONV_PASSWORD")
        .stdin(std::process::Stdio::null());
    cmd
}

fn report_path(folder: &Path) -> PathBuf {
    folder.with_extension("report.json")
}

fn run(mut cmd: std::process::Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn journal(folder: &Path) -> Value {
    serde_json::from_slice(&fs::read(folder.join("upload-journal.json")).unwrap()).unwrap()
}

fn report(folder: &Path) -> Value {
    serde_json::from_slice(&fs::read(report_path(folder)).unwrap()).unwrap()
}

/// Asserts the run succeeded, nothing was done that must not be, every file was
/// imported exactly once and every row is in the emulator's database; checks
/// the journal and the report say so, and that the secret appears nowhere.
fn assert_all_imported(folder: &Path, server: &FakeQiscus, out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    let state = server.state();
    assert!(state.violations.is_empty(), "violations: {:?}", state.violations);
    let files = import_files(folder);
    let journal = journal(folder);
    let mut rows = [0usize; 3];
    for (name, file_rows) in &files {
        let imports = state.imports_of(name);
        assert_eq!(imports.len(), 1, "{name}: imported {} times", imports.len());
        assert_eq!(imports[0].status, "finished", "{name}: {:?}", imports[0].errors);
        assert_eq!(imports[0].total_rows, file_rows.len() as u64, "{name}");
        let entry = journal["files"].as_array().unwrap().iter().find(|e| e["file"] == name.as_str()).unwrap_or_else(|| panic!("{name} not journaled"));
        assert_eq!(entry["state"], "finished", "{entry}");
        assert_eq!(entry["unique_id"], imports[0].unique_id.as_str());
        assert_eq!(entry["total_rows"], file_rows.len());
        let kind = ["users", "rooms", "comments"].iter().position(|k| name.starts_with(k)).unwrap();
        rows[kind] += file_rows.len();
    }
    assert_eq!([state.db.emails.len(), state.db.rooms.len(), state.db.comments.len()], rows, "every row in the database");
    let report = report(folder);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["counts"]["finished"], files.len());
    assert_eq!(report["counts"]["rows_imported"], rows.iter().sum::<usize>());
    assert_secret_nowhere(folder, out);
}

fn assert_secret_nowhere(folder: &Path, out: &Output) {
    assert!(!text(out).contains(SECRET), "the secret is in the output");
    for path in [folder.join("upload-journal.json"), report_path(folder)] {
        if let Ok(content) = fs::read_to_string(&path) {
            assert!(!content.contains(SECRET), "the secret is in {}", path.display());
        }
    }
}

#[test]
fn the_fixture_goes_in_order_through_slow_imports_and_later_pages() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    assert!(files.iter().filter(|(n, _)| n.starts_with("comments")).count() >= 3, "several files of a kind: {:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
    // Imports stay "started" for 5 looks; 3 rows a page, oldest first, after 7
    // earlier imports: every upload's row is on page 3 or later.
    let server = FakeQiscus::start(Faults { started_looks: 5, page_size: 3, ..Faults::default() }, 7);
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_all_imported(&folder, &server, &out);
    {
        let state = server.state();
        assert_eq!(state.posts(), files.len());
        assert!(state.requests.iter().any(|r| r == "GET page=3"), "looked past page 2");
    }
    let journal = journal(&folder);
    assert_eq!(journal["app_id"], APP_ID);
    assert_eq!(journal["imports_before"].as_array().unwrap().len(), 7, "the app's earlier imports are recorded");
    assert!(journal["files"].as_array().unwrap().iter().all(|e| e["id_from"] == "answer" && e["uploads"] == 1));

    // A second run sends nothing and says everything was finished earlier.
    let requests_before = server.state().requests.len();
    let again = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(server.state().posts(), files.len(), "nothing sent again");
    assert_eq!(server.state().requests.len(), requests_before, "not even a look at the list");
    let report = report(&folder);
    assert!(report["files"].as_array().unwrap().iter().all(|f| f["action"] == "finished earlier"), "{report:#}");
    assert_eq!(report["counts"]["finished_this_run"], 0);
}

#[test]
fn a_larger_generated_export_goes_through_newest_first_lists() {
    use hcconv::testkit::{write_scaled_export, Container, ScaleSpec};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scaled.tar");
    let spec = ScaleSpec { messages: 6000, rooms: 25, users: 120, attachment_every: 0, attachment_bytes: 0, private_percent: 15, shape: Default::default() };
    write_scaled_export(spec, Container::Tar, "", fs::File::create(&input).unwrap()).unwrap();
    let folder = convert(dir.path(), input.to_str().unwrap(), &["--qiscus-max-file-bytes", "60000"]);
    let files = import_files(&folder);
    assert!(files.len() >= 30, "{} files", files.len());
    let server = FakeQiscus::start(Faults { started_looks: 1, page_size: 5, newest_first: true, ..Faults::default() }, 12);
    let out = run(upload(&folder, &server.base_url(), &["--quiet"]));
    assert_all_imported(&folder, &server, &out);
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out));
    let comments: usize = files.iter().filter(|(n, _)| n.starts_with("comments")).map(|(_, r)| r.len()).sum();
    assert!(comments >= 5000, "{comments} comments");
}

#[test]
fn a_failed_import_stops_the_run_with_its_errors_and_exit_7() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let server = FakeQiscus::start(Faults::default(), 0);
    // The app already has one of the users (imported before, by hand): the users
    // file fails as Qiscus documents it, and nothing after it is sent.
    let (users, rooms) = (&files[0].0, &files[1].0);
    let taken = files[0].1[3]["Email"].as_str().unwrap().to_string();
    server.state().db.emails.insert(taken.clone());
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{users}: import")) && stderr.contains(&format!("Email and authentication token must be unique ({taken})")), "{stderr}");
    assert!(stderr.contains(&format!("--resend {users}")), "{stderr}");
    {
        let state = server.state();
        assert!(state.violations.is_empty(), "{:?}", state.violations);
        assert_eq!(state.posts(), 1, "nothing after the failed file");
    }
    let entry = journal(&folder)["files"][0].clone();
    assert_eq!((entry["file"].as_str(), entry["state"].as_str(), entry["status"].as_str()), (Some(users.as_str()), Some("failed"), Some("failed")));
    assert!(entry["errors"]["Message"].as_str().unwrap().contains("must be unique"), "{entry}");
    let rep = report(&folder);
    assert_eq!((rep["status"].as_str(), rep["exit_code"].as_i64()), (Some("failed"), Some(7)));
    assert_eq!((rep["files"][0]["action"].as_str(), rep["files"][0]["state"].as_str()), (Some("sent"), Some("failed")));
    assert_eq!(rep["files"][0]["errors"], entry["errors"]);
    assert_eq!(rep["files"][1]["action"], "not reached");

    // A rerun stops on it again, sending nothing; --resend of another file is refused.
    let again = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(again.status.code(), Some(7), "{}", text(&again));
    assert_eq!(report(&folder)["files"][0]["action"], "the run stopped here");
    assert_eq!(run(upload(&folder, &server.base_url(), &["--resend", rooms])).status.code(), Some(2));
    assert_eq!(server.state().posts(), 1);
    // Someone removed the user from the app: --resend sends the file again, and the rest follows.
    server.state().db.emails.remove(&taken);
    let resent = run(upload(&folder, &server.base_url(), &["--resend", users]));
    assert_eq!(resent.status.code(), Some(0), "{}", text(&resent));
    let state = server.state();
    assert_eq!(state.posts_of(users), 2, "the one resend asked for");
    assert!(state.violations.is_empty(), "{:?}", state.violations);
    assert_eq!(state.posts(), files.len() + 1);
    assert_eq!(state.imports_of(users).iter().map(|i| i.status.as_str()).collect::<Vec<_>>(), ["failed", "finished"]);
}

#[test]
fn server_errors_are_retried_and_a_refused_request_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let mut faults = Faults { list_500: 2, ..Faults::default() };
    faults.post_500.insert(files[0].0.clone(), 2);
    faults.post_500.insert(files[3].0.clone(), 1);
    let server = FakeQiscus::start(faults, 2);
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(server.state().posts_of(&files[0].0), 3, "two 500s, then the upload");
    assert_eq!(server.state().posts_of(&files[3].0), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 500"), "{}", text(&out));

    // 500s past the retries: exit 8, nothing journaled for that file (a 5xx
    // created nothing), and the next run sends it.
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let mut faults = Faults::default();
    faults.post_500.insert(files[0].0.clone(), 4);
    let server = FakeQiscus::start(faults, 0);
    let out = run(upload(&folder, &server.base_url(), &["--retries", "3"]));
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gave up after 3 retries"), "{}", text(&out));
    assert_eq!(server.state().posts(), 4);
    assert_eq!(journal(&folder)["files"], Value::Array(vec![]));
    assert_all_imported(&folder, &server, &run(upload(&folder, &server.base_url(), &[])));

    // A wrong secret is refused (401): one request, no retry, exit 8, and the
    // secret given is not shown.
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let server = FakeQiscus::start(Faults::default(), 0);
    let mut cmd = upload(&folder, &server.base_url(), &[]);
    cmd.env("QISCUS_SDK_SECRET", "wrong-Secret-0000");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401: the API refused the app id or the SDK secret"), "{}", text(&out));
    assert!(!text(&out).contains("wrong-Secret-0000"));
    assert_eq!(server.state().requests, ["REFUSED unauthorized"]);
}

#[test]
fn dropped_connections_never_cause_a_second_upload() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let mut faults = Faults { drop_list: 2, ..Faults::default() };
    // The first upload is dropped before the import is made; a later one after:
    // the run must send the first again and find the second in the list.
    faults.drop_post.insert(files[0].0.clone(), false);
    faults.drop_post.insert(files[2].0.clone(), true);
    let server = FakeQiscus::start(faults, 3);
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(server.state().posts_of(&files[0].0), 2, "dropped before it was made: sent again");
    assert_eq!(server.state().posts_of(&files[2].0), 1, "dropped after it was made: found, not sent again");
    let entry = journal(&folder)["files"][2].clone();
    assert_eq!(entry["id_from"], "import list", "{entry}");
    assert_eq!(report(&folder)["files"][2]["action"], "found in the import list (sent by an earlier try whose answer was lost)");
}

#[test]
fn answers_slower_than_the_timeout_are_tried_again_without_a_second_upload() {
    // --timeout 0.5 against answers that take 1.5 s: two list requests, and the
    // answer to one upload (whose import is made at once). The list is retried;
    // the upload is found in the list instead of being sent again.
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let server = FakeQiscus::start(Faults { stall_list: 2, stall_post: Some(files[1].0.clone()), ..Faults::default() }, 1);
    let out = run(upload(&folder, &server.base_url(), &["--timeout", "0.5"]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(server.state().posts_of(&files[1].0), 1);
    assert_eq!(journal(&folder)["files"][1]["id_from"], "import list");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"), "{}", text(&out));
}

#[test]
fn a_lost_answer_the_list_cannot_explain_waits_for_a_decision() {
    // The server lists uploads under another name, and the very first upload's
    // answer is lost after the import was made: hcconv cannot tell whether the one
    // new import in the list is its own, so it stops (exit 9) instead of guessing.
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let mut faults = Faults { rename_uploads: true, ..Faults::default() };
    faults.drop_post.insert(files[0].0.clone(), true);
    let server = FakeQiscus::start(faults, 2);
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    let id = server.state().imports_of(&files[0].0)[0].unique_id.clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot tell whether Qiscus got it") && stderr.contains(&id) && stderr.contains(&format!("--adopt {}=ID", files[0].0)), "{stderr}");
    assert_eq!(server.state().posts(), 1);
    assert_eq!(journal(&folder)["files"][0]["state"], "sending");
    // --resend of a finished file, or of one it does not stop at, is refused.
    let wrong = run(upload(&folder, &server.base_url(), &["--resend", &files[1].0]));
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    // An import the journal knows (here one the app had before) cannot be adopted.
    let known = run(upload(&folder, &server.base_url(), &["--adopt", &format!("{}=0ld00000-0000-4000-8000-000000000001", files[0].0)]));
    assert_eq!(known.status.code(), Some(2), "{}", text(&known));
    assert!(String::from_utf8_lossy(&known.stderr).contains("is already in the journal"), "{}", text(&known));
    // The admin finds it in the list and says so.
    let out = run(upload(&folder, &server.base_url(), &["--adopt", &format!("{}={id}", files[0].0)]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(journal(&folder)["files"][0]["id_from"], "--adopt");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the API lists it as"), "the renaming is reported: {}", text(&out));
}

/// Starts the upload as a child process and kills it (SIGKILL) when the server
/// holds the answer it was told to hold.
fn kill_at_hold(folder: &Path, server: &FakeQiscus) -> String {
    let mut child = upload(folder, &server.base_url(), &[]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let held = server.wait_held();
    child.kill().unwrap();
    child.wait().unwrap();
    server.release();
    held
}

#[test]
fn killed_while_sending_resumes_without_sending_again() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let target = files.iter().position(|(n, _)| n.starts_with("comments")).unwrap();
    let server = FakeQiscus::start(Faults { hold_post: Some(files[target].0.clone()), ..Faults::default() }, 4);
    assert_eq!(kill_at_hold(&folder, &server), format!("POST {}", files[target].0));
    let entry = journal(&folder)["files"][target].clone();
    assert_eq!((entry["file"].as_str(), entry["state"].as_str()), (Some(files[target].0.as_str()), Some("sending")), "journaled before the upload");
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(server.state().posts(), files.len(), "nothing sent twice");
    assert!(String::from_utf8_lossy(&out.stderr).contains("an earlier run stopped while sending it"), "{}", text(&out));
    assert_eq!(journal(&folder)["files"][target]["id_from"], "import list");
}

#[test]
fn killed_while_waiting_resumes_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let target = files.iter().position(|(n, _)| n.starts_with("rooms")).unwrap();
    let server = FakeQiscus::start(Faults { hold_list_after: Some(files[target].0.clone()), started_looks: 3, ..Faults::default() }, 0);
    kill_at_hold(&folder, &server);
    let entry = journal(&folder)["files"][target].clone();
    assert_eq!(entry["state"], "started", "{entry}");
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_all_imported(&folder, &server, &out);
    assert_eq!(server.state().posts(), files.len());
    assert_eq!(report(&folder)["files"][target]["action"], "waited for the import an earlier run sent");
}

#[test]
fn a_server_that_dies_mid_run_is_resumed_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let target = files.iter().position(|(n, _)| n.starts_with("rooms")).unwrap();
    let server = FakeQiscus::start(Faults { die_after_post: Some(files[target].0.clone()), ..Faults::default() }, 1);
    let out = run(upload(&folder, &server.base_url(), &["--retries", "2"]));
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the import list, page"), "{}", text(&out));
    assert_eq!(journal(&folder)["files"][target]["state"], "started");
    let state = server.state.clone();
    drop(server);
    let revived = FakeQiscus::restart(state);
    let out = run(upload(&folder, &revived.base_url(), &[]));
    assert_all_imported(&folder, &revived, &out);
    assert_eq!(revived.state().posts(), files.len());
}

#[test]
fn a_file_changed_since_it_was_journaled_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let server = FakeQiscus::start(Faults::default(), 0);
    assert_all_imported(&folder, &server, &run(upload(&folder, &server.base_url(), &[])));
    let path = folder.join("users-0001.json");
    let mut content = fs::read(&path).unwrap();
    content.insert(1, b' ');
    fs::write(&path, content).unwrap();
    let posts = server.state().posts();
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("users-0001.json changed since it was journaled (Finished as import"), "{}", text(&out));
    assert_eq!(server.state().posts(), posts);
    // Another app's journal is refused too.
    let other = run(upload_to("another-app", &folder, &server.base_url(), &[]));
    assert_eq!(other.status.code(), Some(9), "{}", text(&other));
}

#[test]
fn a_dry_run_shows_the_plan_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let files = import_files(&folder);
    let server = FakeQiscus::start(Faults::default(), 0);
    let mut cmd = upload(&folder, &server.base_url(), &["--dry-run"]);
    cmd.env_remove("QISCUS_SDK_SECRET");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for (name, rows) in &files {
        assert!(plan.lines().any(|l| l.contains(name.as_str()) && l.contains(&format!("{} rows", rows.len())) && l.ends_with("would send")), "{name}: {plan}");
    }
    assert!(plan.contains(&format!("{} files: 0 finished earlier, {} to go", files.len(), files.len())), "{plan}");
    assert!(server.state().requests.is_empty());
    assert!(!folder.join("upload-journal.json").exists(), "a dry run writes no journal");
    assert_eq!(report(&folder)["status"], "dry run");
    // Without --dry-run the app id and a secret are needed (exit 2).
    let mut cmd = upload(&folder, &server.base_url(), &[]);
    cmd.env_remove("QISCUS_SDK_SECRET");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Qiscus SDK secret given"), "{}", text(&out));
}

#[test]
fn the_secret_comes_from_a_file_or_a_named_variable() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let server = FakeQiscus::start(Faults::default(), 0);
    let file = dir.path().join("sdk.secret");
    fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut cmd = upload(&folder, &server.base_url(), &["--sdk-secret-file", file.to_str().unwrap()]);
    cmd.env_remove("QISCUS_SDK_SECRET");
    assert_all_imported(&folder, &server, &run(cmd));

    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_folder(dir.path());
    let server = FakeQiscus::start(Faults::default(), 0);
    let mut cmd = upload(&folder, &server.base_url(), &["--sdk-secret-env", "MY_QISCUS_SECRET"]);
    cmd.env_remove("QISCUS_SDK_SECRET").env("MY_QISCUS_SECRET", SECRET);
    assert_all_imported(&folder, &server, &run(cmd));
}

#[test]
fn a_folder_that_is_not_a_qiscus_output_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeQiscus::start(Faults::default(), 0);
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = run(upload(&empty, &server.base_url(), &[]));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder written by hcconv --to qiscus"), "{}", text(&out));
    let folder = fixture_folder(dir.path());
    fs::write(folder.join("comments-0001.json"), "[{\"Message\": ").unwrap();
    let out = run(upload(&folder, &server.base_url(), &[]));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("comments-0001.json: not a JSON array of rows"), "{}", text(&out));
    assert!(server.state().requests.is_empty(), "checked before anything was sent");
    let plain_http = run(upload(&folder, "http://qiscus.example.com/api/v2.1/rest", &[]));
    assert_eq!(plain_http.status.code(), Some(2), "{}", text(&plain_http));
}
