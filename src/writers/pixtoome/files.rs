//! The file side of the import: uploads (message attachments), avatars and custom
//! emoji, each a folder with a `records.json` the importer reads unconditionally.
//!
//! Facts from Zulip 3.4 `import_realm.py` `import_uploads`: a record's `path` is
//! relative to its folder; upload records map `s3_path` (the attachment's
//! `path_id`) to the new location and every message with `has_attachment` gets
//! that string replaced in its text; avatar records whose `s3_path` ends in
//! `.original` are thumbnailed (with `importer_should_thumbnail` the small `.png`
//! is made from the original too); emoji land at `<realm>/emoji/images/<file_name>`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::convert::names::UniqueNames;
use crate::error::{Error, ErrorKind, OutputContext, Result};
use crate::storage::files::{FileStore, SlotTable};
use crate::storage::positional::{read_at, write_at};
use crate::model::{Emoticon, FileRef, User};
use crate::storage::output::create_dirs_below;
use crate::report::{Entity, Report};
use crate::storage::spool::{put_str, put_u64, ExternalSort, FieldReader, Sorted};

use super::plan::{Plan, REALM_ID};
use super::profile::FormatProfile;

/// One attachment row in the making (the messages that link it are kept apart).
#[derive(Debug)]
struct Upload {
    id: u64,
    path_id: String,
    file_name: String,
    owner: u64,
    size: u64,
    create_time: f64,
}

impl Upload {
    /// The record: its length (u32, little endian), then the fields.
    fn encode(&self) -> Vec<u8> {
        let mut body = vec![0; 4];
        put_u64(&mut body, self.id);
        put_str(&mut body, &self.path_id);
        put_str(&mut body, &self.file_name);
        put_u64(&mut body, self.owner);
        put_u64(&mut body, self.size);
        put_u64(&mut body, self.create_time.to_bits());
        let len = (body.len() - 4) as u32;
        body[..4].copy_from_slice(&len.to_le_bytes());
        body
    }

    fn decode(body: &[u8]) -> Result<Self> {
        let mut r = FieldReader::new(body);
        let upload = Upload { id: r.u64()?, path_id: r.str()?, file_name: r.str()?, owner: r.u64()?, size: r.u64()?, create_time: f64::from_bits(r.u64()?) };
        r.end()?;
        Ok(upload)
    }
}

/// Message attachments, placed under `uploads/` as they are met.
///
/// An export has an upload per hundred messages or so, so nothing about them stays
/// in memory: each upload's record is appended to a scratch log (in id order, which
/// is the order of `attachment.json`), a [`SlotTable`] finds the record of a file met
/// again, the links from messages go through an [`ExternalSort`] by upload, and
/// whether a `path_id` folder is taken is asked of the output folder itself.
pub struct Uploads {
    out: PathBuf,
    files: Arc<FileStore>,
    /// Per file slot: 0, or 1 + the offset of the file's upload record in `log`.
    slots: SlotTable,
    log: File,
    log_path: PathBuf,
    log_end: u64,
    /// (upload id, message id) → 1 when the message is in a public stream.
    links: ExternalSort<(u64, u64)>,
    count: u64,
    /// Name uploads as Zulip's `sanitize_name` does (10.x on), not ASCII-only.
    sanitize: bool,
}

/// Memory for sorting the message links.
const LINKS_SORT_BUDGET: usize = 256 * 1024;

/// What a message needs to link an upload.
pub struct Link {
    /// `[name](/user_uploads/<path_id>)`.
    pub markdown: String,
    /// The file is an image (Zulip's `has_image`).
    pub is_image: bool,
    /// The upload's id.
    upload: u64,
}

impl Uploads {
    /// Uploads written below `out/uploads`, their bookkeeping in the private folder
    /// `scratch`, named as `profile`'s release names them.
    pub fn new(out: &Path, files: Arc<FileStore>, scratch: &Path, profile: &FormatProfile) -> Result<Self> {
        let slots = SlotTable::create(&scratch.join("pixtoome-uploads.slots"), files.slot_count())?;
        let log_path = scratch.join("pixtoome-uploads.log");
        let log = File::options().read(true).write(true).create_new(true).open(&log_path).output_ctx(&log_path)?;
        let links = ExternalSort::new(scratch, "pixtoome-links", LINKS_SORT_BUDGET);
        Ok(Uploads { out: out.to_path_buf(), files, slots, log, log_path, log_end: 0, links, count: 0, sanitize: profile.sanitized_upload_names })
    }

