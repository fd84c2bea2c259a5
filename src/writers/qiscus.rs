//! The Qiscus writer (not written yet).

use std::path::Path;

use clap::Args;

use crate::error::{Error, ErrorKind, Result};
use crate::hipchat::Export;
use crate::report::Report;

use super::WriterOptions;

/// Qiscus-specific flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Qiscus options")]
pub struct QiscusOptions {

}

/// Writes the Qiscus import.
pub fn write(_export: &mut Export, _out: &Path, _opts: &WriterOptions, _report: &mut Report) -> Result<()> {
    Err(Error::new(ErrorKind::Other, "the qiscus writer is not implemented yet"))
}
