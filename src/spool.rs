//! An external merge sort for messages: bounded memory whatever the export's size.
//!
//! History files are not in time order (they often look newest-first) and archive
//! entries come in any order, so messages must be sorted by (conversation, time,
//! position) before any writer sees them. Sorting millions in memory is what made
//! earlier importers need gigabytes; here records are buffered up to a fixed budget,
//! sorted, written to a run file, and the runs are merged lazily at the end.
//! Hand-rolled (about 150 lines) because the crates for this are little used and
//! the record format here is trivial: a fixed binary key, a length and a body in the
//! compact binary encoding of [`record`].
//!
//! Nothing is allocated per record while writing: bodies are encoded straight into
//! one growing buffer, reused from run to run, beside an index of keys and ranges.
//! While merging, each run reader keeps one body buffer that every record reuses.

mod record;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

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

/// A buffered record: its key and where its body lies in the bodies buffer.
type Entry = (SortKey, Range<usize>);

/// Collects messages; call [`SpoolWriter::finish`] to get them back sorted.
pub struct SpoolWriter {
    dir: PathBuf,
    budget: usize,
    /// Encoded bodies of the buffered records, back to back.
    bodies: Vec<u8>,
    /// The buffered records, in push order until a run is sorted.
    index: Vec<Entry>,
    runs: Vec<PathBuf>,
    count: u64,
}

impl SpoolWriter {
    /// A spool whose run files go into `dir` (which must exist and be private to this run).
    pub fn new(dir: &Path, budget: usize) -> Self {
        SpoolWriter { dir: dir.to_path_buf(), budget, bodies: Vec::new(), index: Vec::new(), runs: Vec::new(), count: 0 }
    }

    /// Adds one message.
    pub fn push(&mut self, m: &Message) -> Result<()> {
        let start = self.bodies.len();
        if let Err(e) = record::encode(m, &mut self.bodies) {
            self.bodies.truncate(start);
            return Err(e);
        }
        self.index.push((SortKey::of(m), start..self.bodies.len()));
        self.count += 1;
        if self.bodies.len() + self.index.len() * size_of::<Entry>() >= self.budget {
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
        self.index.sort_unstable_by_key(|(k, _)| *k);
        let path = self.dir.join(format!("run-{:06}.bin", self.runs.len()));
        let file = File::create(&path).output_ctx(&path)?;
        let mut w = BufWriter::with_capacity(256 * 1024, file);
        for (key, range) in &self.index {
            let body = &self.bodies[range.clone()];
            let len = u32::try_from(body.len()).map_err(|_| Error::output(&path, format!("a message of {} bytes", body.len())))?;
            key.encode(&mut w).output_ctx(&path)?;
            w.write_all(&len.to_le_bytes()).output_ctx(&path)?;
            w.write_all(body).output_ctx(&path)?;
        }
        w.flush().output_ctx(&path)?;
        self.index.clear();
        self.bodies.clear();
        self.runs.push(path);
        Ok(())
    }

    /// Ends writing; returns the sorted reader. Small spools never touch the disk.
    pub fn finish(mut self) -> Result<SortedSpool> {
        if self.runs.is_empty() {
            self.index.sort_unstable_by_key(|(k, _)| *k);
            let index = std::mem::take(&mut self.index).into_iter();
            return Ok(SortedSpool { source: Source::Memory { bodies: std::mem::take(&mut self.bodies), index }, count: self.count });
        }
        if !self.index.is_empty() {
            self.write_run()?;
        }
        // The last run's buffer is not needed while merging.
        self.bodies = Vec::new();
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::new();
        for (i, path) in self.runs.iter().enumerate() {
            let file = File::open(path).map_err(|e| Error::input(path.display(), e))?;
            let mut r = RunReader { reader: BufReader::with_capacity(16 * 1024, file), path: path.clone(), body: Vec::new() };
            if let Some(key) = r.next_record()? {
                heap.push(Reverse((key, i)));
            }
            readers.push(r);
        }
        SortedSpool { source: Source::Merge { readers, heap }, count: self.count }.ahead()
    }
}

struct RunReader {
    reader: BufReader<File>,
    path: PathBuf,
    /// The body of the record last read, overwritten by the next.
    body: Vec<u8>,
}

impl RunReader {
    /// Reads the next record's key, and its body into `self.body`.
    fn next_record(&mut self) -> Result<Option<SortKey>> {
        let mut key = [0u8; SortKey::LEN];
        match self.reader.read_exact(&mut key) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::input(self.path.display(), e)),
        }
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len).map_err(|e| Error::input(self.path.display(), e))?;
        self.body.resize(u32::from_le_bytes(len) as usize, 0);
        self.reader.read_exact(&mut self.body).map_err(|e| Error::input(self.path.display(), e))?;
        Ok(Some(SortKey::decode(&key)))
    }
}

