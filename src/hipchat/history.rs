//! The history files: parsed, counted and spooled on a thread of their own.
//!
//! Parsing history is the largest cost of the read pass (a third of a Mattermost
//! run by perf) and needs nothing from the rest of the archive, so it runs on a
//! helper thread that owns everything the history adds up to ([`History`]: the
//! spool and the facts the catalog needs about senders, rooms and conversations).
//! The reader thread reads each history entry in chunks and hands them over, then
//! goes on with the next entries (attachments to stage, the next history file)
//! while the helper parses.
//!
//! Only bytes and a few report events cross between the threads, never a parsed
//! message: glibc's malloc serves memory allocated on one thread and freed on
//! another with fresh pages again and again (measured: 13 times the page faults and
//! a slower run when messages crossed).
//!
//! Two helpers share the files when the machine has two cores or more: parsing is
//! the read pass's bottleneck, and the reader thread and the decryption thread
//! leave most of a second core idle. Each file goes whole to the helper with the
//! fewest bytes still to parse, each helper keeps a [`History`] of its own, and
//! [`HistoryReader::finish`] merges them.
//!
//! Same result as parsing inline on one thread, whatever the number of helpers:
//! - a message's position in the export ([`Message::seq`]) is its history file's
//!   number and its place in that file ([`spool::position`]), which orders the
//!   same as counting over all files; the sorted spool turns it into that count;
//! - what the merge keeps is chosen by position, never by which helper was faster
//!   (the first name seen for a sender, the latest topic of a room);
//! - the reader thread applies the report events file by file in archive order,
//!   draining them before anything whose place in the report matters
//!   ([`HistoryReader::drain`]).
//!
//! [`Message::seq`]: crate::model::Message::seq
//! [`spool::position`]: crate::storage::spool::position

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::storage::chunks::{Chunk, ChunkCursor};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Conversation, Message, MessageKind, RoomId, Timestamp, UserId};
use crate::report::{Entity, Event, Report, SkipReason};
use crate::storage::spool::{position, HistoryFile, SpoolWriter};

use super::conversations::ConversationSet;
use super::json;
use super::messages::{self, Origin, Parsed};

/// Bytes read from an entry per chunk.
const CHUNK: usize = 256 * 1024;
/// Chunks that may wait for the helper (1 MiB).
const FEED_QUEUE: usize = 4;
/// Skip events sent back in one message at most (a file of broken elements must
/// not pile its events up in memory).
const EVENT_BATCH: usize = 1000;
/// Event batches a history thread sends for a file whose turn in the report has not
/// come (an earlier file is still being parsed elsewhere) before it waits for that
/// turn: the reader thread applies events in file order only, so without a bound a
/// file of millions of broken elements would pile all its skips up in memory.
const BATCHES_AHEAD: usize = 4;

/// History threads at most. Two use the second core of a two-core machine; each
/// more would add a spool buffer's memory for a core that is rarely there.
pub const MAX_WORKERS: usize = 2;

/// How many history threads to start: one per core, up to [`MAX_WORKERS`].
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS)
}

/// What the history files add up to. Each history thread builds one from the files
/// it was given; [`History::merge`] joins them.
pub struct History {
    /// The messages, waiting to be sorted.
    pub spool: SpoolWriter,
    /// Damaged files become a skip instead of an error (`--skip-damaged`).
    skip_damaged: bool,
    /// Each history file's element count and path, by file number (empty for files
    /// another thread read): the sorted spool counts positions and names each
    /// message's file with them.
    pub files: Vec<HistoryFile>,
    /// Raw messages per kind, before de-duplication.
    pub raw_kinds: BTreeMap<String, u64>,
    /// Undocumented `Kind.field` names and how often they appeared.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Earliest message time.
    pub first_message: Option<Timestamp>,
    /// Latest message time.
    pub last_message: Option<Timestamp>,
    /// First name seen for each sender id, for placeholder users, with the position
    /// of the message it was seen in (so merged threads keep the earliest).
    pub sender_names: BTreeMap<UserId, (u64, String)>,
    /// Integration names (senders without a user).
    pub integrations: BTreeSet<String>,
    /// Users who posted in each room, sorted.
    pub room_posters: BTreeMap<RoomId, Vec<UserId>>,
    /// Private conversations with at least one message.
    pub conversations: ConversationSet,
    /// Latest ArchiveRoomMessage state per room, by (time, seq).
    pub last_archive: BTreeMap<RoomId, ((i64, u64), bool)>,
    /// Latest TopicRoomMessage per room.
    pub last_topic: BTreeMap<RoomId, ((i64, u64), String)>,
    /// Rooms that have at least one message.
    pub history_rooms: BTreeSet<RoomId>,
    /// The conversation of the message last added: its room is in
    /// `history_rooms`, or it is in `conversations`, already. A file's messages
    /// mostly share one, and the set searches for each message were 1 % of the
    /// history threads' time (perf, 500k).
    last_conversation: Option<Conversation>,
    /// The parser's window, kept from one file to the next (see
    /// [`json::for_each_prefix_in`]).
    window: Vec<u8>,
}

