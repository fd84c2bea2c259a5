//! External merge sort: bounded memory whatever the export's size.
//!
//! History files are not in time order (they often look newest-first) and archive
//! entries come in any order, so messages must be sorted by (conversation, time,
//! position) before any writer sees them. Sorting millions in memory is what made
//! earlier importers need gigabytes; here records are buffered up to a fixed budget,
//! sorted, written to a run file, and the runs are merged lazily at the end.
//!
//! The sort itself, [`ExternalSort`], is generic over its key ([`RunKey`]) and takes
//! the record body as bytes, because more than the messages need it: the export's
//! file index ([`crate::storage::files`]), the files a Mattermost import must copy and the
//! Pixtoome upload links are all collected in one order and needed in another, and
//! each would otherwise be a map that grows with the export.
//!
//! Memory is bounded on both sides. While writing, one budget covers the buffered
//! bodies and keys. While merging, at most `fan_in` runs are open at once (each costs
//! a read buffer and a body buffer): when there are more, [`ExternalSort::finish`]
//! first merges consecutive groups of runs into longer runs on disk, merging only as
//! many as needed to bring the count down to `fan_in`, so a small excess costs a
//! partial pass, not a whole one.
//!
//! Hand-rolled (about 250 lines) because the crates for this are little used and the
//! record format here is trivial: a key length and a body length (u32, little
//! endian), the key in its own encoding and the body bytes. Nothing is allocated per
//! record while writing: bodies are encoded straight into one growing buffer, reused
//! from run to run, beside an index of keys and ranges. While merging, each run reader
//! keeps one key buffer and one body buffer that every record reuses.

mod ahead;
mod record;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::model::{Conversation, Message};
use crate::storage::write_behind::{PendingFiles, WriteBehind};

pub(crate) use record::{blank as blank_message, put_str, put_u64, Reader as FieldReader};

/// Bytes of serialized messages held in memory before a run is written.
pub const DEFAULT_BUDGET: usize = 8 * 1024 * 1024;

/// Runs merged at once, at most. Each open run costs an 8 KiB read buffer plus its
/// current record, so the merge holds about 2 MiB whatever the number of runs. A
/// 5M-message export makes about 200 runs: at 64, a third of the run time went into
/// first merging most of them into bigger runs (one more write and read of the
/// spool); at 256 the final merge takes them all. Each open run is also an open
/// file: see [`default_fan_in`].
pub const MAX_FAN_IN: usize = 256;

/// The fan-in sorts start with: [`MAX_FAN_IN`], or fewer when the process may not
/// open that many files (half of what its soft limit leaves after 64 for the rest
/// of the run, never under 16), and 64, the earlier fixed value, where the limit
/// cannot be read (no `/proc/self/limits`). A limit of 256 files, common outside
/// Linux, would otherwise fail a large export with "too many open files".
pub fn default_fan_in() -> usize {
    static FAN_IN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *FAN_IN.get_or_init(|| match fs::read_to_string("/proc/self/limits").ok().as_deref().and_then(soft_open_files_limit) {
        Some(limit) => usize::try_from(limit.saturating_sub(64) / 2).unwrap_or(MAX_FAN_IN).clamp(16, MAX_FAN_IN),
        None => 64,
    })
}

/// The soft "Max open files" limit in `/proc/self/limits` text (`unlimited` as
/// `u64::MAX`).
fn soft_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// Read buffer of each open run.
const RUN_READ_BUFFER: usize = 8 * 1024;

/// A key that orders the records of an [`ExternalSort`] and travels with them
/// through the run files.
pub trait RunKey: Ord {
    /// Appends the key's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a key back from exactly the bytes [`RunKey::encode`] wrote.
    fn decode(bytes: &[u8]) -> Result<Self>
    where
        Self: Sized;
    /// Heap bytes the key owns besides its own size, counted against the budget.
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// A buffered record: its key and where its body lies in the bodies buffer.
type Entry<K> = (K, Range<usize>);

/// Collects records; [`ExternalSort::finish`] gives them back in key order.
/// Records with equal keys come back in no particular order.
pub struct ExternalSort<K> {
    dir: PathBuf,
    /// Run file names start with this, so several sorts can share a folder.
    prefix: &'static str,
    budget: usize,
    fan_in: usize,
    /// Bodies of the buffered records, back to back.
    bodies: Vec<u8>,
    /// The buffered records, in push order until a run is sorted.
    index: Vec<Entry<K>>,
    /// Heap bytes owned by the buffered keys.
    key_heap: usize,
    runs: Vec<PathBuf>,
    /// Runs handed to the write-behind thread and perhaps not yet written: waiting
    /// for each at its end held the history thread up behind every other queued
    /// write, while it could go on parsing. Waited for before any run is read.
    written: PendingFiles<PathBuf>,
    /// Run files made so far (names are never reused).
    made: u64,
    count: u64,
}

impl<K> std::fmt::Debug for ExternalSort<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalSort").field("dir", &self.dir).field("prefix", &self.prefix).field("records", &self.count).field("runs", &self.runs.len()).finish()
    }
}

