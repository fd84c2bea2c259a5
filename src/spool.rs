//! An external merge sort for messages: bounded memory whatever the export's size.
//!
//! History files are not in time order (they often look newest-first) and archive
//! entries come in any order, so messages must be sorted by (conversation, time,
//! position) before any writer sees them. Sorting millions in memory is what made
//! earlier importers need gigabytes; here records are buffered up to a fixed budget,
//! sorted, written to a run file, and the runs are merged lazily at the end.
//! Hand-rolled (about 150 lines) because the crates for this are little used and
//! the record format here is trivial: a fixed binary key and a JSON body.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, OutputContext, Result};
use crate::model::{Conversation, Message};

/// Bytes of serialized messages held in memory before a run is written.
pub const DEFAULT_BUDGET: usize = 8 * 1024 * 1024;

/// The order messages come out in: by conversation, then time, then export position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    /// 0 for rooms, 1 for private conversations.
    pub space: u8,
    /// Room id, or the lower user id.
    pub a: u64,
    /// 0 for rooms, or the higher user id.
    pub b: u64,
    /// Microseconds.
    pub time: i64,
    /// Position in the export.
    pub seq: u64,
}

impl SortKey {
    /// The key of a message.
    pub fn of(m: &Message) -> Self {
        let (space, a, b) = match m.conversation {
            Conversation::Room(r) => (0, r, 0),
            Conversation::Direct { low, high } => (1, low, high),
        };
        SortKey { space, a, b, time: m.time.micros(), seq: m.seq }
    }

    const LEN: usize = 1 + 8 + 8 + 8 + 8;

    fn encode(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&[self.space])?;
        out.write_all(&self.a.to_le_bytes())?;
        out.write_all(&self.b.to_le_bytes())?;
        out.write_all(&self.time.to_le_bytes())?;
        out.write_all(&self.seq.to_le_bytes())
    }

    fn decode(b: &[u8; Self::LEN]) -> Self {
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        SortKey { space: b[0], a: u(1), b: u(9), time: u(17) as i64, seq: u(25) }
    }
}

/// Collects messages; call [`SpoolWriter::finish`] to get them back sorted.
pub struct SpoolWriter {
    dir: PathBuf,
    budget: usize,
    buffer: Vec<(SortKey, Vec<u8>)>,
    buffered_bytes: usize,
    runs: Vec<PathBuf>,
    count: u64,
}

impl SpoolWriter {
    /// A spool whose run files go into `dir` (which must exist and be private to this run).
    pub fn new(dir: &Path, budget: usize) -> Self {
        SpoolWriter { dir: dir.to_path_buf(), budget, buffer: Vec::new(), buffered_bytes: 0, runs: Vec::new(), count: 0 }
    }

    /// Adds one message.
    pub fn push(&mut self, m: &Message) -> Result<()> {
        let body = serde_json::to_vec(m).map_err(|e| Error::new(crate::error::ErrorKind::Other, format!("spool: {e}")))?;
        self.buffered_bytes += body.len() + SortKey::LEN + 32;
        self.buffer.push((SortKey::of(m), body));
        self.count += 1;
        if self.buffered_bytes >= self.budget {
            self.write_run()?;
        }
        Ok(())
    }