impl History {
    /// Empty, spooling into `spool`.
    pub fn new(spool: SpoolWriter, skip_damaged: bool) -> Self {
        History {
            spool,
            skip_damaged,
            files: Vec::new(),
            raw_kinds: BTreeMap::new(),
            unknown_fields: BTreeMap::new(),
            first_message: None,
            last_message: None,
            sender_names: BTreeMap::new(),
            integrations: BTreeSet::new(),
            room_posters: BTreeMap::new(),
            conversations: ConversationSet::default(),
            last_archive: BTreeMap::new(),
            last_topic: BTreeMap::new(),
            history_rooms: BTreeSet::new(),
            last_conversation: None,
            window: Vec::new(),
        }
    }

    /// Reads one history file, the `file`-th of the export (from 0, in archive
    /// order), passing its report events to `events` in order. A damaged file is an
    /// error, or with `skip_damaged` a skip that keeps the messages before the damage.
    pub fn read_file(&mut self, path: &str, origin: Origin, file: u64, reader: impl Read, events: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
        let mut index = 0u64;
        let mut inputs = 0u64;
        let mut newest = None;
        // One message read into again and again (see `messages::parse_element_into`).
        let mut m = crate::storage::spool::blank_message();
        let mut window = std::mem::take(&mut self.window);
        let outcome = json::for_each_prefix_in(&mut window, reader, path, json::MAX_VALUE_BYTES, &mut |element| {
            let seq = position(file, index + 1).ok_or_else(|| Error::input(path, "more history files or elements than hcconv can number"))?;
            // No path per message (a sixth of a spool record, and an allocation):
            // the sorted spool knows each message's file from its position.
            let Some((parsed, used)) = messages::parse_element_into(&element, path, "", origin, seq, &mut self.unknown_fields, &mut m)? else {
                return Ok(None);
            };
            index += 1;
            inputs += 1;
            match parsed {
                Parsed::Message(()) => {
                    newest = newest.max(Some(m.time));
                    self.add_message(&m)?
                }
                Parsed::Malformed(why) => {
                    events(Event::Input(Entity::Message, std::mem::take(&mut inputs)))?;
                    events(Event::Skip { entity: Entity::Message, id: format!("{path}#{index}"), reason: SkipReason::Malformed, detail: why })?;
                }
                Parsed::BadTimestamp { id, raw } => {
                    events(Event::Input(Entity::Message, std::mem::take(&mut inputs)))?;
                    let detail = format!("timestamp {} is not a date", super::clip(&raw));
                    events(Event::Skip { entity: Entity::Message, id: format!("{path}#{index} id {id}"), reason: SkipReason::BadTimestamp, detail })?;
                }
            }
            Ok(Some(used))
        });
        self.window = window;
        events(Event::Input(Entity::Message, inputs))?;
        let slot = usize::try_from(file).map_err(|_| Error::input(path, "too many history files"))?;
        if self.files.len() <= slot {
            self.files.resize(slot + 1, HistoryFile::default());
        }
        self.files[slot] = HistoryFile { elements: index, path: path.to_string(), newest };
        match outcome {
            Err(e) if self.skip_damaged && e.kind() == ErrorKind::Input => {
                let detail = format!("{e}; the {index} messages before the damage were kept, the rest of the file is lost");
                events(Event::Damaged { path: path.to_string(), detail })
            }
            Err(e) => Err(e),
            Ok(true) => Ok(()),
            Ok(false) => events(Event::Warn(format!("{path} is empty; read as a history without messages"))),
        }
    }

