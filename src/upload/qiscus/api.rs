//! Qiscus's import API as the seed document describes it (FORMATS.md 3.1):
//! `POST {base}/imports` (multipart: `type`, `file`) answers at once with the
//! import's row (`status: "started"`, `unique_id`); `GET {base}/imports?page=N`
//! lists the rows, whose `status` becomes `finished` when the work is done. Both
//! carry the app's id and SDK secret in the `QISCUS-SDK-APP-ID` and
//! `QISCUS-SDK-SECRET` headers.
//!
//! Not documented, and so not assumed: the page size, the order of the list, and
//! how its end shows. A page with no row, or with no row not already seen (a
//! server that ignores `page`), is taken as the end.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::upload::http::{Answer, Failure, Http, Request};
use crate::upload::multipart::{self, Field};

/// The REST API of the seed document; other Qiscus hosts differ only in the host.
pub const DEFAULT_BASE_URL: &str = "https://api.qiscus.com/api/v2.1/rest";
/// Longest part of an answer quoted in an error message.
const EXCERPT_CHARS: usize = 600;

/// One row of the import list (and the upload's answer). Every field is optional
/// in reading: the API may leave one out, and the checks that matter say so.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportRow {
    /// The import's id.
    #[serde(default)]
    pub unique_id: String,
    /// `started` while processed, `finished` when done (the two documented values).
    #[serde(default)]
    pub status: String,
    /// Rows imported.
    #[serde(default, deserialize_with = "number_or_zero")]
    pub total_rows: u64,
    /// `{"Message": "", "Data": null}` or `{}` when there are none.
    #[serde(default)]
    pub errors: Value,
    /// The uploaded file's name.
    #[serde(default)]
    pub original_filename: String,
    /// `users`, `rooms` or `comments`.
    #[serde(default)]
    pub resource_name: String,
    /// The uploaded file's size.
    #[serde(default, deserialize_with = "number_or_zero")]
    pub size: u64,
    /// When it was created (server time, as the server writes it).
    #[serde(default)]
    pub created_at: String,
}

fn number_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.and_then(|v| v.as_u64()).unwrap_or(0))
}

impl ImportRow {
    /// Whether `errors` says something: a non-empty `Message`, non-empty `Data`, or
    /// any other non-empty value.
    pub fn has_errors(&self) -> bool {
        fn says_something(v: &Value) -> bool {
            match v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => o.values().any(says_something),
                _ => true,
            }
        }
        says_something(&self.errors)
    }
}

/// What one upload came to.
pub enum Created {
    /// The API took it: its row.
    Row(ImportRow),
    /// Refused with a 3xx or 4xx: nothing was created, and sending the same
    /// request again would not help.
    Refused(Error),
    /// Answered 5xx (status and an excerpt of the answer).
    ServerError(u16, String),
    /// No answer, and the request certainly never arrived.
    NotDelivered(String),
    /// No answer, and the request may have arrived.
    Lost(String),
}

/// The API of one app.
pub struct QiscusApi {
    http: Http,
    imports_url: String,
    app_id: String,
    secret: String,
}

impl QiscusApi {
    /// A client for `app_id` at `base_url` (checked by [`check_base_url`]).
    pub fn new(http: Http, base_url: &str, app_id: &str, secret: String) -> Self {
        QiscusApi { http, imports_url: format!("{}/imports", base_url.trim_end_matches('/')), app_id: app_id.to_string(), secret }
    }