enum Source {
    Memory { bodies: Vec<u8>, index: std::vec::IntoIter<Entry> },
    /// The heap holds the key of each run's current record and the run's index.
    Merge { readers: Vec<RunReader>, heap: BinaryHeap<Reverse<(SortKey, usize)>> },
    /// A merge running on a helper thread, a few batches ahead of the reader.
    Ahead { batches: Receiver<Result<Vec<Message>>>, current: std::vec::IntoIter<Message> },
}

/// Messages per batch handed over by the merging thread.
const AHEAD_BATCH: usize = 512;
/// Batches the merging thread may be ahead.
const AHEAD_DEPTH: usize = 4;

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
        match &mut self.source {
            Source::Memory { bodies, index } => index.next().map(|(_, range)| record::decode(&bodies[range])).transpose(),
            Source::Merge { readers, heap } => {
                let Some(Reverse((_, i))) = heap.pop() else { return Ok(None) };
                let m = record::decode(&readers[i].body)?;
                if let Some(key) = readers[i].next_record()? {
                    heap.push(Reverse((key, i)));
                }
                Ok(Some(m))
            }
            Source::Ahead { batches, current } => loop {
                if let Some(m) = current.next() {
                    return Ok(Some(m));
                }
                match batches.recv() {
                    Ok(Ok(batch)) => *current = batch.into_iter(),
                    Ok(Err(e)) => return Err(e),
                    // The merging thread is done and everything was handed over.
                    Err(_) => return Ok(None),
                }
            },
        }
    }

    /// Moves the merge (reading runs, decoding records) to a helper thread, so it
    /// overlaps with the writer that consumes the messages: each takes a core.
    /// Memory stays fixed (`AHEAD_DEPTH` batches of `AHEAD_BATCH` messages).
    fn ahead(mut self) -> Result<SortedSpool> {
        let count = self.count;
        let (tx, rx) = sync_channel(AHEAD_DEPTH);
        std::thread::Builder::new()
            .name("spool-merge".into())
            .spawn(move || merge_into(&mut self, &tx))
            .map_err(|e| Error::new(crate::error::ErrorKind::Other, format!("cannot start the merging thread: {e}")))?;
        Ok(SortedSpool { source: Source::Ahead { batches: rx, current: Vec::new().into_iter() }, count })
    }
}

/// The merging thread: sends batches until the end, an error, or the reader is gone.
fn merge_into(spool: &mut SortedSpool, tx: &SyncSender<Result<Vec<Message>>>) {
    loop {
        let mut batch = Vec::with_capacity(AHEAD_BATCH);
        let outcome = loop {
            match spool.next_message() {
                Ok(Some(m)) => {
                    batch.push(m);
                    if batch.len() == AHEAD_BATCH {
                        break Ok(false);
                    }
                }
                Ok(None) => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        if !batch.is_empty() && tx.send(Ok(batch)).is_err() {
            return;
        }
        match outcome {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
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

        #[test]
        fn gives_back_every_message_whole(messages in proptest::collection::vec(record::tests::message(), 0..40), budget in prop_oneof![Just(DEFAULT_BUDGET), 1usize..3000]) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SpoolWriter::new(dir.path(), budget);
            for m in &messages {
                w.push(m).unwrap();
            }
            let mut expected = messages;
            expected.sort_by_key(SortKey::of);
            let mut s = w.finish().unwrap();
            prop_assert_eq!(s.len(), expected.len() as u64);
            let mut got = Vec::new();
            while let Some(m) = s.next_message().unwrap() {
                got.push(m);
            }
            // Equal keys (same conversation, time and seq) may come out in either order.
            let ties = expected.windows(2).any(|w| SortKey::of(&w[0]) == SortKey::of(&w[1]));
            if !ties {
                prop_assert_eq!(got, expected);
            } else {
                prop_assert_eq!(got.iter().map(SortKey::of).collect::<Vec<_>>(), expected.iter().map(SortKey::of).collect::<Vec<_>>());
            }
        }
    }

    /// The merge runs on its own thread; damage it meets still reaches the reader,
    /// after every message before it, and names the run file.
    #[test]
    fn a_damaged_run_is_an_error_through_the_merging_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(dir.path(), 2000);
        for seq in 0..3000u64 {
            w.push(&msg(Conversation::Room(seq % 5), seq as i64, seq)).unwrap();
        }
        let run = dir.path().join("run-000000.bin");
        let len = std::fs::metadata(&run).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&run).unwrap().set_len(len - 3).unwrap();
        let mut s = w.finish().unwrap();
        let mut delivered = 0;
        let err = loop {
            match s.next_message() {
                Ok(Some(_)) => delivered += 1,
                Ok(None) => panic!("the damage was not noticed"),
                Err(e) => break e,
            }
        };
        assert!(delivered > 0);
        assert!(err.message().contains("run-000000.bin"), "{}", err.message());
    }
}