//! An independent checker of Mattermost bulk-import lines against the rules in
//! FORMATS.md section 1 (the server's validators plus the import's ordering and
//! identity behaviour). It shares no code with the writer on purpose: a rule the
//! writer gets wrong must fail here.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Reserved team-name prefixes (server `IsReservedTeamName`).
const TEAM_RESERVED_PREFIXES: &[&str] = &["admin", "api", "boards", "channel", "claim", "error", "files", "help", "landing", "login", "mfa", "oauth", "playbooks", "plug", "plugins", "post", "signup"];
/// Usernames the server refuses, plus `here`.
const RESERVED_USERNAMES: &[&str] = &["all", "channel", "here", "matterbot", "system"];
/// Post types `Post.IsValid` accepts (besides the `custom_` prefix).
const POST_TYPES: &[&str] = &[
    "", "system_generic", "system_join_leave", "system_auto_responder", "system_add_remove", "system_join_channel", "system_guest_join_channel", "system_leave_channel",
    "system_join_team", "system_leave_team", "system_add_to_channel", "system_add_guest_to_chan", "system_remove_from_channel", "system_move_channel", "system_add_to_team",
    "system_remove_from_team", "slack_attachment", "system_header_change", "system_purpose_change", "system_displayname_change", "system_convert_channel",
    "system_channel_deleted", "system_channel_restored", "system_change_chan_privacy", "add_bot_teams_channels", "reminder", "me",
];
/// Direct posts are checked against 4000 runes by `mmctl import validate`.
const DIRECT_MAX_RUNES: usize = 4000;

/// Where a line type may appear: the importer's segment order.
fn rank(kind: &str) -> Option<u8> {
    Some(match kind {
        "version" => 0,
        "scheme" => 1,
        "emoji" => 2,
        "team" => 3,
        "channel" => 4,
        "user" => 5,
        "post" => 6,
        "direct_channel" => 7,
        "direct_post" => 8,
        _ => return None,
    })
}

/// Everything defined so far, and every identity seen.
#[derive(Default)]
pub struct Checker {
    data_dir: PathBuf,
    max_post_runes: usize,
    last_rank: u8,
    teams: HashSet<String>,
    channels: HashSet<(String, String)>,
    users: HashSet<String>,
    emails: HashSet<String>,
    emoji: HashSet<String>,
    direct_channels: HashSet<Vec<String>>,
    post_keys: HashSet<(String, String, i64, String)>,
    direct_keys: HashSet<(Vec<String>, i64, String)>,
    /// Every error found, as `line N: problem`.
    pub errors: Vec<String>,
    /// Every attachment/image path referenced (relative to data/).
    pub referenced: BTreeSet<String>,
}

impl Checker {
    /// A checker for an import whose files are under `data_dir`, split at `max_post_runes`.
    pub fn new(data_dir: &Path, max_post_runes: usize) -> Self {
        Checker { data_dir: data_dir.to_path_buf(), max_post_runes, ..Default::default() }
    }

    /// Checks the whole JSONL text.
    pub fn check_all(&mut self, jsonl: &str) {
        if !jsonl.ends_with('\n') {
            self.errors.push("file does not end with a newline".into());
        }
        for (i, line) in jsonl.lines().enumerate() {
            self.check_line(i + 1, line);
        }
    }

    fn err(&mut self, n: usize, msg: impl Into<String>) {
        self.errors.push(format!("line {n}: {}", msg.into()));
    }

    fn check_line(&mut self, n: usize, line: &str) {
        if line.trim().is_empty() {
            return self.err(n, "empty line");
        }
        if line.len() > 16 * 1024 * 1024 {
            self.err(n, "line longer than 16 MiB");
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return self.err(n, format!("not JSON: {e}")),
        };
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        let Some(r) = rank(&kind) else { return self.err(n, format!("unknown line type {kind:?}")) };
        if n == 1 && (kind != "version" || v["version"] != 1) {
            self.err(n, "first line must be {\"type\":\"version\",\"version\":1}");
        }
        if n > 1 && kind == "version" {
            self.err(n, "second version line");
        }
        if r < self.last_rank {
            self.err(n, format!("{kind} line after a later segment (order version, emoji, team, channel, user, post, direct_channel, direct_post)"));
        }
        self.last_rank = r;
        let body = &v[kind.as_str()];
        if kind != "version" && !body.is_object() {
            return self.err(n, format!("{kind} line without a {kind} object"));
        }
        match kind.as_str() {
            "emoji" => self.emoji(n, body),
            "team" => self.team(n, body),
            "channel" => self.channel(n, body),
            "user" => self.user(n, body),
            "post" => self.post(n, body),
            "direct_channel" => self.direct_channel(n, body),
            "direct_post" => self.direct_post(n, body),
            _ => {}
        }
    }