    fn add_message(&mut self, m: &Message) -> Result<()> {
        // Looked up before inserting: a new String per message was an allocation
        // and a free for each of millions of messages, for a handful of kinds.
        match self.raw_kinds.get_mut(m.kind.name()) {
            Some(n) => *n += 1,
            None => {
                self.raw_kinds.insert(m.kind.name().to_string(), 1);
            }
        }
        self.first_message = Some(self.first_message.map_or(m.time, |t| t.min(m.time)));
        self.last_message = Some(self.last_message.map_or(m.time, |t| t.max(m.time)));
        let order = (m.time.micros(), m.seq);
        let new_conversation = self.last_conversation != Some(m.conversation);
        self.last_conversation = Some(m.conversation);
        match (m.sender.id, &m.sender.name, m.conversation) {
            // A poster already listed for the room has a name entry already: both
            // are only ever added together (a map search per message spared).
            (Some(id), name, Conversation::Room(rid)) => {
                let posters = self.room_posters.entry(rid).or_default();
                if let Err(at) = posters.binary_search(&id) {
                    posters.insert(at, id);
                    self.sender_names.entry(id).or_insert_with(|| (m.seq, name.clone()));
                }
            }
            (Some(id), name, _) => {
                self.sender_names.entry(id).or_insert_with(|| (m.seq, name.clone()));
            }
            (None, name, _) if !name.is_empty() => {
                self.integrations.insert(name.clone());
            }
            _ => {}
        }
        match m.conversation {
            Conversation::Room(rid) => {
                if new_conversation {
                    self.history_rooms.insert(rid);
                }
                match &m.kind {
                    MessageKind::Archive { is_archived } => keep_latest(&mut self.last_archive, rid, order, *is_archived),
                    MessageKind::Topic { topic } => keep_latest(&mut self.last_topic, rid, order, topic.clone()),
                    _ => {}
                }
            }
            Conversation::Direct { low, high } if new_conversation => {
                self.conversations.insert(m.conversation);
                self.sender_names.entry(low).or_insert((m.seq, String::new()));
                self.sender_names.entry(high).or_insert((m.seq, String::new()));
            }
            Conversation::Direct { .. } => {}
        }
        self.spool.push(m)
    }

    /// Takes in what another history thread read. Every choice goes by position in
    /// the export, so the result is the same in whatever order threads are merged.
    pub fn merge(&mut self, other: History) -> Result<()> {
        self.spool.absorb(other.spool)?;
        // Each file was read by one thread: the other holds a default in its place.
        if self.files.len() < other.files.len() {
            self.files.resize(other.files.len(), HistoryFile::default());
        }
        for (mine, theirs) in self.files.iter_mut().zip(other.files) {
            if *mine == HistoryFile::default() {
                *mine = theirs;
            }
        }
        for (kind, n) in other.raw_kinds {
            *self.raw_kinds.entry(kind).or_default() += n;
        }
        for (field, n) in other.unknown_fields {
            *self.unknown_fields.entry(field).or_default() += n;
        }
        self.first_message = self.first_message.into_iter().chain(other.first_message).min();
        self.last_message = self.last_message.into_iter().chain(other.last_message).max();
        for (id, seen) in other.sender_names {
            match self.sender_names.get(&id) {
                Some(mine) if mine.0 <= seen.0 => {}
                _ => {
                    self.sender_names.insert(id, seen);
                }
            }
        }
        self.integrations.extend(other.integrations);
        for (rid, posters) in other.room_posters {
            let mine = self.room_posters.entry(rid).or_default();
            mine.extend(posters);
            mine.sort_unstable();
            mine.dedup();
        }
        self.conversations.absorb(other.conversations);
        for (rid, (order, archived)) in other.last_archive {
            keep_latest(&mut self.last_archive, rid, order, archived);
        }
        for (rid, (order, topic)) in other.last_topic {
            keep_latest(&mut self.last_topic, rid, order, topic);
        }
        self.history_rooms.extend(other.history_rooms);
        Ok(())
    }

    /// Elements read over all files.
    #[cfg(test)]
    fn elements(&self) -> u64 {
        self.files.iter().map(|f| f.elements).sum()
    }
}

/// Keeps the value with the greatest (time, seq) per room.
fn keep_latest<T>(map: &mut BTreeMap<RoomId, ((i64, u64), T)>, rid: RoomId, order: (i64, u64), value: T) {
    if map.get(&rid).is_none_or(|(o, _)| *o < order) {
        map.insert(rid, (order, value));
    }
}

enum Feed {
    Start { path: String, origin: Origin, file: u64 },
    Chunk(Chunk),
    /// Reading the entry failed: the helper's parser meets this error where it
    /// would have met it reading inline, after the bytes before it.
    Failed(io::Error),
    End,
}

enum Out {
    Events(Vec<Event>),
    /// The oldest file this helper had not finished is over; `Err` stops the run.
    Done(Result<()>),
}

/// Which files are parsed: every file below `prefix`, and those in `ahead`. Shared
/// by the history threads, which update it themselves (never through the reader
/// thread), so a thread waiting for its turn only waits on other history threads,
/// which have every byte of the earlier files already.
#[derive(Default)]
struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Default)]
struct TurnState {
    prefix: u64,
    ahead: BTreeSet<u64>,
    /// The reader thread is gone: nobody waits any more.
    hung_up: bool,
}