    /// Messages pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn write_run(&mut self) -> Result<()> {
        self.buffer.sort_unstable_by_key(|(k, _)| *k);
        let path = self.dir.join(format!("run-{:06}.bin", self.runs.len()));
        let file = File::create(&path).output_ctx(&path)?;
        let mut w = BufWriter::with_capacity(256 * 1024, file);
        for (key, body) in self.buffer.drain(..) {
            key.encode(&mut w).output_ctx(&path)?;
            w.write_all(&(body.len() as u32).to_le_bytes()).output_ctx(&path)?;
            w.write_all(&body).output_ctx(&path)?;
        }
        w.flush().output_ctx(&path)?;
        self.buffered_bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Ends writing; returns the sorted reader. Small spools never touch the disk.
    pub fn finish(mut self) -> Result<SortedSpool> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable_by_key(|(k, _)| *k);
            let records = std::mem::take(&mut self.buffer);
            return Ok(SortedSpool { source: Source::Memory(records.into_iter()), count: self.count });
        }
        if !self.buffer.is_empty() {
            self.write_run()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::new();
        for (i, path) in self.runs.iter().enumerate() {
            let file = File::open(path).map_err(|e| Error::input(path.display(), e))?;
            let mut r = RunReader { reader: BufReader::with_capacity(16 * 1024, file), path: path.clone() };
            if let Some(rec) = r.next_record()? {
                heap.push(Reverse((rec.0, i, rec.1)));
            }
            readers.push(r);
        }
        Ok(SortedSpool { source: Source::Merge { readers, heap }, count: self.count })
    }
}

struct RunReader {
    reader: BufReader<File>,
    path: PathBuf,
}

impl RunReader {
    fn next_record(&mut self) -> Result<Option<(SortKey, Vec<u8>)>> {
        let mut key = [0u8; SortKey::LEN];
        match self.reader.read_exact(&mut key) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::input(self.path.display(), e)),
        }
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len).map_err(|e| Error::input(self.path.display(), e))?;
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        self.reader.read_exact(&mut body).map_err(|e| Error::input(self.path.display(), e))?;
        Ok(Some((SortKey::decode(&key), body)))
    }
}

enum Source {
    Memory(std::vec::IntoIter<(SortKey, Vec<u8>)>),
    Merge { readers: Vec<RunReader>, heap: BinaryHeap<Reverse<(SortKey, usize, Vec<u8>)>> },
}

/// Messages in [`SortKey`] order.
pub struct SortedSpool {
    source: Source,
    count: u64,
}

impl SortedSpool {
    /// Number of messages in the spool.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when the spool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next message in order.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        let body = match &mut self.source {
            Source::Memory(it) => it.next().map(|(_, b)| b),
            Source::Merge { readers, heap } => match heap.pop() {
                None => None,
                Some(Reverse((_, i, body))) => {
                    if let Some(rec) = readers[i].next_record()? {
                        heap.push(Reverse((rec.0, i, rec.1)));
                    }
                    Some(body)
                }
            },
        };
        body.map(|b| serde_json::from_slice(&b).map_err(|e| Error::new(crate::error::ErrorKind::Other, format!("spool record unreadable: {e}"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageKind, Sender, Timestamp};
    use proptest::prelude::*;

    fn msg(conv: Conversation, time: i64, seq: u64) -> Message {
        Message {
            conversation: conv,
            id: format!("m{seq}"),
            time: Timestamp(time),
            seq,
            sender: Sender::default(),
            text: "x".repeat((seq % 7) as usize),
            kind: MessageKind::User,
            attachment: None,
            mentions: vec![],
            deleted: None,
            metadata: None,
            source: String::new(),
        }
    }

    fn drain(mut s: SortedSpool) -> Vec<SortKey> {
        let mut out = Vec::new();
        while let Some(m) = s.next_message().unwrap() {
            out.push(SortKey::of(&m));
        }
        out
    }

    proptest! {
        #[test]
        fn sorts_like_an_in_memory_sort(items in proptest::collection::vec((0u64..4, 0i64..50), 0..400), budget in 200usize..5000) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SpoolWriter::new(dir.path(), budget);
            let mut expected = Vec::new();
            for (seq, (room, time)) in items.iter().enumerate() {
                let m = msg(if *room == 3 { Conversation::direct(2, 1) } else { Conversation::Room(*room) }, *time, seq as u64);
                expected.push(SortKey::of(&m));
                w.push(&m).unwrap();
            }
            expected.sort();
            prop_assert_eq!(drain(w.finish().unwrap()), expected);
        }
    }
}
