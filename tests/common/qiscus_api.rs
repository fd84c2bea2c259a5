//! An emulation of Qiscus's import API on 127.0.0.1, as the seed document
//! describes it (`POST /api/v2.1/rest/imports` multipart `type` + `file`,
//! `GET /api/v2.1/rest/imports?page=N`, headers `QISCUS-SDK-APP-ID` and
//! `QISCUS-SDK-SECRET`), for `hcconv upload qiscus`'s tests.
//!
//! It keeps a database of what the imports created and applies the document's
//! rules when an import finishes (unique e-mails, tokens and ids; rooms' users
//! and comments' rooms and authors must exist), so an import out of order or a
//! second import of the same rows fails as it would at Qiscus. It also records
//! what a client must never do (a file sent twice, a file sent while another is
//! still `started`, kinds out of order) as violations, and misbehaves on
//! request ([`Faults`]).
//!
//! Written with std::net alone: the faults need control over the connection
//! (dropping it after the request, holding the answer) that a server library
//! would hide. One connection at a time, each answered with `Connection: close`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The app the tests upload to.
pub const APP_ID: &str = "hcconv-test-app";
/// Its SDK secret.
pub const SECRET: &str = "sdk-Secret-7f3a10381fb89afc7";
/// The API's path on the emulated host.
pub const API_PATH: &str = "/api/v2.1/rest";
const KINDS: [&str; 3] = ["users", "rooms", "comments"];

/// Misbehaviour to act out. Counters count down as they are used.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Looks at the list in which a new import is still shown `started`.
    pub started_looks: u32,
    /// Rows per list page.
    pub page_size: usize,
    /// List newest first (else oldest first, so later imports land on later pages).
    pub newest_first: bool,
    /// Answer 500 to the next N uploads of a file (by file name).
    pub post_500: BTreeMap<String, u32>,
    /// Answer 500 to the next N list requests.
    pub list_500: u32,
    /// Drop the connection of the next upload of a file without answering; `true`:
    /// after the import was created, `false`: before.
    pub drop_post: BTreeMap<String, bool>,
    /// Drop the next N list requests without answering.
    pub drop_list: u32,
    /// Make this file's import fail (status "failed") whatever its rows.
    pub fail_file: Option<String>,
    /// Hold the answer to this file's upload, after creating the import, until
    /// [`FakeQiscus::release`] (the client is killed meanwhile).
    pub hold_post: Option<String>,
    /// Hold the first list request made after this file's import was created.
    pub hold_list_after: Option<String>,
    /// After answering this file's upload, stop listening (the server dies).
    pub die_after_post: Option<String>,
    /// List uploads under a made-up name, as the export side does
    /// (`<time>_<name>`), instead of the name they were sent with.
    pub rename_uploads: bool,
    /// Answer the next N list requests only after [`STALL`] (past a short
    /// `--timeout`).
    pub stall_list: u32,
    /// Answer this file's upload only after [`STALL`], the import made first.
    pub stall_post: Option<String>,
}

/// How long a stalled answer waits.
pub const STALL: Duration = Duration::from_millis(1500);

impl Default for Faults {
    fn default() -> Self {
        Faults {
            started_looks: 2,
            page_size: 4,
            newest_first: false,
            post_500: BTreeMap::new(),
            list_500: 0,
            drop_post: BTreeMap::new(),
            drop_list: 0,
            fail_file: None,
            hold_post: None,
            hold_list_after: None,
            die_after_post: None,
            rename_uploads: false,
            stall_list: 0,
            stall_post: None,
        }
    }
}

/// One import, as the list shows it.
#[derive(Clone, Debug)]
pub struct Import {
    pub unique_id: String,
    pub kind: String,
    /// The name it was uploaded with.
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub status: String,
    pub total_rows: u64,
    pub errors: Value,
    rows: Vec<Value>,
    looks_left: u32,
}

