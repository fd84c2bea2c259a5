//! `openssl enc -aes-256-cbc` compatible decryption as a streaming [`Read`] adapter.
//!
//! hc-migrate encrypts its export like `openssl enc -aes-256-cbc -k PASSWORD`: the
//! file starts with `Salted__` and an 8-byte salt, and key and IV come from the password
//! by one of three derivations depending on the OpenSSL that made (or re-made) the file.
//! We try each on the first blocks and keep the one whose plaintext starts like a gzip
//! stream or a tar header, so the user never needs to know which OpenSSL was used.
//! Nothing is buffered beyond one read chunk: exports are many gigabytes.

use std::fmt;
use std::io::{self, Read};

use aes::Aes256;
use aes::cipher::{Array, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use md5::Md5;
use sha2::{Digest, Sha256};

/// The 8-byte magic that starts every salted `openssl enc` file.
pub const SALTED_MAGIC: &[u8; 8] = b"Salted__";
const BLOCK: usize = 16;
/// Ciphertext read per refill; large enough to amortise the cipher call.
const CHUNK: usize = 64 * 1024;
/// How much plaintext the detector looks at: one tar header block plus a cipher block.
const PROBE: usize = 512 + BLOCK;

type Aes256CbcDec = cbc::Decryptor<Aes256>;
type Aes256CbcEnc = cbc::Encryptor<Aes256>;

/// The password-to-key derivations `openssl enc` has used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// EVP_BytesToKey with MD5: hc-migrate and OpenSSL before 1.1 (`-md md5`).
    Md5,
    /// EVP_BytesToKey with SHA-256: the default of OpenSSL 1.1 and later.
    Sha256,
    /// PBKDF2-HMAC-SHA256 (`-pbkdf2`), with this iteration count (`-iter`, default 10000).
    Pbkdf2(u32),
}

impl fmt::Display for Kdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kdf::Md5 => f.write_str("md5"),
            Kdf::Sha256 => f.write_str("sha256"),
            Kdf::Pbkdf2(n) => write!(f, "pbkdf2 ({n} iterations)"),
        }
    }
}

/// OpenSSL's default PBKDF2 iteration count for `enc -pbkdf2`.
pub const DEFAULT_PBKDF2_ITER: u32 = 10_000;

/// Key (32 bytes) and IV (16 bytes) derived from a password and salt.
#[derive(Clone)]
pub struct KeyIv {
    key: [u8; 32],
    iv: [u8; 16],
}

impl KeyIv {
    /// Derives key and IV the way `openssl enc -aes-256-cbc` does with `kdf`.
    pub fn derive(kdf: Kdf, password: &[u8], salt: &[u8; 8]) -> Self {
        let mut out = [0u8; 48];
        match kdf {
            Kdf::Md5 => evp_bytes_to_key::<Md5>(password, salt, &mut out),
            Kdf::Sha256 => evp_bytes_to_key::<Sha256>(password, salt, &mut out),
            Kdf::Pbkdf2(iter) => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iter.max(1), &mut out),
        }
        let mut key = [0u8; 32];
        let mut iv = [0u8; 16];
        key.copy_from_slice(&out[..32]);
        iv.copy_from_slice(&out[32..]);
        KeyIv { key, iv }
    }

    fn decryptor(&self) -> Aes256CbcDec {
        Aes256CbcDec::new(&self.key.into(), &self.iv.into())
    }
}

impl fmt::Debug for KeyIv {
    // Key material stays out of debug output, like the password itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyIv(..)")
    }
}

/// OpenSSL's EVP_BytesToKey with one iteration: D_i = H(D_{i-1} || password || salt).
/// Written out because no maintained RustCrypto crate exposes this legacy derivation.
fn evp_bytes_to_key<D: Digest>(password: &[u8], salt: &[u8; 8], out: &mut [u8]) {
    let mut prev: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < out.len() {
        let mut h = D::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        let n = prev.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&prev[..n]);
        filled += n;
    }
}

/// Why decryption failed; carried inside `io::Error` so callers can classify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptError {
    /// No derivation gave a plausible start: wrong password, or not an hc-migrate archive.
    WrongPassword,
    /// The file ends inside a block, or its final padding is invalid: truncated or damaged.
    Damaged(String),
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecryptError::WrongPassword => f.write_str(
                "wrong password, or the file is not an hc-migrate archive (no key derivation \
                 (md5, sha256, pbkdf2) gives a gzip or tar stream; a file made with \
                 `openssl enc -pbkdf2 -iter N` also needs --iter N)",
            ),
            DecryptError::Damaged(why) => write!(f, "encrypted archive is damaged: {why}"),
        }
    }
}

