//! The Pixtoome writer (not written yet).

use std::path::Path;

use clap::Args;

use crate::error::{Error, ErrorKind, Result};
use crate::hipchat::Export;
use crate::report::Report;

use super::WriterOptions;

/// Pixtoome-specific flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Pixtoome options")]
pub struct PixtoomeOptions {

}

/// Writes the Pixtoome import.
pub fn write(_export: &mut Export, _out: &Path, _opts: &WriterOptions, _report: &mut Report) -> Result<()> {
    Err(Error::new(ErrorKind::Other, "the pixtoome writer is not implemented yet"))
}