impl Import {
    fn row(&self, listed_name: &str, in_list: bool) -> Value {
        let errors = match (&self.errors, in_list) {
            (Value::Null, true) => json!({}),
            (Value::Null, false) => json!({"Message": "", "Data": null}),
            (e, _) => e.clone(),
        };
        json!({"created_at": "2017-07-24T16:38:14+07:00", "errors": errors, "original_filename": listed_name, "resource_name": self.kind,
            "size": self.size, "status": self.status, "total_rows": self.total_rows, "unique_id": self.unique_id})
    }
}

/// What the imports created.
#[derive(Clone, Debug, Default)]
pub struct Database {
    pub emails: HashSet<String>,
    pub tokens: HashSet<String>,
    pub rooms: HashSet<String>,
    pub comments: HashSet<String>,
}

/// Everything the server knows; survives a restart ([`FakeQiscus::restart`]).
#[derive(Debug, Default)]
pub struct State {
    pub faults: Faults,
    /// Every import, in creation order (imports the app had before included).
    pub imports: Vec<Import>,
    pub db: Database,
    /// What a client must never do, as it happened.
    pub violations: Vec<String>,
    /// `POST <file>` / `GET page=<n>` / `REFUSED <why>`, in order.
    pub requests: Vec<String>,
}

impl State {
    /// Uploads received of `file` (every POST, answered or not).
    pub fn posts_of(&self, file: &str) -> usize {
        self.requests.iter().filter(|r| *r == &format!("POST {file}")).count()
    }

    /// Every POST received.
    pub fn posts(&self) -> usize {
        self.requests.iter().filter(|r| r.starts_with("POST ")).count()
    }

    /// Imports created from `file`.
    pub fn imports_of(&self, file: &str) -> Vec<&Import> {
        self.imports.iter().filter(|i| i.file_name == file).collect()
    }
}

/// The server: a thread answering on 127.0.0.1 until dropped (or dying).
pub struct FakeQiscus {
    pub state: Arc<Mutex<State>>,
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    held: Receiver<String>,
    release: Sender<()>,
}

impl FakeQiscus {
    /// A server with `faults` and `before` imports the app already had (finished,
    /// named `old-export-N.json`).
    pub fn start(faults: Faults, before: usize) -> Self {
        let mut state = State { faults, ..State::default() };
        for n in 0..before {
            state.imports.push(Import {
                unique_id: format!("0ld00000-0000-4000-8000-{n:012}"),
                kind: "users".into(),
                file_name: format!("old-export-{n}.json"),
                size: 100 + n as u64,
                sha256: String::new(),
                status: "finished".into(),
                total_rows: 1,
                errors: Value::Null,
                rows: Vec::new(),
                looks_left: 0,
            });
        }
        Self::serve(Arc::new(Mutex::new(state)))
    }

    /// A new server on a new port with the same state (after [`Faults::die_after_post`]).
    pub fn restart(state: Arc<Mutex<State>>) -> Self {
        Self::serve(state)
    }

    fn serve(state: Arc<Mutex<State>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (held_tx, held) = channel();
        let (release, release_rx) = channel();
        let server = Server { state: state.clone(), stop: stop.clone(), held: held_tx, release: release_rx };
        let thread = std::thread::spawn(move || server.run(listener));
        FakeQiscus { state, port, stop, thread: Some(thread), held, release }
    }

    /// The `--base-url` of this server.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}{API_PATH}", self.port)
    }

    /// Waits until the server holds an answer (see [`Faults::hold_post`]); returns what it holds.
    pub fn wait_held(&self) -> String {
        self.held.recv_timeout(Duration::from_secs(120)).expect("the server reached its hold point")
    }

    /// Lets a held answer go.
    pub fn release(&self) {
        self.release.send(()).unwrap();
    }

    /// Locks the state for a look.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for FakeQiscus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.release.send(());
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Server {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    held: Sender<String>,
    release: Receiver<()>,
}

/// What to do with a connection after its request.
enum Reply {
    Answer(u16, Value),
    Drop,
    /// Answer, then stop listening.
    AnswerAndDie(u16, Value),
}

