//! Write-behind files: the converter fills buffers, one helper thread hands them to
//! the kernel.
//!
//! perf shows the `write` system calls (the kernel copying into the page cache) at
//! 10 % of a Mattermost run and a third of a Qiscus run, all on the thread that also
//! parses and formats. Moving them to a helper puts that time on the second core.
//! One helper serves every file of the run, in the order the jobs were queued, so
//! small files (staged attachments) cost a queue message, not a thread, and a task
//! sees the files closed before it. Each buffer is written at its own offset in
//! its file: when the queue is full, the thread that filled the buffer writes it
//! itself instead of waiting, whatever is still queued before it (at 5M messages
//! the helper alone could not keep up: the kernel's copying into fresh pages of
//! memory-backed storage grows slower with the amount written).
//!
//! Memory stays bounded: at most [`QUEUE`] buffers of at most [`CHUNK`] bytes wait
//! for the helper.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes gathered before a buffer is handed to the helper.
pub const CHUNK: usize = 256 * 1024;
/// Buffers that may wait for the helper at once (so at most 1 MiB in flight).
pub const QUEUE: usize = 4;

/// A write's outcome, shared between a file's handle and the helper.
#[derive(Default)]
struct Status {
    /// The first error the helper met on this file; later writes are dropped.
    error: Mutex<Option<io::Error>>,
}

/// File-system work for the helper (making folders and a link for an output file).
pub type Task = Box<dyn FnOnce() -> io::Result<()> + Send>;

enum Job {
    /// `data` goes at offset `at` of `file`.
    Write { file: Arc<File>, data: Vec<u8>, at: u64, status: Arc<Status> },
    Run { task: Task, status: Arc<Status> },
    /// Small tasks gathered by [`run_behind_batched`], run in order.
    Batch(Vec<(Task, Arc<Status>)>),
    /// Answered once every job queued before it is done.
    Barrier(SyncSender<()>),
}

/// The run's helper thread, started on first use and kept for the process.
fn helper() -> &'static SyncSender<Job> {
    static HELPER: OnceLock<SyncSender<Job>> = OnceLock::new();
    HELPER.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new().name("hcconv-write".into()).spawn(move || serve(rx)).expect("cannot start the write-behind thread");
        tx
    })
}

fn serve(jobs: Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Write { file, data, at, status } => write_now(&file, data, at, &status),
            Job::Run { task, status } => run_task(task, &status),
            Job::Batch(tasks) => tasks.into_iter().for_each(|(task, status)| run_task(task, &status)),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Writes `data` at offset `at` of `file` unless a write of it failed before,
/// then keeps the buffer for reuse.
fn write_now(file: &File, mut data: Vec<u8>, at: u64, status: &Status) {
    let mut error = status.error.lock().unwrap_or_else(|p| p.into_inner());
    if error.is_none()
        && let Err(e) = crate::storage::positional::write_at(file, &data, at)
    {
        *error = Some(e);
    }
    drop(error);
    if data.capacity() == CHUNK {
        data.clear();
        let mut spare = spare_buffers().lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < QUEUE + 2 {
            spare.push(data);
        }
    }
}

fn run_task(task: Task, status: &Status) {
    if let Err(e) = task() {
        status.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    }
}

/// Tasks queued by [`run_behind_batched`] but not yet sent to the helper.
fn batch() -> &'static Mutex<Vec<(Task, Arc<Status>)>> {
    static BATCH: Mutex<Vec<(Task, Arc<Status>)>> = Mutex::new(Vec::new());
    &BATCH
}

/// Small tasks gathered before they go to the helper as one job. Every job may
/// have to wake the helper, and a wake-up costs about 6 µs on the benchmark VM
/// (perf: 30 ms of the main thread's time for the 5000 attachment copies of a
/// 500k Qiscus run).
const TASK_BATCH: usize = 32;

