//! `hcconv upload qiscus OUT`: sends the files of a `--to qiscus` folder to Qiscus's
//! import API, all users files, then rooms, then comments, each one's import
//! finished before the next is sent, with a journal so that a run stopped at any
//! point resumes without sending a finished file again.
//!
//! Built and tested against the API as documented (the seed document, FORMATS.md
//! 3.1) with an emulation of it; no Qiscus server can be reached from where it was
//! written. What it assumes beyond the document is said where it is assumed:
//! a 5xx answer to an upload created no import; the import list names an upload
//! by the file name and size it was sent with (checked on every answer, and relied
//! on only once seen); the list ends at a page with no new row.

mod api;
mod folder;
mod journal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::password::ServiceSecretSource;
use crate::progress::{Mode, Progress};
use crate::upload::http::{Http, HttpSettings};

pub use api::{check_base_url, ImportRow, DEFAULT_BASE_URL};
use api::{Created, QiscusApi};
use folder::ImportFile;
pub use folder::KINDS;
use journal::{Journal, JournalLock, State};
pub use journal::DEFAULT_NAME as DEFAULT_JOURNAL_NAME;

/// The variable the SDK secret is read from when no other source is named.
pub const SECRET_ENV_VAR: &str = "QISCUS_SDK_SECRET";

/// The flags of `hcconv upload qiscus`.
#[derive(Args, Debug, Clone)]
pub struct UploadOptions {
    /// The folder `hcconv EXPORT --to qiscus -o OUT` wrote.
    #[arg(value_name = "OUT")]
    pub folder: PathBuf,
    /// The Qiscus app id (sent as QISCUS-SDK-APP-ID). Required, except with --dry-run.
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    /// Read the app's SDK secret (sent as QISCUS-SDK-SECRET) from the first line of
    /// FILE. This is Qiscus's secret, not the --secret-file of the conversion.
    #[arg(long, value_name = "FILE")]
    pub sdk_secret_file: Option<PathBuf>,
    /// Read the SDK secret from the environment variable VAR [default:
    /// QISCUS_SDK_SECRET]. Without a secret from a file or the environment, hcconv
    /// asks on a terminal. There is no flag that takes the secret itself.
    #[arg(long, value_name = "VAR", conflicts_with = "sdk_secret_file")]
    pub sdk_secret_env: Option<String>,
    /// The import API's address, up to and without /imports (https://, or http://
    /// to this machine only).
    #[arg(long, value_name = "URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
    /// The upload journal [default: OUT/upload-journal.json]: what was sent and how
    /// it ended; a rerun resumes from it.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Seconds between two looks at the import list while a file is imported.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub poll_interval: Duration,
    /// Seconds one file's import may stay "started" before the run stops (exit 8;
    /// a rerun goes on waiting for it).
    #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = parse_seconds)]
    pub import_timeout: Duration,
    /// Seconds one HTTP request may take, from connecting to the end of the answer.
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// How many times one request is tried again after a network error or a 5xx
    /// answer (never after a 4xx).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Seconds before the first retry; doubled for each further one, up to 60.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_seconds)]
    pub retry_wait: Duration,
    /// Check the folder against the journal and print what a run would do; send
    /// nothing (no secret needed).
    #[arg(long)]
    pub dry_run: bool,
    /// Send FILE again although the journal has it as failed, or as maybe sent:
    /// for after you checked in Qiscus that it is not (or not wholly) imported.
    #[arg(long, value_name = "FILE")]
    pub resend: Option<String>,
    /// Record that FILE, which the journal has as maybe sent, is the import ID
    /// in Qiscus's import list, and wait for that import instead of sending it.
    #[arg(long, value_name = "FILE=ID")]
    pub adopt: Option<String>,
}

/// Parses a number of seconds (fractions allowed, for tests).
fn parse_seconds(text: &str) -> std::result::Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("{text:?} is not a number of seconds from 0 to 1e9"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What the run did with each file, for `--report` and the closing line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The folder.
    pub folder: String,
    /// The journal's path.
    pub journal: String,
    /// The API's address.
    pub base_url: String,
    /// The app.
    pub app_id: Option<String>,
    /// Whether nothing was to be sent.
    pub dry_run: bool,
    /// Every import file in upload order.
    pub files: Vec<FileOutcome>,
    /// What was worth a warning.
    pub warnings: Vec<String>,
}

