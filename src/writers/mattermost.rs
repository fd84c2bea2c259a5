//! The Mattermost writer (not written yet).

use std::path::Path;

use clap::Args;

use crate::error::{Error, ErrorKind, Result};
use crate::hipchat::Export;
use crate::report::Report;

use super::WriterOptions;

/// Mattermost-specific flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Mattermost options")]
pub struct MattermostOptions {
    /// Write one OUT.zip (import.jsonl at its root, data/ beside it) for mmctl import upload.
    #[arg(long)]
    pub zip: bool,
}

/// Writes the Mattermost import.
pub fn write(_export: &mut Export, _out: &Path, _opts: &WriterOptions, _report: &mut Report) -> Result<()> {
    Err(Error::new(ErrorKind::Other, "the mattermost writer is not implemented yet"))
}
