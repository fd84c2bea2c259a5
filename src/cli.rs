//! The command-line contract: flags, password sources, exit codes.
//!
//! Scripts and runbooks depend on this surface; extend it, never rename it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::archive::crypto::{DEFAULT_PBKDF2_ITER, Kdf};
use crate::archive::OpenOptions;
use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::storage::files::FileStore;
use crate::hipchat::{self, Export, ReadOptions};
use crate::storage::output::{create_dirs_below, Busy, Claim, OutputLock, OutputShape, ScratchRemoval, Staging};
use crate::storage::run_lock::Sweep;
use crate::storage::temp_scratch::TempScratch;
use crate::password::PasswordSource;
use crate::progress::{Mode, Progress};
use crate::report::Report;
use crate::writers::{self, Target, WriterOptions};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  anything else (a bug, an unexpected condition)
  2  usage error (bad flags, no password available)
  3  wrong password, or an encrypted file that is not an hc-migrate archive
  4  damaged or unreadable input (truncated, corrupt, malformed JSON, missing file)
  5  cannot write the output (exists without --force, disk full, permissions)
  6  another hcconv is writing OUT (its pid is named); nothing was touched
  7  upload: Qiscus reported a file's import as failed (its errors are shown)
  8  upload: the import API refused a request (4xx), stayed unreachable or answered
     5xx past the retries, answered outside its documented shape, or was still
     importing at --import-timeout; a rerun resumes from the journal
  9  upload: the journal stops the run until you decide: a file changed since it
     was journaled, or a send was cut off and whether it arrived cannot be
     told (--adopt / --resend)
130  interrupted (Ctrl-C); no output and no temporary folder is left behind
     (once OUT is in place a Ctrl-C is ignored: the run ends with its own status;
     an upload stops, and its journal says where a rerun resumes)

Password, first found: --password-file FILE, --password (visible to other users),
the HCCONV_PASSWORD environment variable, then a prompt when stdin is a terminal.";

/// hcconv: convert a Hipchat Server/Data Center export (hc-migrate .tar.gz.aes)
/// into Mattermost, Pixtoome or Qiscus import files.
#[derive(Parser, Debug)]
#[command(name = "hcconv", version, after_help = EXIT_CODES, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    convert: ConvertArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print an inventory of an export without writing anything.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Print a shell completion script, e.g. `hcconv completions bash >
    /// /etc/bash_completion.d/hcconv`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `hcconv man > /usr/local/share/man/man1/hcconv.1`.
    Man,
    /// Send a converted folder to the target's import service.
    #[command(after_help = EXIT_CODES)]
    Upload {
        /// The target.
        #[command(subcommand)]
        target: UploadTarget,
    },
}

#[derive(Subcommand, Debug)]
enum UploadTarget {
    /// Send a `--to qiscus` folder to Qiscus's import API: every users file, then
    /// rooms, then comments, one at a time, each import finished before the next
    /// file is sent. A journal in OUT records each step, so a rerun resumes where a
    /// run stopped and never sends a finished file again. Tested against the API as
    /// documented, with an emulation of it, not against Qiscus's servers.
    #[command(after_help = EXIT_CODES)]
    Qiscus(UploadQiscusArgs),
}

