//! What a run killed outright (SIGKILL, the OOM killer, a reboot) leaves beside OUT
//! is removed by the next run to that OUT, which says so; two runs to one OUT never
//! touch each other's work, and the one that stops says why (exit 6).
//!
//! The runs stop at named phases through the testkit's pause hook
//! (`HCCONV_TEST_PAUSE_AT`), not after sleeps: the tests act at the same point of a
//! run however loaded the machine is.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_password, hcconv, names, read_tree, repo};
use hcconv::storage::run_lock::{Attempt, RunLock};
use hcconv::testkit::{write_scaled_export, Container, ScaleSpec, PAUSE_AT_ENV, PAUSE_FILE_ENV};

/// A ceiling for a paused run to reach its phase: only a broken run takes long.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(300);

/// The fixture's command line for `target`, writing `out`.
fn conversion(export: &Path, target: &str, out: &Path, secret: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hcconv"));
    cmd.arg(export).args(["--to", target, "-o"]).arg(out).env("HCCONV_PASSWORD", fixture_password());
    if target == "qiscus" {
        cmd.arg("--secret-file").arg(secret);
    }
    cmd
}

/// A run stopped at a phase by the pause hook. Killed if the test ends before it does.
struct Paused {
    child: Option<Child>,
    pause_file: PathBuf,
    stderr: PathBuf,
}

impl Paused {
    /// Starts `cmd` to pause at `phase`, announcing itself in `pause_file`.
    fn start(mut cmd: Command, phase: &str, pause_file: &Path) -> Paused {
        let stderr = pause_file.with_extension("stderr");
        cmd.env(PAUSE_AT_ENV, phase).env(PAUSE_FILE_ENV, pause_file).stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap());
        Paused { child: Some(cmd.spawn().unwrap()), pause_file: pause_file.to_path_buf(), stderr }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Whether it has paused (and announced its pid); panics if it ended first.
    fn has_paused(&mut self) -> bool {
        if self.pause_file.exists() {
            let announced: u32 = std::fs::read_to_string(&self.pause_file).unwrap().parse().unwrap();
            assert_eq!(announced, self.pid());
            return true;
        }
        false
    }