impl Turns {
    /// Records that `file` is parsed.
    fn done(&self, file: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.ahead.insert(file);
        loop {
            let next = s.prefix;
            if !s.ahead.remove(&next) {
                break;
            }
            s.prefix += 1;
        }
        self.changed.notify_all();
    }

    /// Waits until every file before `file` is parsed; false if the reader hung up.
    fn wait_for(&self, file: u64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.prefix < file && !s.hung_up {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        !s.hung_up
    }

    fn hang_up(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).hung_up = true;
        self.changed.notify_all();
    }
}

/// One history thread, as the reader thread sees it.
struct Worker {
    feed: Option<SyncSender<Feed>>,
    /// Its report events and outcomes, in its files' order. Unbounded, so the
    /// helper never waits for the reader thread (see [`HistoryReader::send`]).
    results: Receiver<Out>,
    handle: Option<JoinHandle<History>>,
    /// Bytes handed to it, and (counted by the thread itself) the bytes of the
    /// files it has finished: what it still has to do, whatever the report order.
    /// Counting its files until their `Done` was taken (in report order) made a
    /// thread that was done long ago look busy behind the other's long file, and
    /// the reader thread then waited on a full queue while a core sat idle.
    sent: u64,
    parsed: Arc<AtomicU64>,
}

/// The reader thread's handle on the history threads.
pub struct HistoryReader {
    workers: Vec<Worker>,
    /// The worker of each file handed over and not yet done, in archive order:
    /// events are applied from the front one only, so they land in file order.
    order: VecDeque<usize>,
    /// Files handed over so far (the next file's number).
    files: u64,
    /// Chunk buffers the helpers are done with, from any helper at any time.
    spare_rx: Receiver<Chunk>,
    spare: Vec<Chunk>,
    /// The first file error that came back, until `poll` or `drain` returns it.
    failed: Option<Error>,
    /// Tests: file `i` goes to worker `i mod n`, to pin which thread reads what.
    round_robin: bool,
    turns: Arc<Turns>,
}

impl HistoryReader {
    /// Starts one history thread per state in `histories` (at least one).
    pub fn start(histories: Vec<History>) -> Result<Self> {
        let (spare_tx, spare_rx) = channel();
        let turns = Arc::new(Turns::default());
        let mut workers = Vec::with_capacity(histories.len());
        for history in histories {
            let (feed, feed_rx) = sync_channel(FEED_QUEUE);
            let (results_tx, results) = channel();
            let spare_tx = spare_tx.clone();
            let turns = Arc::clone(&turns);
            let parsed = Arc::new(AtomicU64::new(0));
            let counter = Arc::clone(&parsed);
            let handle = std::thread::Builder::new()
                .name("hcconv-history".into())
                .spawn(move || serve(history, feed_rx, results_tx, spare_tx, &turns, &counter))
                .map_err(|e| Error::new(ErrorKind::Other, format!("cannot start a history thread: {e}")))?;
            workers.push(Worker { feed: Some(feed), results, handle: Some(handle), sent: 0, parsed });
        }
        if workers.is_empty() {
            return Err(Error::new(ErrorKind::Other, "no history thread to start"));
        }
        Ok(HistoryReader { workers, order: VecDeque::new(), files: 0, spare_rx, spare: Vec::new(), failed: None, round_robin: false, turns })
    }

    /// Hands the history file `path`, read from `reader`, to the history thread
    /// with the fewest bytes still to parse and returns once every byte is handed over.
    /// If reading the entry failed, waits for the file's outcome, so its error
    /// stops the run here, as inline.
    pub fn read_file(&mut self, path: &str, origin: Origin, mut reader: impl Read, report: &mut Report) -> Result<()> {
        self.poll(report)?;
        let w = match self.round_robin {
            true => (self.files % self.workers.len() as u64) as usize,
            false => (0..self.workers.len()).min_by_key(|w| self.workers[*w].outstanding()).expect("at least one worker"),
        };
        self.send(w, Feed::Start { path: path.to_string(), origin, file: self.files }, report)?;
        self.files += 1;
        self.order.push_back(w);
        loop {
            if self.spare.is_empty() {
                self.take_spares();
            }
            let mut chunk = self.spare.pop().unwrap_or_default();
            let failure = chunk.fill(&mut reader, CHUNK);
            let n = chunk.len();
            if n > 0 {
                self.send(w, Feed::Chunk(chunk), report)?;
                self.workers[w].sent += n as u64;
            }
            if let Some(e) = failure {
                self.send(w, Feed::Failed(e), report)?;
                self.send(w, Feed::End, report)?;
                return self.drain(report);
            }
            if n < CHUNK {
                break;
            }
        }
        self.send(w, Feed::End, report)?;
        self.poll(report)
    }