    /// The retry policy, for the uploader's own loop around [`QiscusApi::create_import`].
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Uploads `bytes` as `file_name` of `kind`, once. An error is a 2xx answer
    /// outside the documented shape: the import may have been made.
    pub fn create_import(&self, kind: &str, file_name: &str, bytes: &[u8]) -> Result<Created> {
        let body = multipart::encode(&[Field::Text { name: "type", value: kind }, Field::File { name: "file", file_name, content_type: "application/json", bytes }]);
        let headers = self.headers();
        let request = Request { url: &self.imports_url, headers: &headers, body: Some((&body.content_type, &body.bytes)) };
        let answer = match self.http.send_once(&request) {
            Ok(answer) => answer,
            Err(Failure::NotDelivered(why)) => return Ok(Created::NotDelivered(why)),
            Err(Failure::Lost(why)) => return Ok(Created::Lost(why)),
        };
        if answer.status >= 500 {
            return Ok(Created::ServerError(answer.status, self.excerpt(&answer.body)));
        }
        if let Err(refused) = self.check_status(&answer, &format!("uploading {file_name}")) {
            return Ok(Created::Refused(refused));
        }
        let row = self.parse(&answer, "/results/backup_history", &format!("the answer to the upload of {file_name}"))?;
        let row: ImportRow = serde_json::from_value(row).map_err(|e| self.malformed(&answer, &format!("the answer to the upload of {file_name}"), &e.to_string()))?;
        if row.unique_id.is_empty() {
            return Err(self.malformed(&answer, &format!("the answer to the upload of {file_name}"), "no unique_id"));
        }
        Ok(Created::Row(row))
    }

    /// One page of the import list (from 1), retried on network errors and 5xx.
    pub fn list_page(&self, page: u32, on_retry: &mut dyn FnMut(&str)) -> Result<Vec<ImportRow>> {
        let url = format!("{}?page={page}", self.imports_url);
        let headers = self.headers();
        let what = format!("the import list, page {page}");
        let answer = self.http.send_idempotent(&Request { url: &url, headers: &headers, body: None }, |why| on_retry(&format!("{what}: {why}"))).map_err(|failure| {
            Error::new(ErrorKind::Service, format!("{what}: {} (after {} retries)", self.redact(failure.detail()), self.http.settings.retries))
        })?;
        if answer.status >= 500 {
            return Err(Error::new(ErrorKind::Service, format!("{what}: HTTP {} after {} retries: {}", answer.status, self.http.settings.retries, self.excerpt(&answer.body))));
        }
        self.check_status(&answer, &what)?;
        let rows = self.parse(&answer, "/results/backup_histories", &what)?;
        if rows.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(rows).map_err(|e| self.malformed(&answer, &what, &e.to_string()))
    }

    /// Visits the list page by page, from `first`, until `visit` returns `true`
    /// (found) or the list ends; then the pages before `first`. Returns the page
    /// where `visit` said `true`.
    pub fn walk(&self, first: u32, on_retry: &mut dyn FnMut(&str), mut visit: impl FnMut(&ImportRow) -> bool) -> Result<Option<u32>> {
        let first = first.max(1);
        let mut seen = HashSet::new();
        let mut page = first;
        loop {
            let rows = self.list_page(page, on_retry)?;
            let mut new = false;
            for row in &rows {
                new |= seen.insert(row.unique_id.clone());
                if visit(row) {
                    return Ok(Some(page));
                }
            }
            if !new {
                break;
            }
            page += 1;
        }
        for page in 1..first {
            for row in self.list_page(page, on_retry)? {
                if visit(&row) {
                    return Ok(Some(page));
                }
            }
        }
        Ok(None)
    }

    fn headers(&self) -> [(&str, &str); 2] {
        [("QISCUS-SDK-APP-ID", self.app_id.as_str()), ("QISCUS-SDK-SECRET", self.secret.as_str())]
    }

    /// An error for a 3xx or 4xx answer (a 2xx passes).
    fn check_status(&self, answer: &Answer, what: &str) -> Result<()> {
        let detail = match answer.status {
            200..=299 => return Ok(()),
            300..=399 => format!(
                "the API answered HTTP {} with a redirect to {}; hcconv does not follow it (it would carry the secret along): put the address it names in --base-url",
                answer.status,
                answer.location.as_deref().unwrap_or("(no Location)")
            ),
            401 | 403 => format!("HTTP {}: the API refused the app id or the SDK secret: {}", answer.status, self.excerpt(&answer.body)),
            404 => format!("HTTP 404 at {}: check --base-url (the API's address up to /imports, e.g. {DEFAULT_BASE_URL})", self.imports_url),
            413 => format!("HTTP 413: the API refused the file as too large: {}", self.excerpt(&answer.body)),
            status => format!("HTTP {status}: {}", self.excerpt(&answer.body)),
        };
        Err(Error::new(ErrorKind::Service, format!("{what}: {detail}")))
    }