impl<K: RunKey> ExternalSort<K> {
    /// A sort keeping about `budget` bytes in memory; its run files go into `dir`
    /// (which must exist and be private to this run), named `<prefix>-NNNNNN.run`.
    pub fn new(dir: &Path, prefix: &'static str, budget: usize) -> Self {
        ExternalSort { dir: dir.to_path_buf(), prefix, budget, fan_in: default_fan_in(), bodies: Vec::new(), index: Vec::new(), key_heap: 0, runs: Vec::new(), written: PendingFiles::default(), made: 0, count: 0 }
    }

    /// Sets how many runs are merged at once (at least 2).
    pub fn with_fan_in(mut self, fan_in: usize) -> Self {
        self.fan_in = fan_in.max(2);
        self
    }

    /// Adds a record whose body `write_body` appends to the buffer it is given
    /// (nothing else is allocated). A failed body leaves no trace.
    pub fn push(&mut self, key: K, write_body: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        if self.bodies.capacity() == 0 {
            // The buffer fills to about the budget anyway; growing it by doubling
            // touches twice the memory and copies it (perf: a fifth of a 50k run's
            // page faults). Pages are only faulted in as records arrive.
            self.bodies.reserve(self.budget);
        }
        let start = self.bodies.len();
        if let Err(e) = write_body(&mut self.bodies) {
            self.bodies.truncate(start);
            return Err(e);
        }
        self.key_heap += key.heap_bytes();
        self.index.push((key, start..self.bodies.len()));
        self.count += 1;
        if self.bodies.len() + self.index.len() * size_of::<Entry<K>>() + self.key_heap >= self.budget {
            self.write_run()?;
        }
        Ok(())
    }