    /// The Markdown link for `file`; the first call places the file and fixes its
    /// `path_id`. Call [`Uploads::attach`] with the message that carries the link.
    pub fn prepare(&mut self, file: &FileRef, shown_name: &str, sender: u64, time: f64) -> Result<Link> {
        let slot = self.files.slot(file)?.ok_or_else(|| Error::new(ErrorKind::Other, format!("{}: an attachment that is not in the export's file list", file.path)))?;
        let upload = match self.slots.get(slot)? {
            0 => {
                let upload = self.new_upload(file, shown_name, sender, time)?;
                let record = upload.encode();
                write_at(&self.log, &record, self.log_end).output_ctx(&self.log_path)?;
                self.slots.set(slot, self.log_end + 1)?;
                self.log_end += record.len() as u64;
                upload
            }
            at => self.read_upload(at - 1)?,
        };
        let label = link_label(&upload.file_name);
        Ok(Link { markdown: format!("[{label}](/user_uploads/{})", upload.path_id), is_image: is_image(&upload.file_name), upload: upload.id })
    }

    fn read_upload(&self, offset: u64) -> Result<Upload> {
        let mut len = [0u8; 4];
        read_at(&self.log, &mut len, offset).output_ctx(&self.log_path)?;
        let mut body = vec![0; u32::from_le_bytes(len) as usize];
        read_at(&self.log, &mut body, offset + 4).output_ctx(&self.log_path)?;
        Upload::decode(&body)
    }

    /// Records that message `message_id` carries `link`; a link from a public
    /// stream makes the file visible to the whole organisation.
    pub fn attach(&mut self, link: &Link, message_id: u64, public: bool) -> Result<()> {
        self.links.push((link.upload, message_id), |out| {
            out.push(u8::from(public));
            Ok(())
        })
    }

    fn new_upload(&mut self, file: &FileRef, shown_name: &str, owner: u64, time: f64) -> Result<Upload> {
        let file_name = if shown_name.trim().is_empty() { file.file_name().to_string() } else { base_name(shown_name).to_string() };
        let segment = self.unique_segment(&file.path);
        let (file_name, stored) = if self.sanitize {
            let sanitized = zulip_sanitized_name(&file_name);
            let stored = capped(sanitized.clone());
            // 12.x checks that the path ends with the sanitized name it is shown
            // by: a name cut to fit is the name shown.
            (if stored.len() < sanitized.len() { stored.clone() } else { file_name }, stored)
        } else {
            let stored = capped(safe_file_name(&file_name));
            (file_name, stored)
        };
        let path_id = format!("{REALM_ID}/{segment}/{stored}");
        self.files.place(file, &self.out, &Path::new("uploads").join(&path_id))?;
        self.count += 1;
        Ok(Upload { id: self.count, path_id, file_name, owner, size: file.size, create_time: time })
    }

    /// A fixed-length folder name unique to this file: no upload's `path_id` can
    /// then be a substring of another's (the importer rewrites links by substring).
    /// A name is taken when its folder exists: every upload gets its own.
    fn unique_segment(&self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let taken = |segment: &str| std::fs::symlink_metadata(self.out.join("uploads").join(REALM_ID.to_string()).join(segment)).is_ok();
        let mut candidate = hex[..24].to_string();
        let mut n = 0u64;
        while taken(&candidate) {
            n += 1;
            candidate = format!("{}{:08x}", &hex[..16], n);
        }
        candidate
    }

    /// Writes `attachment.json` and `uploads/records.json`, one row at a time (both
    /// grow with the number of attachments), reading the uploads back from the log.
    pub fn finish(self, profile: &FormatProfile) -> Result<()> {
        let mut links = Links { sorted: self.links.finish()?, next: None };
        links.advance()?;
        let mut log = UploadLog::open(&self.log_path)?;
        let attachment_rows = std::iter::from_fn(|| {
            let row = log.next().and_then(|u| u.map(|u| attachment_row(&u, &mut links, profile)).transpose());
            row.map_err(|e| e.to_string()).transpose()
        });
        #[derive(Serialize)]
        struct AttachmentFile<T: Serialize> {
            zerver_attachment: T,
        }
        write_json(&self.out.join("attachment.json"), &AttachmentFile { zerver_attachment: RowStream::new(attachment_rows) })?;
        let mut log = UploadLog::open(&self.log_path)?;
        let record_rows = std::iter::from_fn(|| {
            let row = log.next().map(|u| {
                u.map(|u| {
                    json!({
                        "path": u.path_id, "s3_path": u.path_id, "realm_id": REALM_ID, "user_profile_id": u.owner,
                        "size": u.size, "content_type": content_type(&u.file_name), "last_modified": u.create_time as i64
                    })
                })
            });
            row.map_err(|e| e.to_string()).transpose()
        });
        write_json(&self.out.join("uploads").join("records.json"), &RowStream::new(record_rows))
    }
}