impl std::error::Error for DecryptError {}

impl From<DecryptError> for io::Error {
    fn from(e: DecryptError) -> Self {
        io::Error::other(e)
    }
}

/// Finds the [`DecryptError`] inside an I/O error from anywhere down the read stack.
pub fn decrypt_error(e: &io::Error) -> Option<&DecryptError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<DecryptError>())
}

/// True when `plain` starts like a gzip member or a tar header block.
pub fn looks_like_payload(plain: &[u8]) -> bool {
    is_gzip(plain) || is_tar_header(plain)
}

/// gzip magic with the deflate method and only defined flag bits.
pub fn is_gzip(b: &[u8]) -> bool {
    b.len() >= 4 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8 && b[3] & 0xe0 == 0
}

/// A tar header: the `ustar` magic, or (v7 tar) a valid header checksum.
pub fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    if &b[257..262] == b"ustar" {
        return true;
    }
    let field = &b[148..156];
    let digits: String = field.iter().take_while(|c| **c != 0).map(|c| *c as char).collect();
    let Ok(stored) = u32::from_str_radix(digits.trim(), 8) else { return false };
    let sum: u32 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, c)| if (148..156).contains(&i) { b' ' as u32 } else { *c as u32 })
        .sum();
    stored == sum && b[0] != 0
}