/// One file in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct FileOutcome {
    /// File name.
    pub file: String,
    /// The API's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
    /// Rows in the file.
    pub rows: u64,
    /// What this run did with it (with --dry-run: would do).
    pub action: String,
    /// Where the journal has it after the run (`null`: not sent).
    pub state: Option<State>,
    /// The import's id.
    pub unique_id: Option<String>,
    /// The API's last status for it.
    pub status: Option<String>,
    /// The API's `total_rows` when it ended.
    pub total_rows: Option<u64>,
    /// The API's `errors` when it ended.
    pub errors: Option<Value>,
}

impl Summary {
    /// Counts for the report and the closing line: files, finished, sent this run,
    /// rows imported.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let finished = self.files.iter().filter(|f| f.state == Some(State::Finished));
        BTreeMap::from([
            ("files", self.files.len() as u64),
            ("finished", finished.clone().count() as u64),
            ("finished_this_run", finished.clone().filter(|f| f.action != action::FINISHED_EARLIER).count() as u64),
            ("rows_imported", finished.map(|f| f.total_rows.unwrap_or(0)).sum()),
        ])
    }

    /// The plan as text, for `--dry-run`.
    pub fn plan_text(&self) -> String {
        let mut text = format!("Upload plan for {} (journal {}):\n", self.folder, self.journal);
        let width = self.files.iter().map(|f| f.file.len()).max().unwrap_or(0);
        for f in &self.files {
            text.push_str(&format!("  {:width$}  {:>8} rows  {:>9} bytes  {}\n", f.file, f.rows, f.size, f.action));
        }
        let to_send = self.files.iter().filter(|f| f.action != action::FINISHED_EARLIER).count();
        text.push_str(&format!("{} files: {} finished earlier, {to_send} to go. Nothing was sent (--dry-run).\n", self.files.len(), self.files.len() - to_send));
        text
    }
}

/// The words of [`FileOutcome::action`].
mod action {
    pub const FINISHED_EARLIER: &str = "finished earlier";
    pub const SENT: &str = "sent";
    pub const WAITED: &str = "waited for the import an earlier run sent";
    pub const FOUND: &str = "found in the import list (sent by an earlier try whose answer was lost)";
    pub const ADOPTED: &str = "waited for the import named by --adopt";
    pub const STOPPED: &str = "the run stopped here";
    pub const NOT_REACHED: &str = "not reached";
}

