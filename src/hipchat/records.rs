//! users.json, rooms.json, emoticons.json and autojoins.json records.
//!
//! Each parser takes one array element (already streamed out of its file) and returns
//! a model value, accepting every shape HIPCHAT.md lists: wrapped or bare objects,
//! members as ids or objects, ids as numbers or strings, null e-mails, avatars as a
//! path or inline base64.

use serde_json::{Map, Value};

use super::fields::{embedded_json, flag, id, id_list, opt_text, text, unwrap};
use super::time::timestamp_from_json;
use crate::model::{AccountType, Privacy, Room, User};

/// Where a user's avatar comes from, before the export's files are known.
#[derive(Clone, Debug, PartialEq)]
pub enum AvatarSource {
    /// A path as users.json gives it (`files/photos/<id>/<file>`).
    Path(String),
    /// Inline image bytes (base64 in users.json, decoded).
    Inline(Vec<u8>),
    /// Inline data that is not valid base64.
    Invalid(String),
}

/// Parses one users.json element; `None` when it has no usable id.
pub fn parse_user(value: &Value) -> Option<(User, Option<AvatarSource>)> {
    let (_, u) = unwrap(value)?;
    let uid = id(u, "id")?;
    let account_type = match text(u, "account_type").to_ascii_lowercase().as_str() {
        "admin" => AccountType::Admin,
        "user" | "" => AccountType::User,
        "guest" => AccountType::Guest,
        other => AccountType::Other(other.to_string()),
    };
    let roles = match u.get("roles") {
        Some(Value::Array(r)) => r.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => s.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let user = User {
        id: uid,
        name: text(u, "name"),
        mention_name: text(u, "mention_name").trim_start_matches('@').to_string(),
        email: opt_text(u, "email").map(|e| e.trim().to_string()),
        title: text(u, "title"),
        avatar: None,
        created: u.get("created").and_then(timestamp_from_json),
        is_deleted: flag(u, "is_deleted"),
        timezone: opt_text(u, "timezone"),
        account_type,
        roles,
        is_placeholder: false,
        username: None,
    };
    Some((user, avatar_source(u)))
}

/// An avatar is a path (`files/photos/1/x.jpg`, or already `users/1/avatars/x.jpg`)
/// or a base64 image with embedded newlines.
fn avatar_source(u: &Map<String, Value>) -> Option<AvatarSource> {
    let raw = opt_text(u, "avatar")?;
    let trimmed = raw.trim();
    let looks_like_path = trimmed.len() < 1024 && !trimmed.contains('\n') && (trimmed.contains('/') || trimmed.contains('.'));
    if looks_like_path && !trimmed.starts_with("data:") {
        return Some(AvatarSource::Path(trimmed.to_string()));
    }
    let b64 = trimmed.split_once("base64,").map_or(trimmed, |(_, rest)| rest);
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(compact.trim_end_matches('=')).or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('='))) {
        Ok(bytes) if !bytes.is_empty() => Some(AvatarSource::Inline(bytes)),
        _ => Some(AvatarSource::Invalid(format!("avatar is neither a path nor base64 ({} characters)", trimmed.len()))),
    }
}

/// The archive paths where an avatar named in users.json may be, best first.
pub fn avatar_candidates(user_id: u64, declared: &str) -> Vec<String> {
    let clean = declared.trim_start_matches('/');
    let file = clean.rsplit('/').next().unwrap_or(clean);
    vec![format!("users/{user_id}/avatars/{file}"), clean.to_string()]
}

/// A file extension for inline image bytes, by magic number.
pub fn image_extension(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => "png",
        [0xff, 0xd8, ..] => "jpg",
        [b'G', b'I', b'F', ..] => "gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "webp",
        _ => "bin",
    }
}