#[derive(Args, Debug)]
struct UploadQiscusArgs {
    #[command(flatten)]
    upload: crate::upload::qiscus::UploadOptions,
    /// Also write what the run did as JSON to FILE (written on failure too).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args, Debug)]
struct ConvertArgs {
    /// The export: hc-migrate's encrypted .tar.gz.aes, a .tar.gz, a .tar, or an unpacked
    /// folder (decided by content, not by name). Several exports are date slices of one
    /// instance, given oldest first: merged, newest users and rooms, each message once.
    #[arg(value_name = "EXPORT", required = true)]
    exports: Vec<PathBuf>,
    /// Target system.
    #[arg(long, value_enum, required = true)]
    to: Option<Target>,
    /// Output path [default: <EXPORT name>-<target> in the current folder].
    #[arg(short = 'o', long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Also write the run report as JSON to FILE (written on failure too).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    writer: WriterOptions,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// The export, or several date slices oldest first, counted as a conversion
    /// merges them (see `hcconv --help`).
    #[arg(value_name = "EXPORT", required = true)]
    exports: Vec<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// How to open the export.
#[derive(Args, Debug, Clone)]
struct InputArgs {
    /// Read the archive password from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The archive password. Visible to other users of this machine (ps, shell
    /// history): prefer --password-file or HCCONV_PASSWORD.
    #[arg(long, value_name = "PASSWORD", hide_default_value = true)]
    password: Option<String>,
    /// Key derivation to use instead of detecting it: md5 (hc-migrate, OpenSSL < 1.1),
    /// sha256 (OpenSSL >= 1.1 default), pbkdf2 (openssl -pbkdf2).
    #[arg(long, value_enum, value_name = "KDF")]
    kdf: Option<KdfArg>,
    /// PBKDF2 iteration count (openssl -iter).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PBKDF2_ITER)]
    iter: u32,
    /// Keep going when a history file has damaged JSON: keep what could be read
    /// before the damage and report the file (default: stop with exit 4).
    #[arg(long)]
    skip_damaged: bool,
    /// Refuse archive entries larger than this many bytes (a decompression-bomb guard).
    #[arg(long, value_name = "BYTES", default_value_t = crate::archive::DEFAULT_MAX_ENTRY_SIZE)]
    max_entry_size: u64,
    /// Stop when the archive inflates to more than N times its size (past 1 GiB): a
    /// decompression-bomb guard; real exports compress far less. 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = crate::archive::DEFAULT_MAX_RATIO)]
    max_ratio: u64,
}

/// What to leave out (reported as skipped, never silently dropped).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Filters and user mapping")]
struct FilterArgs {
    /// Convert only messages at or after DATE (YYYY-MM-DD, UTC, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Convert only messages before DATE (a YYYY-MM-DD date includes that whole day).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Convert only these rooms, by id or name (comma-separated or repeated).
    #[arg(long, value_name = "ROOM", value_delimiter = ',')]
    rooms: Vec<String>,
    /// Leave private (1:1) messages out.
    #[arg(long)]
    no_private: bool,
    /// Leave attachment files out; the messages keep their text.
    #[arg(long)]
    no_files: bool,
    /// CSV of new usernames and e-mails: Hipchat user id or e-mail, new username,
    /// new e-mail (either may be empty). A row matching no user is an error.
    #[arg(long, value_name = "FILE")]
    user_map: Option<PathBuf>,
}

impl FilterArgs {
    fn parse(&self) -> Result<crate::filter::Filters> {
        let since = self.since.as_deref().map(|d| crate::filter::parse_date(d, false)).transpose()?;
        let until = self.until.as_deref().map(|d| crate::filter::parse_date(d, true)).transpose()?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u {
                return Err(crate::error::Error::usage(format!(
                    "--since {} is not before --until {}: no message could be converted",
                    self.since.as_deref().unwrap_or_default(),
                    self.until.as_deref().unwrap_or_default()
                )));
            }
        if !self.rooms.is_empty() && self.rooms.iter().all(|r| r.trim().is_empty()) {
            return Err(crate::error::Error::usage("--rooms: no room named (the list is empty)"));
        }
        Ok(crate::filter::Filters {
            since,
            until,
            rooms: self.rooms.iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect(),
            no_private: self.no_private,
            no_files: self.no_files,
        })
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KdfArg {
    Md5,
    Sha256,
    Pbkdf2,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Output messages")]
struct LogArgs {
    /// Print every warning as it is recorded, and the key derivation used (upload:
    /// every look at the import list).
    #[arg(short, long)]
    verbose: bool,
    /// Print nothing but errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

/// Runs the command line and returns the process exit status.
pub fn main() -> i32 {
    let parsed = Cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ErrorKind::Usage.exit_code() } else { 0 };
        }
    };
    install_interrupt_handler();
    let outcome = run(&cli, &matches);
    match outcome {
        Ok(()) => 0,
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => wait_for_interrupt_exit(),
        Err(e) => {
            // `{:#}` keeps the whole chain on one line: "context: cause".
            eprintln!("hcconv: error: {e:#}");
            exit_status(&e)
        }
    }
}

/// Runs the chosen command. Errors travel up as `anyhow::Error`, with context
/// where a step adds something the typed error does not say.
fn run(cli: &Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    use anyhow::Context;
    match &cli.command {
        Some(Command::Inspect(args)) => Ok(run_inspect(args)?),
        Some(Command::Completions { shell }) => print_completions(*shell).with_context(|| format!("writing the {shell} completion script")),
        Some(Command::Man) => print_man_page().context("writing the man page"),
        Some(Command::Upload { target: UploadTarget::Qiscus(args) }) => Ok(run_upload_qiscus(args)?),
        None => Ok(run_convert(&cli.convert, matches)?),
    }
}

/// The exit status for `e`: decided by the typed error kind found anywhere in its
/// chain (2 usage, 3 password, 4 input, 5 output), 1 for anything else.
pub fn exit_status(e: &anyhow::Error) -> i32 {
    e.chain().find_map(|cause| cause.downcast_ref::<Error>()).map_or(ErrorKind::Other.exit_code(), |typed| typed.kind().exit_code())
}

/// The completion script for `shell`, made from the one clap definition so it
/// always names the flags this build has.
/// Made in memory first: clap_complete panics on a failed write.
fn print_completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hcconv", &mut script);
    write_stdout(&script)
}

/// The man page, from the same definition (the exit-status table included), with
/// a section for each subcommand that has flags of its own (`upload qiscus`).
fn print_man_page() -> Result<()> {
    let failed = |e: std::io::Error| Error::new(ErrorKind::Other, format!("cannot make the man page: {e}"));
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page).map_err(failed)?;
    let mut upload = Cli::command();
    upload.build();
    let upload = upload.find_subcommand("upload").and_then(|u| u.find_subcommand("qiscus")).expect("the upload qiscus subcommand").clone();
    let heading = "hcconv upload qiscus OUT";
    let upload = upload.mut_args(|a| a.help_heading(heading)).name("hcconv upload qiscus");
    page.extend_from_slice(b".SH UPLOAD\n");
    page.extend_from_slice(b"hcconv upload qiscus OUT \\-\\-app\\-id ID [OPTIONS]: send the files of a \\-\\-to qiscus folder to the import API, in order, resumable (see the README, \\(lqhcconv upload qiscus\\(rq).\n");
    clap_mangen::Man::new(upload).render_options_section(&mut page).map_err(failed)?;
    write_stdout(&page)
}

/// Writes `bytes` to standard output. A reader that stops early (`| head`,
/// `| grep -q`) closes the pipe: that is its choice, not a failure, so the
/// command ends quietly and successfully, as `cat` and ripgrep do.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.map_err(|e| Error::new(ErrorKind::Output, format!("standard output: {e}"))),
    }
}