/// The `zerver_attachment` row of `u`, with the messages that link it (taken from
/// `links`, which is sorted by upload).
fn attachment_row(u: &Upload, links: &mut Links, profile: &FormatProfile) -> Result<Value> {
    let mut messages = Vec::new();
    let mut is_realm_public = false;
    while let Some((upload, message, public)) = links.next {
        if upload != u.id {
            break;
        }
        messages.push(message);
        is_realm_public |= public;
        links.advance()?;
    }
    let row = json!({
        "id": u.id, "file_name": u.file_name, "path_id": u.path_id, "owner": u.owner, "realm": REALM_ID,
        "create_time": u.create_time, "size": u.size, "is_realm_public": is_realm_public, "messages": messages
    });
    let mut row = fitted(profile, "zerver_attachment", row)?;
    // 10.x and later read `content_type` of every row (a file that is no image
    // and has none stops the import): the file's type, or null for unknown.
    if let Some(slot) = row.get_mut("content_type") {
        *slot = content_type(&u.file_name);
    }
    Ok(row)
}

/// The message links in (upload, message) order, one looked ahead.
struct Links {
    sorted: Sorted<(u64, u64)>,
    next: Option<(u64, u64, bool)>,
}

impl Links {
    fn advance(&mut self) -> Result<()> {
        self.next = self.sorted.next_record()?.map(|((upload, message), body)| (upload, message, body == [1]));
        Ok(())
    }
}

/// The upload log read from the start, record by record.
struct UploadLog {
    reader: BufReader<File>,
    path: PathBuf,
    body: Vec<u8>,
}

impl UploadLog {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).output_ctx(path)?;
        Ok(UploadLog { reader: BufReader::new(file), path: path.to_path_buf(), body: Vec::new() })
    }

    fn next(&mut self) -> Result<Option<Upload>> {
        let mut len = [0u8; 4];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::output(&self.path, e)),
        }
        self.body.resize(u32::from_le_bytes(len) as usize, 0);
        self.reader.read_exact(&mut self.body).output_ctx(&self.path)?;
        Upload::decode(&self.body).map(Some)
    }
}

/// Rows produced while they are written, so a table never sits whole in memory.
/// A row whose check failed fails the write.
pub struct RowStream<I> {
    rows: std::cell::RefCell<Option<I>>,
}

impl<I> RowStream<I> {
    /// Wraps an iterator of checked rows.
    pub fn new(rows: I) -> Self {
        RowStream { rows: std::cell::RefCell::new(Some(rows)) }
    }
}

impl<I: Iterator<Item = std::result::Result<Value, String>>> Serialize for RowStream<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let rows = self.rows.borrow_mut().take().ok_or_else(|| serde::ser::Error::custom("rows already written"))?;
        serializer.collect_seq(rows.map(CheckedRow))
    }
}

/// A row that was checked against the profile.
struct CheckedRow(std::result::Result<Value, String>);

impl Serialize for CheckedRow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(v) => v.serialize(serializer),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// `row`, built as 3.4 has it, as the profile's release has it; fails when it does
/// not fit the profile (a writer bug, caught before import).
pub fn fitted(profile: &FormatProfile, table: &str, row: Value) -> Result<Value> {
    let Value::Object(map) = row else { return Err(Error::new(ErrorKind::Other, format!("{table} row is not an object"))) };
    let map = profile.fit(table, map);
    profile.check_row(table, &map).map_err(|e| Error::new(ErrorKind::Other, e))?;
    Ok(Value::Object(map))
}