/// Runs `hcconv upload qiscus`; `summary` is filled whatever the outcome.
/// `verbose` notes every look at the import list.
pub fn run(opts: &UploadOptions, mode: Mode, verbose: bool, summary: &mut Summary) -> Result<()> {
    let journal_path = journal::path_for(&opts.folder, opts.journal.as_deref());
    *summary = Summary {
        folder: opts.folder.display().to_string(),
        journal: journal_path.display().to_string(),
        base_url: opts.base_url.clone(),
        app_id: opts.app_id.clone(),
        dry_run: opts.dry_run,
        ..Summary::default()
    };
    check_flags(opts)?;
    let progress = Progress::counting(mode, 0, "files");
    progress.phase("checking", &opts.folder.display().to_string());
    let bar = progress.handle();
    let files = folder::scan(&opts.folder, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    let _lock = if opts.dry_run { None } else { Some(JournalLock::take(&journal_path)?) };
    let loaded = Journal::load(&journal_path)?;
    let mut uploader = Uploader { opts, journal_is_new: loaded.is_none(), journal: loaded.unwrap_or_else(|| Journal::new(opts.app_id.as_deref().unwrap_or_default(), &opts.base_url)), journal_path, files, api: None, progress, verbose, actions: BTreeMap::new(), warnings: Vec::new(), hint_page: 1 };
    let result = uploader.run();
    uploader.progress.finish();
    *summary = uploader.summary(std::mem::take(summary));
    result
}

fn check_flags(opts: &UploadOptions) -> Result<()> {
    check_base_url(&opts.base_url)?;
    match opts.app_id.as_deref().map(str::trim) {
        Some("") => return Err(Error::usage("--app-id is empty")),
        Some(id) if !id.bytes().all(|b| b.is_ascii_graphic()) => return Err(Error::usage(format!("--app-id {id:?}: only printable ASCII without spaces can be sent as a header"))),
        None if !opts.dry_run => return Err(Error::usage("--app-id ID is required (the Qiscus app the files go to)")),
        _ => {}
    }
    if opts.timeout.is_zero() {
        return Err(Error::usage("--timeout must be more than 0 seconds"));
    }
    if opts.resend.is_some() && opts.adopt.is_some() {
        return Err(Error::usage("--resend and --adopt decide the same question two ways: give one"));
    }
    if let Some(adopt) = &opts.adopt {
        match adopt.split_once('=') {
            Some((file, id)) if !file.is_empty() && !id.is_empty() => {}
            _ => return Err(Error::usage(format!("--adopt {adopt:?}: expected FILE=ID, e.g. rooms-0001.json=13c4952f-4b77-4705-9523-7ddca9c45967"))),
        }
    }
    Ok(())
}

/// What looking a maybe-sent file up in the import list found.
enum LookUp {
    /// One import that can only be this upload.
    Found(ImportRow),
    /// Certainly not there.
    NotThere,
    /// Cannot tell (the reason, with what the list holds).
    Unsure(String),
}

/// What a failed upload attempt leaves to find out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    /// Certainly not arrived: send again.
    SendAgain,
    /// Answered 5xx: taken as not created, checked in the list when it can be.
    CheckThenSend,
    /// May have arrived: send again only if the list shows it did not.
    MustCheck,
}

struct Uploader<'a> {
    opts: &'a UploadOptions,
    files: Vec<ImportFile>,
    journal: Journal,
    journal_is_new: bool,
    journal_path: PathBuf,
    api: Option<QiscusApi>,
    progress: Progress,
    /// Note every look at the import list.
    verbose: bool,
    /// What this run did with each file.
    actions: BTreeMap<String, &'static str>,
    warnings: Vec<String>,
    /// The list page where the last import was found: where to look first.
    hint_page: u32,
}