/// Parses one rooms.json element; `None` when it has no usable id.
pub fn parse_room(value: &Value) -> Option<Room> {
    let (_, r) = unwrap(value)?;
    let rid = id(r, "id")?;
    let mut admins = id_list(r, "room_admins");
    // "room_roles flavour" (Server 2.2.9): members as objects carrying their roles.
    if let Some(Value::Array(members)) = r.get("members") {
        for m in members.iter().filter_map(Value::as_object) {
            let is_admin = match m.get("room_roles") {
                Some(Value::Array(roles)) => roles.iter().any(|x| x.as_str().is_some_and(|s| s.contains("admin"))),
                _ => false,
            };
            if let (true, Some(mid)) = (is_admin, id(m, "id")) {
                admins.push(mid);
            }
        }
    }
    admins.sort_unstable();
    admins.dedup();
    let privacy = if text(r, "privacy").eq_ignore_ascii_case("private") { Privacy::Private } else { Privacy::Public };
    Some(Room {
        id: rid,
        name: text(r, "name"),
        canonical_name: text(r, "canonical_name"),
        created: r.get("created").and_then(timestamp_from_json),
        owner: id(r, "owner").filter(|o| *o != 0),
        privacy,
        is_archived: flag(r, "is_archived"),
        is_deleted: flag(r, "is_deleted"),
        topic: text(r, "topic"),
        guest_access_url: opt_text(r, "guest_access_url"),
        members: id_list(r, "members"),
        participants: id_list(r, "participants"),
        admins,
        autojoined_by: Vec::new(),
        is_placeholder: false,
    })
}

/// An emoticons.json record before its image files are looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct EmoticonRecord {
    /// Id (`ID` or `id`).
    pub id: u64,
    /// Shortcut without parentheses.
    pub shortcut: String,
    /// Uploader.
    pub user_id: Option<u64>,
    /// Path as given (relative to `files/img/emoticons/` in hc-migrate exports).
    pub path: String,
    /// Declared width.
    pub width: Option<u32>,
    /// Declared height.
    pub height: Option<u32>,
}

/// Parses one emoticon, from `{"Emoticons":[{…}]}` or `[{"Emoticon":{…}}]`.
pub fn parse_emoticon(value: &Value) -> Option<EmoticonRecord> {
    let (_, e) = unwrap(value)?;
    let shortcut = text(e, "shortcut").trim().trim_start_matches('(').trim_end_matches(')').to_string();
    let path = text(e, "path");
    if shortcut.is_empty() && path.is_empty() {
        return None;
    }
    Some(EmoticonRecord {
        id: id(e, "ID").or_else(|| id(e, "id")).unwrap_or(0),
        shortcut,
        user_id: id(e, "user_id").filter(|u| *u != 0),
        path,
        width: id(e, "width").and_then(|w| u32::try_from(w).ok()),
        height: id(e, "height").and_then(|h| u32::try_from(h).ok()),
    })
}

/// Where an emoticon image may be, best first: hc-migrate puts it under
/// `files/img/emoticons/` (the path is relative to that), older exports at the root.
pub fn emoticon_candidates(path: &str) -> Vec<String> {
    let clean = path.trim_start_matches('/');
    let mut out = vec![format!("files/img/emoticons/{clean}"), clean.to_string()];
    if let Some(file) = clean.rsplit('/').next().filter(|f| *f != clean) {
        out.push(format!("files/img/emoticons/{file}"));
    }
    out
}

/// Splits `name.ext` / `name@2x.ext` into the stem shared by all sizes and the scale.
pub fn emoticon_scale(file_name: &str) -> (String, u32) {
    let (stem, ext) = file_name.rsplit_once('.').unwrap_or((file_name, ""));
    for scale in [2u32, 3, 4] {
        if let Some(base) = stem.strip_suffix(&format!("@{scale}x")) {
            return (format!("{base}.{ext}"), scale);
        }
    }
    (file_name.to_string(), 1)
}

/// One autojoin target: a room (or conversation) a user re-joins on login.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoJoinTarget {
    /// The user.
    pub user_id: u64,
    /// JID of the room or conversation.
    pub jid: String,
    /// Display name.
    pub name: String,
}

/// Parses one autojoins.json element (`{"id":"pref:autoJoin:1","data":"[…]"}`).
pub fn parse_autojoin(value: &Value) -> Vec<AutoJoinTarget> {
    let Some((_, a)) = unwrap(value) else { return Vec::new() };
    let user_id = id(a, "user_id").or_else(|| text(a, "id").rsplit(':').next().and_then(|s| s.parse().ok()));
    let Some(user_id) = user_id else { return Vec::new() };
    let Some(Value::Array(items)) = embedded_json(a.get("data")) else { return Vec::new() };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|o| AutoJoinTarget { user_id, jid: text(o, "jid"), name: text(o, "name") })
        .filter(|t| !t.jid.is_empty() || !t.name.is_empty())
        .collect()
}

