//! hcconv: converts Hipchat Server / Data Center exports (hc-migrate's `.tar.gz.aes`)
//! into the import formats of Mattermost, Pixtoome (Zulip's format) and Qiscus.
//!
//! The pipeline is: [`archive`] (decrypt, gunzip, untar, all streaming) →
//! [`hipchat`] (parse into the neutral [`model`], spooling messages through
//! [`spool`] so memory stays flat) → a writer per target. [`report`] collects
//! what every stage converted and skipped; [`error`] maps failures to exit codes.

pub mod archive;
pub mod chunks;
pub mod cli;
pub mod convert;
pub mod error;
pub mod files;
pub mod filter;
pub mod hipchat;
pub mod inspect;
pub mod model;
pub mod output;
pub mod password;
pub mod progress;
pub mod report;
pub mod spool;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod usermap;
pub mod write_behind;
pub mod zip_stream;
pub mod writers;