    /// Records pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Takes in every record of `other` (another thread's sort of the same kind):
    /// its runs as they are, its buffered records through [`ExternalSort::push`].
    /// Equal keys were never promised an order, so nothing else changes.
    pub fn absorb(&mut self, mut other: ExternalSort<K>) -> Result<()> {
        other.wait_written()?;
        self.runs.append(&mut other.runs);
        self.count += other.count - other.index.len() as u64;
        for (key, range) in std::mem::take(&mut other.index) {
            let body = &other.bodies[range];
            self.push(key, |out| {
                out.extend_from_slice(body);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn next_run_path(&mut self) -> PathBuf {
        self.made += 1;
        self.dir.join(format!("{}-{:06}.run", self.prefix, self.made))
    }

    fn write_run(&mut self) -> Result<()> {
        self.index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let path = self.next_run_path();
        let mut w = RunWriter::create(&path)?;
        for (key, range) in &self.index {
            w.record(key, &self.bodies[range.clone()])?;
        }
        self.written.push(path.clone(), w.close()?).map_err(|(path, e)| Error::output(&path, e))?;
        self.index.clear();
        self.bodies.clear();
        self.key_heap = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Ends writing; returns the records in key order. Small sorts never touch the disk.
    pub fn finish(mut self) -> Result<Sorted<K>> {
        if self.runs.is_empty() {
            self.index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let index = std::mem::take(&mut self.index).into_iter();
            return Ok(Sorted { source: Source::Memory { bodies: std::mem::take(&mut self.bodies), index, current: None }, count: self.count });
        }
        if !self.index.is_empty() {
            self.write_run()?;
        }
        // The buffers are not needed while merging.
        self.bodies = Vec::new();
        self.index = Vec::new();
        self.wait_written()?;
        self.reduce_runs()?;
        let merge = Merge::open(&self.runs)?;
        // Nothing opens the runs again: their names go now, and each run's memory or
        // disk space is given back as soon as the merge has read it to the end (on
        // the thread that merges), not all at once when the scratch folder is
        // removed at the end of the run.
        for path in &self.runs {
            let _ = fs::remove_file(path);
        }
        Ok(Sorted { source: Source::Merge(merge), count: self.count })
    }

    /// Waits until every run handed to the write-behind thread is on disk.
    fn wait_written(&mut self) -> Result<()> {
        self.written.wait_all().map_err(|(path, e)| Error::output(&path, e))
    }

    /// Merges consecutive groups of runs into single runs until at most `fan_in`
    /// are left. Each pass merges only as many runs as the excess requires (a group
    /// of g runs counts as g − 1 fewer), so 100 runs at a fan-in of 64 cost one
    /// merge of 37 runs, not a pass over everything. Groups are consecutive and take
    /// the place of their members, so runs stay in push order.
    fn reduce_runs(&mut self) -> Result<()> {
        while self.runs.len() > self.fan_in {
            let mut excess = self.runs.len() - self.fan_in;
            let mut next = Vec::with_capacity(self.fan_in);
            let mut rest = std::mem::take(&mut self.runs).into_iter().peekable();
            while rest.peek().is_some() {
                if excess == 0 {
                    next.extend(rest.by_ref());
                    break;
                }
                let group: Vec<PathBuf> = rest.by_ref().take(self.fan_in.min(excess + 1)).collect();
                if group.len() == 1 {
                    next.extend(group);
                    continue;
                }
                excess = excess.saturating_sub(group.len() - 1);
                let out = self.next_run_path();
                merge_into::<K>(&group, &out)?;
                next.push(out);
            }
            self.runs = next;
        }
        Ok(())
    }
}

/// Merges the runs `inputs` into the new run `out`, then deletes the inputs.
fn merge_into<K: RunKey>(inputs: &[PathBuf], out: &Path) -> Result<()> {
    let mut merge = Merge::<K>::open(inputs)?;
    let mut w = RunWriter::create(out)?;
    while let Some((key, body)) = merge.next()? {
        w.record(&key, body)?;
    }
    w.finish()?;
    drop(merge);
    for path in inputs {
        fs::remove_file(path).output_ctx(path)?;
    }
    Ok(())
}

/// Writes records in the run format.
struct RunWriter {
    w: WriteBehind,
    path: PathBuf,
    key: Vec<u8>,
}

impl RunWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).output_ctx(path)?;
        Ok(RunWriter { w: WriteBehind::new(file), path: path.to_path_buf(), key: Vec::new() })
    }

    fn record<K: RunKey>(&mut self, key: &K, body: &[u8]) -> Result<()> {
        self.key.clear();
        key.encode(&mut self.key);
        let len = |n: usize| u32::try_from(n).map_err(|_| Error::output(&self.path, format!("a record of {n} bytes")));
        let (key_len, body_len) = (len(self.key.len())?, len(body.len())?);
        self.w.write_all(&key_len.to_le_bytes()).output_ctx(&self.path)?;
        self.w.write_all(&body_len.to_le_bytes()).output_ctx(&self.path)?;
        self.w.write_all(&self.key).output_ctx(&self.path)?;
        self.w.write_all(body).output_ctx(&self.path)
    }

    fn finish(self) -> Result<()> {
        self.w.finish().output_ctx(&self.path)
    }

    /// Queues the last bytes without waiting for them (see [`PendingFiles`]).
    fn close(self) -> Result<crate::storage::write_behind::Closing> {
        self.w.close().output_ctx(&self.path)
    }
}

struct RunReader {
    reader: BufReader<File>,
    path: PathBuf,
    /// The key and body of the record last read, overwritten by the next.
    key: Vec<u8>,
    body: Vec<u8>,
}

impl RunReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::input(path.display(), e))?;
        Ok(RunReader { reader: BufReader::with_capacity(RUN_READ_BUFFER, file), path: path.to_path_buf(), key: Vec::new(), body: Vec::new() })
    }

    /// Reads the next record's key, and its body into `self.body`.
    fn next_record<K: RunKey>(&mut self) -> Result<Option<K>> {
        let mut lens = [0u8; 8];
        match self.reader.read_exact(&mut lens) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::input(self.path.display(), e)),
        }
        let key_len = u32::from_le_bytes(lens[..4].try_into().expect("4 bytes")) as usize;
        let body_len = u32::from_le_bytes(lens[4..].try_into().expect("4 bytes")) as usize;
        self.key.resize(key_len, 0);
        self.reader.read_exact(&mut self.key).map_err(|e| Error::input(self.path.display(), e))?;
        self.body.resize(body_len, 0);
        self.reader.read_exact(&mut self.body).map_err(|e| Error::input(self.path.display(), e))?;
        K::decode(&self.key).map(Some)
    }
}

