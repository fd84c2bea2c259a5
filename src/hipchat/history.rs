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
//! Same result as parsing inline: the helper takes the files in archive order and
//! numbers messages in that order, and the reader thread applies the report events
//! in file order, draining them before anything whose place in the report matters
//! ([`HistoryReader::drain`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Conversation, Message, MessageKind, RoomId, Timestamp, UserId};
use crate::report::{Entity, Event, Report, SkipReason};
use crate::spool::SpoolWriter;

use super::json;
use super::messages::{self, Origin, Parsed};

/// Bytes read from an entry per chunk.
const CHUNK: usize = 256 * 1024;
/// Chunks that may wait for the helper (1 MiB).
const FEED_QUEUE: usize = 4;
/// Skip events sent back in one message at most (a file of broken elements must
/// not pile its events up in memory).
const EVENT_BATCH: usize = 1000;

/// What the history files add up to. Built by one thread, in archive order.
pub struct History {
    /// The messages, waiting to be sorted.
    pub spool: SpoolWriter,
    /// Damaged files become a skip instead of an error (`--skip-damaged`).
    skip_damaged: bool,
    /// Number of the last history element read, over all files.
    seq: u64,
    /// Raw messages per kind, before de-duplication.
    pub raw_kinds: BTreeMap<String, u64>,
    /// Undocumented `Kind.field` names and how often they appeared.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Earliest message time.
    pub first_message: Option<Timestamp>,
    /// Latest message time.
    pub last_message: Option<Timestamp>,
    /// First name seen for each sender id, for placeholder users.
    pub sender_names: BTreeMap<UserId, String>,
    /// Integration names (senders without a user).
    pub integrations: BTreeSet<String>,
    /// Users who posted in each room, sorted.
    pub room_posters: BTreeMap<RoomId, Vec<UserId>>,
    /// Private conversations with at least one message.
    pub conversations: BTreeSet<Conversation>,
    /// Latest ArchiveRoomMessage state per room, by (time, seq).
    pub last_archive: BTreeMap<RoomId, ((i64, u64), bool)>,
    /// Latest TopicRoomMessage per room.
    pub last_topic: BTreeMap<RoomId, ((i64, u64), String)>,
    /// Rooms that have at least one message.
    pub history_rooms: BTreeSet<RoomId>,
}

impl History {
    /// Empty, spooling into `spool`.
    pub fn new(spool: SpoolWriter, skip_damaged: bool) -> Self {
        History {
            spool,
            skip_damaged,
            seq: 0,
            raw_kinds: BTreeMap::new(),
            unknown_fields: BTreeMap::new(),
            first_message: None,
            last_message: None,
            sender_names: BTreeMap::new(),
            integrations: BTreeSet::new(),
            room_posters: BTreeMap::new(),
            conversations: BTreeSet::new(),
            last_archive: BTreeMap::new(),
            last_topic: BTreeMap::new(),
            history_rooms: BTreeSet::new(),
        }
    }