impl Server {
    fn run(self, listener: TcpListener) {
        for stream in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            match self.handle(&stream) {
                Some(Reply::Answer(status, body)) => answer(stream, status, &body),
                Some(Reply::AnswerAndDie(status, body)) => {
                    answer(stream, status, &body);
                    return; // the listener closes: connections are refused from now on
                }
                Some(Reply::Drop) | None => drop(stream),
            }
        }
    }

    fn handle(&self, stream: &TcpStream) -> Option<Reply> {
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':')?;
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        if headers.get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            let mut w = stream.try_clone().ok()?;
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
        }
        let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        let mut state = self.state.lock().unwrap();
        if headers.get("qiscus-sdk-app-id").map(String::as_str) != Some(APP_ID) || headers.get("qiscus-sdk-secret").map(String::as_str) != Some(SECRET) {
            state.requests.push("REFUSED unauthorized".into());
            return Some(Reply::Answer(401, json!({"status": 401, "error": {"message": "unauthorized: wrong app id or secret"}})));
        }
        let imports = format!("{API_PATH}/imports");
        match (method.as_str(), target.split_once('?').map_or((target.as_str(), ""), |(p, q)| (p, q))) {
            ("POST", (path, "")) if path == imports => {
                let content_type = headers.get("content-type").cloned().unwrap_or_default();
                self.post(state, &content_type, &body)
            }
            ("GET", (path, query)) if path == imports => {
                let page = query.strip_prefix("page=").and_then(|p| p.parse().ok()).unwrap_or(1);
                self.list(state, page)
            }
            _ => {
                state.requests.push(format!("REFUSED {method} {target}"));
                Some(Reply::Answer(404, json!({"status": 404, "error": {"message": "not found"}})))
            }
        }
    }

    fn post(&self, mut state: std::sync::MutexGuard<'_, State>, content_type: &str, body: &[u8]) -> Option<Reply> {
        let Some((kind, file_name, content)) = parse_form(content_type, body) else {
            state.requests.push("REFUSED malformed form".into());
            return Some(Reply::Answer(400, json!({"status": 400, "error": {"message": "type and file are required"}})));
        };
        state.requests.push(format!("POST {file_name}"));
        if let Some(n) = state.faults.post_500.get_mut(&file_name).filter(|n| **n > 0) {
            *n -= 1;
            return Some(Reply::Answer(500, json!({"status": 500, "error": {"message": "internal server error"}})));
        }
        let drop_after_create = state.faults.drop_post.remove(&file_name);
        if drop_after_create == Some(false) {
            return Some(Reply::Drop);
        }
        let Ok(Value::Array(rows)) = serde_json::from_slice::<Value>(&content) else {
            return Some(Reply::Answer(400, json!({"status": 400, "error": {"message": "file must be a JSON array"}})));
        };
        if !KINDS.contains(&kind.as_str()) || !file_name.starts_with(&format!("{kind}-")) {
            state.violations.push(format!("{file_name} sent with type {kind:?}"));
        }
        check_order(&mut state, &kind, &file_name, &content);
        let unique_id = format!("{:08x}-4b77-4705-9523-{:012x}", 0x13c4_952f_u32, state.imports.len());
        let import = Import {
            unique_id,
            kind,
            file_name: file_name.clone(),
            size: content.len() as u64,
            sha256: hex(&content),
            status: "started".into(),
            total_rows: 0,
            errors: Value::Null,
            rows,
            looks_left: state.faults.started_looks,
        };
        let answer = json!({"results": {"backup_history": import.row(&listed_name(&state.faults, &file_name), false)}, "status": 200});
        state.imports.push(import);
        if drop_after_create == Some(true) {
            return Some(Reply::Drop);
        }
        if state.faults.hold_post.as_deref() == Some(file_name.as_str()) {
            state.faults.hold_post = None;
            drop(state);
            self.hold(format!("POST {file_name}"));
            return Some(Reply::Answer(200, answer));
        }
        if state.faults.stall_post.as_deref() == Some(file_name.as_str()) {
            state.faults.stall_post = None;
            drop(state);
            std::thread::sleep(STALL);
            return Some(Reply::Answer(200, answer));
        }
        if state.faults.die_after_post.as_deref() == Some(file_name.as_str()) {
            state.faults.die_after_post = None;
            return Some(Reply::AnswerAndDie(200, answer));
        }
        Some(Reply::Answer(200, answer))
    }

    fn list<'a>(&'a self, mut state: std::sync::MutexGuard<'a, State>, page: usize) -> Option<Reply> {
        state.requests.push(format!("GET page={page}"));
        if state.faults.list_500 > 0 {
            state.faults.list_500 -= 1;
            return Some(Reply::Answer(500, json!({"status": 500, "error": {"message": "internal server error"}})));
        }
        if state.faults.drop_list > 0 {
            state.faults.drop_list -= 1;
            return Some(Reply::Drop);
        }
        if state.faults.stall_list > 0 {
            state.faults.stall_list -= 1;
            drop(state);
            std::thread::sleep(STALL);
            state = self.state.lock().unwrap();
        }
        if let Some(file) = state.faults.hold_list_after.clone()
            && !state.imports_of(&file).is_empty()
        {
            state.faults.hold_list_after = None;
            drop(state);
            self.hold(format!("GET after {file}"));
            state = self.state.lock().unwrap();
        }
        let size = state.faults.page_size.max(1);
        let mut order: Vec<usize> = (0..state.imports.len()).collect();
        if state.faults.newest_first {
            order.reverse();
        }
        let on_page: Vec<usize> = order.into_iter().skip((page.max(1) - 1) * size).take(size).collect();
        let mut rows = Vec::new();
        for i in on_page {
            if state.imports[i].status == "started" {
                if state.imports[i].looks_left == 0 {
                    finish(&mut state, i);
                } else {
                    state.imports[i].looks_left -= 1;
                }
            }
            let name = listed_name(&state.faults, &state.imports[i].file_name);
            rows.push(state.imports[i].row(&name, true));
        }
        Some(Reply::Answer(200, json!({"results": {"backup_histories": rows}, "status": 200})))
    }

    fn hold(&self, what: String) {
        let _ = self.held.send(what);
        let _ = self.release.recv();
    }
}