    /// The exit status, if it has ended.
    fn ended(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// Waits until it pauses.
    fn wait_paused(&mut self) {
        let started = Instant::now();
        while !self.has_paused() {
            if let Some(status) = self.ended() {
                panic!("the run ended ({status}) before its pause: {}", std::fs::read_to_string(&self.stderr).unwrap());
            }
            assert!(started.elapsed() < PAUSE_TIMEOUT, "no pause after {PAUSE_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL: nothing of the run gets to clean up.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }

    /// Lets it go on and waits for its end; returns its status and stderr.
    fn release(mut self) -> (Option<i32>, String) {
        std::fs::remove_file(&self.pause_file).unwrap();
        let status = self.child.take().unwrap().wait().unwrap();
        (status.code(), std::fs::read_to_string(&self.stderr).unwrap())
    }

    /// Waits for a run that must not pause to end; returns its status and stderr.
    fn finish_unpaused(mut self) -> (Option<i32>, String) {
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(!self.pause_file.exists(), "it paused");
        (status.code(), std::fs::read_to_string(&self.stderr).unwrap())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The hidden entries in `dir` (`.out.hcconv-…`, `.out.zip.hcconv-…`).
fn hidden(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.starts_with('.')).collect()
}

/// Every file and folder under `dir` with its bytes (folders as `None`), hidden ones
/// included: a snapshot that shows any change another run makes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    walkdir::WalkDir::new(dir).min_depth(1).into_iter().map(|e| e.unwrap()).map(|e| (e.path().to_path_buf(), e.file_type().is_file().then(|| std::fs::read(e.path()).unwrap()))).collect()
}

/// A multi-room export with attachments, large enough that the scratch folder holds
/// spooled messages and staged files when the run is stopped.
fn export(dir: &Path) -> PathBuf {
    let path = dir.join("export.tar.gz");
    let spec = ScaleSpec { messages: 6000, rooms: 5, users: 30, attachment_every: 20, attachment_bytes: 2000, private_percent: 10, shape: Default::default() };
    write_scaled_export(spec, Container::TarGz, "", std::fs::File::create(&path).unwrap()).unwrap();
    path
}

/// OUT as bytes: the tree of a folder, or the file.
fn output_bytes(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    if out.is_dir() { read_tree(out) } else { BTreeMap::from([(PathBuf::new(), std::fs::read(out).unwrap())]) }
}

/// SIGKILL at each phase, then a rerun: it removes every hidden folder the killed
/// run left, one stderr line each naming the dead pid and the bytes freed, and
/// writes the same bytes as a run never interrupted.
#[test]
fn a_rerun_removes_what_a_killed_run_left_and_writes_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let export = export(tmp.path());
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "a test secret of thirty-two bytes").unwrap();
    let cases = [
        ("pixtoome", "staged"),
        ("pixtoome", "read"),
        ("pixtoome", "writing"),
        ("pixtoome", "written"),
        ("pixtoome", "committed"),
        ("mattermost", "read"),
        ("mattermost", "writing"),
        ("mattermost.zip", "written"),
        ("qiscus", "writing"),
    ];
    let mut reference = BTreeMap::new();
    for (target, phase) in cases {
        let (to, out_name) = match target.strip_suffix(".zip") {
            Some(to) => (to, "out.zip"),
            None => (target, "out"),
        };
        let expected = reference.entry(target).or_insert_with(|| {
            let dir = tmp.path().join(format!("reference-{target}"));
            std::fs::create_dir(&dir).unwrap();
            let out = dir.join(out_name);
            assert!(conversion(&export, to, &out, &secret).arg("-q").status().unwrap().success());
            output_bytes(&out)
        });
        let case = format!("{target} killed at {phase}");
        let dir = tmp.path().join(format!("{target}-{phase}"));
        std::fs::create_dir(&dir).unwrap();
        let out = dir.join(out_name);
        let mut run = Paused::start(conversion(&export, to, &out, &secret), phase, &tmp.path().join(format!("pause-{target}-{phase}")));
        run.wait_paused();
        let killed_pid = run.pid();
        run.kill();

        let leftovers: Vec<String> = hidden(&dir).into_iter().filter(|n| !n.ends_with(".hcconv-lock")).collect();
        if phase == "committed" {
            assert_eq!(output_bytes(&out), *expected, "{case}: OUT was complete before the kill");
        } else {
            assert!(!out.exists(), "{case}: no OUT");
            assert_eq!(leftovers.len(), 2, "{case}: the partial and work folders are left: {leftovers:?}");
        }
        let mut rerun = conversion(&export, to, &out, &secret);
        if phase == "committed" {
            rerun.arg("--force");
        }
        let rerun = rerun.output().unwrap();
        let stderr = String::from_utf8_lossy(&rerun.stderr);
        assert!(rerun.status.success(), "{case}: {stderr}");
        assert_eq!(names(&dir), vec![out_name], "{case}: OUT and nothing else, hidden or not");
        assert_eq!(output_bytes(&out), *expected, "{case}: the same bytes as a run never interrupted");
        for name in &leftovers {
            let line = stderr
                .lines()
                .find(|l| l.starts_with(&format!("hcconv: removed {}, left by an hcconv run that is no longer running (pid {killed_pid}, started ", dir.join(name).display())))
                .unwrap_or_else(|| panic!("{case}: no line for {name}: {stderr}"));
            assert!(line.ends_with(" freed") && line.contains("): "), "{case}: {line}");
        }
        if phase != "staged" && phase != "committed" {
            let work = leftovers.iter().find(|n| n.contains(".hcconv-work-")).unwrap();
            let line = stderr.lines().find(|l| l.contains(work.as_str())).unwrap();
            assert!(!line.ends_with(": 0 bytes freed"), "{case}: the work folder held the spool: {line}");
        }
    }
}

/// Two runs to one OUT: the second stops at once with exit 6, naming the first's
/// pid, and touches nothing of it (its hidden folders, its lock, the report file
/// both were given); the first then finishes as if alone.
#[test]
fn a_second_run_to_the_same_output_stops_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = repo("fixtures/quirks.tar.gz.aes");
    let dir = tmp.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("out");
    let report = dir.join("report.json");
    let secret = tmp.path().join("secret");
    let mut first_cmd = conversion(&fixture, "pixtoome", &out, &secret);
    first_cmd.arg("--report").arg(&report);
    let mut first = Paused::start(first_cmd, "read", &tmp.path().join("pause"));
    first.wait_paused();
    let before = snapshot(&dir);
    assert_eq!(hidden(&dir).len(), 3, "lock, partial and work: {:?}", names(&dir));

    let second = conversion(&fixture, "pixtoome", &out, &secret).arg("--report").arg(&report).output().unwrap();
    assert_eq!(second.status.code(), Some(6));
    assert_eq!(String::from_utf8_lossy(&second.stderr), format!("hcconv: error: another hcconv (pid {}) is writing {}\n", first.pid(), out.display()));
    assert_eq!(snapshot(&dir), before, "nothing of the first run changed, its report included");

    // With a report of its own, the second run says there why it stopped.
    let own_report = tmp.path().join("second.json");
    let forced = conversion(&fixture, "pixtoome", &out, &secret).args(["--force", "--report"]).arg(&own_report).output().unwrap();
    assert_eq!(forced.status.code(), Some(6), "--force does not take another run's OUT");
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&own_report).unwrap()).unwrap();
    assert_eq!((&written["status"], &written["exit_code"]), (&serde_json::json!("failed"), &serde_json::json!(6)));
    assert_eq!(written["error"], format!("another hcconv (pid {}) is writing {}", first.pid(), out.display()));
    assert_eq!(snapshot(&dir), before);

    let (code, stderr) = first.release();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(names(&dir), vec!["out", "report.json"]);
    let alone = tmp.path().join("alone");
    assert!(conversion(&fixture, "pixtoome", &alone, &secret).arg("-q").status().unwrap().success());
    assert_eq!(read_tree(&out), read_tree(&alone), "the first run's output is as if it had run alone");
}

