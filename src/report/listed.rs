//! The report's lists (skips, warnings): the first few in memory, the rest on disk.
//!
//! A real export can hold millions of duplicate private messages, each a skip with its
//! own id and detail; even capped at [`MAX_LISTED`] entries that is tens of MiB held
//! until the end of the run. So only the first [`IN_MEMORY`] entries stay in memory
//! and the rest go, as JSON lines, into an anonymous temporary file (deleted by the
//! system when the run ends, however it ends). Reading the list back (the
//! `--report` file, `inspect`) streams it from there.

use std::fs::File;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::storage::positional::{read_at, write_at};

/// How many entries a list keeps at most (memory and disk together); beyond that
/// they are only counted, so a pathological export cannot grow the report without bound.
pub const MAX_LISTED: usize = 100_000;
/// How many entries stay in memory.
pub const IN_MEMORY: usize = 1000;
/// Bytes of spilled lines gathered before they are written.
const WRITE_CHUNK: usize = 64 * 1024;

/// A list of report entries; see the module documentation.
pub struct Listed<T> {
    memory: Vec<T>,
    spill: Option<Spill>,
    len: usize,
}

/// The entries beyond [`IN_MEMORY`]: `written` bytes of JSON lines in `file`, then `pending`.
struct Spill {
    file: File,
    written: u64,
    pending: Vec<u8>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed { memory: Vec::new(), spill: None, len: 0 }
    }
}

impl<T: Serialize + DeserializeOwned + Clone> Listed<T> {
    /// Adds `item`; false when it is not listed (the list is full, or the temporary
    /// file cannot be written), and the caller only counts it.
    pub fn push(&mut self, item: T) -> bool {
        if self.len >= MAX_LISTED {
            return false;
        }
        if self.memory.len() < IN_MEMORY {
            self.memory.push(item);
        } else if self.spill(&item).is_err() {
            return false;
        }
        self.len += 1;
        true
    }

    fn spill(&mut self, item: &T) -> io::Result<()> {
        if self.spill.is_none() {
            self.spill = Some(Spill { file: tempfile::tempfile()?, written: 0, pending: Vec::new() });
        }
        let spill = self.spill.as_mut().expect("just made");
        let start = spill.pending.len();
        if let Err(e) = serde_json::to_writer(&mut spill.pending, item) {
            spill.pending.truncate(start);
            return Err(e.into());
        }
        spill.pending.push(b'\n');
        if spill.pending.len() >= WRITE_CHUNK {
            write_at(&spill.file, &spill.pending, spill.written)?;
            spill.written += spill.pending.len() as u64;
            spill.pending.clear();
        }
        Ok(())
    }

    /// Entries listed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry in the order added; an entry is an error only if the temporary
    /// file cannot be read back.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<T>> + '_ {
        let spilled = self.spill.as_ref().map(|spill| Lines { spill, offset: 0, buf: Vec::new(), pos: 0, pending_read: false });
        self.memory.iter().cloned().map(Ok).chain(spilled.into_iter().flatten().map(|line| line.and_then(|l| serde_json::from_slice(&l).map_err(io::Error::from))))
    }
}

/// The spilled JSON lines, read in chunks.
struct Lines<'a> {
    spill: &'a Spill,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    pending_read: bool,
}

impl Iterator for Lines<'_> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(end) = self.buf[self.pos..].iter().position(|b| *b == b'\n') {
                let line = self.buf[self.pos..self.pos + end].to_vec();
                self.pos += end + 1;
                return Some(Ok(line));
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            if self.offset < self.spill.written {
                let n = (self.spill.written - self.offset).min(WRITE_CHUNK as u64) as usize;
                let start = self.buf.len();
                self.buf.resize(start + n, 0);
                if let Err(e) = read_at(&self.spill.file, &mut self.buf[start..], self.offset) {
                    self.offset = self.spill.written;
                    self.pending_read = true;
                    return Some(Err(e));
                }
                self.offset += n as u64;
            } else if !self.pending_read {
                self.pending_read = true;
                self.buf.extend_from_slice(&self.spill.pending);
            } else {
                return None;
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned + Clone> Serialize for Listed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for item in self.iter() {
            serde::ser::SerializeSeq::serialize_element(&mut seq, &item.map_err(serde::ser::Error::custom)?)?;
        }
        serde::ser::SerializeSeq::end(seq)
    }
}

/// A copy with the same entries (read back from the temporary file when spilled).
impl<T: Serialize + DeserializeOwned + Clone> Clone for Listed<T> {
    fn clone(&self) -> Self {
        let mut copy = Listed::default();
        for item in self.iter().flatten() {
            copy.push(item);
        }
        copy
    }
}

impl<T> std::fmt::Debug for Listed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listed").field("len", &self.len).field("in_memory", &self.memory.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_entry_in_order_past_memory_and_chunks() {
        let mut list = Listed::default();
        let n = IN_MEMORY + 3000;
        let items: Vec<String> = (0..n).map(|i| format!("entry {i} with \"quotes\", a newline\n and ünïcode {}", "x".repeat(i % 50))).collect();
        for item in &items {
            assert!(list.push(item.clone()));
        }
        assert_eq!(list.len(), n);
        assert!(list.spill.as_ref().is_some_and(|s| s.written > 0 && !s.pending.is_empty()), "both written and pending lines are read back");
        let back: Vec<String> = list.iter().map(Result::unwrap).collect();
        assert_eq!(back, items);
        assert_eq!(serde_json::to_string(&list).unwrap(), serde_json::to_string(&items).unwrap());
        assert_eq!(list.clone().iter().count(), n);
    }

    #[test]
    fn stops_listing_at_the_cap() {
        let mut list = Listed::default();
        for i in 0..MAX_LISTED {
            assert!(list.push(i as u64));
        }
        assert!(!list.push(0));
        assert_eq!(list.len(), MAX_LISTED);
        assert_eq!(list.iter().last().unwrap().unwrap(), MAX_LISTED as u64 - 1);
    }
}