fn listed_name(faults: &Faults, file_name: &str) -> String {
    if faults.rename_uploads { format!("2017-07-24T16:38:14+07:00_{file_name}") } else { file_name.to_string() }
}

/// What a client must never do: send a file twice, send while an import is
/// still `started` or after one failed, send kinds out of order.
fn check_order(state: &mut State, kind: &str, file_name: &str, content: &[u8]) {
    let digest = hex(content);
    let rank = |k: &str| KINDS.iter().position(|x| *x == k).unwrap_or(usize::MAX);
    let mut found = Vec::new();
    let imports = &state.imports;
    // A failed import created nothing here: sending that file again (--resend)
    // is the one way on, and nothing else may follow a failure until it is.
    let resent = |failed: &Import| imports.iter().any(|i| i.file_name == failed.file_name && i.status != "failed");
    for earlier in imports.iter().filter(|i| !i.sha256.is_empty()) {
        let same = earlier.file_name == file_name || earlier.sha256 == digest;
        match earlier.status.as_str() {
            "failed" if same || resent(earlier) => {}
            "failed" => found.push(format!("{file_name} sent after {} failed", earlier.file_name)),
            _ if same => found.push(format!("{file_name} sent twice (import {} had it)", earlier.unique_id)),
            _ => {}
        }
        if earlier.status == "started" {
            found.push(format!("{file_name} sent while {} was still started", earlier.file_name));
        }
        if rank(&earlier.kind) > rank(kind) {
            found.push(format!("{file_name} ({kind}) sent after {} ({})", earlier.file_name, earlier.kind));
        }
    }
    state.violations.extend(found);
}