/// A k-way merge of open runs. The heap holds the key of each run's current record
/// and the run's position; ties go to the earlier run.
struct Merge<K> {
    /// The runs; one read to the end is closed (`None`).
    readers: Vec<Option<RunReader>>,
    heap: BinaryHeap<Reverse<(K, usize)>>,
    /// The run whose record was handed out last: it moves on at the next call, so
    /// the record's body can be lent out of the run's buffer meanwhile.
    lent: Option<usize>,
}

impl<K: RunKey> Merge<K> {
    fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            let mut r = RunReader::open(path)?;
            match r.next_record()? {
                Some(key) => {
                    heap.push(Reverse((key, i)));
                    readers.push(Some(r));
                }
                None => readers.push(None),
            }
        }
        Ok(Merge { readers, heap, lent: None })
    }

    fn next(&mut self) -> Result<Option<(K, &[u8])>> {
        if let Some(i) = self.lent.take() {
            let run = &mut self.readers[i];
            match run.as_mut().expect("a lent run is open").next_record()? {
                // Still ahead of every other run (runs often hold a stretch of
                // conversations no other run has): handed out without the heap's
                // push and pop, in the order the heap would give.
                Some(key) if self.heap.peek().is_none_or(|Reverse((top, j))| (&key, i) < (top, *j)) => {
                    self.lent = Some(i);
                    return Ok(Some((key, &self.readers[i].as_ref().expect("a lent run is open").body)));
                }
                Some(key) => self.heap.push(Reverse((key, i))),
                None => *run = None,
            }
        }
        let Some(Reverse((key, i))) = self.heap.pop() else { return Ok(None) };
        self.lent = Some(i);
        Ok(Some((key, &self.readers[i].as_ref().expect("a run in the heap is open").body)))
    }
}

enum Source<K> {
    Memory { bodies: Vec<u8>, index: std::vec::IntoIter<Entry<K>>, current: Option<Range<usize>> },
    Merge(Merge<K>),
}

/// The records of an [`ExternalSort`] in key order.
pub struct Sorted<K> {
    source: Source<K>,
    count: u64,
}

impl<K: RunKey> Sorted<K> {
    /// Number of records.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next record: its key, and its body (valid until the next call).
    pub fn next_record(&mut self) -> Result<Option<(K, &[u8])>> {
        match &mut self.source {
            Source::Memory { bodies, index, current } => {
                let Some((key, range)) = index.next() else { return Ok(None) };
                let body = &bodies[current.insert(range).clone()];
                Ok(Some((key, body)))
            }
            Source::Merge(merge) => merge.next(),
        }
    }

    /// True when the records come from run files (not from memory).
    fn is_merge(&self) -> bool {
        matches!(self.source, Source::Merge(_))
    }

    /// Open run files (for tests of the fan-in bound).
    #[cfg(test)]
    fn open_runs(&self) -> usize {
        match &self.source {
            Source::Memory { .. } => 0,
            Source::Merge(m) => m.readers.len(),
        }
    }
}

/// A corrupt key in a run file (only a bug or a damaged scratch disk can cause one).
fn bad_key(what: &str) -> Error {
    Error::new(ErrorKind::Other, format!("sort run: unreadable {what} key"))
}

impl RunKey for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        bytes.try_into().map(u64::from_be_bytes).map_err(|_| bad_key("u64"))
    }
}

impl RunKey for (u64, u64) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (a, b) = bytes.split_at_checked(8).ok_or_else(|| bad_key("pair"))?;
        Ok((u64::decode(a)?, u64::decode(b)?))
    }
}

impl RunKey for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        String::from_utf8(bytes.to_vec()).map_err(|_| bad_key("text"))
    }

    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

/// A text, then a number that orders equal texts (e.g. the position it was added at).
impl RunKey for (String, u64) {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        self.1.encode(out);
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (text, n) = bytes.split_at_checked(bytes.len().wrapping_sub(8)).ok_or_else(|| bad_key("text and number"))?;
        Ok((String::decode(text)?, u64::decode(n)?))
    }

    fn heap_bytes(&self) -> usize {
        self.0.capacity()
    }
}

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
}