impl Uploader<'_> {
    fn run(&mut self) -> Result<()> {
        self.check_journal_app()?;
        let resume_at = self.check_journal_matches_folder()?;
        self.check_decisions(resume_at)?;
        if self.opts.dry_run {
            self.plan(resume_at);
            return Ok(());
        }
        self.connect()?;
        if self.journal_is_new {
            self.record_imports_before()?;
        }
        self.apply_decisions()?;
        let bar = self.progress.handle();
        bar.set_length(self.files.len() as u64);
        bar.set_position(0);
        for i in 0..self.files.len() {
            self.upload(i)?;
            bar.set_position(i as u64 + 1);
        }
        Ok(())
    }

    fn api(&self) -> &QiscusApi {
        self.api.as_ref().expect("connected before any request")
    }

    fn warn(&mut self, warning: String) {
        self.progress.note(&format!("hcconv: warning: {warning}"));
        self.warnings.push(warning);
    }

    /// [`QiscusApi::walk`], each retry told at once and kept among the warnings.
    fn walk_list(&mut self, first: u32, visit: impl FnMut(&ImportRow) -> bool) -> Result<Option<u32>> {
        let mut retried = Vec::new();
        let progress = &self.progress;
        let api = self.api.as_ref().expect("connected before any request");
        let outcome = api.walk(
            first,
            &mut |why| {
                let warning = format!("{why}; trying again");
                progress.note(&format!("hcconv: warning: {warning}"));
                retried.push(warning);
            },
            visit,
        );
        self.warnings.extend(retried);
        outcome
    }

    fn save(&self) -> Result<()> {
        self.journal.save(&self.journal_path)
    }

    /// A journal is one app's record: its finished files mean nothing to another.
    fn check_journal_app(&mut self) -> Result<()> {
        if self.journal_is_new {
            return Ok(());
        }
        if let Some(app) = self.opts.app_id.as_deref().map(str::trim)
            && app != self.journal.app_id
        {
            return Err(Error::new(
                ErrorKind::Journal,
                format!(
                    "{}: this journal records uploads to app {:?}, not {app:?}; to send the folder to another app, give another journal (--journal FILE)",
                    self.journal_path.display(),
                    self.journal.app_id
                ),
            ));
        }
        if self.journal.base_url.trim_end_matches('/') != self.opts.base_url.trim_end_matches('/') {
            let warning = format!("the journal's uploads went to {}; this run uses {} for the same app", self.journal.base_url, self.opts.base_url);
            self.warn(warning);
        }
        Ok(())
    }

    /// Checks the journal against the folder and returns the index of the first
    /// file not finished. Every journaled file must be in the folder unchanged, and
    /// the journal must be what a run leaves: finished files in upload order, then
    /// at most one file not finished, then nothing.
    fn check_journal_matches_folder(&self) -> Result<usize> {
        let conflict = |text: String| Err(Error::new(ErrorKind::Journal, format!("{}: {text}", self.journal_path.display())));
        for entry in &self.journal.files {
            let Some(file) = self.files.iter().find(|f| f.name == entry.file) else {
                return conflict(format!("it records {} ({:?}), which is not in {}: this is not the folder it was written for", entry.file, entry.state, self.opts.folder.display()));
            };
            if file.size != entry.size || file.sha256 != entry.sha256 {
                return conflict(format!(
                    "{} changed since it was journaled ({:?}{}; then {} bytes, sha256 {}; now {} bytes, sha256 {}). A folder converted again is a new import: give it a new journal (--journal FILE) and a Qiscus app without the earlier data",
                    file.name,
                    entry.state,
                    entry.unique_id.as_deref().map(|id| format!(" as import {id}")).unwrap_or_default(),
                    entry.size,
                    entry.sha256,
                    file.size,
                    file.sha256
                ));
            }
        }
        let states: Vec<Option<State>> = self.files.iter().map(|f| self.journal.entry(&f.name).map(|e| e.state)).collect();
        let resume_at = states.iter().position(|s| *s != Some(State::Finished)).unwrap_or(states.len());
        let first_after = resume_at + usize::from(states.get(resume_at).is_some_and(Option::is_some));
        if let Some(later) = (first_after..states.len()).find(|&i| states[i].is_some()) {
            let missing = &self.files[resume_at].name;
            return conflict(format!(
                "it records {} as sent but {missing}, which comes before it, as not finished: files go in order (users, rooms, comments), so this journal does not belong to this folder as it is now",
                self.files[later].name
            ));
        }
        Ok(resume_at)
    }

    /// `--resend` and `--adopt` may only name the file where the journal stopped,
    /// in a state they can settle.
    fn check_decisions(&self, resume_at: usize) -> Result<()> {
        let (flag, name) = match (&self.opts.resend, &self.opts.adopt) {
            (Some(file), _) => ("--resend", file.as_str()),
            (None, Some(adopt)) => ("--adopt", adopt.split_once('=').map_or(adopt.as_str(), |(f, _)| f)),
            (None, None) => return Ok(()),
        };
        let state = self.journal.entry(name).map(|e| e.state);
        let allowed = match flag {
            "--resend" => matches!(state, Some(State::Sending | State::Failed)),
            _ => state == Some(State::Sending),
        };
        if let Some((_, id)) = self.opts.adopt.as_deref().and_then(|a| a.split_once('='))
            && self.journal.known_ids().any(|known| known == id)
        {
            return Err(Error::usage(format!("--adopt {name}={id}: import {id} is already in the journal (another file's, or one the app had before this journal began)")));
        }
        if !allowed || self.files.get(resume_at).is_none_or(|f| f.name != name) {
            let where_ = match state {
                None => "has no record of it".to_string(),
                Some(State::Finished) => "has it as finished: hcconv never sends a finished file again".to_string(),
                Some(State::Started) => format!("has it as sent, as import {}, which hcconv waits for: sending it again could import it twice", self.journal.entry(name).and_then(|e| e.unique_id.clone()).unwrap_or_default()),
                Some(s) => format!("has it as {s:?}, and {flag} does not apply to that"),
            };
            return Err(Error::usage(format!("{flag} {name}: the journal {where_}")));
        }
        Ok(())
    }

    /// `--dry-run`: what a run would do with each file.
    fn plan(&mut self, resume_at: usize) {
        for (i, file) in self.files.iter().enumerate() {
            let entry = self.journal.entry(&file.name);
            let action = match entry.map(|e| e.state) {
                _ if i < resume_at => action::FINISHED_EARLIER,
                _ if self.opts.resend.as_deref() == Some(file.name.as_str()) => "would send it again (--resend)",
                _ if self.opts.adopt.is_some() && i == resume_at => "would wait for the import named by --adopt",
                Some(State::Started) => "would wait for the import an earlier run sent",
                Some(State::Sending) => "would look it up in the import list first (an earlier run stopped while sending it)",
                Some(State::Failed) => "would stop: its import failed (see --resend)",
                _ => "would send",
            };
            self.actions.insert(file.name.clone(), action);
        }
    }

    fn connect(&mut self) -> Result<()> {
        let source = ServiceSecretSource {
            file: self.opts.sdk_secret_file.clone().map(|p| ("--sdk-secret-file", p)),
            env_var: self.opts.sdk_secret_env.clone(),
            default_env_var: SECRET_ENV_VAR,
            what: "Qiscus SDK secret",
        };
        let secret = source.resolve()?;
        let http = Http::new(HttpSettings { timeout: self.opts.timeout, retries: self.opts.retries, retry_wait: self.opts.retry_wait });
        let app_id = self.opts.app_id.as_deref().map(str::trim).expect("checked: an app id without --dry-run");
        self.api = Some(QiscusApi::new(http, &self.opts.base_url, app_id, secret));
        Ok(())
    }

    /// The first time: every import the app already has, so that none of them is
    /// ever taken for one of this journal's uploads; and a warning if some carry
    /// the name of a file about to be sent (a second import of the same data fails
    /// on its unique e-mails and ids).
    fn record_imports_before(&mut self) -> Result<()> {
        self.progress.phase("listing", "the app's imports");
        let mut before = Vec::new();
        let mut same_names = Vec::new();
        let names: std::collections::HashSet<String> = self.files.iter().map(|f| f.name.clone()).collect();
        self.walk_list(1, |row| {
            before.push(row.unique_id.clone());
            if names.contains(&row.original_filename) {
                same_names.push(format!("{} ({}, {})", row.original_filename, row.unique_id, row.status));
            }
            false
        })?;
        if !same_names.is_empty() {
            let warning = format!(
                "the app already has {} import(s) named like files of this folder ({}{}): was this folder sent before without this journal? Imports of rows that already exist fail",
                same_names.len(),
                same_names.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if same_names.len() > 5 { ", …" } else { "" }
            );
            self.warn(warning);
        }
        self.journal.imports_before = before;
        self.save()
    }

    fn apply_decisions(&mut self) -> Result<()> {
        if let Some(file) = &self.opts.resend {
            self.journal.forget(file);
            self.save()?;
        }
        if let Some((name, id)) = self.opts.adopt.as_deref().and_then(|a| a.split_once('=')) {
            let file = self.files.iter().find(|f| f.name == name).expect("checked: the file where the journal stopped").clone();
            let entry = self.journal.entry_mut(&file, State::Started);
            entry.unique_id = Some(id.to_string());
            entry.id_from = Some("--adopt".into());
            entry.set_state(State::Started);
            self.save()?;
            self.actions.insert(file.name, action::ADOPTED);
        }
        Ok(())
    }

    /// Takes file `i` to the end of its import.
    fn upload(&mut self, i: usize) -> Result<()> {
        let file = self.files[i].clone();
        let outcome = self.upload_file(&file);
        if outcome.is_err() {
            self.actions.entry(file.name.clone()).or_insert(action::STOPPED);
        }
        outcome
    }

    fn upload_file(&mut self, file: &ImportFile) -> Result<()> {
        let entry = self.journal.entry(&file.name).cloned();
        match entry.as_ref().map(|e| e.state) {
            Some(State::Finished) => {
                self.actions.insert(file.name.clone(), action::FINISHED_EARLIER);
                Ok(())
            }
            Some(State::Failed) => Err(import_failed(entry.as_ref().expect("a failed entry"), "earlier")),
            Some(State::Started) => {
                let id = entry.and_then(|e| e.unique_id).expect("a started file has its id");
                self.actions.entry(file.name.clone()).or_insert(action::WAITED);
                self.progress.note(&format!("hcconv: {}: waiting for import {id}, sent by an earlier run", file.name));
                self.wait_for(file, &id)
            }
            Some(State::Sending) => {
                self.progress.note(&format!("hcconv: {}: an earlier run stopped while sending it; looking for it in the import list", file.name));
                match self.look_up(file)? {
                    LookUp::Found(row) => self.adopt(file, row),
                    LookUp::NotThere => self.send(file),
                    LookUp::Unsure(why) => Err(unsure(file, &why)),
                }
            }
            None => self.send(file),
        }
    }

    /// Sends `file` (the journal says `sending` first), then waits for its import.
    fn send(&mut self, file: &ImportFile) -> Result<()> {
        let bytes = file.read_unchanged()?;
        let retries = self.opts.retries;
        let mut maybe_arrived = false;
        let mut retry = 0;
        loop {
            let entry = self.journal.entry_mut(file, State::Sending);
            entry.set_state(State::Sending);
            entry.uploads += 1;
            self.save()?;
            self.progress.label("sending");
            self.progress.note(&format!("hcconv: {}: sending ({} rows, {} bytes)", file.name, file.rows, file.size));
            let created = self.api().create_import(file.kind, &file.name, &bytes).map_err(|e| {
                Error::new(e.kind(), format!("{}: {}. The journal has it as maybe sent: the next run looks for it in the import list before sending it again", file.name, e.message()))
            })?;
            let (why, after) = match created {
                Created::Row(row) => return self.record_answer(file, row),
                Created::Refused(refused) => {
                    // Nothing was created, unless an earlier try of this run may have arrived.
                    if !maybe_arrived {
                        self.journal.forget(&file.name);
                        self.save()?;
                    }
                    return Err(Error::new(refused.kind(), format!("{}: {}", file.name, refused.message())));
                }
                Created::NotDelivered(why) => (why, AfterFailure::SendAgain),
                Created::ServerError(status, body) => (format!("HTTP {status}: {body}"), AfterFailure::CheckThenSend),
                Created::Lost(why) => (self.api().redact(&why), AfterFailure::MustCheck),
            };
            maybe_arrived |= after == AfterFailure::MustCheck;
            if retry >= retries {
                return self.give_up_sending(file, &why, maybe_arrived);
            }
            let wait = self.api().http().settings.backoff(retry);
            self.warn(format!("{}: {why}; trying again in {:.1}s ({} of {retries})", file.name, wait.as_secs_f64(), retry + 1));
            std::thread::sleep(wait);
            if after != AfterFailure::SendAgain {
                match self.look_up(file)? {
                    LookUp::Found(row) => return self.adopt(file, row),
                    LookUp::NotThere => {}
                    LookUp::Unsure(_) if after == AfterFailure::CheckThenSend => {}
                    LookUp::Unsure(why) => return Err(unsure(file, &why)),
                }
            }
            retry += 1;
        }
    }

    fn give_up_sending(&mut self, file: &ImportFile, why: &str, maybe_arrived: bool) -> Result<()> {
        let next = if maybe_arrived {
            "The journal has it as maybe sent: the next run looks for it in the import list before sending it again"
        } else {
            self.journal.forget(&file.name);
            self.save()?;
            "It did not arrive: the next run sends it"
        };
        Err(Error::new(ErrorKind::Service, format!("{}: {why}; gave up after {} retries. {next}", file.name, self.opts.retries)))
    }

    /// The upload's answer: the import's id goes into the journal before anything
    /// else happens, then the run waits for the import.
    fn record_answer(&mut self, file: &ImportFile, row: ImportRow) -> Result<()> {
        let entry = self.journal.entry_mut(file, State::Started);
        entry.unique_id = Some(row.unique_id.clone());
        entry.status = Some(row.status.clone());
        entry.listed_as = Some((row.original_filename.clone(), row.size));
        entry.id_from = Some("answer".into());
        entry.set_state(State::Started);
        self.save()?;
        self.actions.insert(file.name.clone(), action::SENT);
        if row.original_filename != file.name || row.size != file.size {
            let warning = format!(
                "{}: the API lists it as {:?} of {} bytes, not as sent ({} bytes); an upload whose answer is lost cannot be looked up by name",
                file.name, row.original_filename, row.size, file.size
            );
            self.warn(warning);
        }
        self.progress.note(&format!("hcconv: {}: import {} {}; waiting for it to finish", file.name, row.unique_id, row.status));
        self.wait_for(file, &row.unique_id)
    }

    /// Takes `row` as this file's import (found in the list), then waits for it.
    fn adopt(&mut self, file: &ImportFile, row: ImportRow) -> Result<()> {
        let entry = self.journal.entry_mut(file, State::Started);
        entry.unique_id = Some(row.unique_id.clone());
        entry.status = Some(row.status.clone());
        entry.id_from = Some("import list".into());
        entry.set_state(State::Started);
        self.save()?;
        self.actions.insert(file.name.clone(), action::FOUND);
        self.progress.note(&format!("hcconv: {}: found in the import list as import {} ({}); not sent again", file.name, row.unique_id, row.status));
        self.wait_for(file, &row.unique_id)
    }

    /// Looks in the import list for an upload of `file` that no journaled id
    /// explains. One that matches the name, size and type can only be it; no new
    /// import at all means it never arrived; a new import under another name means
    /// it never arrived only if the API is known to list uploads by the name they
    /// were sent with.
    fn look_up(&mut self, file: &ImportFile) -> Result<LookUp> {
        let known: std::collections::HashSet<String> = self.journal.known_ids().map(str::to_string).collect();
        let mut unknown = Vec::new();
        self.walk_list(1, |row| {
            if !known.contains(&row.unique_id) {
                unknown.push(row.clone());
            }
            false
        })?;
        let matching: Vec<&ImportRow> = unknown.iter().filter(|r| r.original_filename == file.name && r.size == file.size && (r.resource_name.is_empty() || r.resource_name == file.kind)).collect();
        let describe = |rows: &[&ImportRow]| rows.iter().map(|r| format!("{} ({:?}, {} bytes, {}, created {})", r.unique_id, r.original_filename, r.size, r.status, r.created_at)).collect::<Vec<_>>().join("; ");
        Ok(match matching.len() {
            1 => LookUp::Found(matching[0].clone()),
            0 if unknown.is_empty() => LookUp::NotThere,
            0 if self.journal.list_names_uploads_as_sent() => LookUp::NotThere,
            0 => LookUp::Unsure(format!(
                "no import in the list is named {} with {} bytes, but the API has not yet shown that it lists uploads by the name they were sent with, and the list has imports this journal does not know: {}",
                file.name,
                file.size,
                describe(&unknown.iter().collect::<Vec<_>>())
            )),
            _ => LookUp::Unsure(format!("the import list has {} imports named {} with {} bytes that this journal does not know: {}", matching.len(), file.name, file.size, describe(&matching))),
        })
    }

    /// Polls the import list until import `id` is no longer `started`.
    fn wait_for(&mut self, file: &ImportFile, id: &str) -> Result<()> {
        let since = Instant::now();
        let mut polls = 0u64;
        self.progress.label("importing");
        loop {
            std::thread::sleep(self.opts.poll_interval);
            polls += 1;
            let mut found = None;
            let page = self.walk_list(self.hint_page, |row| {
                let hit = row.unique_id == id;
                if hit {
                    found = Some(row.clone());
                }
                hit
            })?;
            match (found, page) {
                (Some(row), Some(page)) => {
                    self.hint_page = page;
                    if row.status != "started" {
                        return self.record_end(file, row);
                    }
                    if self.verbose {
                        self.progress.note(&format!("hcconv: {}: import {id} still started (look {polls}, list page {page})", file.name));
                    }
                }
                _ if polls == 1 || polls.is_multiple_of(10) => self.progress.note(&format!("hcconv: {}: import {id} is not in the import list yet (look {polls})", file.name)),
                _ => {}
            }
            if since.elapsed() >= self.opts.import_timeout {
                return Err(Error::new(
                    ErrorKind::Service,
                    format!(
                        "{}: import {id} is still not finished after {:.0}s (--import-timeout); the journal has it as sent: run again later to go on waiting for it",
                        file.name,
                        since.elapsed().as_secs_f64()
                    ),
                ));
            }
        }
    }

    /// Records how import `row` of `file` ended: finished with every row and no
    /// errors, or failed (stopping the run).
    fn record_end(&mut self, file: &ImportFile, row: ImportRow) -> Result<()> {
        let problem = match row.status.as_str() {
            "finished" if row.has_errors() => Some("finished with errors".to_string()),
            "finished" if row.total_rows != file.rows => Some(format!("finished with total_rows {} of the {} rows in the file", row.total_rows, file.rows)),
            "finished" => None,
            other => Some(format!("ended with status {other:?}")),
        };
        let entry = self.journal.entry_mut(file, State::Started);
        entry.status = Some(row.status.clone());
        entry.total_rows = Some(row.total_rows);
        entry.errors = row.has_errors().then(|| row.errors.clone());
        entry.set_state(if problem.is_some() { State::Failed } else { State::Finished });
        let entry = entry.clone();
        self.save()?;
        match problem {
            None => {
                self.progress.note(&format!("hcconv: {}: finished, {} rows", file.name, row.total_rows));
                Ok(())
            }
            Some(problem) => Err(import_failed(&entry, &problem)),
        }
    }

    fn summary(&self, mut summary: Summary) -> Summary {
        summary.files = self
            .files
            .iter()
            .map(|f| {
                let entry = self.journal.entry(&f.name);
                FileOutcome {
                    file: f.name.clone(),
                    kind: f.kind.to_string(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                    rows: f.rows,
                    action: self.actions.get(&f.name).copied().unwrap_or(action::NOT_REACHED).to_string(),
                    state: entry.map(|e| e.state),
                    unique_id: entry.and_then(|e| e.unique_id.clone()),
                    status: entry.and_then(|e| e.status.clone()),
                    total_rows: entry.and_then(|e| e.total_rows),
                    errors: entry.and_then(|e| e.errors.clone()),
                }
            })
            .collect();
        summary.warnings = self.warnings.clone();
        summary
    }
}