    /// Reads one history file, passing its report events to `events` in order.
    /// A damaged file is an error, or with `skip_damaged` a skip that keeps the
    /// messages before the damage.
    pub fn read_file(&mut self, path: &str, origin: Origin, reader: impl Read, events: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
        let mut index = 0u64;
        let mut inputs = 0u64;
        let outcome = json::for_each_prefix(reader, path, json::MAX_VALUE_BYTES, &mut |element| {
            let Some((parsed, used)) = messages::parse_element(&element, path, origin, self.seq + 1, &mut self.unknown_fields)? else {
                return Ok(None);
            };
            index += 1;
            self.seq += 1;
            inputs += 1;
            match parsed {
                Parsed::Message(m) => self.add_message(*m)?,
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
        events(Event::Input(Entity::Message, inputs))?;
        match outcome {
            Err(e) if self.skip_damaged && e.kind() == ErrorKind::Input => {
                let detail = format!("{e}; the {index} messages before the damage were kept, the rest of the file is lost");
                events(Event::Skip { entity: Entity::Entry, id: path.to_string(), reason: SkipReason::DamagedFile, detail })
            }
            other => other,
        }
    }

    fn add_message(&mut self, m: Message) -> Result<()> {
        *self.raw_kinds.entry(m.kind.name().to_string()).or_default() += 1;
        self.first_message = Some(self.first_message.map_or(m.time, |t| t.min(m.time)));
        self.last_message = Some(self.last_message.map_or(m.time, |t| t.max(m.time)));
        let order = (m.time.micros(), m.seq);
        match (m.sender.id, &m.sender.name) {
            (Some(id), name) => {
                self.sender_names.entry(id).or_insert_with(|| name.clone());
            }
            (None, name) if !name.is_empty() => {
                self.integrations.insert(name.clone());
            }
            _ => {}
        }
        match m.conversation {
            Conversation::Room(rid) => {
                self.history_rooms.insert(rid);
                if let Some(id) = m.sender.id {
                    let posters = self.room_posters.entry(rid).or_default();
                    if let Err(at) = posters.binary_search(&id) {
                        posters.insert(at, id);
                    }
                }
                match &m.kind {
                    MessageKind::Archive { is_archived } => keep_latest(&mut self.last_archive, rid, order, *is_archived),
                    MessageKind::Topic { topic } => keep_latest(&mut self.last_topic, rid, order, topic.clone()),
                    _ => {}
                }
            }
            Conversation::Direct { low, high } => {
                self.conversations.insert(m.conversation);
                self.sender_names.entry(low).or_default();
                self.sender_names.entry(high).or_default();
            }
        }
        self.spool.push(&m)
    }
}

/// Keeps the value with the greatest (time, seq) per room.
fn keep_latest<T>(map: &mut BTreeMap<RoomId, ((i64, u64), T)>, rid: RoomId, order: (i64, u64), value: T) {
    if map.get(&rid).is_none_or(|(o, _)| *o < order) {
        map.insert(rid, (order, value));
    }
}

enum Feed {
    Start { path: String, origin: Origin },
    Chunk(Vec<u8>),
    /// Reading the entry failed: the helper's parser meets this error where it
    /// would have met it reading inline, after the bytes before it.
    Failed(io::Error),
    End,
}

enum Out {
    Events(Vec<Event>),
    /// The oldest file not yet done is over; `Err` stops the run.
    Done(Result<()>),
    /// A chunk buffer to reuse (no fresh pages per chunk).
    Spare(Vec<u8>),
}

/// The reader thread's handle on the history thread.
pub struct HistoryReader {
    feed: Option<SyncSender<Feed>>,
    results: Receiver<Out>,
    worker: Option<JoinHandle<History>>,
    /// Files handed over whose `Done` has not come back.
    queued: usize,
    spare: Vec<Vec<u8>>,
    /// The first file error that came back, until `poll` or `drain` returns it.
    failed: Option<Error>,
}

impl HistoryReader {
    /// Starts the history thread with `history` as its state.
    pub fn start(history: History) -> Result<Self> {
        let (feed, feed_rx) = sync_channel(FEED_QUEUE);
        let (results_tx, results) = channel();
        let worker = std::thread::Builder::new()
            .name("hcconv-history".into())
            .spawn(move || serve(history, feed_rx, results_tx))
            .map_err(|e| Error::new(ErrorKind::Other, format!("cannot start the history thread: {e}")))?;
        Ok(HistoryReader { feed: Some(feed), results, worker: Some(worker), queued: 0, spare: Vec::new(), failed: None })
    }

    /// Hands the history file `path`, read from `reader`, to the history thread and
    /// returns once every byte is handed over. If reading the entry failed, waits
    /// for the file's outcome, so its error stops the run here, as inline.
    pub fn read_file(&mut self, path: &str, origin: Origin, mut reader: impl Read, report: &mut Report) -> Result<()> {
        self.poll(report)?;
        self.send(Feed::Start { path: path.to_string(), origin }, report)?;
        self.queued += 1;
        loop {
            let mut chunk = self.spare.pop().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let (n, failure) = read_full(&mut reader, &mut chunk);
            if n > 0 {
                chunk.truncate(n);
                self.send(Feed::Chunk(chunk), report)?;
            }
            if let Some(e) = failure {
                self.send(Feed::Failed(e), report)?;
                self.send(Feed::End, report)?;
                return self.drain(report);
            }
            if n < CHUNK {
                break;
            }
        }
        self.send(Feed::End, report)?;
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
        while self.queued > 0 {
            let out = self.results.recv().map_err(|_| helper_stopped())?;
            self.take(out, report);
        }
        self.failure()
    }

    fn take_ready(&mut self, report: &mut Report) {
        while let Ok(out) = self.results.try_recv() {
            self.take(out, report);
        }
    }

    fn failure(&mut self) -> Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Drains, stops the thread and returns what the history added up to.
    pub fn finish(mut self, report: &mut Report) -> Result<History> {
        self.drain(report)?;
        self.feed = None;
        let worker = self.worker.take().expect("joined once");
        worker.join().map_err(|_| helper_stopped())
    }

    /// Applies one message from the helper. A file's error is kept for the next
    /// `poll` or `drain` (never returned in the middle of handing a file over: with
    /// its `End` unsent the helper would wait for it forever); events after it are
    /// dropped, as the run stops there.
    fn take(&mut self, out: Out, report: &mut Report) {
        match out {
            Out::Events(events) if self.failed.is_none() => events.into_iter().for_each(|e| report.apply(e)),
            Out::Events(_) => {}
            Out::Done(outcome) => {
                self.queued -= 1;
                if let Err(e) = outcome {
                    self.failed.get_or_insert(e);
                }
            }
            Out::Spare(chunk) => {
                if self.spare.len() < FEED_QUEUE + 2 {
                    self.spare.push(chunk);
                }
            }
        }
    }

    /// Hands over one feed message, waiting while the feed is full. The helper
    /// never waits for the reader thread (its messages go into an unbounded
    /// channel), so this cannot deadlock; what it sent back is taken first, so the
    /// channel holds no more than a few chunks' worth of buffers and events.
    fn send(&mut self, feed: Feed, report: &mut Report) -> Result<()> {
        self.take_ready(report);
        self.feed.as_ref().ok_or_else(helper_stopped)?.send(feed).map_err(|_| helper_stopped())
    }
}

impl Drop for HistoryReader {
    /// On an early return (an error elsewhere), hangs up and lets the thread end.
    fn drop(&mut self) {
        self.feed = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn helper_stopped() -> Error {
    Error::new(ErrorKind::Other, "the history thread stopped unexpectedly")
}

/// Reads until `buf` is full or the entry ends, so each chunk is a full one (the
/// entry reader returns a few kilobytes at a time). Returns the bytes read and,
/// if reading failed, the error, which goes after those bytes.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

/// The history thread: one file after another until the reader hangs up.
fn serve(mut history: History, feed: Receiver<Feed>, results: Sender<Out>) -> History {
    while let Ok(first) = feed.recv() {
        let Feed::Start { path, origin } = first else { continue };
        let mut chunks = ChunkReader { feed: &feed, results: &results, chunk: Vec::new(), pos: 0, ended: false, hung_up: false };
        let mut pending = Vec::new();
        let outcome = history.read_file(&path, origin, &mut chunks, &mut |event| {
            pending.push(event);
            if pending.len() >= EVENT_BATCH {
                let batch = std::mem::take(&mut pending);
                results.send(Out::Events(batch)).map_err(|_| helper_stopped())?;
            }
            Ok(())
        });
        // A file that stopped early (an error) skips the rest of its chunks.
        if !chunks.ended && !chunks.hung_up {
            while let Ok(next) = feed.recv() {
                if matches!(next, Feed::End) {
                    break;
                }
            }
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
    results: &'a Sender<Out>,
    chunk: Vec<u8>,
    pos: usize,
    /// `End` was received.
    ended: bool,
    /// The reader thread is gone.
    hung_up: bool,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.feed.recv() {
                Ok(Feed::Chunk(bytes)) => {
                    let used = std::mem::replace(&mut self.chunk, bytes);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        let _ = self.results.send(Out::Spare(used));
                    }
                }
                Ok(Feed::Failed(e)) => return Err(e),
                Ok(Feed::End) => self.ended = true,
                Ok(Feed::Start { .. }) | Err(_) => {
                    self.hung_up = true;
                    return Err(io::Error::other("the reader thread stopped"));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
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
            inline.read_file(path, Origin::Room(i as u64 + 1), &bytes[..], &mut |e| {
                inline_report.apply(e);
                Ok(())
            })
            .unwrap();
        }
        let b = dir.path().join("b");
        let (threaded, threaded_report) = within_a_minute(move || {
            let mut reader = HistoryReader::start(history(&b, false)).unwrap();
            for (i, (path, bytes)) in files.iter().enumerate() {
                reader.read_file(path, Origin::Room(i as u64 + 1), &bytes[..], &mut threaded_report).unwrap();
            }
            let h = reader.finish(&mut threaded_report).unwrap();
            (h, threaded_report)
        });
        assert_eq!(threaded.seq, inline.seq);
        assert_eq!(threaded.raw_kinds, inline.raw_kinds);
        assert_eq!(threaded.room_posters, inline.room_posters);
        assert_eq!(threaded.sender_names, inline.sender_names);
        assert_eq!(threaded_report.counts_of(Entity::Message), inline_report.counts_of(Entity::Message));
        assert_eq!(threaded_report.skipped_for(Entity::Message, SkipReason::BadTimestamp), 1);
        assert_eq!(threaded_report.skipped_for(Entity::Message, SkipReason::Malformed), 1);
    }

    #[test]
    fn an_earlier_files_error_does_not_hang_a_later_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().to_path_buf();
        let error = within_a_minute(move || {
            let mut report = Report::new();
            let mut reader = HistoryReader::start(history(&spool, false)).unwrap();
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
            let mut reader = HistoryReader::start(history(&spool, true)).unwrap();
            let mut cut = room_file(2000);
            cut.truncate(cut.len() / 2);
            reader.read_file("rooms/1/history.json", Origin::Room(1), &cut[..], &mut report).unwrap();
            reader.read_file("rooms/2/history.json", Origin::Room(2), &room_file(3)[..], &mut report).unwrap();
            let h = reader.finish(&mut report).unwrap();
            assert!(h.seq > 3);
            report
        });
        assert_eq!(report.skipped_for(Entity::Entry, SkipReason::DamagedFile), 1);
    }
}
