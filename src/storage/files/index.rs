//! The export's file list on disk: every path and size, sorted, in a scratch file.
//!
//! An export holds a file per attachment (one message in a hundred, typically), so an
//! in-memory map of paths grows with the export. Instead the paths are sorted with
//! the spool's [`ExternalSort`] while the archive streams past, and written once
//! into a table of small blocks; memory keeps only the first path of each block
//! (about one path per 60 files) and lookups read one block. Each file also gets its
//! rank in the table, a dense number writers use to keep per-file state on disk
//! ([`super::SlotTable`]).
//!
//! Hand-rolled because it is small (a block index over one sorted file) and the
//! embedded key-value stores that could do it would bring far more than they serve.
//! Records are [`put_str`] path and [`put_u64`] size, back to back; a block starts
//! at the first record after 4 KiB of the previous one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::storage::spool::{put_str, put_u64, ExternalSort, FieldReader, Sorted};
use crate::storage::positional::read_at;

/// Bytes of records per block (a lookup reads one block).
const BLOCK: u64 = 4096;
/// Memory for sorting paths while the archive is read.
pub(super) const SORT_BUDGET: usize = 256 * 1024;

/// Paths as the archive gives them: the path, then the order it was added in, so the
/// last of several entries with the same path is the one kept (as a map would).
pub(super) type Pending = ExternalSort<(String, u64)>;

/// The first record of a block.
#[derive(Debug)]
struct Block {
    first: String,
    offset: u64,
    rank: u64,
}

/// The sorted, de-duplicated file list.
#[derive(Debug)]
pub(super) struct Table {
    file: Option<File>,
    path: PathBuf,
    blocks: Vec<Block>,
    end: u64,
    len: u64,
    bytes: u64,
}

impl Table {
    /// A table with no files and no scratch file.
    pub(super) fn empty() -> Self {
        Table { file: None, path: PathBuf::new(), blocks: Vec::new(), end: 0, len: 0, bytes: 0 }
    }

    /// Writes the sorted paths (the last entry of equal paths wins) to `path`.
    pub(super) fn build(mut sorted: Sorted<(String, u64)>, path: &Path) -> Result<Self> {
        let mut w = BufWriter::new(File::create(path).output_ctx(path)?);
        let mut table = Table { file: None, path: path.to_path_buf(), blocks: Vec::new(), end: 0, len: 0, bytes: 0 };
        let mut pending: Option<(String, u64)> = None;
        let mut record = Vec::new();
        let mut block_bytes = 0;
        loop {
            let next = match sorted.next_record()? {
                Some(((p, _), body)) => {
                    let mut r = FieldReader::new(body);
                    let size = r.u64()?;
                    r.end()?;
                    Some((p, size))
                }
                None => None,
            };
            if let Some((p, size)) = pending.take()
                && next.as_ref().is_none_or(|(n, _)| *n != p) {
                    record.clear();
                    put_str(&mut record, &p);
                    put_u64(&mut record, size);
                    if block_bytes == 0 {
                        table.blocks.push(Block { first: p, offset: table.end, rank: table.len });
                    }
                    w.write_all(&record).output_ctx(path)?;
                    table.end += record.len() as u64;
                    table.len += 1;
                    table.bytes += size;
                    block_bytes += record.len() as u64;
                    if block_bytes >= BLOCK {
                        block_bytes = 0;
                    }
                }
            match next {
                Some(n) => pending = Some(n),
                None => break,
            }
        }
        w.flush().output_ctx(path)?;
        drop(w);
        table.file = Some(File::open(path).map_err(|e| Error::input(path.display(), e))?);
        Ok(table)
    }

    /// Files in the table.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Their total size.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The rank and size of `path`.
    pub(super) fn get(&self, path: &str) -> Result<Option<(u64, u64)>> {
        let i = self.blocks.partition_point(|b| b.first.as_str() <= path);
        if i == 0 {
            return Ok(None);
        }
        let mut found = None;
        self.scan(i - 1, |rank, p, size| match p.cmp(path) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => {
                found = Some((rank, size));
                false
            }
            std::cmp::Ordering::Greater => false,
        })?;
        Ok(found)
    }

    /// Every path that starts with `prefix` and its size, in path order.
    pub(super) fn under(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let start = self.blocks.partition_point(|b| b.first.as_str() < prefix).saturating_sub(1);
        let mut out = Vec::new();
        if self.blocks.is_empty() {
            return Ok(out);
        }
        self.scan(start, |_, p, size| {
            if p < prefix {
                return true;
            }
            if !p.starts_with(prefix) {
                return false;
            }
            out.push((p.to_string(), size));
            true
        })?;
        Ok(out)
    }

    /// Calls `visit(rank, path, size)` for the records from block `first` on, until
    /// it returns false or the table ends.
    fn scan(&self, first: usize, mut visit: impl FnMut(u64, &str, u64) -> bool) -> Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let mut buf = Vec::new();
        for (b, block) in self.blocks.iter().enumerate().skip(first) {
            let end = self.blocks.get(b + 1).map_or(self.end, |n| n.offset);
            buf.resize((end - block.offset) as usize, 0);
            read_at(file, &mut buf, block.offset).map_err(|e| Error::new(ErrorKind::Other, format!("{}: cannot read the file index: {e}", self.path.display())))?;
            let mut r = FieldReader::new(&buf);
            let mut rank = block.rank;
            while !r.at_end() {
                // Borrowed from the block: a lookup reads up to a block's worth of
                // paths (about 60) and allocated a String for each.
                let (p, size) = (r.text()?, r.u64()?);
                if !visit(rank, p, size) {
                    return Ok(());
                }
                rank += 1;
            }
        }
        Ok(())
    }
}