/// Two runs started at the same instant, several times: the lock lets exactly one
/// through; the other names it and ends with exit 6, and the winner's folders are
/// all there when it does.
#[test]
fn of_two_runs_started_at_once_exactly_one_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = repo("fixtures/quirks.tar.gz.aes");
    let secret = tmp.path().join("secret");
    for round in 0..6 {
        let dir = tmp.path().join(format!("round-{round}"));
        std::fs::create_dir(&dir).unwrap();
        let out = dir.join("out");
        let mut runs: Vec<Paused> = ["a", "b"].iter().map(|n| Paused::start(conversion(&fixture, "mattermost", &out, &secret), "staged", &tmp.path().join(format!("pause-{round}-{n}")))).collect();
        // The winner pauses (holding the lock) until released, so the loser cannot
        // come after it: waiting for one pause and one end is all the timing there is.
        let started = Instant::now();
        let winner = loop {
            let paused: Vec<usize> = (0..2).filter(|&i| runs[i].has_paused()).collect();
            assert!(paused.len() < 2, "round {round}: both runs got past the lock");
            if let [w] = paused[..] {
                if runs[1 - w].ended().is_some() {
                    break w;
                }
            }
            assert!(started.elapsed() < PAUSE_TIMEOUT, "round {round}: no outcome");
            std::thread::sleep(Duration::from_millis(5));
        };
        let winner_pid = runs[winner].pid();
        let hidden_before = hidden(&dir);
        assert_eq!(hidden_before.len(), 3, "round {round}: the winner's lock and folders: {hidden_before:?}");
        let loser = runs.remove(1 - winner);
        let winner = runs.remove(0);
        let (code, stderr) = loser.finish_unpaused();
        assert_eq!(code, Some(6), "round {round}: {stderr}");
        assert!(stderr.contains(&format!("another hcconv (pid {winner_pid}) is writing {}", out.display())), "round {round}: {stderr}");
        assert_eq!(hidden(&dir), hidden_before, "round {round}: the loser removed nothing");
        let (code, stderr) = winner.release();
        assert_eq!(code, Some(0), "round {round}: {stderr}");
        assert_eq!(names(&dir), vec!["out"], "round {round}");
        assert!(out.join("import.jsonl").is_file());
    }
}

/// Makes a dead run's leftovers beside `dir/out`: its lock file with `record`, and a
/// partial and a work folder holding `bytes` each.
fn plant_leftovers(dir: &Path, record: &serde_json::Value, bytes: usize) -> [PathBuf; 2] {
    let folders = [dir.join(".out.hcconv-partial-Ab3dE9"), dir.join(".out.hcconv-work-x7Yz01")];
    for folder in &folders {
        std::fs::create_dir_all(folder.join("nested")).unwrap();
        std::fs::write(folder.join("nested/data"), vec![b'x'; bytes]).unwrap();
    }
    std::fs::write(dir.join(".out.hcconv-lock"), record.to_string()).unwrap();
    folders
}

