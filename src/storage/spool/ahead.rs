//! The spool's final merge on a thread of its own, one batch of records ahead.
//!
//! While a writer runs, the main thread both pulls messages out of the sorted
//! spool and formats them, and the second core idles (perf: merging the runs, the
//! heap and the run reads, is a sixth of a Mattermost write pass). Here a helper
//! thread does the merge and hands over the record bodies, back to back in pooled
//! batches of about 256 KiB; the main thread only decodes them. Only bytes cross:
//! a decoded message allocated on one thread and freed on the other makes glibc
//! fetch fresh pages again and again (see `hipchat/history.rs`).

use super::{RunKey, Sorted};
use crate::error::Result;
use crate::storage::handoff::{Handoff, Producer};

/// Bytes of bodies gathered before a batch is handed over.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches that may wait for the main thread.
const QUEUE: usize = 2;

/// Record bodies back to back, and where each ends.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// The bodies of a [`Sorted`], in key order, merged on a helper thread.
pub struct MergeAhead {
    handoff: Handoff<Batch>,
    current: Batch,
    /// The next record of `current` to hand out.
    next: usize,
}

impl MergeAhead {
    /// Starts merging `sorted` on a helper thread.
    pub fn start<K: RunKey + Send + 'static>(sorted: Sorted<K>) -> Result<Self> {
        let handoff = Handoff::start("hcconv-merge", QUEUE, move |producer| serve(sorted, producer))?;
        Ok(MergeAhead { handoff, current: Batch::default(), next: 0 })
    }

    /// The next record's body, or `None` after the last. A merge error comes after
    /// the records before it, as it would inline.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>> {
        while self.next == self.current.ends.len() {
            let used = std::mem::take(&mut self.current);
            self.next = 0;
            match self.handoff.next(used)? {
                Some(batch) => self.current = batch,
                None => return Ok(None),
            }
        }
        let start = if self.next == 0 { 0 } else { self.current.ends[self.next - 1] };
        let end = self.current.ends[self.next];
        self.next += 1;
        Ok(Some(&self.current.bytes[start..end]))
    }
}

/// The helper: fills batches until the merge ends, fails, or the reader hangs up.
fn serve<K: RunKey>(mut sorted: Sorted<K>, producer: Producer<Batch>) {
    loop {
        let mut batch = producer.spare();
        batch.bytes.clear();
        batch.ends.clear();
        let mut outcome = Ok(true);
        while batch.bytes.len() < BATCH_BYTES {
            match sorted.next_record() {
                Ok(Some((_, body))) => {
                    batch.bytes.extend_from_slice(body);
                    batch.ends.push(batch.bytes.len());
                }
                Ok(None) => {
                    outcome = Ok(false);
                    break;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let more = match outcome {
            Ok(more) => more,
            Err(e) => {
                producer.send(Ok(batch));
                producer.send(Err(e));
                return;
            }
        };
        if (!batch.ends.is_empty() || !more) && !producer.send(Ok(batch)) {
            return;
        }
        if !more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::spool::ExternalSort;

    /// Every record comes back once, in key order, across many batches and run files.
    #[test]
    fn gives_every_body_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::<u64>::new(dir.path(), "t", 64 * 1024);
        let n = 60_000u64;
        for i in 0..n {
            let key = (i * 7919) % n;
            sort.push(key, |out| {
                out.extend_from_slice(&key.to_le_bytes());
                Ok(())
            })
            .unwrap();
        }
        let mut ahead = MergeAhead::start(sort.finish().unwrap()).unwrap();
        let mut got = Vec::new();
        while let Some(body) = ahead.next_body().unwrap() {
            got.push(u64::from_le_bytes(body.try_into().unwrap()));
        }
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    }

    /// A damaged run: the records before the damage, then the error, then nothing.
    #[test]
    fn an_error_comes_after_the_bodies_before_it() {
        let dir = tempfile::tempdir().unwrap();
        // Runs of about 32 KiB: longer than a run reader's buffer, so the cut is
        // met while merging, not when the runs are opened.
        let mut sort = ExternalSort::<u64>::new(dir.path(), "t", 32 * 1024);
        for i in 0..5000u64 {
            sort.push(i, |out| {
                out.extend_from_slice(&[7; 40]);
                Ok(())
            })
            .unwrap();
        }
        // Every run on disk, then the last one cut, before `finish` opens them (and
        // removes their names).
        sort.write_run().unwrap();
        sort.wait_written().unwrap();
        let mut runs: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        runs.sort();
        let last = runs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len - 10).unwrap();
        let sorted = sort.finish().unwrap();
        let mut ahead = MergeAhead::start(sorted).unwrap();
        let mut read = 0;
        let err = loop {
            match ahead.next_body() {
                Ok(Some(_)) => read += 1,
                Ok(None) => panic!("a cut run must be an error"),
                Err(e) => break e,
            }
        };
        assert!(read > 0 && read < 5000, "{read}");
        assert!(matches!(ahead.next_body(), Ok(None)));
        assert!(err.to_string().contains(".run"), "the error names the run file: {err}");
    }

    /// Dropping the reader early stops the helper (no hang).
    #[test]
    fn dropping_early_stops_the_helper() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::<u64>::new(dir.path(), "t", 4096);
        for i in 0..50_000u64 {
            sort.push(i, |out| {
                out.extend_from_slice(&[1; 32]);
                Ok(())
            })
            .unwrap();
        }
        let mut ahead = MergeAhead::start(sort.finish().unwrap()).unwrap();
        assert!(ahead.next_body().unwrap().is_some());
        drop(ahead);
    }
}
