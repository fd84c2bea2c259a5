//! Reading an export: whatever the user hands us, as a stream of named entries.
//!
//! An export arrives as the encrypted `.tar.gz.aes` hc-migrate writes, a decrypted
//! `.tar.gz` or `.tar`, or a folder someone already unpacked. We decide which by
//! content, never by file name, and present all four as the same sequence of
//! [`EntryEvent`]s, so the Hipchat parser never knows the difference.

pub mod crypto;
mod entries;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

pub use entries::{normalise_entry_path, EntryEvent, Refusal};

/// What the export turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// `openssl enc -aes-256-cbc` encrypted (`Salted__` header), as hc-migrate writes.
    Encrypted,
    /// A gzip'd tar (already decrypted).
    TarGz,
    /// A plain tar.
    Tar,
    /// An unpacked folder.
    Folder,
}

/// How to open an export.
pub struct OpenOptions<'a> {
    /// Called once, only if the export is encrypted; returns the password bytes.
    pub password: &'a dyn Fn() -> Result<Vec<u8>>,
    /// Force one key derivation instead of detecting it.
    pub kdf: Option<crypto::Kdf>,
    /// PBKDF2 iterations to try (OpenSSL's `-iter`).
    pub iter: u32,
    /// Entries larger than this are refused (a decompression-bomb guard).
    pub max_entry_size: u64,
    /// Told how many bytes of the input have been read so far (for progress bars).
    pub on_read: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Told which key derivation decrypts the export (verbose output, reports).
    pub on_kdf: Option<&'a dyn Fn(crypto::Kdf)>,
}

/// Passes reads through and reports the running total; lets a progress bar follow
/// the encrypted input, the only size known up front.
struct CountingReader<'a, R> {
    inner: R,
    total: u64,
    on_read: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if let Some(f) = self.on_read {
            f(self.total);
        }
        Ok(n)
    }
}

/// Opens `input`, detects its kind by content and calls `visit` for every entry, in
/// archive order (sorted by path for folders). Errors from `visit` stop the walk.
pub fn walk(input: &Path, opts: &OpenOptions, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<InputKind> {
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input.display(), format!("cannot open: {e}")))?;
    if meta.is_dir() {
        entries::walk_folder(input, opts.max_entry_size, visit)?;
        return Ok(InputKind::Folder);
    }
    let file = File::open(input).map_err(|e| Error::input(input.display(), format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(256 * 1024, CountingReader { inner: file, total: 0, on_read: opts.on_read });
    let head = peek(&mut reader, 512).map_err(|e| Error::input(input.display(), e))?;
    let what = input.display().to_string();
    if head.starts_with(crypto::SALTED_MAGIC) {
        let password = (opts.password)()?;
        let plain = crypto::open_encrypted(reader, &password, opts.kdf, opts.iter).map_err(|e| classify(&what, e))?;
        if let (Some(f), Some(kdf)) = (opts.on_kdf, plain.kdf()) {
            f(kdf);
        }
        walk_payload(BufReader::with_capacity(256 * 1024, plain), &what, opts, visit)?;
        return Ok(InputKind::Encrypted);
    }
    if crypto::is_gzip(&head) {
        walk_payload(reader, &what, opts, visit)?;
        return Ok(InputKind::TarGz);
    }
    if crypto::is_tar_header(&head) {
        entries::walk_tar(reader, &what, opts.max_entry_size, visit)?;
        return Ok(InputKind::Tar);
    }
    Err(Error::input(
        &what,
        if head.is_empty() {
            "the file is empty; expected an hc-migrate export (.tar.gz.aes), a .tar.gz, a .tar or a folder".to_string()
        } else {
            "not an hc-migrate export: it is neither encrypted (no Salted__ header), gzip nor tar".to_string()
        },
    ))
}

/// A decrypted stream is a gzip'd tar (hc-migrate) or, rarely, a plain tar.
fn walk_payload<R: io::BufRead>(mut reader: R, what: &str, opts: &OpenOptions, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<()> {
    let head = reader.fill_buf().map_err(|e| classify(what, e))?;
    if crypto::is_gzip(head) {
        let mut gz = BufReader::with_capacity(256 * 1024, GzMembers { member: Some(flate2::bufread::GzDecoder::new(reader)) });
        entries::walk_tar(&mut gz, what, opts.max_entry_size, visit)?;
        // The tar walk stops at the end-of-archive blocks, before the gzip trailer; read
        // on to the end so the gzip checksum (and the cipher padding) are verified and a
        // corrupted file is reported instead of converted.
        io::copy(&mut gz, &mut io::sink()).map_err(|e| classify(what, e))?;
        Ok(())
    } else {
        entries::walk_tar(&mut reader, what, opts.max_entry_size, visit)?;
        // Likewise: an encrypted plain tar's cipher padding is checked at the very end.
        io::copy(&mut reader, &mut io::sink()).map_err(|e| classify(what, e))?;
        Ok(())
    }
}

/// gzip members one after another, like `MultiGzDecoder`, each checked against its
/// checksum; data after the last member that is not another member (tape padding,
/// junk) is read through but ignored, as `gzip -d` does.
struct GzMembers<R: io::BufRead> {
    member: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: io::BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(gz) = self.member.as_mut() {
            let n = gz.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This member is complete and its checksum verified; what follows?
            // (Only the first magic byte is looked at: the buffer may end right after it.)
            let mut rest = self.member.take().expect("present").into_inner();
            let next = rest.fill_buf()?.first().copied();
            if next == Some(0x1f) {
                self.member = Some(flate2::bufread::GzDecoder::new(rest));
            } else if next.is_some() {
                // Read to the end anyway, so a damaged encrypted stream still fails.
                io::copy(&mut rest, &mut io::sink())?;
            }
        }
        Ok(0)
    }
}

/// Reads up to `n` bytes without consuming them.
fn peek<R: io::BufRead>(reader: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let buf = reader.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Turns an I/O error from the read stack into the right exit class:
/// a wrong password is exit 3, anything else about the bytes is exit 4.
pub fn classify(what: &str, e: io::Error) -> Error {
    match crypto::decrypt_error(&e) {
        Some(d @ crypto::DecryptError::WrongPassword) => Error::new(ErrorKind::Decrypt, format!("{what}: {d}")),
        Some(d) => Error::input(what, d),
        None if e.kind() == io::ErrorKind::UnexpectedEof => Error::input(what, "archive is truncated (unexpected end of data)"),
        None => Error::input(what, format!("archive is damaged: {e}")),
    }
}

/// Reads a whole small entry (at most `limit` bytes) into memory.
pub fn read_small(reader: &mut dyn Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit + 1).read_to_end(&mut buf).map_err(|e| classify(what, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::input(what, format!("larger than the {limit}-byte limit for this kind of file")));
    }
    Ok(buf)
}