/// The room part of a conference JID: `1_dev_ops@conf.x` → `dev_ops`; `None` for a
/// person's JID (`1_2@chat.x`), which autojoins use for open 1:1 chats.
pub fn room_jid_name(jid: &str) -> Option<&str> {
    let (local, domain) = jid.split_once('@').unwrap_or((jid, ""));
    if !domain.is_empty() && !domain.starts_with("conf") {
        return None;
    }
    Some(local.split_once('_').map_or(local, |(group, rest)| if group.bytes().all(|b| b.is_ascii_digit()) { rest } else { local }))
}

/// Parses a user's `metadata` (a JSON string) for reports; unused by writers.
pub fn user_metadata(value: &Value) -> Option<Value> {
    let (_, u) = unwrap(value)?;
    embedded_json(u.get("metadata"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_with_null_email_and_inline_avatar() {
        let v = json!({"User": {"id": "7", "name": "G", "mention_name": "@G", "email": null,
            "account_type": "guest", "avatar": "iVBORw0K\nGgoAAAAN", "roles": ["user"]}});
        let (u, avatar) = parse_user(&v).unwrap();
        assert_eq!(u.id, 7);
        assert_eq!(u.email, None);
        assert_eq!(u.mention_name, "G");
        assert!(u.is_guest());
        assert!(matches!(avatar, Some(AvatarSource::Inline(b)) if b.starts_with(&[0x89, b'P', b'N', b'G'])));
    }

    #[test]
    fn user_avatar_path_resolves_to_avatars_folder() {
        let (_, a) = parse_user(&json!({"User": {"id": 1, "avatar": "files/photos/1/Pr.jpg"}})).unwrap();
        let Some(AvatarSource::Path(p)) = a else { panic!() };
        assert_eq!(avatar_candidates(1, &p)[0], "users/1/avatars/Pr.jpg");
    }

    #[test]
    fn room_members_as_ids_or_objects() {
        let ids = parse_room(&json!({"Room": {"id": 1, "members": [1, 2], "privacy": "private"}})).unwrap();
        assert_eq!(ids.members, vec![1, 2]);
        assert_eq!(ids.privacy, Privacy::Private);
        let objs = parse_room(&json!({"Room": {"id": 2, "members": [{"id": 3, "mention_name": "x", "room_roles": ["room_admin"]}], "room_admins": [4]}})).unwrap();
        assert_eq!(objs.members, vec![3]);
        assert_eq!(objs.admins, vec![3, 4]);
    }

    #[test]
    fn emoticons_in_both_shapes() {
        let a = parse_emoticon(&json!({"ID": 217, "path": "1/hcdc.jpg", "shortcut": "hcdc"})).unwrap();
        let b = parse_emoticon(&json!({"Emoticon": {"id": 5, "path": "x.png", "shortcut": "(x)"}})).unwrap();
        assert_eq!((a.id, a.shortcut.as_str()), (217, "hcdc"));
        assert_eq!((b.id, b.shortcut.as_str()), (5, "x"));
        assert_eq!(emoticon_candidates("1/hcdc.jpg")[0], "files/img/emoticons/1/hcdc.jpg");
        assert_eq!(emoticon_scale("hcdc-1@3x.jpg"), ("hcdc-1.jpg".to_string(), 3));
    }

    #[test]
    fn autojoin_data_string() {
        let v = json!({"id": "pref:autoJoin:1", "data": "[{\"jid\":\"1_default@conf.btf.hipchat.com\",\"name\":\"Default\"},{\"jid\":\"1_1@chat.btf.hipchat.com\",\"name\":\"HCDC User\"}]"});
        let t = parse_autojoin(&v);
        assert_eq!(t.len(), 2);
        assert_eq!(room_jid_name(&t[0].jid), Some("default"));
        assert_eq!(room_jid_name(&t[1].jid), None);
    }
}