/// Reads the `Salted__` header and picks the key derivation whose first blocks decrypt
/// to a gzip or tar start. `forced` skips the guessing. Returns the decrypting reader.
pub fn open_encrypted<R: Read>(mut inner: R, password: &[u8], forced: Option<Kdf>, iter: u32) -> io::Result<DecryptReader<io::Chain<io::Cursor<Vec<u8>>, R>>> {
    let mut header = [0u8; 16];
    read_up_to(&mut inner, &mut header)?
        .eq(&16)
        .then_some(())
        .ok_or_else(|| io::Error::from(DecryptError::Damaged("shorter than the 16-byte Salted__ header".into())))?;
    if &header[..8] != SALTED_MAGIC {
        return Err(DecryptError::WrongPassword.into());
    }
    let salt: [u8; 8] = header[8..].try_into().expect("8 bytes");
    let mut probe = vec![0u8; PROBE];
    let n = read_up_to(&mut inner, &mut probe)?;
    probe.truncate(n);
    let whole_file = n < PROBE;
    let candidates: Vec<Kdf> = match forced {
        Some(k) => vec![k],
        None => vec![Kdf::Md5, Kdf::Sha256, Kdf::Pbkdf2(iter)],
    };
    let usable = probe.len() / BLOCK * BLOCK;
    if usable == 0 {
        // Nothing to try a password on: the file was cut right after (or inside) the
        // first cipher block. That is damage, not a wrong password.
        return Err(DecryptError::Damaged(if probe.is_empty() {
            "no encrypted data after the header".into()
        } else {
            format!("ends {} bytes into the first cipher block (truncated download?)", probe.len())
        })
        .into());
    }
    // One block that is all padding under some derivation: the right password over
    // an empty payload (a wrong key gives that block with odds of 2^-128).
    if whole_file && usable == BLOCK && candidates.iter().any(|kdf| {
        let mut block = probe[..BLOCK].to_vec();
        decrypt_in_place(&mut KeyIv::derive(*kdf, password, &salt).decryptor(), &mut block);
        block.iter().all(|b| usize::from(*b) == BLOCK)
    }) {
        return Err(DecryptError::Damaged("the password is right but nothing was encrypted (an empty payload)".into()).into());
    }
    let chosen = candidates.into_iter().find_map(|kdf| {
        let keys = KeyIv::derive(kdf, password, &salt);
        let mut plain = probe[..usable].to_vec();
        decrypt_in_place(&mut keys.decryptor(), &mut plain);
        // A short file normally ends with valid padding; when it does not, it was cut
        // short, and the start still tells a right password from a wrong one (the
        // reader then reports the truncation as damage, not as a wrong password).
        let plain = if whole_file { strip_padding(&plain).unwrap_or(&plain) } else { &plain[..] };
        looks_like_payload(plain).then_some((kdf, keys))
    });
    let (kdf, keys) = chosen.ok_or(DecryptError::WrongPassword)?;
    let mut reader = DecryptReader::new(io::Cursor::new(probe).chain(inner), &keys);
    reader.kdf = Some(kdf);
    Ok(reader)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn decrypt_in_place(dec: &mut Aes256CbcDec, data: &mut [u8]) {
    let (blocks, rest) = Array::slice_as_chunks_mut(data);
    debug_assert!(rest.is_empty());
    dec.decrypt_blocks(blocks);
}

/// Checks PKCS#7 padding and returns the data without it.
fn strip_padding(data: &[u8]) -> Result<&[u8], DecryptError> {
    let bad = || DecryptError::Damaged("bad padding in the last block (truncated or corrupted file)".into());
    let pad = *data.last().ok_or_else(|| DecryptError::Damaged("no encrypted data after the header".into()))? as usize;
    if pad == 0 || pad > BLOCK || pad > data.len() {
        return Err(bad());
    }
    if data[data.len() - pad..].iter().any(|b| *b as usize != pad) {
        return Err(bad());
    }
    Ok(&data[..data.len() - pad])
}

/// Decrypts AES-256-CBC ciphertext as it is read. Holds back the last decrypted block
/// until the input ends, because only then is it known to carry the padding.
pub struct DecryptReader<R> {
    inner: R,
    dec: Aes256CbcDec,
    /// Ciphertext bytes not yet forming a whole block.
    carry: Vec<u8>,
    /// Decrypted bytes ready to hand out, from `pos`.
    out: Vec<u8>,
    pos: usize,
    /// The last decrypted block, not yet released.
    held: Option<[u8; BLOCK]>,
    done: bool,
    read_buf: Vec<u8>,
    kdf: Option<Kdf>,
}

impl<R: Read> DecryptReader<R> {
    /// The key derivation that was detected (or forced).
    pub fn kdf(&self) -> Option<Kdf> {
        self.kdf
    }

    fn new(inner: R, keys: &KeyIv) -> Self {
        DecryptReader {
            inner,
            dec: keys.decryptor(),
            carry: Vec::with_capacity(BLOCK),
            out: Vec::with_capacity(CHUNK + BLOCK),
            pos: 0,
            held: None,
            done: false,
            read_buf: vec![0u8; CHUNK],
            kdf: None,
        }
    }

    /// Reads one chunk of ciphertext and decrypts every whole block in it.
    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        let n = loop {
            match self.inner.read(&mut self.read_buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return self.finish();
        }
        self.carry.extend_from_slice(&self.read_buf[..n]);
        let whole = self.carry.len() / BLOCK * BLOCK;
        if whole == 0 {
            return Ok(());
        }
        if let Some(h) = self.held.take() {
            self.out.extend_from_slice(&h);
        }
        let start = self.out.len();
        self.out.extend_from_slice(&self.carry[..whole]);
        self.carry.drain(..whole);
        decrypt_in_place(&mut self.dec, &mut self.out[start..]);
        let last_start = self.out.len() - BLOCK;
        let mut held = [0u8; BLOCK];
        held.copy_from_slice(&self.out[last_start..]);
        self.out.truncate(last_start);
        self.held = Some(held);
        Ok(())
    }

    /// At end of input: the held block must end with valid padding.
    fn finish(&mut self) -> io::Result<()> {
        self.done = true;
        if !self.carry.is_empty() {
            return Err(DecryptError::Damaged(format!(
                "ends {} bytes into a cipher block (truncated download?)",
                self.carry.len()
            ))
            .into());
        }
        let held = self.held.take().ok_or_else(|| DecryptError::Damaged("no encrypted data after the header".into()))?;
        let plain = strip_padding(&held)?;
        self.out.extend_from_slice(plain);
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Encrypts `plain` exactly as `openssl enc -aes-256-cbc -salt` would with `kdf`.
///
/// Used by the fixture generator and tests; hcconv itself never encrypts user data.
/// Holds the whole plaintext in memory, which is fine for fixtures.
pub fn encrypt(plain: &[u8], password: &[u8], salt: [u8; 8], kdf: Kdf) -> Vec<u8> {
    let keys = KeyIv::derive(kdf, password, &salt);
    let mut out = Vec::with_capacity(plain.len() + 32);
    out.extend_from_slice(SALTED_MAGIC);
    out.extend_from_slice(&salt);
    let pad = BLOCK - plain.len() % BLOCK;
    let mut body = plain.to_vec();
    body.extend(std::iter::repeat_n(pad as u8, pad));
    let (blocks, _) = Array::slice_as_chunks_mut(&mut body);
    Aes256CbcEnc::new(&keys.key.into(), &keys.iv.into()).encrypt_blocks(blocks);
    out.extend_from_slice(&body);
    out
}

/// Streams `openssl enc -aes-256-cbc -salt` output into `inner`; call
/// [`EncryptWriter::finish`] to write the padded last block. For the fixture and
/// benchmark generators, which make exports too large to hold in memory.
pub struct EncryptWriter<W: io::Write> {
    inner: W,
    enc: Aes256CbcEnc,
    pending: Vec<u8>,
}

impl<W: io::Write> EncryptWriter<W> {
    /// Writes the `Salted__` header and prepares the cipher.
    pub fn new(mut inner: W, password: &[u8], salt: [u8; 8], kdf: Kdf) -> io::Result<Self> {
        let keys = KeyIv::derive(kdf, password, &salt);
        inner.write_all(SALTED_MAGIC)?;
        inner.write_all(&salt)?;
        Ok(EncryptWriter { inner, enc: Aes256CbcEnc::new(&keys.key.into(), &keys.iv.into()), pending: Vec::with_capacity(CHUNK + BLOCK) })
    }

    /// Pads, writes the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let pad = BLOCK - self.pending.len() % BLOCK;
        self.pending.extend(std::iter::repeat_n(pad as u8, pad));
        self.flush_blocks()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn flush_blocks(&mut self) -> io::Result<()> {
        let whole = self.pending.len() / BLOCK * BLOCK;
        let (blocks, _) = Array::slice_as_chunks_mut(&mut self.pending[..whole]);
        self.enc.encrypt_blocks(blocks);
        self.inner.write_all(&self.pending[..whole])?;
        self.pending.drain(..whole);
        Ok(())
    }
}

impl<W: io::Write> io::Write for EncryptWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.flush_blocks()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Only whole blocks can be written before the end; the rest waits for finish.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn streaming_encrypt_matches_one_shot_and_round_trips() {
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for kdf in [Kdf::Md5, Kdf::Sha256, Kdf::Pbkdf2(1000)] {
            let one = encrypt(&plain, b"pw", *b"saltsalt", kdf);
            let mut w = EncryptWriter::new(Vec::new(), b"pw", *b"saltsalt", kdf).unwrap();
            for chunk in plain.chunks(7777) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.finish().unwrap(), one);
        }
    }

    #[test]
    fn key_derivations_match_openssl() {
        // Printed by `openssl enc -aes-256-cbc -k password -S 0102030405060708 -P`
        // with `-md md5`, `-md sha256` and `-pbkdf2` (OpenSSL 3.0).
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        let cases = [
            (Kdf::Md5, "e7b0971e52ca5cc8d0539fb3412f6316f7ba2e6ee293d9f3457b99436b51ce02", "8d450e2ed75a84a923d4eac9fe49226b"),
            (Kdf::Sha256, "2435177f1410536baad2acc155c0f94783d58384573cb0f72157443606285d3f", "f96efc044e0f1613bf324245c95e7411"),
            (Kdf::Pbkdf2(10_000), "f550f3f36ca07658588cbea7d3b646c64080f8e5384c695db2f79e46195168b8", "b660854e36be6d9e7afd642db034050e"),
        ];
        for (kdf, key, iv) in cases {
            let k = KeyIv::derive(kdf, b"password", &salt);
            assert_eq!((hex(&k.key), hex(&k.iv)), (key.to_string(), iv.to_string()), "{kdf}");
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn an_empty_payload_is_damage_not_a_wrong_password() {
        for kdf in [Kdf::Md5, Kdf::Sha256] {
            let file = encrypt(b"", b"pw", [7; 8], kdf);
            let err = open_encrypted(&file[..], b"pw", None, 10_000).err().unwrap();
            assert!(matches!(decrypt_error(&err), Some(DecryptError::Damaged(m)) if m.contains("nothing was encrypted")), "{err}");
            let wrong = open_encrypted(&file[..], b"other", None, 10_000).err().unwrap();
            assert!(matches!(decrypt_error(&wrong), Some(DecryptError::WrongPassword)), "{wrong}");
        }
    }

    #[test]
    fn padding_errors_are_detected() {
        assert!(strip_padding(&[1u8; 16]).is_ok());
        assert!(strip_padding(&[0u8; 16]).is_err());
        assert!(strip_padding(&[17u8; 16]).is_err());
        let mut b = [3u8; 16];
        b[14] = 2;
        assert!(strip_padding(&b).is_err());
    }
}