/// Writes every avatar as `<realm>/<user>.original` with `importer_should_thumbnail`
/// and returns the records; marks the users that got one. The importer makes the
/// small `.png` and the `-medium.png` from it (`ensure_basic_avatar_image` skips a
/// `.png` that exists, so one written here would be served as it is: full size, and
/// a JPEG under a PNG name).
pub fn write_avatars(out: &Path, files: &FileStore, users: &BTreeMap<u64, &User>, plan: &mut Plan, report: &mut Report) -> Result<()> {
    let dir = out.join("avatars");
    create_dirs_below(out, &dir).output_ctx(&dir)?;
    let mut records = Vec::new();
    for (hipchat_id, user) in users {
        let Some(avatar) = &user.avatar else { continue };
        let Some(index) = plan.by_hipchat.get(hipchat_id).copied() else { continue };
        let zid = plan.users[index].id;
        let time = user.created.map_or(plan.epoch, |t| t.seconds_f64()) as i64;
        let rel = format!("{REALM_ID}/{zid}.original");
        files.place(avatar, &dir, Path::new(&rel))?;
        records.push(json!({
            "path": rel, "s3_path": rel, "realm_id": REALM_ID, "user_profile_id": zid,
            "content_type": content_type(avatar.file_name()), "avatar_version": 1, "last_modified": time, "size": avatar.size,
            "importer_should_thumbnail": true
        }));
        plan.users[index].has_avatar = true;
        report.written(Entity::Avatar);
    }
    write_json(&dir.join("records.json"), &records)
}

/// Emoji names Zulip accepts and renders: the model allows `[0-9a-z.\-_]` not
/// ending in `.`, `-` or `_`, and the Markdown syntax `:[\w\-\+]+:` has no `.`,
/// so letters, digits, `-` and `_` only.
pub fn emoji_name(shortcut: &str) -> String {
    let lowered: String = shortcut.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).collect();
    lowered.trim_end_matches(['-', '_']).to_string()
}

/// Writes custom emoticons as realm emoji (largest image, an owner as author);
/// returns the `zerver_realmemoji` rows.
pub fn write_emoji(out: &Path, files: &FileStore, emoticons: &[Emoticon], plan: &mut Plan, profile: &FormatProfile, report: &mut Report) -> Result<Vec<Value>> {
    let dir = out.join("emoji");
    create_dirs_below(out, &dir).output_ctx(&dir)?;
    let author = plan.users.iter().find(|u| u.is_active && u.role == profile.roles.owner).map(|u| u.id);
    let mut names = UniqueNames::new();
    let mut sorted: Vec<&Emoticon> = emoticons.iter().collect();
    sorted.sort_by(|a, b| a.shortcut.cmp(&b.shortcut).then(a.id.cmp(&b.id)));
    let (mut rows, mut records) = (Vec::new(), Vec::new());
    for e in sorted {
        let Some(image) = e.images.last() else { continue };
        let base = emoji_name(&e.shortcut);
        let base = if base.is_empty() { format!("emoji-{}", e.id) } else { base };
        let name = names.claim(&base, 100);
        if name != e.shortcut {
            report.rename(Entity::Emoticon, e.id.to_string(), &e.shortcut, &name, "Zulip emoji names are lowercase letters, digits, '-' and '_', unique");
        }
        let ext = image.file_name().rsplit_once('.').map_or("png".to_string(), |(_, x)| x.to_ascii_lowercase());
        let file_name = format!("{name}.{ext}");
        let rel = format!("{REALM_ID}/{}/{file_name}", profile.emoji_dir);
        files.place(image, &dir, Path::new(&rel))?;
        let id = rows.len() as u64 + 1;
        let row = fitted(profile, "zerver_realmemoji", json!({"id": id, "author": author, "realm": REALM_ID, "name": name, "file_name": file_name, "deactivated": false}))?;
        rows.push(row);
        records.push(json!({"path": rel, "s3_path": rel, "file_name": file_name, "realm_id": REALM_ID, "name": name}));
        plan.rewriter.emoticon(&e.shortcut, format!(":{name}:"));
        plan.link_targets.add_emoji(&name);
        report.written(Entity::Emoticon);
    }
    write_json(&dir.join("records.json"), &records)?;
    Ok(rows)
}