impl InputArgs {
    fn read(&self, exports: &[PathBuf], files: FileStore, spool_dir: &Path, progress: &Progress, verbose: bool, report: &mut Report) -> Result<Export> {
        let source = PasswordSource { file: self.password_file.clone(), literal: self.password.clone() };
        let password = move || source.resolve();
        let bar = progress.handle();
        let on_read = move |n: u64| bar.set_position(n);
        let on_kdf = move |kdf: Kdf| {
            if verbose {
                eprintln!("hcconv: decrypting with key derivation {kdf}");
            }
        };
        let names: Vec<String> = exports.iter().map(|e| e.display().to_string()).collect();
        progress.phase("reading", &names.join(", "));
        let kdf = self.kdf.map(|k| match k {
            KdfArg::Md5 => Kdf::Md5,
            KdfArg::Sha256 => Kdf::Sha256,
            KdfArg::Pbkdf2 => Kdf::Pbkdf2(self.iter),
        });
        let opts = ReadOptions {
            open: OpenOptions { password: &password, kdf, iter: self.iter, max_entry_size: self.max_entry_size, max_ratio: self.max_ratio, on_read: Some(&on_read), on_kdf: Some(&on_kdf) },
            skip_damaged: self.skip_damaged,
            spool_dir: spool_dir.to_path_buf(),
            files,
            spool_budget: crate::storage::spool::DEFAULT_BUDGET,
        };
        let mut data = hipchat::read_slices(exports, opts, report)?;
        let raw = data.messages.raw_len();
        progress.count_messages(raw);
        let bar = progress.handle();
        data.messages.set_progress(Box::new(move |n| {
            bar.set_position(n);
            if n >= raw / 2 {
                phase_reached("writing");
            }
        }));
        Ok(data)
    }

