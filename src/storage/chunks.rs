//! Byte streams handed between threads in chunks: filling a chunk on one side,
//! reading chunk after chunk as one stream on the other.
//!
//! Two places hand a stream over this way, with their own protocols around it: the
//! decryption thread to the reader thread (`archive/prefetch.rs`), and the reader
//! thread to the history threads (`hipchat/history.rs`). What they share is here.

use std::io::{self, Read};

/// A buffer handed from a filling thread to a reading one, and back for reuse.
/// Its bytes stay initialized while it lives and only `len` of them hold the
/// stream, so refilling it zeroes nothing. (A `Vec` cut to what was read and
/// resized before the next read had its rest zeroed each time: 256 KiB per
/// history file, most files being a few kilobytes, a user's private messages;
/// with the window each file's parser zeroed, a sixth of the instructions of a
/// run on an export of 800 users, callgrind.)
#[derive(Default)]
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    /// Fills the chunk with up to `size` bytes of `reader` (as [`read_full`]);
    /// the error, if reading failed, belongs after the bytes read.
    pub fn fill(&mut self, reader: &mut impl Read, size: usize) -> Option<io::Error> {
        if self.buf.is_empty() {
            // Zeroed memory from the allocator, not by a loop.
            self.buf = vec![0; size];
        } else if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        let (n, failure) = read_full(reader, &mut self.buf[..size]);
        self.len = n;
        failure
    }

    /// The bytes of the stream it holds.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// How many bytes of the stream it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it has memory worth handing back for reuse.
    fn has_memory(&self) -> bool {
        self.buf.capacity() > 0
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(buf: Vec<u8>) -> Chunk {
        Chunk { len: buf.len(), buf }
    }
}

/// Reads until `buf` is full or the stream ends, so each chunk is a full one (a
/// tar entry or a decoder returns a few kilobytes at a time). Returns the bytes
/// read and, if reading failed, the error, which belongs after those bytes.
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

/// The receiving side's position in the chunk it is reading.
#[derive(Default)]
pub struct ChunkCursor {
    chunk: Chunk,
    at: usize,
}

impl ChunkCursor {
    /// Like [`Read::read`]: copies from the current chunk, and when that is used up
    /// asks `next` for another (`Ok(None)` once the stream has ended) and hands the
    /// used one to `give_back` for reuse.
    pub fn read(&mut self, buf: &mut [u8], mut next: impl FnMut() -> io::Result<Option<Chunk>>, mut give_back: impl FnMut(Chunk)) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            let Some(chunk) = next()? else { return Ok(0) };
            let used = std::mem::replace(&mut self.chunk, chunk);
            self.at = 0;
            if used.has_memory() {
                give_back(used);
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk.bytes()[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    /// The chunk being read, taken out for reuse once the stream is done with it
    /// (dropping it would make the sending side allocate and fault in a fresh one);
    /// `None` when it has no memory.
    pub fn take_chunk(&mut self) -> Option<Chunk> {
        self.at = 0;
        Some(std::mem::take(&mut self.chunk)).filter(Chunk::has_memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of every size, empty ones included, read back as one stream; each
    /// used chunk is given back once.
    #[test]
    fn chunks_read_as_one_stream() {
        let chunks: Vec<Vec<u8>> = vec![b"ab".to_vec(), Vec::new(), b"c".to_vec(), vec![7; 1000], b"z".to_vec()];
        let expected: Vec<u8> = chunks.concat();
        let mut queue = chunks.into_iter().map(Chunk::from);
        let mut cursor = ChunkCursor::default();
        let (mut out, mut given_back) = (Vec::new(), 0);
        let mut buf = [0u8; 3];
        loop {
            let n = cursor.read(&mut buf, || Ok(queue.next()), |_| given_back += 1).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, expected);
        assert_eq!(given_back, 3, "the used non-empty chunks before the last");
    }

    #[test]
    fn read_full_fills_across_short_reads_and_keeps_the_error_after_the_bytes() {
        struct Dribble(Vec<u8>, bool);
        impl Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return if self.1 { Err(io::Error::other("broken")) } else { Ok(0) };
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let mut buf = [0u8; 4];
        assert!(matches!(read_full(&mut Dribble(b"abcdef".to_vec(), false), &mut buf), (4, None)));
        assert_eq!(&buf, b"abcd");
        let (n, err) = read_full(&mut Dribble(b"ab".to_vec(), true), &mut buf);
        assert_eq!((n, err.map(|e| e.to_string())), (2, Some("broken".to_string())));
    }
}