/// Writes `value` as JSON at `path` (whose folder exists), deterministic and compact.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let file = std::fs::File::create(path).output_ctx(path)?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, value).map_err(|e| Error::output(path, e))?;
    std::io::Write::write_all(&mut w, b"\n").output_ctx(path)?;
    std::io::Write::flush(&mut w).output_ctx(path)
}

/// The last path component of a name that may carry folders.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Zulip's `sanitize_name` (10.x–12.x `zerver/lib/upload`, the importer's
/// non-strict form) of the base name of `name`: NFKC; keep word characters (letters
/// and numbers by general category, `_`), white space, `.` and `-`; strip white
/// space at both ends; each run of `-` and white space becomes one `-`; nothing,
/// `.` or `..` becomes `uploaded-file`. Its result is its own sanitized form, so
/// 12.x's check that `path_id` ends with the sanitized file name holds, and 10.x
/// and 11.x, which rename an upload to it on import, keep the name.
fn zulip_sanitized_name(name: &str) -> String {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    use unicode_normalization::UnicodeNormalization;
    // Python's `str.isspace()`, which `\s` and `strip()` follow: Unicode white space
    // and the four information separators.
    let is_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let is_word = |c: char| {
        c == '_' || matches!(get_general_category(c), G::UppercaseLetter | G::LowercaseLetter | G::TitlecaseLetter | G::ModifierLetter | G::OtherLetter | G::DecimalNumber | G::LetterNumber | G::OtherNumber)
    };
    let kept: String = base_name(name).nfkc().filter(|c| is_word(*c) || is_space(*c) || matches!(c, '.' | '-')).collect();
    let mut out = String::with_capacity(kept.len());
    for c in kept.trim_matches(is_space).chars() {
        if c == '-' || is_space(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    if matches!(out.as_str(), "" | "." | "..") { "uploaded-file".to_string() } else { out }
}

/// At most [`MAX_NAME_BYTES`] bytes of `name`, cut at a character boundary before
/// its extension (file systems take 255 bytes a name). A name that was its own
/// sanitized form stays so: the cut adds no character.
fn capped(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => (stem, Some(ext)),
        _ => (name.as_str(), None),
    };
    let room = MAX_NAME_BYTES - ext.map_or(0, |e| e.len() + 1);
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    match ext {
        Some(ext) => format!("{}.{ext}", &stem[..cut]),
        None => stem[..cut].to_string(),
    }
}

/// The longest file name hcconv gives an upload, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// A file name safe in a path and a URL: ASCII letters, digits, `.`, `-`, `_`.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = base_name(name).chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' }).collect();
    let cleaned = cleaned.trim_matches(['.', '-']).to_string();
    if cleaned.is_empty() { "file".to_string() } else { cleaned }
}

/// Link text without the characters that would end a Markdown link label.
fn link_label(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '[' | ']') { '_' } else { c }).collect()
}

fn is_image(name: &str) -> bool {
    matches!(extension(name).as_str(), "png" | "jpg" | "jpeg" | "gif" | "bmp" | "webp")
}

fn extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, x)| x.to_ascii_lowercase()).unwrap_or_default()
}