    fn warn_if_literal(&self, log: &LogArgs) {
        if self.password.is_some() && !log.quiet {
            eprintln!("hcconv: warning: --password is visible to other users of this machine; prefer --password-file or HCCONV_PASSWORD");
        }
    }
}

fn run_inspect(args: &InspectArgs) -> Result<()> {
    args.input.warn_if_literal(&args.log);
    let mut report = Report::new();
    let scratch = inspect_scratch(&mut report, &args.log)?;
    let progress = Progress::new(Mode::detect(args.log.quiet), args.exports.iter().map(|e| input_size(e)).sum());
    let export = args.input.read(&args.exports, FileStore::measured(), scratch.path(), &progress, args.log.verbose, &mut report)?;
    progress.phase("counting", "messages");
    let inventory = crate::inspect::Inventory::collect(export, &mut report)?;
    progress.finish();
    let text = match args.json {
        true => serde_json::to_string_pretty(&inventory).expect("inventory serialises") + "\n",
        false => inventory.to_text(),
    };
    write_stdout(text.as_bytes())?;
    if args.log.verbose {
        print_warnings(&report);
    }
    Ok(())
}

/// `hcconv upload qiscus`: the upload, then its report (on failure too), then the
/// plan (`--dry-run`, on stdout) or a closing line.
fn run_upload_qiscus(args: &UploadQiscusArgs) -> Result<()> {
    use crate::upload::qiscus;
    *INTERRUPT_NOTE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = "the upload journal says where a rerun resumes";
    let journal = qiscus::journal_path(&args.upload.folder, args.upload.journal.as_deref());
    if let Some(path) = &args.report {
        claim_report_file_with(path, serde_json::json!({ "command": "upload qiscus", "folder": args.upload.folder.display().to_string(), "journal": journal.display().to_string() }))?;
    }
    let mut summary = qiscus::Summary::default();
    let result = qiscus::run(&args.upload, Mode::detect(args.log.quiet), args.log.verbose, &mut summary);
    if let Some(path) = &args.report {
        write_upload_report(path, &summary, result.as_ref().err())?;
    }
    result?;
    if args.upload.dry_run {
        return write_stdout(summary.plan_text().as_bytes());
    }
    if !args.log.quiet {
        let counts = summary.counts();
        eprintln!(
            "hcconv: {} of {} files imported ({} this run), {} rows; journal {}",
            counts["finished"], counts["files"], counts["finished_this_run"], counts["rows_imported"], summary.journal
        );
    }
    Ok(())
}

/// The upload's `--report`: the outcome, the summary's keys and its counts.
fn write_upload_report(path: &Path, summary: &crate::upload::qiscus::Summary, error: Option<&Error>) -> Result<()> {
    let mut report = serde_json::json!({
        "tool": "hcconv",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "upload qiscus",
        "status": match (error, summary.dry_run) { (Some(_), _) => "failed", (None, true) => "dry run", (None, false) => "ok" },
        "error": error.map(|e| e.to_string()),
        "exit_code": error.map_or(0, |e| e.kind().exit_code()),
        "counts": summary.counts(),
    });
    if let (Some(all), Ok(serde_json::Value::Object(keys))) = (report.as_object_mut(), serde_json::to_value(summary)) {
        all.extend(keys);
    }
    std::fs::write(path, format!("{report:#}\n")).output_ctx(path)
}

