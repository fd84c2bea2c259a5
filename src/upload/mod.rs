//! Sending a converted folder to the target's import service: `hcconv upload
//! qiscus` (Mattermost and Pixtoome have their own import commands, mmctl and
//! manage.py, which take the folder as it is).
//!
//! [`http`] is the client with its retry policy, [`multipart`] the upload body,
//! [`qiscus`] the Qiscus import API, its journal and the run.

pub mod http;
pub mod multipart;
pub mod qiscus;