    /// Applies the events that are ready, without waiting; returns a file's error
    /// once it has come back.
    pub fn poll(&mut self, report: &mut Report) -> Result<()> {
        self.take_ready(report);
        self.failure()
    }

    /// Waits until every file handed over is read and its events applied.
    pub fn drain(&mut self, report: &mut Report) -> Result<()> {
        while let Some(&w) = self.order.front() {
            let out = self.workers[w].results.recv().map_err(|_| helper_stopped())?;
            self.take(out, report);
        }
        self.take_spares();
        self.failure()
    }

    fn take_ready(&mut self, report: &mut Report) {
        self.take_spares();
        while let Some(&w) = self.order.front() {
            match self.workers[w].results.try_recv() {
                Ok(out) => self.take(out, report),
                Err(_) => break,
            }
        }
    }

    fn take_spares(&mut self) {
        while let Ok(chunk) = self.spare_rx.try_recv() {
            // Every chunk in flight may come back at once; keeping them all saves a
            // fresh 256 KiB (zeroed, page-faulted) per chunk otherwise (perf: a fifth
            // of a 50k run's page faults), and their number is bounded by the queues.
            if self.spare.len() < self.workers.len() * (FEED_QUEUE + 2) + 1 {
                self.spare.push(chunk);
            }
        }
    }

    fn failure(&mut self) -> Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Drains, stops the threads and returns what the history added up to, their
    /// states merged.
    pub fn finish(mut self, report: &mut Report) -> Result<History> {
        self.drain(report)?;
        let mut merged: Option<History> = None;
        for worker in &mut self.workers {
            worker.feed = None;
            let history = worker.handle.take().expect("joined once").join().map_err(|_| helper_stopped())?;
            match &mut merged {
                None => merged = Some(history),
                Some(m) => m.merge(history)?,
            }
        }
        let mut history = merged.expect("at least one worker");
        let files = usize::try_from(self.files).map_err(|_| Error::new(ErrorKind::Other, "too many history files"))?;
        history.files.resize(files, HistoryFile::default());
        Ok(history)
    }

    /// How many history files were handed over so far (numbered in archive order
    /// across slices).
    pub fn files_started(&self) -> u64 {
        self.files
    }

    /// Applies one message from helper `w`, the front of the file order. A file's
    /// error is kept for the next `poll` or `drain` (never returned in the middle of
    /// handing a file over: with its `End` unsent the helper would wait for it
    /// forever); events after it are dropped, as the run stops there.
    fn take(&mut self, out: Out, report: &mut Report) {
        match out {
            Out::Events(events) if self.failed.is_none() => events.into_iter().for_each(|e| report.apply(e)),
            Out::Events(_) => {}
            Out::Done(outcome) => {
                self.order.pop_front();
                if let Err(e) = outcome {
                    self.failed.get_or_insert(e);
                }
            }
        }
    }

    /// Hands one feed message to helper `w`, waiting while its feed is full. No
    /// helper ever waits for the reader thread (results and spare buffers go into
    /// unbounded channels), and the reader thread hands over one file at a time, so
    /// a full feed always empties: this cannot deadlock. What came back is taken
    /// first, so the channels hold no more than a few chunks' worth of buffers, and
    /// events only of files whose turn in the report has not come.
    fn send(&mut self, w: usize, feed: Feed, report: &mut Report) -> Result<()> {
        self.take_ready(report);
        self.workers[w].feed.as_ref().ok_or_else(helper_stopped)?.send(feed).map_err(|_| helper_stopped())
    }
}

