//! Reading an export: whatever the user hands us, as a stream of named entries.
//!
//! An export arrives as the encrypted `.tar.gz.aes` hc-migrate writes, a decrypted
//! `.tar.gz` or `.tar`, or a folder someone already unpacked. We decide which by
//! content, never by file name, and present all four as the same sequence of
//! [`EntryEvent`]s, so the Hipchat parser never knows the difference.

pub mod crypto;
mod entries;
mod prefetch;

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
    /// Stop when the gzip stream inflates to more than this many times the input's
    /// size (past 1 GiB); 0 turns the check off. Real exports compress far less.
    pub max_ratio: u64,
    /// Told how many bytes of the input have been read so far (for progress bars).
    pub on_read: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Told which key derivation decrypts the export (verbose output, reports).
    pub on_kdf: Option<&'a dyn Fn(crypto::Kdf)>,
}

/// Default of `--max-entry-size`: far above any real attachment.
pub const DEFAULT_MAX_ENTRY_SIZE: u64 = 16 * 1024 * 1024 * 1024;
/// Default of `--max-ratio`: real exports compress far less.
pub const DEFAULT_MAX_RATIO: u64 = 1000;

impl<'a> OpenOptions<'a> {
    /// Options with the documented defaults (detected key derivation, OpenSSL's
    /// PBKDF2 iterations, the default limits) and no progress hooks.
    pub fn new(password: &'a dyn Fn() -> Result<Vec<u8>>) -> Self {
        OpenOptions {
            password,
            kdf: None,
            iter: crypto::DEFAULT_PBKDF2_ITER,
            max_entry_size: DEFAULT_MAX_ENTRY_SIZE,
            max_ratio: DEFAULT_MAX_RATIO,
            on_read: None,
            on_kdf: None,
        }
    }
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
        walk_payload(BufReader::with_capacity(256 * 1024, plain), &what, meta.len(), opts, visit)?;
        return Ok(InputKind::Encrypted);
    }
    if crypto::is_gzip(&head) {
        walk_payload(reader, &what, meta.len(), opts, visit)?;
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
fn walk_payload<R: io::BufRead + Send>(mut reader: R, what: &str, input_size: u64, opts: &OpenOptions, visit: &mut dyn FnMut(EntryEvent) -> Result<()>) -> Result<()> {
    let head = reader.fill_buf().map_err(|e| classify(what, e))?;
    if crypto::is_gzip(head) {
        let members = GzMembers { member: Some(flate2::bufread::GzDecoder::new(reader)) };
        let guarded = RatioGuard { inner: members, out: 0, limit: ratio_limit(input_size, opts.max_ratio) };
        prefetch::read_ahead(guarded, |gz| {
            entries::walk_tar(&mut *gz, what, opts.max_entry_size, visit)?;
            // The tar walk stops at the end-of-archive blocks, before the gzip trailer;
            // read on to the end so the gzip checksum (and the cipher padding) are
            // verified and a corrupted file is reported instead of converted.
            io::copy(gz, &mut io::sink()).map_err(|e| classify(what, e))?;
            Ok(())
        })
    } else {
        entries::walk_tar(&mut reader, what, opts.max_entry_size, visit)?;
        // Likewise: an encrypted plain tar's cipher padding is checked at the very end.
        io::copy(&mut reader, &mut io::sink()).map_err(|e| classify(what, e))?;
        Ok(())
    }
}

/// Bytes the gzip stream may inflate to: `max_ratio` times the input, never less
/// than 1 GiB (small exports of repetitive JSON compress well too).
fn ratio_limit(input_size: u64, max_ratio: u64) -> u64 {
    if max_ratio == 0 { u64::MAX } else { input_size.saturating_mul(max_ratio).max(1 << 30) }
}

/// Stops a decompression bomb: a small archive that inflates to terabytes would
/// otherwise fill the disk with staged files long before any entry looks too large.
struct RatioGuard<R> {
    inner: R,
    out: u64,
    limit: u64,
}

/// The marker error of [`RatioGuard`], classified as damaged input.
#[derive(Debug)]
pub struct InflatesTooMuch(pub u64);

impl std::fmt::Display for InflatesTooMuch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "inflates to more than {} bytes, far beyond any real export of its size (a decompression bomb?); raise --max-ratio if it is genuine", self.0)
    }
}

impl std::error::Error for InflatesTooMuch {}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, InflatesTooMuch(self.limit)));
        }
        Ok(n)
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
        None if e.get_ref().is_some_and(|i| i.is::<InflatesTooMuch>()) => Error::input(what, e.get_ref().map(|i| i.to_string()).unwrap_or_default()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_limit_has_a_floor_and_an_off_switch() {
        assert_eq!(ratio_limit(1_000, 1000), 1 << 30);
        assert_eq!(ratio_limit(10 << 30, 1000), (10u64 << 30) * 1000);
        assert_eq!(ratio_limit(5, 0), u64::MAX);
    }

    #[test]
    fn a_bomb_is_stopped_with_a_clear_message() {
        let zeros = io::repeat(0).take(10_000);
        let mut guard = RatioGuard { inner: zeros, out: 0, limit: 4096 };
        let err = io::copy(&mut guard, &mut io::sink()).unwrap_err();
        let e = classify("bomb.tar.gz", err);
        assert_eq!(e.kind(), ErrorKind::Input);
        assert!(e.message().contains("bomb.tar.gz: inflates to more than 4096 bytes"), "{}", e.message());
        let mut fine = RatioGuard { inner: io::repeat(0).take(4096), out: 0, limit: 4096 };
        assert_eq!(io::copy(&mut fine, &mut io::sink()).unwrap(), 4096);
    }
}