/// The flags given that belong to another target than `target` (they do nothing).
fn foreign_flags(matches: &ArgMatches, target: Target) -> Vec<String> {
    let headings = [(Target::Mattermost, "Mattermost options"), (Target::Pixtoome, "Pixtoome options"), (Target::Qiscus, "Qiscus options")];
    let foreign: Vec<&str> = headings.iter().filter(|(t, _)| *t != target).map(|(_, h)| *h).collect();
    Cli::command()
        .get_arguments()
        .filter(|a| a.get_help_heading().is_some_and(|h| foreign.contains(&h)))
        .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

fn run_convert(args: &ConvertArgs, matches: &ArgMatches) -> Result<()> {
    let target = args.to.ok_or_else(|| Error::usage("--to is required"))?;
    let ignored = foreign_flags(matches, target);
    let export = args.exports.last().ok_or_else(|| Error::usage("no EXPORT given"))?;
    args.input.warn_if_literal(&args.log);
    writers::check_output_name(target, args.output.as_deref())?;
    let writer = args.writer.for_output(target, args.output.as_deref());
    let out = args.output.clone().unwrap_or_else(|| default_output(export, target, &writer));
    args.filters.parse()?;
    writers::validate(target, &writer)?;
    let user_map = args.filters.user_map.as_deref().map(crate::usermap::read_map).transpose()?;
    let mut report = Report::new();
    for flag in &ignored {
        warn(&mut report, &args.log, format!("{flag} is not an option of --to {}; it was ignored", target.name()));
    }
    // Declared before everything that writes beside OUT, so it is released last.
    let mut lock = match take_output_lock(&out, args.report.as_deref())? {
        Ok((lock, swept)) => {
            announce_sweep(swept, &mut report, &args.log);
            lock
        }
        Err(busy) => {
            let error = busy.error();
            // The same report file as the other run's is that run's to write.
            if let Some(path) = args.report.as_deref().filter(|p| !busy.claims(p)) {
                write_report_file(path, &report, &out, Some(&error))?;
            }
            return Err(error);
        }
    };
    if let Some(path) = &args.report {
        claim_report_file(path, &out)?;
    }
    let started = std::time::Instant::now();
    let result = convert(args, &writer, target, &mut lock, user_map.as_deref().unwrap_or_default(), &mut report);
    report.time_phase("total", started.elapsed());
    clear_cleanup();
    if let Some(path) = &args.report {
        write_report_file(path, &report, &out, result.as_ref().err())?;
    }
    // Waits for the scratch folder's removal when it goes out of scope.
    let _scratch_removal = result?;
    if !args.log.quiet {
        eprint!("{}", report.summary());
        eprintln!("hcconv: wrote {}", out.display());
    }
    Ok(())
}

/// Converts into the OUT of `lock`; returns the scratch folder's removal, still under way.
fn convert(args: &ConvertArgs, writer: &WriterOptions, target: Target, lock: &mut OutputLock, user_map: &[crate::usermap::MapRow], report: &mut Report) -> Result<ScratchRemoval> {
    let shape = writers::output_shape(target, writer);
    let mut staging = stage_output(lock, shape, args.force)?;
    let out = staging.final_path().to_path_buf();
    phase_reached("staged");
    let files_dir = staging.work_dir().join("files");
    let spool_dir = staging.work_dir().join("spool");
    create_dirs_below(staging.work_dir(), &files_dir).output_ctx(&files_dir)?;
    create_dirs_below(staging.work_dir(), &spool_dir).output_ctx(&spool_dir)?;
    let filters = args.filters.parse()?;
    let progress = Progress::new(Mode::detect(args.log.quiet), args.exports.iter().map(|e| input_size(e)).sum());
    let reading = std::time::Instant::now();
    let mut export_data = args.input.read(&args.exports, FileStore::staged(&files_dir), &spool_dir, &progress, args.log.verbose, report)?;
    crate::usermap::apply(user_map, &mut export_data.catalog, target == Target::Mattermost, report)?;
    filters.apply(&mut export_data, report)?;
    report.time_phase("read", reading.elapsed());
    phase_reached("read");
    progress.phase("writing", &format!("{} for {}", out.display(), target.name()));
    let writing = std::time::Instant::now();
    writers::write(target, &mut export_data, &staging.path(), writer, report)?;
    report.time_phase("write", writing.elapsed());
    phase_reached("written");
    progress.finish();
    if args.log.verbose {
        print_warnings(report);
    }
    let unbalanced = report.unbalanced();
    if !unbalanced.is_empty() {
        return Err(Error::new(ErrorKind::Other, format!("internal accounting error, output not written: counts in != written + skipped for {unbalanced:?}")));
    }
    let scratch_removal = staging.remove_scratch_in_background(&files_dir);
    commit_output(staging)?;
    phase_reached("committed");
    Ok(scratch_removal)
}

fn default_output(export: &Path, target: Target, opts: &WriterOptions) -> PathBuf {
    let name = export.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    let stem = [".tar.gz.aes", ".tgz.aes", ".aes", ".tar.gz", ".tgz", ".tar"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name).to_string();
    let base = format!("{stem}-{}", target.name());
    PathBuf::from(match writers::output_shape(target, opts) {
        OutputShape::File => format!("{base}.zip"),
        OutputShape::Folder => base,
    })
}

fn write_report_file(path: &Path, report: &Report, out: &Path, error: Option<&Error>) -> Result<()> {
    let outcome = std::collections::BTreeMap::from([
        ("status", serde_json::Value::from(if error.is_some() { "failed" } else { "ok" })),
        ("output", out.display().to_string().into()),
        ("error", error.map(|e| e.to_string()).into()),
        ("exit_code", error.map_or(0, |e| e.kind().exit_code()).into()),
    ]);
    let file = std::fs::File::create(path).output_ctx(path)?;
    crate::report::ReportFile { report, outcome }.write(file).output_ctx(path)
}

/// Writes the report file as an interrupted run's before any work, so a report
/// that cannot be written fails the run (exit 5) before OUT exists rather than
/// after it is in place, and a run stopped by Ctrl-C / SIGTERM leaves a report
/// saying so (the handler writes it again with the same contents).
fn claim_report_file(path: &Path, out: &Path) -> Result<()> {
    claim_report_file_with(path, serde_json::json!({ "output": out.display().to_string() }))
}

/// [`claim_report_file`] with the command's own keys (`output` for a conversion).
fn claim_report_file_with(path: &Path, keys: serde_json::Value) -> Result<()> {
    let mut interrupted = serde_json::json!({
        "tool": "hcconv",
        "version": env!("CARGO_PKG_VERSION"),
        "status": "interrupted",
        "exit_code": 130,
        "error": format!("interrupted (Ctrl-C or SIGTERM); {}", interrupt_note()),
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (interrupted.as_object_mut(), keys) {
        all.extend(extra);
    }
    let text = format!("{interrupted:#}\n");
    std::fs::write(path, &text).output_ctx(path)?;
    *INTERRUPTED_REPORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((path.to_path_buf(), text));
    Ok(())
}

/// The report file and what an interrupted run writes into it.
static INTERRUPTED_REPORT: Mutex<Option<(PathBuf, String)>> = Mutex::new(None);

/// Prints the report's warnings on stderr (`--verbose`).
fn print_warnings(report: &Report) {
    for w in report.warnings.iter() {
        match w {
            Ok(w) => eprintln!("hcconv: warning: {w}"),
            Err(e) => {
                eprintln!("hcconv: warning: the rest of the warnings cannot be read back: {e}");
                break;
            }
        }
    }
}

/// What an interrupted run leaves, for the handler's message and the report:
/// a conversion nothing, an upload its journal.
static INTERRUPT_NOTE: Mutex<&'static str> = Mutex::new("nothing was written");

fn interrupt_note() -> &'static str {
    *INTERRUPT_NOTE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Set first thing on Ctrl-C. A run that then fails because its folders vanished
/// must not print that failure or exit with its code: the handler exits with 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Parks the main thread until the interrupt handler ends the process.
fn wait_for_interrupt_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// What the interrupt handler removes: the run's hidden folders, then its lock file.
struct Cleanup {
    dirs: Vec<PathBuf>,
    lock_file: Option<PathBuf>,
}

/// This run's folders and lock file, for the interrupt handler.
static CLEANUP: Mutex<Cleanup> = Mutex::new(Cleanup { dirs: Vec::new(), lock_file: None });

fn cleanup() -> std::sync::MutexGuard<'static, Cleanup> {
    CLEANUP.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lock (and what it guards) registered with the interrupt handler. Dropping it
/// unregisters it and then releases it, under the handler's mutex: a Ctrl-C never
/// removes a lock file that is no longer this run's (another run may have made a new
/// one of that name the moment this one's went).
struct Registered<T>(Option<T>);

impl<T> std::ops::Deref for Registered<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("held until dropped")
    }
}

impl<T> std::ops::DerefMut for Registered<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for Registered<T> {
    fn drop(&mut self) {
        let mut registered = cleanup();
        registered.dirs.clear();
        registered.lock_file = None;
        drop(self.0.take());
    }
}

/// Takes OUT's lock (registered for the interrupt handler in the same step), then
/// removes what dead runs left beside OUT (a Ctrl-C need not wait for that); or
/// says which run holds it.
fn take_output_lock(out: &Path, report: Option<&Path>) -> Result<std::result::Result<(Registered<OutputLock>, Sweep), Busy>> {
    let mut registered = cleanup();
    let lock = match OutputLock::take(out, report)? {
        Claim::Mine(lock) => lock,
        Claim::Busy(busy) => return Ok(Err(busy)),
    };
    registered.lock_file = Some(lock.path().to_path_buf());
    drop(registered);
    let mut lock = Registered(Some(lock));
    let swept = lock.sweep()?;
    Ok(Ok((lock, swept)))
}

/// `inspect`'s scratch folder in the temporary folder, registered for the interrupt
/// handler in the same step; what dead runs left there is removed first.
fn inspect_scratch(report: &mut Report, log: &LogArgs) -> Result<Registered<TempScratch>> {
    const PREFIX: &str = "hcconv-inspect-";
    announce_sweep(crate::storage::temp_scratch::sweep(PREFIX), report, log);
    let mut registered = cleanup();
    let scratch = TempScratch::create(PREFIX).map_err(|e| Error::new(ErrorKind::Other, format!("cannot create a temporary folder in {}: {e}", std::env::temp_dir().display())))?;
    registered.dirs.push(scratch.path().to_path_buf());
    registered.lock_file = Some(scratch.lock_path().to_path_buf());
    Ok(Registered(Some(scratch)))
}

/// One line each on stderr (and in the report) for what a sweep removed, or could not.
fn announce_sweep(swept: Sweep, report: &mut Report, log: &LogArgs) {
    for leftover in swept {
        match leftover {
            Ok(swept) => {
                let line = swept.message();
                if !log.quiet {
                    eprintln!("hcconv: {line}");
                }
                report.warn(line);
            }
            Err(why) => warn(report, log, why),
        }
    }
}

/// Records a warning, and prints it unless `--quiet`.
fn warn(report: &mut Report, log: &LogArgs, warning: String) {
    if !log.quiet {
        eprintln!("hcconv: warning: {warning}");
    }
    report.warn(warning);
}

/// Creates the hidden folders and registers them for the interrupt handler in one
/// step: the handler takes the same lock, so a Ctrl-C cannot fall between the two.
fn stage_output(lock: &mut OutputLock, shape: OutputShape, force: bool) -> Result<Staging> {
    let mut registered = cleanup();
    let staging = Staging::new(lock, shape, force)?;
    registered.dirs.extend(staging.hidden_dirs());
    Ok(staging)
}

/// Moves the output into place and forgets the hidden folders in one step, so a
/// Ctrl-C sees either a run to undo or a finished one, never half a rename.
fn commit_output(staging: Staging) -> Result<()> {
    let mut registered = cleanup();
    staging.commit()?;
    registered.dirs.clear();
    COMMITTED.store(true, Ordering::SeqCst);
    Ok(())
}

fn clear_cleanup() {
    cleanup().dirs.clear();
}

/// Where tests stop a run to act on it (`testkit::pause_point`); nothing in a build
/// without the testkit feature (the release binary).
fn phase_reached(phase: &str) {
    #[cfg(feature = "testkit")]
    crate::testkit::pause_point(phase);
    let _ = phase;
}

/// Set once OUT is in place: a Ctrl-C after that is ignored, and the run ends on
/// its own a moment later (writing the report) with exit 0, since exiting 130 would
/// say nothing was written while a complete OUT is there.
static COMMITTED: AtomicBool = AtomicBool::new(false);

/// On Ctrl-C (or SIGTERM), removes the half-written output and the lock file and
/// exits with 130, so an interrupted run leaves neither an OUT that looks complete nor
/// temporary folders.
fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let registered = cleanup();
        if COMMITTED.load(Ordering::SeqCst) {
            return;
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        for d in registered.dirs.iter() {
            remove_while_in_use(d);
        }
        // Last, while this process still holds it: no other run takes the lock while
        // the folders it guards are there.
        if let Some(lock_file) = &registered.lock_file {
            let _ = std::fs::remove_file(lock_file);
        }
        if let Some((path, text)) = INTERRUPTED_REPORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref() {
            let _ = std::fs::write(path, text);
        }
        eprintln!("\nhcconv: interrupted; {}", interrupt_note());
        std::process::exit(130);
    });
}

