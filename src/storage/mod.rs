//! Storage: how the pipeline keeps memory flat whatever the export's size. Sorted
//! runs on disk ([`spool`]), the export's files and their index ([`files`]),
//! writes handed to a helper thread ([`write_behind`]), streams passed between
//! threads in chunks ([`chunks`]) or in pooled batches ([`handoff`]), the zip writer ([`zip_stream`]), atomic output
//! folders ([`output`]) and the lock that tells whose they are ([`run_lock`]),
//! the `inspect` scratch folder ([`temp_scratch`]), and positional file access under them all
//! ([`positional`]). Dependencies point one way: `positional` ← `write_behind` ←
//! `spool` ← `files`; none of it knows the reader or the writers.

pub mod chunks;
pub mod files;
pub mod handoff;
pub mod output;
pub mod positional;
pub mod run_lock;
pub mod spool;
pub mod temp_scratch;
pub mod write_behind;
pub mod zip_stream;
