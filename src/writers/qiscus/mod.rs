//! The Qiscus writer: JSON files for Qiscus's import API (`POST /api/v2.1/rest/imports`).
//!
//! Output, in upload order: `users-NNNN.json`, then `rooms-NNNN.json`, then
//! `comments-NNNN.json`, each a JSON array under the API's 4 MB limit, plus `files/`
//! with the attachments and avatars for the administrator to host at
//! `--files-base-url`. Every reference (a room's users, a comment's author and room)
//! points at a row of an earlier kind, so the three kinds uploaded in order always
//! find what they refer to. Facts and their sources: FORMATS.md section 3; the runbook
//! is docs/qiscus.md.

mod chunks;
mod comments;
mod identity;
mod links;
mod rooms;
mod rows;

use std::path::{Path, PathBuf};

use clap::Args;

use crate::convert::email::{is_valid_email, EmailRule};
use crate::error::{Error, Result};
use crate::hipchat::Export;
use crate::model::{Catalog, Timestamp};
use crate::report::{Entity, Report, SkipReason};

use super::WriterOptions;
use chunks::{ChunkedArrays, FileSummary};
use comments::CommentWriter;
use identity::{Directory, Secret};
use links::{BaseUrl, FileCopier};

pub use comments::split_for_qiscus;
pub use identity::room_unique_id;

/// The API's limit per import file ("Limit 4 MB each import"). Read as 4,000,000
/// bytes, the smaller of the decimal and binary readings, so either is respected.
pub const MAX_FILE_BYTES: u64 = 4_000_000;
/// Qiscus's send limit for one message, in characters (FORMATS.md 3.2).
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The same limit read as UTF-8 bytes, in case the server counts bytes.
pub const MAX_MESSAGE_BYTES: usize = 4000;
/// Domain of placeholder addresses: `.invalid` can never be a real mailbox (RFC 2606).
pub const DEFAULT_EMAIL_DOMAIN: &str = "hipchat.invalid";

/// Qiscus-specific flags.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Qiscus options")]
pub struct QiscusOptions {
    /// Where OUT/files/ will be served from (https://…, or http://…): attachment links
    /// in comments and users' AvatarUrl are built from it. Without it, links are
    /// relative paths and avatars are left out.
    #[arg(long, value_name = "URL")]
    pub files_base_url: Option<String>,
    /// Secret (at least 16 bytes; the whole file, trailing newline ignored) from which
    /// each user's Password and AuthenticationToken are derived with HMAC-SHA256:
    /// unguessable without it, the same on every run with it. Required for --to qiscus.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Domain of the placeholder e-mails given to users without a usable, unique
    /// address and to integrations.
    #[arg(long, value_name = "DOMAIN", default_value = DEFAULT_EMAIL_DOMAIN)]
    pub qiscus_email_domain: String,
    /// Largest import file in bytes (for tests; the API's limit is the default).
    #[arg(long, value_name = "BYTES", default_value_t = MAX_FILE_BYTES, hide = true)]
    pub qiscus_max_file_bytes: u64,
}

impl Default for QiscusOptions {
    fn default() -> Self {
        QiscusOptions { files_base_url: None, secret_file: None, qiscus_email_domain: DEFAULT_EMAIL_DOMAIN.into(), qiscus_max_file_bytes: MAX_FILE_BYTES }
    }
}

/// Checked options plus what the whole run shares.
pub struct Settings {
    out: PathBuf,
    base_url: Option<BaseUrl>,
    secret: Secret,
    domain: String,
    max_file_bytes: u64,
    skip_deleted_rooms: bool,
    /// Creation time for users and rooms Hipchat gives none (the first message's time).
    default_created: Timestamp,
}

