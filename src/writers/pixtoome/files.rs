//! The file side of the import: uploads (message attachments), avatars and custom
//! emoji, each a folder with a `records.json` the importer reads unconditionally.
//!
//! Facts from Zulip 3.4 `import_realm.py` `import_uploads`: a record's `path` is
//! relative to its folder; upload records map `s3_path` (the attachment's
//! `path_id`) to the new location and every message with `has_attachment` gets
//! that string replaced in its text; avatar records whose `s3_path` ends in
//! `.original` are thumbnailed (with `importer_should_thumbnail` the small `.png`
//! is made again from the original); emoji land at `<realm>/emoji/images/<file_name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::convert::names::UniqueNames;
use crate::error::{Error, OutputContext, Result};
use crate::files::FileStore;
use crate::model::{Emoticon, FileRef, User};
use crate::report::{Entity, Report};

use super::plan::{Plan, REALM_ID};
use super::profile::FormatProfile;

/// One attachment row in the making: a file and every message that links it.
#[derive(Debug)]
struct Upload {
    id: u64,
    path_id: String,
    file_name: String,
    owner: u64,
    size: u64,
    create_time: f64,
    is_realm_public: bool,
    messages: Vec<u64>,
}

/// Message attachments, placed under `uploads/` as they are met.
pub struct Uploads {
    out: PathBuf,
    files: Arc<FileStore>,
    by_file: BTreeMap<String, Upload>,
    segments: BTreeSet<String>,
}

/// What a message needs to link an upload.
pub struct Link {
    /// `[name](/user_uploads/<path_id>)`.
    pub markdown: String,
    /// The file is an image (Zulip's `has_image`).
    pub is_image: bool,
}

impl Uploads {
    /// Uploads written below `out/uploads`.
    pub fn new(out: &Path, files: Arc<FileStore>) -> Self {
        Uploads { out: out.to_path_buf(), files, by_file: BTreeMap::new(), segments: BTreeSet::new() }
    }

    /// The Markdown link for `file`; the first call places the file and fixes its
    /// `path_id`. Call [`Uploads::attach`] with the message that carries the link.
    pub fn prepare(&mut self, file: &FileRef, shown_name: &str, sender: u64, time: f64) -> Result<Link> {
        if !self.by_file.contains_key(&file.path) {
            let upload = self.new_upload(file, shown_name, sender, time)?;
            self.by_file.insert(file.path.clone(), upload);
        }
        let upload = &self.by_file[&file.path];
        let label = link_label(&upload.file_name);
        Ok(Link { markdown: format!("[{label}](/user_uploads/{})", upload.path_id), is_image: is_image(&upload.file_name) })
    }

    /// Records that message `message_id` links `file` (prepared before); a link
    /// from a public stream makes the file visible to the whole organisation.
    pub fn attach(&mut self, file: &FileRef, message_id: u64, public: bool) {
        if let Some(upload) = self.by_file.get_mut(&file.path) {
            upload.messages.push(message_id);
            upload.is_realm_public |= public;
        }
    }

    fn new_upload(&mut self, file: &FileRef, shown_name: &str, owner: u64, time: f64) -> Result<Upload> {
        let file_name = if shown_name.trim().is_empty() { file.file_name().to_string() } else { base_name(shown_name).to_string() };
        let segment = self.unique_segment(&file.path);
        let path_id = format!("{REALM_ID}/{segment}/{}", safe_file_name(&file_name));
        self.files.place(file, &self.out.join("uploads").join(&path_id))?;
        Ok(Upload { id: self.by_file.len() as u64 + 1, path_id, file_name, owner, size: file.size, create_time: time, is_realm_public: false, messages: Vec::new() })
    }

    /// A fixed-length folder name unique to this file: no upload's `path_id` can
    /// then be a substring of another's (the importer rewrites links by substring).
    fn unique_segment(&mut self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let mut candidate = hex[..24].to_string();
        let mut n = 0u64;
        while self.segments.contains(&candidate) {
            n += 1;
            candidate = format!("{}{:08x}", &hex[..16], n);
        }
        self.segments.insert(candidate.clone());
        candidate
    }

