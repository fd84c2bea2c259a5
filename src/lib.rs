//! hcconv: converts Hipchat Server / Data Center exports (hc-migrate's `.tar.gz.aes`)
//! into the import formats of Mattermost, Pixtoome (Zulip's format) and Qiscus.
//!
//! The pipeline is: [`archive`] (decrypt, gunzip, untar, all streaming) →
//! [`hipchat`] (parse into the neutral [`model`], spooling messages to disk so
//! memory stays flat) → [`convert`] (text and names shared by the writers) →
//! [`writers`] (one per target). Beside it: [`cli`] (the command-line contract,
//! with [`filter`], [`usermap`], [`inspect`], [`password`], [`progress`]),
//! [`report`] (what every stage converted and skipped), [`error`] (failures and
//! their exit codes) and [`storage`] (the disk-backed machinery under it all).
//! After the conversion, [`upload`] sends a converted folder to the target's
//! import service (`hcconv upload qiscus`).

pub mod archive;
pub mod cli;
pub mod convert;
pub mod error;
pub mod filter;
pub mod hipchat;
pub mod inspect;
pub mod model;
pub mod password;
pub mod progress;
pub mod report;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod upload;
pub mod usermap;
pub mod writers;