/// Sends `job`, after the batched tasks queued before it, so the helper sees
/// every job in the order it was queued.
fn submit(job: Job) -> io::Result<()> {
    let mut pending = batch().lock().unwrap_or_else(|p| p.into_inner());
    send_batch(&mut pending)?;
    helper().send(job).map_err(|_| helper_gone())
}

/// Queues `job` if there is room now and no batched task waits to go before it;
/// otherwise (or while another thread is queueing) gives it back.
fn try_submit(job: Job) -> io::Result<Option<Job>> {
    use std::sync::mpsc::TrySendError;
    // Another thread may hold the lock while it waits for room in the queue.
    let mut pending = match batch().try_lock() {
        Ok(pending) => pending,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Ok(Some(job)),
    };
    if !pending.is_empty() {
        match helper().try_send(Job::Batch(std::mem::take(&mut *pending))) {
            Ok(()) => {}
            Err(TrySendError::Full(Job::Batch(tasks))) => {
                *pending = tasks;
                return Ok(Some(job));
            }
            // Disconnected (a full queue gave the batch back above).
            Err(TrySendError::Disconnected(unsent) | TrySendError::Full(unsent)) => {
                fail_tasks(unsent);
                return Err(helper_gone());
            }
        }
    }
    match helper().try_send(job) {
        Ok(()) => Ok(None),
        Err(TrySendError::Full(job)) => Ok(Some(job)),
        Err(TrySendError::Disconnected(_)) => Err(helper_gone()),
    }
}

/// Sends the gathered tasks, if any. If the helper is gone, each task's status
/// records that, so none of them reads as done.
fn send_batch(pending: &mut Vec<(Task, Arc<Status>)>) -> io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    if let Err(std::sync::mpsc::SendError(job)) = helper().send(Job::Batch(std::mem::take(pending))) {
        fail_tasks(job);
        return Err(helper_gone());
    }
    Ok(())
}

/// Records on each task of an unsent batch that the helper is gone, so none of
/// them reads as done.
fn fail_tasks(job: Job) {
    if let Job::Batch(tasks) = job {
        for (_, status) in tasks {
            status.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(helper_gone);
        }
    }
}

/// Buffers the helper is done with, for reuse: a fresh 256 KiB buffer per chunk
/// costs a fresh mapping and its page faults every time (perf: 30 000 faults per
/// 500k-message run).
fn spare_buffers() -> &'static Mutex<Vec<Vec<u8>>> {
    static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    &SPARE
}