impl Drop for HistoryReader {
    /// On an early return (an error elsewhere), hangs up and lets the threads end.
    fn drop(&mut self) {
        self.turns.hang_up();
        for worker in &mut self.workers {
            worker.feed = None;
        }
        for worker in &mut self.workers {
            if let Some(handle) = worker.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

fn helper_stopped() -> Error {
    Error::new(ErrorKind::Other, "the history thread stopped unexpectedly")
}

impl Worker {
    /// Bytes handed over that the thread has not finished yet.
    fn outstanding(&self) -> u64 {
        self.sent.saturating_sub(self.parsed.load(Ordering::Relaxed))
    }
}

/// A history thread: one file after another until the reader hangs up. `parsed`
/// counts the bytes of the files it has finished.
fn serve(mut history: History, feed: Receiver<Feed>, results: Sender<Out>, spares: Sender<Chunk>, turns: &Turns, parsed: &AtomicU64) -> History {
    while let Ok(first) = feed.recv() {
        let Feed::Start { path, origin, file } = first else { continue };
        let mut chunks = ChunkReader { feed: &feed, spares: &spares, cursor: ChunkCursor::default(), ended: false, hung_up: false, received: 0 };
        let mut pending = Vec::new();
        let mut sent = 0;
        let outcome = history.read_file(&path, origin, file, &mut chunks, &mut |event| {
            pending.push(event);
            if pending.len() >= EVENT_BATCH {
                // Past a few batches, wait until this file's events are next in the
                // report, so the reader thread takes them as they come.
                if sent == BATCHES_AHEAD && !turns.wait_for(file) {
                    return Err(helper_stopped());
                }
                sent += 1;
                let batch = std::mem::take(&mut pending);
                results.send(Out::Events(batch)).map_err(|_| helper_stopped())?;
            }
            Ok(())
        });
        turns.done(file);
        // A file that stopped early (an error) skips the rest of its chunks.
        if !chunks.ended && !chunks.hung_up {
            while let Ok(next) = feed.recv() {
                match next {
                    Feed::End => break,
                    Feed::Chunk(bytes) => {
                        chunks.received += bytes.len() as u64;
                        let _ = spares.send(bytes);
                    }
                    _ => {}
                }
            }
        }
        parsed.fetch_add(chunks.received, Ordering::Relaxed);
        if let Some(last) = chunks.cursor.take_chunk() {
            let _ = spares.send(last);
        }
        if chunks.hung_up || results.send(Out::Events(pending)).is_err() || results.send(Out::Done(outcome)).is_err() {
            break;
        }
    }
    history
}

/// The file's bytes as the reader thread hands them over.
struct ChunkReader<'a> {
    feed: &'a Receiver<Feed>,
    spares: &'a Sender<Chunk>,
    cursor: ChunkCursor,
    /// `End` was received.
    ended: bool,
    /// The reader thread is gone.
    hung_up: bool,
    /// Bytes of this file received so far.
    received: u64,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (feed, spares, ended, hung_up, received) = (self.feed, self.spares, &mut self.ended, &mut self.hung_up, &mut self.received);
        let next = || loop {
            if *ended {
                return Ok(None);
            }
            match feed.recv() {
                Ok(Feed::Chunk(bytes)) => {
                    *received += bytes.len() as u64;
                    return Ok(Some(bytes));
                }
                Ok(Feed::Failed(e)) => return Err(e),
                Ok(Feed::End) => *ended = true,
                Ok(Feed::Start { .. }) | Err(_) => {
                    *hung_up = true;
                    return Err(io::Error::other("the reader thread stopped"));
                }
            }
        };
        self.cursor.read(buf, next, |used| {
            let _ = spares.send(used);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(dir: &std::path::Path, skip_damaged: bool) -> History {
        History::new(SpoolWriter::new(dir, 1 << 20), skip_damaged)
    }

    /// A room history of `n` messages, several chunks long when `n` is large.
    fn room_file(n: usize) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"UserMessage":{{"id":"m{i}","message":"{}","sender":{{"id":1,"name":"A"}},"timestamp":"2017-01-01T00:00:{:02}Z"}}}}"#, "x".repeat(200), i % 60))
            .collect();
        format!("[{}]", items.join(",")).into_bytes()
    }

    /// Runs `f` on another thread and fails the test if it does not end in time
    /// (a deadlock would otherwise hang the whole suite).
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the history thread deadlocked")
    }

