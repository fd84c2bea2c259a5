//! The Pixtoome writer: a directory for `./manage.py import '' OUT`.
//!
//! Pixtoome's import format is the Zulip data-import format. The importer builds
//! database rows straight from the JSON keys, so the key sets follow one Zulip
//! release, chosen with `--pixtoome-format` and kept in [`profile`]. Layout:
//! `realm.json`, `messages-000001.json`…, `attachment.json`, and the folders
//! `uploads/`, `avatars/`, `emoji/`, each with a `records.json` (all present even
//! when empty). The runbook is `docs/pixtoome.md`.

pub mod files;
pub mod html;
pub mod mentions;
pub mod messages;
pub mod plan;
pub mod profile;
pub mod realm;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::convert::email::{is_valid_email, EmailRule};
use crate::error::Result;
use crate::hipchat::Export;
use crate::report::Report;

use super::WriterOptions;
use files::Uploads;
use messages::MessageContext;
use plan::Plan;
use profile::FormatVersion;

/// How stream messages are grouped into topics.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TopicScheme {
    /// One topic per stream, "imported from hipchat".
    #[default]
    Room,
    /// One topic per calendar month (UTC), e.g. "2018-04".
    Month,
}

/// Which subscribers get a `zerver_usermessage` row for each stream message
/// (the sender and mentioned users always do; private messages always get both
/// people). Rows grow as messages × subscribers; see docs/pixtoome.md.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserMessagePolicy {
    /// Every subscriber (full fidelity: every message in everyone's feeds).
    #[default]
    All,
    /// Only subscribers who can log in (no deactivated users, mirror dummies, bots).
    Active,
    /// Nobody but the sender and mentioned users; subscribers read the stream's
    /// history through it being visible to subscribers.
    Participants,
    /// The rows of `participants`, and every human user marked `long_term_idle`
    /// (soft-deactivated) from the start of the history, so the server adds each
    /// user's missing stream rows at their first login (Zulip's own converters do
    /// this for idle users); those rows arrive unread.
    Idle,
}

/// Pixtoome-specific flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Pixtoome options")]
pub struct PixtoomeOptions {
    /// Import format of the target server: the Zulip release it runs (Zulip 10 and
    /// later refuse a folder written for another major release).
    #[arg(long = "pixtoome-format", value_enum, default_value = "12.x", value_name = "VERSION")]
    pub format: FormatVersion,
    /// Topics for room messages: one per room, or one per month ("2018-04").
    #[arg(long = "pixtoome-topic", value_enum, default_value = "room", value_name = "SCHEME")]
    pub topic: TopicScheme,
    /// Which stream subscribers get a per-user message row (see docs/pixtoome.md).
    #[arg(long = "pixtoome-usermessages", value_enum, default_value = "all", value_name = "POLICY")]
    pub usermessages: UserMessagePolicy,
    /// Domain of made-up e-mail addresses (users without one, integration bots)
    /// [default: example.com].
    #[arg(long = "pixtoome-email-domain", value_name = "DOMAIN")]
    pub email_domain: Option<String>,
}

/// Checks the Pixtoome flags before the (long) read of the export.
pub fn validate(opts: &WriterOptions) -> Result<()> {
    if let Some(domain) = &opts.pixtoome.email_domain
        && !is_valid_email(&format!("x@{domain}"), EmailRule::Zulip) {
            return Err(crate::error::Error::usage(format!("--pixtoome-email-domain {domain:?} is not a valid e-mail domain")));
        }
    Ok(())
}

/// Writes the Pixtoome import into the empty folder `out`.
pub fn write(export: &mut Export, out: &Path, opts: &WriterOptions, report: &mut Report) -> Result<()> {
    let options = &opts.pixtoome;
    let profile = profile::profile(options.format);
    validate(opts)?;
    let first = export.stats.first_message.map(|t| t.seconds_f64());
    let mut plan = Plan::build(&export.catalog, first, options, opts.skip_deleted_rooms, profile, report);
    let files = Arc::clone(&export.files);
    let users: BTreeMap<u64, &crate::model::User> = export.catalog.users.iter().map(|(k, v)| (*k, v)).collect();
    files::write_avatars(out, &files, &users, &mut plan, report)?;
    let emoji = files::write_emoji(out, &files, &export.catalog.emoticons, &mut plan, profile, report)?;
    let mut uploads = Uploads::new(out, Arc::clone(&files), &export.scratch, profile)?;
    let uploads_dir = out.join("uploads");
    crate::storage::output::create_dirs_below(out, &uploads_dir).map_err(|e| crate::error::Error::output(&uploads_dir, e))?;
    let message_realm = profile.has_key("zerver_message", "realm").then_some(plan::REALM_ID);
    let channel_flag = profile.has_key("zerver_message", "is_channel_message");
    let mut ctx = MessageContext { plan: &mut plan, uploads: &mut uploads, profile, opts: options, message_realm, channel_flag };
    messages::write_messages(export, out, &mut ctx, report)?;
    uploads.finish(profile)?;
    realm::write_realm(out, &plan, emoji, profile)
}