    fn emoji(&mut self, n: usize, e: &Value) {
        let name = s(e, "name");
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+')) {
            self.err(n, format!("emoji name {name:?} invalid"));
        }
        for system in ["smile", "+1", "thumbsup", "cake", "beer", "100"] {
            if name == system {
                self.err(n, format!("emoji name {name:?} is a system emoji"));
            }
        }
        if !self.emoji.insert(name.to_string()) {
            self.err(n, format!("emoji {name:?} defined twice"));
        }
        let image = s(e, "image").to_string();
        match self.data_file(n, &image) {
            Some(meta_len) if meta_len > 512 * 1024 => self.err(n, format!("emoji image {image} over 512 KiB")),
            Some(_) if !self.decodes(&image) => self.err(n, format!("emoji image {image} is not png/gif/jpeg/webp/svg")),
            _ => {}
        }
    }

    fn team(&mut self, n: usize, t: &Value) {
        let name = s(t, "name");
        if !valid_team_name(name) {
            self.err(n, format!("team name {name:?} invalid"));
        }
        let display = s(t, "display_name");
        if display.is_empty() || runes(display) > 64 {
            self.err(n, "team display_name must be 1-64 runes");
        }
        if !matches!(s(t, "type"), "O" | "I") {
            self.err(n, "team type must be O or I");
        }
        if t.get("description").and_then(Value::as_str).is_some_and(|d| d.len() > 255) {
            self.err(n, "team description over 255 bytes");
        }
        if t["allow_open_invite"] != true {
            self.err(n, "allow_open_invite must be true for an open team");
        }
        if !self.teams.insert(name.to_lowercase()) {
            self.err(n, "team defined twice");
        }
    }

    fn channel(&mut self, n: usize, c: &Value) {
        let team = s(c, "team").to_lowercase();
        if !self.teams.contains(&team) {
            self.err(n, format!("channel in undefined team {team:?}"));
        }
        let name = s(c, "name");
        if !valid_channel_name(name) {
            self.err(n, format!("channel name {name:?} invalid"));
        }
        if runes(s(c, "display_name")) > 64 || s(c, "display_name").is_empty() {
            self.err(n, "channel display_name must be 1-64 runes");
        }
        if !matches!(s(c, "type"), "O" | "P") {
            self.err(n, "channel type must be O or P");
        }
        if runes(s(c, "header")) > 1024 {
            self.err(n, "channel header over 1024 runes");
        }
        if runes(s(c, "purpose")) > 250 {
            self.err(n, "channel purpose over 250 runes");
        }
        if let Some(d) = c.get("deleted_at")
            && d.as_i64().is_none_or(|d| d <= 0) {
                self.err(n, "deleted_at must be a positive integer");
            }
        if !self.channels.insert((team, name.to_lowercase())) {
            self.err(n, format!("channel {name:?} defined twice (after lowercasing)"));
        }
    }

    fn user(&mut self, n: usize, u: &Value) {
        let username = s(u, "username");
        if !valid_username(username) {
            self.err(n, format!("username {username:?} invalid"));
        }
        if !self.users.insert(username.to_lowercase()) {
            self.err(n, format!("username {username:?} defined twice (after lowercasing)"));
        }
        let email = s(u, "email");
        if !valid_email(email) {
            self.err(n, format!("email {email:?} invalid"));
        }
        if email != email.to_lowercase() {
            self.err(n, format!("email {email:?} not lowercase"));
        }
        if !self.emails.insert(email.to_lowercase()) {
            self.err(n, format!("email {email:?} used twice"));
        }
        for (field, max) in [("nickname", 64), ("first_name", 64), ("last_name", 64), ("position", 128)] {
            if runes(s(u, field)) > max {
                self.err(n, format!("{field} over {max} runes"));
            }
        }
        if u.get("password").is_some() || u.get("auth_data").is_some() {
            self.err(n, "password/auth_data set (hcconv leaves them to the server)");
        }
        let roles = s(u, "roles");
        if !valid_roles(roles) || roles.split(' ').collect::<Vec<_>>() == ["system_admin"] {
            self.err(n, format!("roles {roles:?} invalid"));
        }
        if let Some(d) = u.get("delete_at")
            && d.as_i64().is_none_or(|d| d <= 0) {
                self.err(n, "delete_at must be a positive integer");
            }
        if let Some(img) = u.get("profile_image").and_then(Value::as_str) {
            let img = img.to_string();
            self.data_file(n, &img);
        }
        self.memberships(n, u, roles.split(' ').any(|r| r == "system_guest"));
    }

    fn memberships(&mut self, n: usize, u: &Value, system_guest: bool) {
        let teams = u["teams"].as_array().cloned().unwrap_or_default();
        for t in &teams {
            let team = s(t, "name").to_lowercase();
            if !self.teams.contains(&team) {
                self.err(n, format!("membership in undefined team {team:?}"));
            }
            let team_roles = s(t, "roles");
            if !valid_roles(team_roles) || system_guest != team_roles.split(' ').any(|r| r == "team_guest") {
                self.err(n, format!("team roles {team_roles:?} invalid or inconsistent with the system guest role"));
            }
            for c in t["channels"].as_array().cloned().unwrap_or_default() {
                let ch = s(&c, "name").to_lowercase();
                if !self.channels.contains(&(team.clone(), ch.clone())) {
                    self.err(n, format!("membership in undefined channel {ch:?}"));
                }
                let roles = s(&c, "roles");
                if !valid_roles(roles) || system_guest != roles.split(' ').any(|r| r == "channel_guest") {
                    self.err(n, format!("channel roles {roles:?} invalid or inconsistent with the system guest role"));
                }
            }
        }
    }

    fn post(&mut self, n: usize, p: &Value) {
        let team = s(p, "team").to_lowercase();
        let channel = s(p, "channel").to_lowercase();
        if !self.channels.contains(&(team.clone(), channel.clone())) {
            self.err(n, format!("post in undefined channel {team}/{channel}"));
        }
        self.author(n, p);
        let message = s(p, "message").to_string();
        let max = self.max_post_runes;
        self.message_and_time(n, p, max);
        let kind = s(p, "type");
        if !POST_TYPES.contains(&kind) && !kind.starts_with("custom_") {
            self.err(n, format!("post type {kind:?} not accepted by Post.IsValid"));
        }
        if kind == "system_header_change" && !(p["props"]["new_header"].is_string() && p["props"]["old_header"].is_string() && p["props"]["username"].is_string()) {
            self.err(n, "header change post without old_header/new_header/username props");
        }
        let create_at = p["create_at"].as_i64().unwrap_or(0);
        if !self.post_keys.insert((team, channel, create_at, message)) {
            self.err(n, "same channel, create_at and message as an earlier post (Mattermost would merge them)");
        }
        self.attachments(n, p);
    }

    fn direct_channel(&mut self, n: usize, d: &Value) {
        let members = self.member_list(n, &d["members"]);
        if !self.direct_channels.insert(sorted(&members)) {
            self.err(n, "direct channel defined twice");
        }
    }

    fn direct_post(&mut self, n: usize, d: &Value) {
        let members = self.member_list(n, &d["channel_members"]);
        if !self.direct_channels.contains(&sorted(&members)) {
            self.err(n, "direct post in a conversation with no direct_channel line");
        }
        let user = s(d, "user").to_lowercase();
        self.author(n, d);
        if !members.iter().any(|m| m.to_lowercase() == user) {
            self.err(n, format!("direct post author {user:?} is not a member"));
        }
        self.message_and_time(n, d, DIRECT_MAX_RUNES);
        let key = (sorted(&members), d["create_at"].as_i64().unwrap_or(0), s(d, "message").to_string());
        if !self.direct_keys.insert(key) {
            self.err(n, "same members, create_at and message as an earlier direct post (Mattermost would merge them)");
        }
        self.attachments(n, d);
    }

    fn member_list(&mut self, n: usize, v: &Value) -> Vec<String> {
        let members: Vec<String> = v.as_array().map(|a| a.iter().filter_map(|m| m.as_str().map(str::to_string)).collect()).unwrap_or_default();
        if !(2..=8).contains(&members.len()) {
            self.err(n, format!("{} members (2-8 allowed)", members.len()));
        }
        for m in &members {
            if !self.users.contains(&m.to_lowercase()) {
                self.err(n, format!("member {m:?} not defined"));
            }
        }
        members
    }

    fn author(&mut self, n: usize, p: &Value) {
        let user = s(p, "user").to_lowercase();
        if !self.users.contains(&user) {
            self.err(n, format!("author {user:?} not defined"));
        }
    }

    fn message_and_time(&mut self, n: usize, p: &Value, max: usize) {
        match p.get("message").and_then(Value::as_str) {
            None => self.err(n, "message missing"),
            Some(m) if runes(m) > max => self.err(n, format!("message of {} runes (max {max})", runes(m))),
            Some(m) if m.is_empty() && p.get("attachments").is_none() => self.err(n, "empty message without attachments"),
            _ => {}
        }
        if p["create_at"].as_i64().is_none_or(|t| t <= 0) {
            self.err(n, "create_at missing or not positive");
        }
        if p.get("props").is_some_and(|props| runes(&props.to_string()) > 800_000) {
            self.err(n, "props over 800000 runes");
        }
    }

    fn attachments(&mut self, n: usize, p: &Value) {
        let Some(list) = p.get("attachments") else { return };
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() > 10 {
            self.err(n, "more than 10 attachments");
        }
        for a in list {
            let path = s(&a, "path").to_string();
            self.data_file(n, &path);
        }
    }

    /// Checks that `rel` stays inside data/ and exists; returns its size.
    fn data_file(&mut self, n: usize, rel: &str) -> Option<u64> {
        if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            self.err(n, format!("path {rel:?} leaves data/ or is malformed"));
            return None;
        }
        self.referenced.insert(rel.to_string());
        match std::fs::metadata(self.data_dir.join(rel)) {
            Ok(m) if m.is_file() => Some(m.len()),
            _ => {
                self.err(n, format!("file data/{rel} does not exist"));
                None
            }
        }
    }

    fn decodes(&self, rel: &str) -> bool {
        let bytes = std::fs::read(self.data_dir.join(rel)).unwrap_or_default();
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(b"GIF8") || bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || (bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"))
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn runes(s: &str) -> usize {
    s.chars().count()
}

fn sorted(members: &[String]) -> Vec<String> {
    let mut m: Vec<String> = members.iter().map(|s| s.to_lowercase()).collect();
    m.sort();
    m
}

/// `^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$`, ≤ 64 bytes, no reserved prefix; emitted lowercase.
pub fn valid_team_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    let middle_ok = name.len() >= 2 && (name[1..name.len() - 1].chars().all(|c| alnum(c) || c == '-') || &name[1..name.len() - 1] == "__");
    (2..=64).contains(&name.len()) && alnum(b[0] as char) && alnum(b[b.len() - 1] as char) && middle_ok && !TEAM_RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$` with the older, stricter form
/// (≥ 2 bytes, alphanumeric end), ≤ 64 bytes, not 40 hex nor `<26>__<26>`; lowercase.
pub fn valid_channel_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let hex40 = name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit());
    let dm = name.len() == 54 && &name[26..28] == "__";
    (2..=64).contains(&name.len())
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '_')
        && !hex40
        && !dm
}

/// `^[a-z0-9.\-_]+$`, 1-64, not reserved; hcconv also wants a leading letter.
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !RESERVED_USERNAMES.contains(&name)
}

/// Space-separated `[a-z0-9_]{1,64}` names.
fn valid_roles(roles: &str) -> bool {
    !roles.is_empty() && roles.split(' ').all(|r| (1..=64).contains(&r.len()) && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// A bare address `mail.ParseAddress` takes, ≤ 128 bytes.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    (1..=128).contains(&email.len())
        && !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ',' | ';'))
}

/// Checks a finished import folder and returns the errors (empty when every line passes).
pub fn check_folder(out: &Path, max_post_runes: usize) -> (Vec<String>, BTreeSet<String>, Vec<Value>) {
    let jsonl = std::fs::read_to_string(out.join("import.jsonl")).expect("import.jsonl exists");
    let mut checker = Checker::new(&out.join("data"), max_post_runes);
    checker.check_all(&jsonl);
    let lines = jsonl.lines().map(|l| serde_json::from_str(l).unwrap_or(Value::Null)).collect();
    (checker.errors, checker.referenced, lines)
}

/// Every file under `dir`, as `/`-separated paths relative to it.
pub fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}
