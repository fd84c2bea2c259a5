//! `hcconv completions SHELL` and `hcconv man`: made from the one clap definition,
//! so they name every flag this build has, and the man page carries the exit codes.

use assert_cmd::Command;
use clap::CommandFactory;
use hcconv::cli::Cli;

/// Every `--long` flag of the command and its subcommands (hidden ones aside).
fn every_flag() -> Vec<String> {
    let cli = Cli::command();
    let mut flags: Vec<String> = Vec::new();
    let mut visit = vec![&cli];
    while let Some(cmd) = visit.pop() {
        flags.extend(cmd.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long()).map(|l| format!("--{l}")));
        visit.extend(cmd.get_subcommands());
    }
    flags.sort();
    flags.dedup();
    flags
}

fn run(args: &[&str]) -> String {
    let out = Command::cargo_bin("hcconv").unwrap().args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn completion_scripts_name_every_flag() {
    let flags = every_flag();
    assert!(flags.len() > 30, "{flags:?}");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&["completions", shell]);
        for flag in &flags {
            // fish names a long flag as `-l name`.
            let named = script.contains(flag.as_str()) || (shell == "fish" && script.contains(&format!("-l {}", &flag[2..])));
            assert!(named, "{shell} completion lacks {flag}");
        }
    }
    assert!(run(&["completions", "bash"]).contains("pixtoome-format") && run(&["completions", "bash"]).contains("9.0"));
}

#[test]
fn man_page_has_every_flag_and_the_exit_codes() {
    let page = run(&["man"]).replace("\\-", "-");
    assert!(page.starts_with(".ie") || page.contains(".TH hcconv"), "roff: {}", &page[..80.min(page.len())]);
    for flag in every_flag().iter().filter(|f| !matches!(f.as_str(), "--json")) {
        assert!(page.contains(flag.as_str()), "man page lacks {flag}");
    }
    for line in ["0  success", "2  usage error", "3  wrong password", "4  damaged or unreadable input", "5  cannot write the output", "6  another hcconv is writing OUT", "130  interrupted"] {
        assert!(page.contains(line), "man page lacks exit status {line:?}");
    }
}

/// `hcconv completions bash | grep -q …`, `hcconv man | head`, `hcconv inspect
/// … | head`: the reader closes the pipe early. That ends the command quietly with status 0; clap's
/// generator used to panic (exit 101) when its write failed, which made CI's
/// `completions bash | grep -q` fail now and then.
#[test]
fn a_reader_that_stops_early_is_no_failure() {
    let fixture = ["inspect", "fixtures/quirks.tar.gz.aes", "--password-file", "fixtures/quirks.password", "--quiet"];
    let json = [&fixture[..], &["--json"]].concat();
    for args in [&["completions", "bash"][..], &["completions", "zsh"], &["man"], &fixture, &json] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hcconv"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the child writes a byte: every write of it fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    Command::cargo_bin("hcconv").unwrap().args(["completions", "tcsh"]).assert().code(2);
}