/// A MIME type from the extension, or null (the importer then guesses).
fn content_type(name: &str) -> Value {
    let t = match extension(name).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        _ => return Value::Null,
    };
    json!(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writers::pixtoome::profile::ZULIP_3_4;

    #[test]
    fn emoji_names_fit_the_model_regex() {
        assert_eq!(emoji_name("hcdc"), "hcdc");
        assert_eq!(emoji_name("Party Parrot!"), "party_parrot");
        assert_eq!(emoji_name("___"), "");
        assert_eq!(emoji_name("a.b"), "a_b");
    }

    /// The upload bookkeeping kept on disk: a file met again is the same upload
    /// (same link, the first name kept), its messages are listed in order, and one
    /// link from a public stream makes it public.
    #[test]
    fn a_file_linked_twice_is_one_upload_with_both_messages() {
        let (scratch, stage, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut store = FileStore::staged(stage.path()).with_scratch(scratch.path());
        store.add("rooms/1/files/k1/a b.png", &mut &b"png"[..], 3).unwrap();
        store.add("rooms/1/files/k2/doc.pdf", &mut &b"pdf!"[..], 4).unwrap();
        store.seal().unwrap();
        let files = Arc::new(store);
        let (a, b) = (files.get("rooms/1/files/k1/a b.png").unwrap().unwrap(), files.get("rooms/1/files/k2/doc.pdf").unwrap().unwrap());
        let mut uploads = Uploads::new(out.path(), Arc::clone(&files), scratch.path(), &ZULIP_3_4).unwrap();
        let first = uploads.prepare(&a, "a b.png", 10, 1.5).unwrap();
        uploads.attach(&first, 1, false).unwrap();
        let other = uploads.prepare(&b, "", 11, 2.0).unwrap();
        uploads.attach(&other, 2, false).unwrap();
        let again = uploads.prepare(&a, "renamed.png", 12, 3.0).unwrap();
        uploads.attach(&again, 3, true).unwrap();
        assert_eq!(first.markdown, again.markdown);
        assert!(first.is_image && !other.is_image);
        assert!(first.markdown.starts_with("[a b.png](/user_uploads/1/"), "{}", first.markdown);
        uploads.finish(super::super::profile::profile(Default::default())).unwrap();
        let read = |p: &str| -> Value { serde_json::from_slice(&std::fs::read(out.path().join(p)).unwrap()).unwrap() };
        let rows = read("attachment.json")["zerver_attachment"].clone();
        type Facts<'a> = (u64, &'a str, u64, f64, bool, Vec<u64>);
        let facts: Vec<Facts> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_u64().unwrap(), r["file_name"].as_str().unwrap(), r["owner"].as_u64().unwrap(), r["create_time"].as_f64().unwrap(), r["is_realm_public"].as_bool().unwrap(), serde_json::from_value(r["messages"].clone()).unwrap()))
            .collect();
        assert_eq!(facts, vec![(1, "a b.png", 10, 1.5, true, vec![1, 3]), (2, "doc.pdf", 11, 2.0, false, vec![2])]);
        let records = read("uploads/records.json");
        for (row, record) in rows.as_array().unwrap().iter().zip(records.as_array().unwrap()) {
            assert_eq!(row["path_id"], record["path"]);
            assert_eq!(std::fs::read(out.path().join("uploads").join(record["path"].as_str().unwrap())).unwrap().len() as u64, record["size"].as_u64().unwrap());
        }
        assert_eq!(records.as_array().unwrap().len(), 2);
    }

    #[test]
    fn file_names_are_path_safe() {
        assert_eq!(safe_file_name("a/b/My File (1).png"), "My-File--1-.png");
        assert_eq!(safe_file_name("../.."), "file");
        assert_eq!(link_label("x[1].png"), "x_1_.png");
    }

    /// Each case is what Zulip's `sanitize_name` gives (run in Python 3.11 on the
    /// 10.0 source; the same function in 12.x).
    #[test]
    fn upload_names_are_zulips_sanitized_names() {
        for (name, zulip) in [
            ("naïve café.png", "naïve-café.png"),
            ("  a -- b .txt ", "a-b-.txt"),
            ("Ｆｕｌｌ\u{3000}width.PNG", "Full-width.PNG"),
            ("a\u{a0}b.png", "a-b.png"),
            ("中文 文件.doc", "中文-文件.doc"),
            ("\u{fb01}le.txt", "file.txt"),
            ("-lead.", "-lead."),
            ("..", "uploaded-file"),
            ("?!", "uploaded-file"),
            ("My File (1).png", "My-File-1.png"),
            ("e\u{301}t\u{e9}.txt", "été.txt"),
            ("x\u{1c}y_z.md", "x-y_z.md"),
            ("क्षेत्र.pdf", "कषतर.pdf"),
        ] {
            assert_eq!(zulip_sanitized_name(name), zulip, "{name:?}");
            assert_eq!(zulip_sanitized_name(zulip), zulip, "its own sanitized form: {zulip:?}");
        }
        assert_eq!(zulip_sanitized_name("dir/sub\\x?.pdf"), "x.pdf", "the base name only");
    }

    #[test]
    fn long_names_are_cut_before_their_extension() {
        let long = format!("{}.png", "é".repeat(150));
        let cut = capped(zulip_sanitized_name(&long));
        assert!(cut.len() <= MAX_NAME_BYTES && cut.ends_with(".png") && cut.starts_with('é'), "{cut}");
        assert_eq!(zulip_sanitized_name(&cut), cut);
        assert_eq!(capped("short.txt".into()), "short.txt");
        assert_eq!(capped("x".repeat(300)).len(), MAX_NAME_BYTES);
    }
}
