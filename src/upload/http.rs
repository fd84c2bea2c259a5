//! HTTP for `hcconv upload`: one blocking client with timeouts, no redirects, and
//! retries with backoff on the failures a retry can cure (network errors and 5xx
//! answers), never on a 4xx (the request itself is wrong: a retry only repeats it).
//!
//! A request that is not idempotent (an upload) needs more care than a retry: when
//! the connection is lost after the request went out, the server may have taken it.
//! [`Http::send_once`] therefore tells apart a request that certainly never
//! arrived ([`Failure::NotDelivered`]) from one that may have
//! ([`Failure::Lost`]), and leaves the decision to the caller, who can look the
//! upload up before sending it again.

use std::time::Duration;

/// Longest wait between two tries, whatever `--retry-wait` doubles to.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest answer body read (the import list's pages are a few kilobytes).
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// Timeouts and retry policy (from the command line).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Limit for one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// How many times a failed request is tried again.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one, up to a minute.
    pub retry_wait: Duration,
}

impl HttpSettings {
    /// The wait before retry number `retry` (0 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.retry_wait.saturating_mul(factor).min(MAX_BACKOFF.max(self.retry_wait))
    }
}

/// An answer: its status and body text.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text (lossy: it is only parsed as JSON or quoted in errors).
    pub body: String,
    /// The `Location` header of a redirect, to name it in the error.
    pub location: Option<String>,
}

/// Why a request got no answer.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The connection was never made (name lookup, refused, connect timeout, TLS
    /// handshake): the request certainly did not arrive.
    NotDelivered(String),
    /// Something failed after the request may have gone out (connection dropped,
    /// answer timed out): the server may or may not have acted on it.
    Lost(String),
}

impl Failure {
    /// The description, for messages.
    pub fn detail(&self) -> &str {
        match self {
            Failure::NotDelivered(d) | Failure::Lost(d) => d,
        }
    }
}

/// A request to make: method, URL, headers and an optional body.
pub struct Request<'a> {
    /// The URL.
    pub url: &'a str,
    /// Header names and values (the caller's credentials among them).
    pub headers: &'a [(&'a str, &'a str)],
    /// `Some((content type, bytes))` for a POST, `None` for a GET.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// The blocking client.
pub struct Http {
    agent: ureq::Agent,
    /// The policy, for the callers' retry loops.
    pub settings: HttpSettings,
}

impl Http {
    /// A client with `settings`. Redirects are not followed: a redirect would carry
    /// the credentials' headers to wherever it points, so it is reported instead.
    pub fn new(settings: HttpSettings) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(settings.timeout))
            .user_agent(concat!("hcconv/", env!("CARGO_PKG_VERSION")))
            .build();
        Http { agent: config.into(), settings }
    }

    /// Makes the request once.
    pub fn send_once(&self, request: &Request<'_>) -> Result<Answer, Failure> {
        let outcome = match request.body {
            None => {
                let mut builder = self.agent.get(request.url);
                for (name, value) in request.headers {
                    builder = builder.header(*name, *value);
                }
                builder.call()
            }
            Some((content_type, bytes)) => {
                let mut builder = self.agent.post(request.url).header("Content-Type", content_type);
                for (name, value) in request.headers {
                    builder = builder.header(*name, *value);
                }
                builder.send(bytes)
            }
        };
        let mut response = outcome.map_err(classify)?;
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec().map_err(|e| Failure::Lost(format!("reading the answer: {}", describe(&e))))?;
        Ok(Answer { status, body: String::from_utf8_lossy(&bytes).into_owned(), location })
    }

    /// Makes a request that may safely be repeated (a GET), trying again after a
    /// network error or a 5xx, at most `retries` times, waiting longer each time.
    /// Returns the first answer that is not a 5xx (a 4xx included: the caller
    /// decides what it means), or the last failure.
    pub fn send_idempotent(&self, request: &Request<'_>, mut on_retry: impl FnMut(&str)) -> Result<Answer, Failure> {
        let mut retry = 0;
        loop {
            let outcome = self.send_once(request);
            let why = match &outcome {
                Ok(answer) if answer.status >= 500 => format!("HTTP {}", answer.status),
                Ok(_) => return outcome,
                Err(failure) => failure.detail().to_string(),
            };
            if retry >= self.settings.retries {
                return outcome;
            }
            on_retry(&why);
            std::thread::sleep(self.settings.backoff(retry));
            retry += 1;
        }
    }
}

/// Sorts a client error into "never arrived" and "may have arrived".
fn classify(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let detail = describe(&e);
    match e {
        E::HostNotFound | E::ConnectionFailed | E::Tls(_) | E::BadUri(_) | E::InvalidProxyUrl => Failure::NotDelivered(detail),
        E::Timeout(T::Resolve | T::Connect) => Failure::NotDelivered(detail),
        E::Io(io) if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable) => Failure::NotDelivered(detail),
        _ => Failure::Lost(detail),
    }
}

/// The client error as one line (it names no header value, so no secret).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(which) => format!("timed out ({which:?})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_a_minute() {
        let s = HttpSettings { timeout: Duration::from_secs(1), retries: 9, retry_wait: Duration::from_secs(2) };
        let waits: Vec<u64> = (0..8).map(|r| s.backoff(r).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        let long = HttpSettings { retry_wait: Duration::from_secs(90), ..s.clone() };
        assert_eq!(long.backoff(3), Duration::from_secs(90), "a wait longer than the cap is kept as given");
        let zero = HttpSettings { retry_wait: Duration::ZERO, ..s };
        assert_eq!(zero.backoff(40), Duration::ZERO);
    }

    #[test]
    fn a_refused_connection_never_arrived() {
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let http = Http::new(HttpSettings { timeout: Duration::from_secs(5), retries: 0, retry_wait: Duration::ZERO });
        let url = format!("http://127.0.0.1:{port}/x");
        let failure = http.send_once(&Request { url: &url, headers: &[], body: Some(("text/plain", b"x")) }).unwrap_err();
        assert!(matches!(failure, Failure::NotDelivered(_)), "{failure:?}");
    }
}