impl RunKey for SortKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.space);
        out.extend_from_slice(&self.a.to_le_bytes());
        out.extend_from_slice(&self.b.to_le_bytes());
        out.extend_from_slice(&self.time.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let b: &[u8; Self::LEN] = bytes.try_into().map_err(|_| bad_key("message"))?;
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Ok(SortKey { space: b[0], a: u(1), b: u(9), time: u(17) as i64, seq: u(25) })
    }
}

/// A message's position in the export as the history threads number it: the
/// history file's number in archive order (from 0) above the element's number in
/// that file (from 1). Positions order as a count over all files would, which
/// lets several threads number messages without waiting for each other;
/// [`SortedSpool::count_positions`] turns them into that count. `None` past 2³²
/// files or elements in a file.
pub fn position(file: u64, element: u64) -> Option<u64> {
    (file < 1 << 32 && element < 1 << 32).then_some((file << 32) | element)
}

/// One history file as the spool counts positions with it: how many elements it
/// held and its path (the default for a file another history thread read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFile {
    /// Elements read from it.
    pub elements: u64,
    /// Its archive path.
    pub path: String,
    /// The time of its newest message (slices must come oldest first).
    pub newest: Option<crate::model::Timestamp>,
}

/// Collects messages; call [`SpoolWriter::finish`] to get them back sorted.
pub struct SpoolWriter {
    sort: ExternalSort<SortKey>,
}

impl SpoolWriter {
    /// A spool whose run files go into `dir` (which must exist and be private to this run).
    pub fn new(dir: &Path, budget: usize) -> Self {
        SpoolWriter { sort: ExternalSort::new(dir, "messages", budget) }
    }

    /// Sets how many runs are merged at once (tests use tiny values to force
    /// several merge levels).
    pub fn with_fan_in(self, fan_in: usize) -> Self {
        SpoolWriter { sort: self.sort.with_fan_in(fan_in) }
    }

    /// Adds one message.
    pub fn push(&mut self, m: &Message) -> Result<()> {
        self.sort.push(SortKey::of(m), |out| record::encode(m, out))
    }

    /// Messages pushed so far.
    pub fn len(&self) -> u64 {
        self.sort.len()
    }

    /// Takes in the messages another history thread spooled.
    pub fn absorb(&mut self, other: SpoolWriter) -> Result<()> {
        self.sort.absorb(other.sort)
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.sort.is_empty()
    }

    /// Ends writing; returns the sorted reader. Small spools never touch the disk.
    pub fn finish(self) -> Result<SortedSpool> {
        SortedSpool::new(self.sort.finish()?)
    }
}

/// Where a sorted spool's records come from.
enum SpoolSource {
    /// A small spool, sorted in memory.
    Memory(Sorted<SortKey>),
    /// Run files, merged on a helper thread ([`ahead`]).
    Ahead(ahead::MergeAhead),
}

/// Messages in [`SortKey`] order.
pub struct SortedSpool {
    source: SpoolSource,
    count: u64,
    /// With [`SortedSpool::count_positions`]: the elements before each history
    /// file, and its path.
    files: Option<Vec<(u64, String)>>,
}

impl SortedSpool {
    fn new(sorted: Sorted<SortKey>) -> Result<Self> {
        let count = sorted.len();
        let source = match sorted.is_merge() {
            true => SpoolSource::Ahead(ahead::MergeAhead::start(sorted)?),
            false => SpoolSource::Memory(sorted),
        };
        Ok(SortedSpool { source, count, files: None })
    }

    /// Number of messages in the spool.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when the spool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Gives messages numbered by [`position`] their place in a count over all
    /// history files instead, from the number of elements each file held; with
    /// the files' paths, [`SortedSpool::source_of`] names a message's file (the
    /// history threads leave [`Message::source`] empty: a sixth of a record).
    pub fn count_positions(mut self, files: &[HistoryFile]) -> Self {
        let mut before = 0u64;
        self.files = Some(
            files
                .iter()
                .map(|f| {
                    let start = before;
                    before += f.elements;
                    (start, f.path.clone())
                })
                .collect(),
        );
        self
    }