fn this_boot() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string()
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// A pid that existed a moment ago and is gone.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Lock files left by a dead pid of this boot, and by a live pid of another boot
/// (the number came round again after a reboot), with their folders: both cleaned,
/// each folder named on stderr and in the report with what it held.
#[test]
fn stale_locks_of_a_dead_pid_and_of_another_boot_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = repo("fixtures/quirks.tar.gz.aes");
    let cases = [("dead pid, this boot", dead_pid(), this_boot()), ("live pid, another boot", std::process::id(), "00000000-1111-2222-3333-444444444444".to_string())];
    for (i, (case, pid, boot)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let started = "2024-03-01T10:00:00Z";
        let claimed = [dir.join(".out.hcconv-partial-Ab3dE9"), dir.join(".out.hcconv-work-x7Yz01")];
        let record = serde_json::json!({"pid": pid, "host": this_host(), "boot_id": boot, "started": started, "claims": claimed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()});
        let folders = plant_leftovers(&dir, &record, 2500);
        let report = tmp.path().join(format!("report-{i}.json"));
        let run = hcconv().arg(&fixture).args(["--to", "mattermost", "-o"]).arg(dir.join("out")).arg("--report").arg(&report).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{case}: {stderr}");
        assert_eq!(names(&dir), vec!["out"], "{case}");
        let warnings: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        for folder in &folders {
            let line = format!("removed {}, left by an hcconv run that is no longer running (pid {pid}, started {started}): 2.5 kB freed", folder.display());
            assert!(stderr.lines().any(|l| l == format!("hcconv: {line}")), "{case}: no {line:?} in {stderr}");
            assert!(warnings["warnings"].as_array().unwrap().contains(&line.clone().into()), "{case}: {}", warnings["warnings"]);
        }
    }
}

/// A lock file held by a live process (this test) is a live run's: the run refuses
/// with exit 6 naming its pid, and its folders are left as they are. `-q` keeps the
/// error, the one thing it prints.
#[test]
fn the_folders_of_a_live_lock_holder_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let folders = plant_leftovers(dir, &serde_json::json!({}), 100);
    let Attempt::Taken { lock: _held, .. } = RunLock::acquire(&dir.join(".out.hcconv-lock")).unwrap() else { panic!("free") };
    let before = snapshot(dir);
    let run = hcconv().arg(repo("fixtures/quirks.tar.gz.aes")).args(["--to", "mattermost", "-q", "--force", "-o"]).arg(dir.join("out")).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
    assert_eq!(run.status.code(), Some(6));
    assert_eq!(String::from_utf8_lossy(&run.stderr), format!("hcconv: error: another hcconv (pid {}) is writing {}\n", std::process::id(), dir.join("out").display()));
    assert_eq!(snapshot(dir), before);
    assert!(folders.iter().all(|f| f.join("nested/data").is_file()));
}

/// `inspect` writes nothing beside any OUT and removes nothing there; its own
/// scratch folder in the temporary folder gets the same care: a dead run's goes
/// (said on stderr), a live run's stays, its own is gone when it ends.
#[test]
fn inspect_leaves_output_folders_alone_and_cleans_its_own_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("cwd");
    let temp = tmp.path().join("temp");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::create_dir(&temp).unwrap();
    let record = serde_json::json!({"pid": dead_pid(), "host": this_host(), "boot_id": this_boot(), "started": "2024-03-01T10:00:00Z", "claims": []});
    plant_leftovers(&cwd, &record, 100);
    let outputs_before = snapshot(&cwd);
    let dead = temp.join("hcconv-inspect-Dead01");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("spool"), vec![0u8; 4000]).unwrap();
    std::fs::write(temp.join("hcconv-inspect-Dead01.lock"), record.to_string()).unwrap();
    let live = temp.join("hcconv-inspect-Live01");
    std::fs::create_dir(&live).unwrap();
    let Attempt::Taken { lock: _held, .. } = RunLock::acquire(&temp.join("hcconv-inspect-Live01.lock")).unwrap() else { panic!("free") };

    let run = hcconv().current_dir(&cwd).env("TMPDIR", &temp).arg("inspect").arg(repo("fixtures/quirks.tar.gz.aes")).env("HCCONV_PASSWORD", fixture_password()).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(snapshot(&cwd), outputs_before, "inspect touched an output's hidden folders");
    let line = format!("hcconv: removed {}, left by an hcconv run that is no longer running (pid {}, started 2024-03-01T10:00:00Z): 4.0 kB freed", dead.display(), record["pid"]);
    assert!(stderr.lines().any(|l| l == line), "no {line:?} in {stderr}");
    assert_eq!(names(&temp), vec!["hcconv-inspect-Live01", "hcconv-inspect-Live01.lock"], "the dead run's scratch and this run's are gone");
}