/// The error for a failed import (exit 7), with the API's errors.
fn import_failed(entry: &journal::Entry, problem: &str) -> Error {
    let errors = entry.errors.as_ref().map_or_else(|| "none given".to_string(), |e| excerpt(&e.to_string(), 2000));
    Error::new(
        ErrorKind::ImportFailed,
        format!(
            "{}: import {} {problem} (status {:?}, total_rows {} of {}); errors: {errors}. The journal has it as failed. The API does not say whether a failed file is partly imported: check in Qiscus, then run again with --resend {} to send it again",
            entry.file,
            entry.unique_id.as_deref().unwrap_or("?"),
            entry.status.as_deref().unwrap_or(""),
            entry.total_rows.unwrap_or(0),
            entry.rows,
            entry.file
        ),
    )
}

/// The error for a file that may or may not have arrived (exit 9).
fn unsure(file: &ImportFile, why: &str) -> Error {
    Error::new(
        ErrorKind::Journal,
        format!(
            "{}: a send was cut off before its answer, and hcconv cannot tell whether Qiscus got it: {why}. Check the import list; then run again with --adopt {}=ID if one of them is this file, or --resend {} if none is",
            file.name, file.name, file.name
        ),
    )
}

fn excerpt(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}… (the rest in the journal)", &text[..cut]),
        None => text.to_string(),
    }
}

/// The journal path of a folder, for messages and `--report`.
pub fn journal_path(folder: &Path, flag: Option<&Path>) -> PathBuf {
    journal::path_for(folder, flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_nonsense() {
        assert_eq!(parse_seconds("0.01").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_seconds("10").unwrap(), Duration::from_secs(10));
        for bad in ["-1", "NaN", "inf", "ten", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