    /// Writes `attachment.json` and `uploads/records.json`, one row at a time (both
    /// grow with the number of attachments).
    pub fn finish(self, profile: &FormatProfile) -> Result<()> {
        let mut uploads: Vec<&Upload> = self.by_file.values().collect();
        uploads.sort_by_key(|u| u.id);
        let attachment_rows = || {
            uploads.iter().map(|u| {
                let row = json!({
                    "id": u.id, "file_name": u.file_name, "path_id": u.path_id, "owner": u.owner, "realm": REALM_ID,
                    "create_time": u.create_time, "size": u.size, "is_realm_public": u.is_realm_public, "messages": u.messages
                });
                check(profile, "zerver_attachment", &row).map(|_| row).map_err(|e| e.to_string())
            })
        };
        let record_rows = || {
            uploads.iter().map(|u| {
                Ok(json!({
                    "path": u.path_id, "s3_path": u.path_id, "realm_id": REALM_ID, "user_profile_id": u.owner,
                    "size": u.size, "content_type": content_type(&u.file_name), "last_modified": u.create_time as i64
                }))
            })
        };
        #[derive(Serialize)]
        struct AttachmentFile<T: Serialize> {
            zerver_attachment: T,
        }
        write_json(&self.out.join("attachment.json"), &AttachmentFile { zerver_attachment: RowStream::new(attachment_rows()) })?;
        write_json(&self.out.join("uploads").join("records.json"), &RowStream::new(record_rows()))
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

/// Fails when a row does not fit the profile (a writer bug, caught before import).
pub fn check(profile: &FormatProfile, table: &str, row: &Value) -> Result<()> {
    let map = row.as_object().ok_or_else(|| Error::new(crate::error::ErrorKind::Other, format!("{table} row is not an object")))?;
    profile.check_row(table, map).map_err(|e| Error::new(crate::error::ErrorKind::Other, e))
}

/// Writes every avatar as `<realm>/<user>.png` plus `.original` and returns the
/// records; marks the users that got one.
pub fn write_avatars(out: &Path, files: &FileStore, users: &BTreeMap<u64, &User>, plan: &mut Plan, report: &mut Report) -> Result<()> {
    let dir = out.join("avatars");
    std::fs::create_dir_all(&dir).output_ctx(&dir)?;
    let mut records = Vec::new();
    for (hipchat_id, user) in users {
        let Some(avatar) = &user.avatar else { continue };
        let Some(index) = plan.by_hipchat.get(hipchat_id).copied() else { continue };
        let zid = plan.users[index].id;
        let time = user.created.map_or(plan.epoch, |t| t.seconds_f64()) as i64;
        for (suffix, thumbnail) in [("png", false), ("original", true)] {
            let rel = format!("{REALM_ID}/{zid}.{suffix}");
            files.place(avatar, &dir.join(&rel))?;
            let mut record = json!({
                "path": rel, "s3_path": rel, "realm_id": REALM_ID, "user_profile_id": zid,
                "content_type": content_type(avatar.file_name()), "avatar_version": 1, "last_modified": time, "size": avatar.size
            });
            if thumbnail {
                record["importer_should_thumbnail"] = json!(true);
            }
            records.push(record);
        }
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
    std::fs::create_dir_all(&dir).output_ctx(&dir)?;
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
        files.place(image, &dir.join(&rel))?;
        let id = rows.len() as u64 + 1;
        let row = json!({"id": id, "author": author, "realm": REALM_ID, "name": name, "file_name": file_name, "deactivated": false});
        check(profile, "zerver_realmemoji", &row)?;
        rows.push(row);
        records.push(json!({"path": rel, "s3_path": rel, "file_name": file_name, "realm_id": REALM_ID, "name": name}));
        plan.rewriter.emoticon(&e.shortcut, format!(":{name}:"));
        report.written(Entity::Emoticon);
    }
    write_json(&dir.join("records.json"), &records)?;
    Ok(rows)
}

/// Writes `value` as JSON at `path` (creating folders), deterministic and compact.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).output_ctx(parent)?;
    }
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

    #[test]
    fn emoji_names_fit_the_model_regex() {
        assert_eq!(emoji_name("hcdc"), "hcdc");
        assert_eq!(emoji_name("Party Parrot!"), "party_parrot");
        assert_eq!(emoji_name("___"), "");
        assert_eq!(emoji_name("a.b"), "a_b");
    }

    #[test]
    fn file_names_are_path_safe() {
        assert_eq!(safe_file_name("a/b/My File (1).png"), "My-File--1-.png");
        assert_eq!(safe_file_name("../.."), "file");
        assert_eq!(link_label("x[1].png"), "x_1_.png");
    }
}