/// Removes a hidden folder that the run's threads may still be writing into.
///
/// Renaming it away first means no new entry can appear in it (every write goes by
/// the old path, and folders are never recreated above `create_dirs_below`'s root);
/// removing in place could race with a file being created and leave the folder.
fn remove_while_in_use(dir: &Path) {
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(crate::storage::output::INTERRUPTED_SUFFIX);
    let doomed = PathBuf::from(doomed);
    let target = if std::fs::rename(dir, &doomed).is_ok() { doomed.as_path() } else { dir };
    for _ in 0..20 {
        if std::fs::remove_dir_all(target).is_ok() || std::fs::symlink_metadata(target).is_err() {
            return;
        }
    }
}

fn input_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0)
}


#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_exit_status_comes_from_the_typed_error_under_any_context() {
        let typed = |kind: ErrorKind| anyhow::Error::new(Error::new(kind, "users.json: expected an array"));
        for (kind, code) in [(ErrorKind::Usage, 2), (ErrorKind::Decrypt, 3), (ErrorKind::Input, 4), (ErrorKind::Output, 5), (ErrorKind::Other, 1)] {
            assert_eq!(exit_status(&typed(kind)), code);
            let wrapped = Err::<(), _>(typed(kind)).context("reading export.tar.gz.aes").context("converting").unwrap_err();
            assert_eq!(exit_status(&wrapped), code, "{kind:?} under two contexts");
            assert_eq!(format!("{wrapped:#}"), "converting: reading export.tar.gz.aes: users.json: expected an array", "one line");
        }
        assert_eq!(exit_status(&anyhow::anyhow!("no typed error")), 1);
    }
}