    /// The value at `pointer` of the answer's JSON (`Null` when absent).
    fn parse(&self, answer: &Answer, pointer: &str, what: &str) -> Result<Value> {
        let json: Value = serde_json::from_str(&answer.body).map_err(|e| self.malformed(answer, what, &format!("not JSON ({e})")))?;
        Ok(json.pointer(pointer).cloned().unwrap_or(Value::Null))
    }

    fn malformed(&self, answer: &Answer, what: &str, problem: &str) -> Error {
        Error::new(ErrorKind::Service, format!("{what}: not the documented answer ({problem}): {}", self.excerpt(&answer.body)))
    }

    /// The start of an answer's body, for a message, the secret masked.
    fn excerpt(&self, body: &str) -> String {
        let text: String = body.chars().take(EXCERPT_CHARS).collect();
        let more = if body.chars().count() > EXCERPT_CHARS { "…" } else { "" };
        format!("{}{more}", self.redact(text.trim()))
    }

    /// `text` with every occurrence of the secret masked (an answer or error that
    /// echoed it must not put it on the screen, in the journal or in the report).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.secret, "<secret>")
    }
}

/// Checks `--base-url`: an `https://` URL, or `http://` to this machine only (the
/// secret would cross the network in clear otherwise), without query or fragment.
pub fn check_base_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::usage(format!("--base-url {url:?}: {why}")));
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return bad("not a URL (https://host/path)"),
    };
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no query, fragment or white space allowed");
    }
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = host_port.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host_port, |(h, _)| h);
    if host.is_empty() {
        return bad("no host");
    }
    match scheme {
        "https" => Ok(()),
        "http" if host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()) => Ok(()),
        "http" => bad("http:// would send the SDK secret over the network in clear; use https:// (http:// is accepted for this machine only)"),
        _ => bad("the scheme must be https://"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_urls() {
        for ok in [DEFAULT_BASE_URL, "https://sdksample.qiscus.com/api/v2.1/rest/", "http://127.0.0.1:8080/api", "http://localhost/x", "http://[::1]:9/x"] {
            check_base_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("api.qiscus.com/api", "not a URL"),
            ("http://api.qiscus.com/api", "in clear"),
            ("ftp://x/y", "scheme"),
            ("https://x/y?page=1", "no query"),
            ("https:///api", "no host"),
            ("http://127.0.0.1.example.com/", "in clear"),
        ] {
            let err = check_base_url(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert!(err.message().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn rows_read_as_the_seed_shows_them_and_errors_are_judged() {
        let started: ImportRow = serde_json::from_value(json!({"created_at": "2017-07-24T16:38:14+07:00", "errors": {"Message": "", "Data": null}, "original_filename": "comment_single.json",
            "resource_name": "comments", "size": 926, "status": "started", "total_rows": 0, "unique_id": "13c4952f-4b77-4705-9523-7ddca9c45967"}))
        .unwrap();
        assert_eq!((started.size, started.status.as_str(), started.has_errors()), (926, "started", false));
        let listed: ImportRow = serde_json::from_value(json!({"errors": {}, "status": "finished", "total_rows": 1, "unique_id": "x", "size": null})).unwrap();
        assert!(!listed.has_errors());
        for errors in [json!({"Message": "Email must be unique", "Data": null}), json!({"Message": "", "Data": [{"row": 3}]}), json!("bad"), json!(["x"])] {
            let row = ImportRow { errors: errors.clone(), ..ImportRow::default() };
            assert!(row.has_errors(), "{errors}");
        }
    }

    #[test]
    fn the_secret_is_masked_in_what_is_quoted() {
        let http = Http::new(crate::upload::http::HttpSettings { timeout: std::time::Duration::from_secs(1), retries: 0, retry_wait: std::time::Duration::ZERO });
        let api = QiscusApi::new(http, "http://127.0.0.1:9/api", "app", "s3cr3t-value".into());
        assert_eq!(api.excerpt(" bad secret s3cr3t-value given "), "bad secret <secret> given");
        assert!(api.excerpt(&"x".repeat(EXCERPT_CHARS + 5)).ends_with('…'));
    }
}