    /// The archive entry a message handed out came from: its own
    /// [`Message::source`], or the history file its position falls in (positions
    /// count from 1 after the start of their file).
    pub fn source_of<'a>(&'a self, m: &'a Message) -> &'a str {
        match &self.files {
            Some(files) if m.source.is_empty() => {
                let after = files.partition_point(|(start, _)| *start < m.seq);
                after.checked_sub(1).and_then(|i| files.get(i)).map_or("", |(_, path)| path.as_str())
            }
            _ => &m.source,
        }
    }

    /// The next message in order.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        let mut m = record::blank();
        Ok(self.next_into(&mut m)?.then_some(m))
    }

    /// The next message in order, decoded into `m` (its memory reused); false
    /// after the last.
    pub fn next_into(&mut self, m: &mut Message) -> Result<bool> {
        let body = match &mut self.source {
            SpoolSource::Memory(sorted) => sorted.next_record()?.map(|(_, body)| body),
            SpoolSource::Ahead(ahead) => ahead.next_body()?,
        };
        let Some(body) = body else { return Ok(false) };
        record::decode_into(body, m)?;
        if let Some(files) = &self.files {
            let file = usize::try_from(m.seq >> 32).ok().filter(|f| *f < files.len()).ok_or_else(|| Error::new(ErrorKind::Other, format!("spool: message position {} names no history file", m.seq)))?;
            m.seq = files[file].0 + (m.seq & 0xFFFF_FFFF);
        }
        Ok(true)
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

    /// Pushes a message per (room, time) item (room 3 standing for a private
    /// conversation), in order; returns their keys sorted.
    fn fill(w: &mut SpoolWriter, items: &[(u64, i64)]) -> Vec<SortKey> {
        fill_from(w, items, 0)
    }

    /// [`fill`] with positions from `first_seq` on.
    fn fill_from(w: &mut SpoolWriter, items: &[(u64, i64)], first_seq: u64) -> Vec<SortKey> {
        let mut expected = Vec::new();
        for (seq, (room, time)) in items.iter().enumerate() {
            let m = msg(if *room == 3 { Conversation::direct(2, 1) } else { Conversation::Room(*room) }, *time, first_seq + seq as u64);
            expected.push(SortKey::of(&m));
            w.push(&m).unwrap();
        }
        expected.sort();
        expected
    }

    fn run_files(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn the_fan_in_follows_the_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 1048576              files\n";
        assert_eq!(soft_open_files_limit(limits), Some(1024));
        assert_eq!(soft_open_files_limit(&limits.replace("1024  ", "unlimited")), Some(u64::MAX));
        assert_eq!(soft_open_files_limit("Max cpu time unlimited"), None);
        assert!((16..=MAX_FAN_IN).contains(&default_fan_in()));
    }

    proptest! {
        #[test]
        fn sorts_like_an_in_memory_sort(items in proptest::collection::vec((0u64..4, 0i64..50), 0..400), budget in 200usize..5000) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SpoolWriter::new(dir.path(), budget);
            let expected = fill(&mut w, &items);
            prop_assert_eq!(drain(w.finish().unwrap()), expected);
        }

        /// Two spools (two history threads), one absorbed into the other, give back
        /// every message of both in order, whether each had spilled runs or not.
        #[test]
        fn an_absorbed_spool_adds_all_its_messages(mine in proptest::collection::vec((0u64..4, 0i64..50), 0..300), theirs in proptest::collection::vec((0u64..4, 0i64..50), 0..300), budgets in (200usize..5000, prop_oneof![Just(DEFAULT_BUDGET), 200usize..5000])) {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (mut w, mut other) = (SpoolWriter::new(a.path(), budgets.0), SpoolWriter::new(b.path(), budgets.1));
            let mut expected = fill(&mut w, &mine);
            let shifted: Vec<SortKey> = fill_from(&mut other, &theirs, 1 << 32);
            expected.extend(shifted);
            expected.sort();
            w.absorb(other).unwrap();
            prop_assert_eq!(w.len(), expected.len() as u64);
            prop_assert_eq!(drain(w.finish().unwrap()), expected);
        }

        /// A tiny budget makes dozens of runs and a tiny fan-in forces several
        /// levels of pre-merging: every message still comes out once, in order, and
        /// no more than `fan_in` runs are open (or left on disk) for the last merge.
        #[test]
        fn multi_level_merge_keeps_order_and_every_message(items in proptest::collection::vec((0u64..5, 0i64..30), 1..600), budget in 100usize..1500, fan_in in 2usize..6) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SpoolWriter::new(dir.path(), budget).with_fan_in(fan_in);
            let expected = fill(&mut w, &items);
            let sorted = w.sort.finish().unwrap();
            prop_assert!(sorted.open_runs() <= fan_in, "{} runs open at a fan-in of {fan_in}", sorted.open_runs());
            prop_assert_eq!(run_files(dir.path()), 0, "merged runs are deleted, and the final merge's runs lose their names once open");
            let s = SortedSpool::new(sorted).unwrap();
            prop_assert_eq!(s.len(), expected.len() as u64);
            prop_assert_eq!(drain(s), expected);
        }

        #[test]
        fn gives_back_every_message_whole(messages in proptest::collection::vec(record::tests::message(), 0..40), budget in prop_oneof![Just(DEFAULT_BUDGET), 1usize..3000], fan_in in 2usize..5) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SpoolWriter::new(dir.path(), budget).with_fan_in(fan_in);
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

        /// Text keys with bodies, as the file index and the writers use them.
        #[test]
        fn text_keys_and_bodies(items in proptest::collection::vec(("[a-c/]{0,6}", proptest::collection::vec(any::<u8>(), 0..20)), 0..300), budget in 64usize..2000, fan_in in 2usize..5) {
            let dir = tempfile::tempdir().unwrap();
            let mut sort = ExternalSort::new(dir.path(), "t", budget).with_fan_in(fan_in);
            for (i, (text, body)) in items.iter().enumerate() {
                sort.push((text.clone(), i as u64), |out| { out.extend_from_slice(body); Ok(()) }).unwrap();
            }
            let mut expected: Vec<((String, u64), Vec<u8>)> = items.iter().enumerate().map(|(i, (t, b))| ((t.clone(), i as u64), b.clone())).collect();
            expected.sort();
            let mut sorted = sort.finish().unwrap();
            let mut got = Vec::new();
            while let Some((key, body)) = sorted.next_record().unwrap() {
                got.push((key, body.to_vec()));
            }
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn merges_only_what_the_excess_requires() {
        let dir = tempfile::tempdir().unwrap();
        // One record per run: 10 runs at a fan-in of 4 need 6 fewer: two groups of 4
        // (a group is at most the fan-in), and the last two runs are left as they are.
        let mut sort = ExternalSort::<u64>::new(dir.path(), "n", 1).with_fan_in(4);
        for n in (0..10).rev() {
            sort.push(n, |_| Ok(())).unwrap();
        }
        assert_eq!(sort.runs.len(), 10);
        let mut sorted = sort.finish().unwrap();
        assert_eq!(sorted.open_runs(), 4);
        let mut got = Vec::new();
        while let Some((n, _)) = sorted.next_record().unwrap() {
            got.push(n);
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_body_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::<u64>::new(dir.path(), "f", DEFAULT_BUDGET);
        sort.push(1, |out| { out.extend_from_slice(b"kept"); Ok(()) }).unwrap();
        assert!(sort.push(2, |out| { out.extend_from_slice(b"half"); Err(Error::new(ErrorKind::Other, "no")) }).is_err());
        let mut sorted = sort.finish().unwrap();
        assert_eq!(sorted.next_record().unwrap().map(|(k, b)| (k, b.to_vec())), Some((1, b"kept".to_vec())));
        assert!(sorted.next_record().unwrap().is_none());
    }

    /// Damage the merge meets reaches the reader after every message before it,
    /// and names the run file.
    #[test]
    fn a_damaged_run_is_an_error_after_the_messages_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(dir.path(), 2000);
        for seq in 0..3000u64 {
            w.push(&msg(Conversation::Room(seq % 5), seq as i64, seq)).unwrap();
        }
        let mut runs: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        runs.sort();
        let run = runs[0].clone();
        let run_name = run.file_name().unwrap().to_string_lossy().to_string();
        let len = std::fs::metadata(&run).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&run).unwrap().set_len(len - 3).unwrap();
        // Found while opening the runs, or while merging: either way an error.
        let err = match w.finish() {
            Err(e) => e,
            Ok(mut s) => loop {
                match s.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the damage was not noticed"),
                    Err(e) => break e,
                }
            },
        };
        assert!(err.message().contains(&run_name), "{}", err.message());
    }
}