/// Ends import `i`: its rows go into the database if every one passes the
/// document's rules, else none does and the import fails with the reasons.
fn finish(state: &mut State, i: usize) {
    let import = state.imports[i].clone();
    let mut db = state.db.clone();
    let mut problems = Vec::new();
    let field = |row: &Value, k: &str| row.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    for (n, row) in import.rows.iter().enumerate() {
        let problem = match import.kind.as_str() {
            "users" => {
                let (email, token) = (field(row, "Email"), field(row, "AuthenticationToken"));
                (email.is_empty() || !db.emails.insert(email.clone()) || !db.tokens.insert(token)).then(|| format!("row {n}: Email and authentication token must be unique ({email})"))
            }
            "rooms" => {
                let people: Vec<String> = row.get("ParticipantEmails").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
                let creator = field(row, "CreatorEmail");
                if !db.emails.contains(&creator) || people.iter().any(|p| !db.emails.contains(p)) {
                    Some(format!("row {n}: CreatorEmail and ParticipantEmails must exist"))
                } else if field(row, "Type") == "single" && (people.len() != 2 || !people.contains(&creator)) {
                    Some(format!("row {n}: a single room needs exactly 2 participants, the creator one of them"))
                } else {
                    (!db.rooms.insert(field(row, "UniqueId"))).then(|| format!("row {n}: room UniqueId must be unique"))
                }
            }
            _ => {
                let parent = field(row, "ParentCommentUniqueId");
                if !db.rooms.contains(&field(row, "RoomUniqueId")) || !db.emails.contains(&field(row, "CreatorEmail")) {
                    Some(format!("row {n}: RoomUniqueId and CreatorEmail must exist"))
                } else if !parent.is_empty() && !db.comments.contains(&parent) {
                    Some(format!("row {n}: ParentCommentUniqueId {parent} does not exist"))
                } else {
                    (!db.comments.insert(field(row, "UniqueId"))).then(|| format!("row {n}: comment UniqueId must be unique"))
                }
            }
        };
        problems.extend(problem);
    }
    if state.faults.fail_file.as_deref() == Some(import.file_name.as_str()) {
        problems.push("emulated failure".into());
    }
    let import = &mut state.imports[i];
    if problems.is_empty() {
        import.status = "finished".into();
        import.total_rows = import.rows.len() as u64;
        state.db = db;
    } else {
        import.status = "failed".into();
        import.errors = json!({"Message": problems[0], "Data": problems});
    }
}

/// `(type, file name, file bytes)` of a multipart form, parsed strictly.
fn parse_form(content_type: &str, body: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=")?;
    let delimiter = format!("--{boundary}");
    let mut kind = None;
    let mut file = None;
    let text_end = format!("\r\n{delimiter}");
    let mut rest = body.strip_prefix(delimiter.as_bytes())?;
    while let Some(after) = rest.strip_prefix(b"\r\n") {
        let head_end = find(after, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&after[..head_end]).ok()?;
        let content_start = head_end + 4;
        let content_len = find(&after[content_start..], text_end.as_bytes())?;
        let content = after[content_start..content_start + content_len].to_vec();
        let disposition = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition: form-data;"))?;
        let name = attribute(disposition, "name")?;
        match (name.as_str(), attribute(disposition, "filename")) {
            ("type", None) => kind = Some(String::from_utf8(content).ok()?),
            ("file", Some(file_name)) => file = Some((file_name, content)),
            _ => return None,
        }
        rest = &after[content_start + content_len + text_end.len()..];
    }
    (rest == b"--\r\n").then_some(())?;
    let (file_name, bytes) = file?;
    Some((kind?, file_name, bytes))
}

fn attribute(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').map(str::trim).find_map(|p| p.strip_prefix(&format!("{key}=\""))).and_then(|v| v.strip_suffix('"')).map(str::to_string)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn answer(mut stream: TcpStream, status: u16, body: &Value) {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", text.len());
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(text.as_bytes()));
}
