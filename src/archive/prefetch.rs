//! Decryption and decompression on a second thread, ahead of the parser.
//!
//! Unpacking (AES, inflate, the gzip checksum) and converting (tar, JSON, spool) each
//! keep one core busy; run one after the other they add up. [`read_ahead`] moves the
//! unpacking to a helper thread that fills a few chunks ahead of the reader, so the
//! two overlap. Memory stays fixed: `DEPTH` chunks of `CHUNK` bytes in flight, the
//! buffers handed back and reused. std's channels and scoped threads are all it
//! takes; a crate would add nothing.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::storage::chunks::{Chunk, ChunkCursor};

/// Bytes per chunk handed between the threads. 256 KiB ran as fast as 1 MiB on the
/// 500k bench export (the history thread, not this one, sets the pace) with 5 MiB
/// less peak RSS.
const CHUNK: usize = 256 * 1024;
/// Chunks the helper may be ahead of the reader.
const DEPTH: usize = 4;

/// Runs `consume` with a reader that yields what `source` yields, while a helper
/// thread does the reading of `source`. Errors from `source` reach the reader in
/// order, after the bytes that came before them.
pub fn read_ahead<S, T>(source: S, consume: impl FnOnce(&mut dyn Read) -> T) -> T
where
    S: Read + Send,
{
    let (full_tx, full_rx) = sync_channel::<io::Result<Chunk>>(DEPTH);
    let (empty_tx, empty_rx) = sync_channel::<Chunk>(DEPTH + 2);
    std::thread::scope(|scope| {
        // Named, so profilers and `top -H` tell it from the reader thread; like
        // `scope.spawn`, a thread that cannot start is a panic.
        std::thread::Builder::new().name("hcconv-unpack".into()).spawn_scoped(scope, move || fill(source, &full_tx, &empty_rx)).expect("cannot start the unpacking thread");
        let mut reader = AheadReader { full: full_rx, empty: empty_tx, cursor: ChunkCursor::default(), done: false };
        consume(&mut reader)
        // `reader` is dropped here: the helper's next send fails and it stops.
    })
}

/// The helper thread: reads chunks until the end, an error, or the reader is gone.
fn fill<S: Read>(mut source: S, full: &SyncSender<io::Result<Chunk>>, empty: &Receiver<Chunk>) {
    loop {
        let mut chunk = empty.try_recv().unwrap_or_default();
        let failure = chunk.fill(&mut source, CHUNK);
        let len = chunk.len();
        let outcome = match failure {
            Some(e) => Err(e),
            None => Ok(len < CHUNK),
        };
        match outcome {
            Ok(at_end) => {
                if (len > 0 && full.send(Ok(chunk)).is_err()) || at_end {
                    return;
                }
            }
            Err(e) => {
                if len > 0 && full.send(Ok(chunk)).is_err() {
                    return;
                }
                let _ = full.send(Err(e));
                return;
            }
        }
    }
}

/// The reading side: serves the current chunk, then waits for the next.
struct AheadReader {
    full: Receiver<io::Result<Chunk>>,
    empty: SyncSender<Chunk>,
    cursor: ChunkCursor,
    done: bool,
}

impl Read for AheadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (full, empty, done) = (&self.full, &self.empty, &mut self.done);
        let next = || {
            if *done {
                return Ok(None);
            }
            match full.recv() {
                Ok(Ok(chunk)) => Ok(Some(chunk)),
                Ok(Err(e)) => {
                    *done = true;
                    Err(e)
                }
                // The helper finished: everything has been handed over.
                Err(_) => {
                    *done = true;
                    Ok(None)
                }
            }
        };
        self.cursor.read(buf, next, |used| {
            let _ = empty.try_send(used);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` in uneven pieces, then fails if asked to.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail_at_end: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.fail_at_end { Err(io::Error::new(io::ErrorKind::InvalidData, "broken")) } else { Ok(0) };
            }
            let n = buf.len().min(1 + self.at % 70_001).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_arrives_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 17] {
            let expected = data(len);
            let got = read_ahead(Source { data: expected.clone(), at: 0, fail_at_end: false }, |r| {
                let mut out = Vec::new();
                r.read_to_end(&mut out).unwrap();
                out
            });
            assert!(got == expected, "length {len}");
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let expected = data(2 * CHUNK + 5);
        let (got, err) = read_ahead(Source { data: expected.clone(), at: 0, fail_at_end: true }, |r| {
            let mut out = Vec::new();
            let err = r.read_to_end(&mut out).unwrap_err();
            (out, err)
        });
        assert!(got == expected);
        assert_eq!(err.to_string(), "broken");
    }

    #[test]
    fn a_reader_that_stops_early_does_not_hang() {
        let first = read_ahead(Source { data: data(10 * CHUNK), at: 0, fail_at_end: false }, |r| {
            let mut b = [0u8; 10];
            r.read_exact(&mut b).unwrap();
            b
        });
        assert_eq!(first[..], data(10)[..]);
    }
}