    #[test]
    fn threaded_reading_gives_the_inline_result() {
        let files: Vec<(String, Vec<u8>)> = vec![
            ("rooms/1/history.json".into(), room_file(3000)),
            ("rooms/2/history.json".into(), br#"[{"UserMessage":{"id":"b","timestamp":"not a date"}}, 5]"#.to_vec()),
            ("rooms/3/history.json".into(), room_file(10)),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (mut inline_report, mut threaded_report) = (Report::new(), Report::new());
        let mut inline = history(&dir.path().join("a"), false);
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        for (i, (path, bytes)) in files.iter().enumerate() {
            inline.read_file(path, Origin::Room(i as u64 + 1), i as u64, &bytes[..], &mut |e| {
                inline_report.apply(e);
                Ok(())
            })
            .unwrap();
        }
        let b = dir.path().join("b");
        let (threaded, threaded_report) = within_a_minute(move || {
            let mut reader = HistoryReader::start(vec![history(&b, false)]).unwrap();
            for (i, (path, bytes)) in files.iter().enumerate() {
                reader.read_file(path, Origin::Room(i as u64 + 1), &bytes[..], &mut threaded_report).unwrap();
            }
            let h = reader.finish(&mut threaded_report).unwrap();
            (h, threaded_report)
        });
        assert_eq!(threaded.elements(), inline.elements());
        assert_eq!(threaded.raw_kinds, inline.raw_kinds);
        assert_eq!(threaded.room_posters, inline.room_posters);
        assert_eq!(threaded.sender_names, inline.sender_names);
        assert_eq!(threaded_report.counts_of(Entity::Message), inline_report.counts_of(Entity::Message));
        assert_eq!(threaded_report.skipped_for(Entity::Message, SkipReason::BadTimestamp), 1);
        assert_eq!(threaded_report.skipped_for(Entity::Message, SkipReason::Malformed), 1);
    }

    /// Every message of a sorted spool, positions counted over all files.
    fn spooled(h: History) -> Vec<Message> {
        let mut sorted = h.spool.finish().unwrap().count_positions(&h.files);
        std::iter::from_fn(|| sorted.next_message().unwrap()).collect()
    }

    type Files = Vec<(String, Origin, Vec<u8>)>;

    /// One thread reading `files` inline, spooling into `dir`.
    fn read_inline(files: &Files, dir: &std::path::Path) -> (History, Report) {
        std::fs::create_dir_all(dir).unwrap();
        let mut report = Report::new();
        let mut h = history(dir, false);
        for (i, (path, origin, bytes)) in files.iter().enumerate() {
            h.read_file(path, *origin, i as u64, &bytes[..], &mut |e| {
                report.apply(e);
                Ok(())
            })
            .unwrap();
        }
        (h, report)
    }

    /// Two history threads given files in any interleaving end with what one
    /// thread reading inline ends with: the same messages with the same positions
    /// (a plain count over all files), the same first sender names and latest
    /// topics, and the same report in the same order.
    #[test]
    fn two_threads_give_the_inline_result() {
        let topic = |id: &str, room: u64, t: &str, topic: &str| format!(r#"{{"TopicRoomMessage":{{"id":"{id}","sender":{{"id":{room},"name":"T{id}"}},"topic":"{topic}","timestamp":"{t}"}}}}"#);
        let private = |id: &str, from: u64, to: u64, name: &str| format!(r#"{{"PrivateUserMessage":{{"id":"{id}","message":"hi","sender":{{"id":{from},"name":"{name}"}},"receiver":{{"id":{to}}},"timestamp":"2017-02-01T00:00:00Z"}}}}"#);
        let files: Files = vec![
            ("rooms/1/history.json".into(), Origin::Room(1), room_file(2500)),
            ("rooms/2/history.json".into(), Origin::Room(2), format!("[{},{},7]", topic("t1", 9, "2017-01-01T00:00:05Z", "late"), topic("t2", 8, "2017-01-01T00:00:01Z", "early")).into_bytes()),
            ("users/5/history.json".into(), Origin::User(5), format!("[{},{}]", private("p1", 5, 6, "Five"), private("p2", 6, 5, "Six")).into_bytes()),
            ("rooms/3/history.json".into(), Origin::Room(3), room_file(40)),
            ("users/6/history.json".into(), Origin::User(6), format!("[{},{}]", private("p1", 5, 6, "Renamed five"), private("p3", 7, 6, "Seven")).into_bytes()),
            ("rooms/2/history.json".into(), Origin::Room(2), format!("[{}]", topic("t3", 10, "2017-01-01T00:00:05Z", "same time, later file")).into_bytes()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (inline, inline_report) = read_inline(&files, &dir.path().join("inline"));
        let want = spooled(read_inline(&files, &dir.path().join("again")).0);
        assert_eq!(inline.sender_names[&5].1, "Five", "the first name in archive order");
        assert_eq!(inline.last_topic[&2].1, "same time, later file");
        // Positions are the plain count: room 1's 2500 messages are 1..=2500, and
        // the first topic of room 2 (the next file) is 2501.
        let mut seqs: Vec<u64> = want.iter().map(|m| m.seq).collect();
        seqs.sort_unstable();
        assert_eq!(&seqs[..2501], &(1..=2501).collect::<Vec<u64>>()[..]);
        assert_eq!(want.iter().find(|m| m.id == "t1").map(|m| m.seq), Some(2501));
        for round_robin in [true, false] {
            let (a, b, files) = (dir.path().join(format!("a-{round_robin}")), dir.path().join(format!("b-{round_robin}")), files.clone());
            std::fs::create_dir_all(&a).unwrap();
            std::fs::create_dir_all(&b).unwrap();
            let (threaded, report) = within_a_minute(move || {
                let mut report = Report::new();
                let mut reader = HistoryReader::start(vec![history(&a, false), history(&b, false)]).unwrap();
                reader.round_robin = round_robin;
                for (path, origin, bytes) in &files {
                    reader.read_file(path, *origin, &bytes[..], &mut report).unwrap();
                }
                (reader.finish(&mut report).unwrap(), report)
            });
            assert_eq!(threaded.files, inline.files);
            assert_eq!(threaded.raw_kinds, inline.raw_kinds);
            assert_eq!(threaded.room_posters, inline.room_posters);
            assert_eq!(threaded.sender_names, inline.sender_names);
            assert_eq!(threaded.last_topic, inline.last_topic);
            assert_eq!(threaded.conversations.to_sorted(), inline.conversations.to_sorted());
            assert_eq!((threaded.first_message, threaded.last_message), (inline.first_message, inline.last_message));
            let ids = |r: &Report| r.skipped.iter().map(|s| s.unwrap().id).collect::<Vec<_>>();
            assert_eq!(ids(&report), ids(&inline_report));
            assert_eq!(report.counts_of(Entity::Message), inline_report.counts_of(Entity::Message));
            assert_eq!(spooled(threaded), want, "round robin: {round_robin}");
        }
    }

    /// A file of thousands of broken elements behind a long file on the other
    /// thread: its skips wait for their turn (a bounded number of batches ahead),
    /// the run neither hangs nor loses or reorders one.
    #[test]
    fn a_broken_file_behind_a_long_one_keeps_its_skips_in_order() {
        let broken = format!("[{}]", vec!["1"; 20 * EVENT_BATCH].join(",")).into_bytes();
        let files: Files = vec![
            ("rooms/1/history.json".into(), Origin::Room(1), room_file(20_000)),
            ("rooms/2/history.json".into(), Origin::Room(2), broken),
            ("rooms/3/history.json".into(), Origin::Room(3), room_file(10)),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (_, inline_report) = read_inline(&files, &dir.path().join("inline"));
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let report = within_a_minute(move || {
            let mut report = Report::new();
            let mut reader = HistoryReader::start(vec![history(&a, false), history(&b, false)]).unwrap();
            reader.round_robin = true;
            for (path, origin, bytes) in &files {
                reader.read_file(path, *origin, &bytes[..], &mut report).unwrap();
            }
            reader.finish(&mut report).unwrap();
            report
        });
        assert_eq!(report.skipped_for(Entity::Message, SkipReason::Malformed), 20 * EVENT_BATCH as u64);
        let ids = |r: &Report| r.skipped.iter().map(|s| s.unwrap().id).collect::<Vec<_>>();
        assert_eq!(ids(&report), ids(&inline_report));
        assert_eq!(report.counts_of(Entity::Message), inline_report.counts_of(Entity::Message));
    }

    #[test]
    fn an_earlier_files_error_does_not_hang_a_later_file() {
        for workers in [1, 2] {
            an_earlier_files_error_stops_the_run(workers);
        }
    }

    fn an_earlier_files_error_stops_the_run(workers: usize) {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().to_path_buf();
        let error = within_a_minute(move || {
            let mut report = Report::new();
            let spools: Vec<_> = (0..workers).map(|i| spool.join(i.to_string())).collect();
            spools.iter().for_each(|d| std::fs::create_dir_all(d).unwrap());
            let mut reader = HistoryReader::start(spools.iter().map(|d| history(d, false)).collect()).unwrap();
            let mut first_error = None;
            // A broken file, then files several chunks long: the error comes back
            // while a later file is being handed over.
            let broken = b"[{\"UserMessage\": {\"id\": ".to_vec();
            let files = [broken, room_file(5000), room_file(5000)];
            for (i, bytes) in files.iter().enumerate() {
                if let Err(e) = reader.read_file(&format!("rooms/{i}/history.json"), Origin::Room(i as u64), &bytes[..], &mut report) {
                    first_error.get_or_insert(e);
                    break;
                }
            }
            let drained = reader.drain(&mut report);
            first_error.or(drained.err()).map(|e| e.to_string())
        });
        assert!(error.as_deref().is_some_and(|e| e.contains("rooms/0/history.json")), "{error:?}");
    }

    #[test]
    fn a_damaged_file_is_a_skip_with_skip_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().to_path_buf();
        let report = within_a_minute(move || {
            let mut report = Report::new();
            let mut reader = HistoryReader::start(vec![history(&spool, true)]).unwrap();
            let mut cut = room_file(2000);
            cut.truncate(cut.len() / 2);
            reader.read_file("rooms/1/history.json", Origin::Room(1), &cut[..], &mut report).unwrap();
            reader.read_file("rooms/2/history.json", Origin::Room(2), &room_file(3)[..], &mut report).unwrap();
            let h = reader.finish(&mut report).unwrap();
            assert!(h.elements() > 3);
            report
        });
        assert_eq!(report.skipped_for(Entity::Entry, SkipReason::DamagedFile), 1);
    }
}