fn new_buffer() -> Vec<u8> {
    spare_buffers().lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

fn helper_gone() -> io::Error {
    io::Error::other("the write-behind thread stopped")
}

/// A file written through the helper thread. `flush` (and [`WriteBehind::finish`])
/// wait until the helper has written every byte and report its first error, so
/// after them the file reads back complete, as with `BufWriter`.
pub struct WriteBehind {
    file: Arc<File>,
    buf: Vec<u8>,
    /// Where the next buffer goes in the file.
    at: u64,
    status: Arc<Status>,
    /// Set by [`WriteBehind::close`]: everything is queued, `Drop` need not wait.
    closed: bool,
}

impl WriteBehind {
    /// Writes to `file`, from its current position on, through the helper.
    pub fn new(mut file: File) -> Self {
        let at = file.stream_position().unwrap_or(0);
        WriteBehind { file: Arc::new(file), buf: Vec::new(), at, status: Arc::default(), closed: false }
    }

    /// Waits for every byte to be written and returns the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }

    /// Queues the last bytes without waiting for them; the returned [`Closing`]
    /// tells later whether they were written. Lets the caller go on formatting the
    /// next file while the helper writes this one.
    pub fn close(mut self) -> io::Result<Closing> {
        self.send_buffer()?;
        self.closed = true;
        Ok(Closing { status: Arc::clone(&self.status) })
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        self.send(data)
    }

    /// Queues `data` for the helper or, when its queue is full, writes it here:
    /// waiting held threads up that had work to do (the reader thread staging
    /// attachments behind the spool's writes while the history threads ran out
    /// of input; at 5M the writer behind a helper that could not keep up).
    fn send(&mut self, data: Vec<u8>) -> io::Result<()> {
        self.take_error()?;
        let at = self.at;
        self.at += data.len() as u64;
        match try_submit(Job::Write { file: Arc::clone(&self.file), data, at, status: Arc::clone(&self.status) })? {
            None => Ok(()),
            Some(Job::Write { file, data, at, status }) => {
                write_now(&file, data, at, &status);
                Ok(())
            }
            Some(job) => submit(job),
        }
    }

    /// The helper's first error on this file. It stays recorded (the helper drops
    /// every later write), so a file with a hole is never reported as fine.
    fn take_error(&self) -> io::Result<()> {
        let mut error = self.status.error.lock().unwrap_or_else(|p| p.into_inner());
        match error.take() {
            Some(e) => {
                *error = Some(e.raw_os_error().map_or_else(|| io::Error::new(e.kind(), e.to_string()), io::Error::from_raw_os_error));
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl Write for WriteBehind {
    /// The common case (room in the buffer) inline, as `BufWriter` does: the
    /// writers make many writes of a few bytes.
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.len() <= self.buf.capacity() - self.buf.len() {
            self.buf.extend_from_slice(data);
            return Ok(data.len());
        }
        self.write_cold(data)
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() <= self.buf.capacity() - self.buf.len() {
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        self.write_cold(data).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()?;
        let (done, wait) = sync_channel(1);
        submit(Job::Barrier(done))?;
        wait.recv().map_err(|_| helper_gone())?;
        self.take_error()
    }
}

impl WriteBehind {
    #[cold]
    fn write_cold(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK {
            self.send_buffer()?;
        }
        if data.len() >= CHUNK {
            self.send(data.to_vec())?;
            return Ok(data.len());
        }
        // A sent buffer leaves none behind: take a pooled one (never grow a small
        // one by reallocation).
        if self.buf.capacity() == 0 {
            self.buf = new_buffer();
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
}

impl Drop for WriteBehind {
    /// Like `BufWriter`, writes what is left and ignores errors (call `finish` to
    /// see them); waits, so the file is complete once the handle is gone.
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.flush();
        }
    }
}

/// Queues `task` behind the writes already queued (so it sees their files); the
/// returned [`Closing`] tells later how it went.
pub fn run_behind(task: Task) -> io::Result<Closing> {
    let status = Arc::new(Status::default());
    submit(Job::Run { task, status: Arc::clone(&status) })?;
    Ok(Closing { status })
}

/// [`run_behind`] for small tasks (a file copy or link): they go to the helper
/// [`TASK_BATCH`] at a time, or sooner when any other job is queued after them
/// ([`PendingFiles::wait_all`] does that), still in order with every other job.
/// Not for tasks that hold much memory: up to a batch of them waits here.
pub fn run_behind_batched(task: Task) -> io::Result<Closing> {
    let status = Arc::new(Status::default());
    let mut pending = batch().lock().unwrap_or_else(|p| p.into_inner());
    pending.push((task, Arc::clone(&status)));
    if pending.len() >= TASK_BATCH {
        send_batch(&mut pending)?;
    }
    Ok(Closing { status })
}

/// [`run_behind`] unless the helper's queue is full: then the task comes back, for
/// the caller to run itself rather than wait. Only for a task that no job queued
/// before it has to finish first, since it may run before them.
pub fn try_run_behind(task: Task) -> io::Result<Result<Closing, Task>> {
    let status = Arc::new(Status::default());
    match try_submit(Job::Run { task, status: Arc::clone(&status) })? {
        None => Ok(Ok(Closing { status })),
        Some(Job::Run { task, .. }) => Ok(Err(task)),
        Some(_) => unreachable!("try_submit gives back the job it was given"),
    }
}

/// A closed file whose bytes may still be queued.
pub struct Closing {
    status: Arc<Status>,
}

impl Closing {
    /// The outcome once the helper is done with this file, `None` while it is not.
    /// Every queued job holds a reference to the status, so when ours is the last
    /// one, no write of this file is left.
    fn outcome(&self) -> Option<io::Result<()>> {
        if Arc::strong_count(&self.status) > 1 {
            return None;
        }
        Some(match self.status.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }
}

/// Files closed but perhaps not yet written, each with a label for its errors
/// (usually its path). Finished ones are dropped as new ones arrive, so this holds
/// at most about [`QUEUE`] + [`TASK_BATCH`] entries whatever the number of files.
pub struct PendingFiles<L> {
    pending: Vec<(L, Closing)>,
}

impl<L> Default for PendingFiles<L> {
    fn default() -> Self {
        PendingFiles { pending: Vec::new() }
    }
}

impl<L> std::fmt::Debug for PendingFiles<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingFiles({} pending)", self.pending.len())
    }
}

impl<L> PendingFiles<L> {
    /// Adds a closed file; returns the first error among the files already done.
    pub fn push(&mut self, label: L, closing: Closing) -> Result<(), (L, io::Error)> {
        self.pending.push((label, closing));
        self.reap()
    }

    /// Whether a file whose label matches `matches` may still be written; finished
    /// ones are dropped first (returning the first error among them).
    pub fn any_pending(&mut self, matches: impl Fn(&L) -> bool) -> Result<bool, (L, io::Error)> {
        self.reap()?;
        Ok(self.pending.iter().any(|(label, _)| matches(label)))
    }

    /// Waits for every file to be written; returns the first error.
    pub fn wait_all(&mut self) -> Result<(), (L, io::Error)> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (done, wait) = sync_channel(1);
        if submit(Job::Barrier(done)).is_err() || wait.recv().is_err() {
            let (label, _) = self.pending.remove(0);
            return Err((label, helper_gone()));
        }
        self.reap()?;
        debug_assert!(self.pending.is_empty());
        Ok(())
    }

    fn reap(&mut self) -> Result<(), (L, io::Error)> {
        let mut i = 0;
        while i < self.pending.len() {
            match self.pending[i].1.outcome() {
                None => i += 1,
                Some(Ok(())) => {
                    self.pending.swap_remove(i);
                }
                Some(Err(e)) => {
                    let (label, _) = self.pending.swap_remove(i);
                    return Err((label, e));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_arrive_in_order_across_files_and_chunk_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = [Vec::new(), Vec::new()];
        let mut writers: Vec<WriteBehind> = (0..2).map(|i| WriteBehind::new(File::create(dir.path().join(i.to_string())).unwrap())).collect();
        for round in 0..200u32 {
            // Every buffer in use is a pooled one of one chunk, never regrown.
            assert!(writers.iter().all(|w| w.buf.capacity() == 0 || w.buf.capacity() == CHUNK));
            for (i, w) in writers.iter_mut().enumerate() {
                // Sizes from 1 byte to past one chunk, so every path of `write` runs.
                let len = (round as usize * 7919 + i * 104_729) % (CHUNK + 5000) + 1;
                let data: Vec<u8> = (0..len).map(|k| (k as u32 ^ round ^ i as u32) as u8).collect();
                w.write_all(&data).unwrap();
                expected[i].extend_from_slice(&data);
            }
        }
        for w in writers {
            w.finish().unwrap();
        }
        for (i, want) in expected.iter().enumerate() {
            let mut got = Vec::new();
            File::open(dir.path().join(i.to_string())).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == *want, "file {i}: {} bytes, wanted {}", got.len(), want.len());
        }
    }

    #[test]
    fn flush_makes_the_bytes_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = WriteBehind::new(File::create(&path).unwrap());
        w.write_all(b"hello").unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        drop(w);
    }

    #[test]
    fn closed_files_are_complete_after_wait_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut pending = PendingFiles::default();
        for i in 0..50 {
            let path = dir.path().join(i.to_string());
            let mut w = WriteBehind::new(File::create(&path).unwrap());
            w.write_all(&vec![i as u8; 1000 * i + 1]).unwrap();
            pending.push(path, w.close().unwrap()).unwrap();
            assert!(pending.pending.len() <= 50);
        }
        pending.wait_all().unwrap();
        assert!(pending.pending.is_empty());
        for i in 0..50 {
            assert_eq!(std::fs::read(dir.path().join(i.to_string())).unwrap(), vec![i as u8; 1000 * i + 1]);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_closed_file_is_named_by_wait_all() {
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
        let mut pending = PendingFiles::default();
        let mut w = WriteBehind::new(full);
        w.write_all(b"x").unwrap();
        let pushed = pending.push("full", w.close().unwrap());
        let waited = pending.wait_all();
        let (label, err) = pushed.err().or(waited.err()).expect("the error surfaces at push or wait_all");
        assert_eq!((label, err.raw_os_error()), ("full", Some(28)));
    }

    /// Batched tasks run in the order they were queued among the other jobs (a task
    /// sees the file closed before it), none is lost at the end of a partial batch,
    /// and a failed one is named by `wait_all`.
    #[test]
    fn batched_tasks_keep_their_place_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut pending = PendingFiles::default();
        let n = TASK_BATCH * 2 + 5;
        for i in 0..n {
            let src = dir.path().join(format!("src-{i}"));
            let mut w = WriteBehind::new(File::create(&src).unwrap());
            w.write_all(format!("file {i}").as_bytes()).unwrap();
            pending.push(src.clone(), w.close().unwrap()).unwrap();
            // The task copies the file just closed: it must run after its write.
            let dest = dir.path().join(format!("dest-{i}"));
            let task: Task = Box::new(move || std::fs::copy(&src, &dest).map(|_| ()));
            pending.push(dir.path().join(format!("dest-{i}")), run_behind_batched(task).unwrap()).unwrap();
        }
        let failing: Task = Box::new(|| Err(io::Error::other("no room")));
        pending.push(dir.path().join("failing"), run_behind_batched(failing).unwrap()).unwrap();
        let (label, err) = pending.wait_all().expect_err("the failed task is reported");
        assert_eq!((label, err.to_string()), (dir.path().join("failing"), "no room".to_string()));
        for i in 0..n {
            assert_eq!(std::fs::read_to_string(dir.path().join(format!("dest-{i}"))).unwrap(), format!("file {i}"));
        }
    }

    /// With the helper busy and its queue full, a small file's last bytes are
    /// written by the closing thread: the file is complete before the helper moves.
    #[test]
    fn a_closed_file_is_written_here_when_the_queue_is_full() {
        let (started_tx, started) = sync_channel(1);
        let (release, release_rx) = sync_channel::<()>(1);
        let stuck: Task = Box::new(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        });
        let stuck = run_behind(stuck).unwrap();
        started.recv().unwrap();
        // Should `close` wait for the helper after all, this frees it after a while
        // (the test then fails instead of hanging).
        let watchdog_release = release.clone();
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog_fired = Arc::clone(&fired);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(10));
            watchdog_fired.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = watchdog_release.try_send(());
        });
        // Fill the queue without blocking (other tests may be queueing too).
        while helper().try_send(Job::Run { task: Box::new(|| Ok(())), status: Arc::default() }).is_ok() {}
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small");
        let mut w = WriteBehind::new(File::create(&path).unwrap());
        w.write_all(b"written here").unwrap();
        let closing = w.close().unwrap();
        let read_now = std::fs::read(&path).unwrap();
        assert!(!fired.load(std::sync::atomic::Ordering::SeqCst), "close waited for the busy helper");
        let _ = release.try_send(());
        assert_eq!(read_now, b"written here");
        assert!(matches!(closing.outcome(), Some(Ok(()))));
        let mut pending = PendingFiles::default();
        pending.push("stuck", stuck).unwrap();
        pending.wait_all().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_error_is_reported_by_finish() {
        // /dev/full refuses every write with ENOSPC.
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
        let mut w = WriteBehind::new(full);
        w.write_all(&[1u8; 100]).unwrap();
        let err = w.finish().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
    }
}
