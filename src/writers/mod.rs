//! One writer per target, all fed by the same [`Export`].
//!
//! Each writer module owns its flags (a clap `Args` struct flattened into the
//! command line), writes into the staging path it is given, and records every
//! written or skipped item in the [`Report`].

pub mod mattermost;
pub mod pixtoome;
pub mod qiscus;

use std::path::Path;

use clap::{Args, ValueEnum};

use crate::error::Result;
use crate::hipchat::Export;
use crate::storage::output::OutputShape;
use crate::report::Report;

/// The systems hcconv writes for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Mattermost bulk import (JSONL + data/), for `mmctl import`.
    Mattermost,
    /// Pixtoome's `manage.py import` directory (the Zulip data-import format).
    Pixtoome,
    /// Qiscus import API JSON files (users, rooms, comments).
    Qiscus,
}

impl Target {
    /// Lowercase name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Mattermost => "mattermost",
            Target::Pixtoome => "pixtoome",
            Target::Qiscus => "qiscus",
        }
    }
}

/// Options of all writers; each only reads its own part.
#[derive(Args, Debug, Clone, Default)]
pub struct WriterOptions {
    /// Leave rooms deleted in Hipchat out (default: keep them as archived).
    #[arg(long)]
    pub skip_deleted_rooms: bool,
    #[command(flatten)]
    pub mattermost: mattermost::MattermostOptions,
    #[command(flatten)]
    pub pixtoome: pixtoome::PixtoomeOptions,
    #[command(flatten)]
    pub qiscus: qiscus::QiscusOptions,
}

impl WriterOptions {
    /// The options as the run uses them: for Mattermost, `-o NAME.zip` means `--zip`
    /// (a folder named `NAME.zip` made `mmctl import upload` fail far from the cause).
    /// Giving both, as scripts did, is the same run.
    pub fn for_output(&self, target: Target, out: Option<&Path>) -> WriterOptions {
        let mut opts = self.clone();
        if target == Target::Mattermost && out.is_some_and(names_a_zip) {
            opts.mattermost.zip = true;
        }
        opts
    }
}

/// Refuses `-o NAME.zip` for a target that writes a folder: a folder named like a
/// zip file misleads the next step of a runbook (issue 24: `-o X.zip` never makes a
/// folder called X.zip). Mattermost takes the name as `--zip` ([`WriterOptions::for_output`]).
pub fn check_output_name(target: Target, out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) if target != Target::Mattermost && names_a_zip(path) => Err(crate::error::Error::usage(format!(
            "-o {}: --to {} writes a folder, not a zip file; give the output a name without .zip (only --to mattermost writes a zip)",
            path.display(),
            target.name()
        ))),
        _ => Ok(()),
    }
}

/// Whether `path` ends in `.zip` (any case).
fn names_a_zip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Whether `target` writes a folder or a single file with these options.
pub fn output_shape(target: Target, opts: &WriterOptions) -> OutputShape {
    match target {
        Target::Mattermost if opts.mattermost.zip => OutputShape::File,
        _ => OutputShape::Folder,
    }
}

/// Checks `target`'s flags before the export is read, so a usage error costs no time.
pub fn validate(target: Target, opts: &WriterOptions) -> Result<()> {
    match target {
        Target::Qiscus => qiscus::validate(opts),
        Target::Pixtoome => pixtoome::validate(opts),
        Target::Mattermost => mattermost::validate(opts),
    }
}

/// Writes `export` for `target` at `out` (a staging path; see [`output_shape`]).
pub fn write(target: Target, export: &mut Export, out: &Path, opts: &WriterOptions, report: &mut Report) -> Result<()> {
    match target {
        Target::Mattermost => mattermost::write(export, out, opts, report),
        Target::Pixtoome => pixtoome::write(export, out, opts, report),
        Target::Qiscus => qiscus::write(export, out, opts, report),
    }
}