impl Settings {
    fn new(opts: &WriterOptions, out: &Path, catalog_first: Option<Timestamp>) -> Result<Self> {
        let q = &opts.qiscus;
        let base_url = q.files_base_url.as_deref().map(BaseUrl::parse).transpose()?;
        let secret_path = q.secret_file.as_ref().ok_or_else(|| {
            Error::usage(
                "--to qiscus needs --secret-file FILE: Qiscus imports a password and an authentication token per user, Hipchat exports none, \
                 and hcconv will not write guessable ones. Make a secret once and keep it: head -c 32 /dev/urandom | base64 > qiscus.secret",
            )
        })?;
        let secret = Secret::from_file(secret_path)?;
        let domain = q.qiscus_email_domain.trim().trim_start_matches('@').to_lowercase();
        if domain.is_empty() || !is_valid_email(&format!("x@{domain}"), EmailRule::Qiscus) {
            return Err(Error::usage(format!("--qiscus-email-domain {:?} is not a usable e-mail domain", q.qiscus_email_domain)));
        }
        if q.qiscus_max_file_bytes == 0 {
            return Err(Error::usage("--qiscus-max-file-bytes must be more than 0"));
        }
        Ok(Settings {
            out: out.to_path_buf(),
            base_url,
            secret,
            domain,
            max_file_bytes: q.qiscus_max_file_bytes,
            skip_deleted_rooms: opts.skip_deleted_rooms,
            default_created: catalog_first.unwrap_or(Timestamp(0)),
        })
    }
}

/// Checks the Qiscus flags before the (long) read of the export.
pub fn validate(opts: &WriterOptions) -> Result<()> {
    Settings::new(opts, Path::new("."), None).map(|_| ())
}

/// Writes the Qiscus import into the folder `out`.
pub fn write(export: &mut Export, out: &Path, opts: &WriterOptions, report: &mut Report) -> Result<()> {
    let settings = Settings::new(opts, out, export.stats.first_message)?;
    let mut directory = Directory::new(&export.catalog, &settings.domain, report);
    let mut files = FileCopier::new(out, export.files.clone(), settings.base_url.clone());
    link_avatars(&export.catalog, &mut files, &mut directory, report)?;
    skip_emoticons(&export.catalog, report);
    let (summaries, comment_files) = CommentWriter::new(&export.catalog, &settings, &mut directory, &mut files).run(export, report)?;
    let catalog = &export.catalog;
    let room_files = rooms::write_rooms(catalog, &summaries, &settings, &mut directory, report)?;
    let user_files = write_users(catalog, &settings, &directory, report)?;
    let copied = files.finish()?;
    report.add_extra("qiscus_files_copied", copied);
    for (kind, written) in [("users", &user_files), ("rooms", &room_files), ("comments", &comment_files)] {
        report.add_extra(&format!("qiscus_{kind}_import_files"), written.len() as u64);
    }
    Ok(())
}

/// The users file, written last because comments and rooms may add authors
/// (integrations, unknown senders, the stand-in room creator).
fn write_users(catalog: &Catalog, settings: &Settings, directory: &Directory, report: &mut Report) -> Result<Vec<FileSummary>> {
    let mut arrays = ChunkedArrays::new(&settings.out, "users", settings.max_file_bytes);
    for identity in directory.all() {
        arrays.push(&Directory::row(identity, &settings.secret, settings.default_created))?;
        if let identity::Origin::Hipchat(id) = identity.origin {
            match catalog.users.get(&id) {
                Some(user) if !user.is_placeholder => report.written(Entity::User),
                Some(_) => report.add_extra("qiscus_placeholder_users", 1),
                None => {} // counted when it was made
            }
        }
    }
    arrays.finish()
}

/// Copies avatars and sets `AvatarUrl`, only when an https base URL makes a link the
/// API accepts; otherwise each avatar is reported as not converted.
fn link_avatars(catalog: &Catalog, files: &mut FileCopier, directory: &mut Directory, report: &mut Report) -> Result<()> {
    for user in catalog.users.values() {
        let Some(avatar) = &user.avatar else {
            continue;
        };
        let why_not = match files.base() {
            None => Some("no --files-base-url, so no AvatarUrl can be given"),
            Some(base) if !base.is_https() => Some("--files-base-url is not https; AvatarUrl must be https"),
            Some(_) if !files.available(avatar) => Some("the image bytes are not available to copy"),
            Some(_) => None,
        };
        match why_not {
            Some(why) => report.skip(Entity::Avatar, format!("user {}", user.id), SkipReason::Invalid, why),
            None => {
                let url = files.link(avatar)?;
                directory.set_avatar_url(user.id, url);
                report.written(Entity::Avatar);
            }
        }
    }
    Ok(())
}

/// Qiscus has no custom emoticons: `(shortcut)` stays in the text as typed.
fn skip_emoticons(catalog: &Catalog, report: &mut Report) {
    for e in &catalog.emoticons {
        report.skip(Entity::Emoticon, format!("({})", e.shortcut), SkipReason::UnsupportedKind, "Qiscus has no custom emoticons; the text keeps (shortcut) as typed");
    }
}
