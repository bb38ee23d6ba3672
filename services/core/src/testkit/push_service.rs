//! A fake Web Push service for tests: HTTPS on 127.0.0.1 (an ephemeral port) with a
//! self-signed certificate made at start, scripted answers per path, and a record of every
//! request it received.
//!
//! ```ignore
//! let service = PushService::start().await;
//! service.answer("gone", Answer::status(410));
//! // trust service.cert_pem() (SSL_CERT_FILE, or a reqwest root certificate), then
//! // register a device whose endpoint is service.endpoint("gone") …
//! let requests = service.wait_for_requests(1, Duration::from_secs(5)).await;
//! ```
//!
//! Every request is answered `201 Created` unless scripted otherwise; it serves each
//! connection on its own task (HTTP/1.1 with keep-alive), so thousands of concurrent
//! requests are fine. The record keeps at most [`DEFAULT_RECORD_LIMIT`] requests (see
//! [`PushService::set_record_limit`]); [`PushService::request_count`] counts them all.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Requests kept in the record unless [`PushService::set_record_limit`] says otherwise.
pub const DEFAULT_RECORD_LIMIT: usize = 20_000;

/// How the service answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Waited before answering (on top of the global delay).
    pub delay: Duration,
}

impl Answer {
    /// Answer `status` at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }

    /// Answer `status` after `delay`.
    pub fn delayed(status: u16, delay: Duration) -> Self {
        Self { status, delay }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The path without its leading `/` (what [`PushService::endpoint`] was given).
    pub path: String,
    pub method: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl PushRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    /// Answers used once each, in order, before `always`.
    scripts: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// The answer for every request to a path once its script is used up.
    always: Mutex<HashMap<String, Answer>>,
    delay: Mutex<Duration>,
    requests: Mutex<Vec<PushRequest>>,
    record_limit: AtomicUsize,
    count: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    received: Notify,
}

impl State {
    fn answer_for(&self, path: &str) -> Answer {
        let scripted = self
            .scripts
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(path).and_then(VecDeque::pop_front));
        scripted
            .or_else(|| self.always.lock().ok().and_then(|a| a.get(path).copied()))
            .unwrap_or(Answer::status(201))
    }

    fn record(&self, request: PushRequest) {
        if let Ok(mut requests) = self.requests.lock() {
            if requests.len() < self.record_limit.load(Ordering::SeqCst) {
                requests.push(request);
            }
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        self.received.notify_waiters();
    }
}

/// The running fake push service; it stops when dropped.
pub struct PushService {
    addr: SocketAddr,
    cert_pem: String,
    state: Arc<State>,
    stop: watch::Sender<bool>,
}

impl PushService {
    /// Starts the service on 127.0.0.1 with a fresh self-signed certificate for
    /// `127.0.0.1` and `localhost`.
    pub async fn start() -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("self-signed certificate");
        let cert_pem = certified.cert.pem();
        let cert_der = certified.cert.der().clone();
        let key_der =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .expect("TLS certificate");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            record_limit: AtomicUsize::new(DEFAULT_RECORD_LIMIT),
            ..State::default()
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, acceptor, state.clone(), stopped));
        Self {
            addr,
            cert_pem,
            state,
            stop,
        }
    }

    /// The self-signed certificate (PEM) a client must trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (a push service origin, the VAPID audience).
    pub fn origin(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The URL of `path` on this service (a subscription endpoint).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.origin(), path.trim_start_matches('/'))
    }

    /// Every request to `path` answers `answer` (after any scripted answers).
    pub fn answer(&self, path: &str, answer: Answer) {
        if let Ok(mut always) = self.state.always.lock() {
            always.insert(path.trim_start_matches('/').to_string(), answer);
        }
    }

    /// The next requests to `path` answer these, in order; then [`PushService::answer`]'s
    /// answer, or 201.
    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        if let Ok(mut scripts) = self.state.scripts.lock() {
            scripts.insert(path.trim_start_matches('/').to_string(), answers.into());
        }
    }

    /// Every request waits `delay` before its answer (a slow push service).
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut d) = self.state.delay.lock() {
            *d = delay;
        }
    }

    /// Keep at most `limit` requests in the record (0: keep none, only count them).
    pub fn set_record_limit(&self, limit: usize) {
        self.state.record_limit.store(limit, Ordering::SeqCst);
    }

    /// The recorded requests, in the order they were received.
    pub fn requests(&self) -> Vec<PushRequest> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The recorded requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<PushRequest> {
        let path = path.trim_start_matches('/');
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Requests received so far (recorded or not).
    pub fn request_count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests were received and returns the record; panics
    /// after `timeout` naming how many came.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<PushRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.state.received.notified();
            tokio::pin!(received);
            received.as_mut().enable();
            if self.request_count() >= n {
                return self.requests();
            }
            if tokio::time::timeout_at(deadline, received).await.is_err() {
                panic!(
                    "push service: {} requests after {timeout:?}, expected {n}",
                    self.request_count()
                );
            }
        }
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let state = state.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = service_fn(move |request| handle(state.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = connection => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().trim_start_matches('/').to_string();
    let answer = state.answer_for(&path);
    let delay = state.delay.lock().map(|d| *d).unwrap_or_default() + answer.delay;
    state.record(PushRequest {
        path,
        method: parts.method.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if status == StatusCode::CREATED {
        response.headers_mut().insert(
            http::header::LOCATION,
            http::HeaderValue::from_static("/message/1"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(service: &PushService) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(service.cert_pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn answers_201_by_default_and_records_the_request() {
        let service = PushService::start().await;
        let response = client(&service)
            .post(service.endpoint("/device-1"))
            .header("TTL", "60")
            .body(vec![1u8, 2, 3])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let requests = service.wait_for_requests(1, Duration::from_secs(5)).await;
        assert_eq!(requests[0].path, "device-1");
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].header("ttl"), Some("60"));
        assert_eq!(requests[0].body, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn scripted_answers_come_first_then_the_standing_answer() {
        let service = PushService::start().await;
        service.answer("d", Answer::status(410));
        service.script("d", vec![Answer::status(429), Answer::status(503)]);
        let client = client(&service);
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let response = client.post(service.endpoint("d")).send().await.unwrap();
            statuses.push(response.status().as_u16());
        }
        assert_eq!(statuses, vec![429, 503, 410]);
        let other = client.post(service.endpoint("other")).send().await.unwrap();
        assert_eq!(other.status(), 201);
        assert_eq!(service.requests_to("d").len(), 3);
    }

    #[tokio::test]
    async fn serves_concurrent_requests_and_measures_them() {
        let service = PushService::start().await;
        service.set_delay(Duration::from_millis(100));
        service.set_record_limit(10);
        let client = client(&service);
        let sends = (0..50).map(|i| client.post(service.endpoint(&format!("d{i}"))).send());
        let responses = futures::future::join_all(sends).await;
        assert!(responses
            .iter()
            .all(|r| r.as_ref().unwrap().status() == 201));
        assert_eq!(service.request_count(), 50);
        assert_eq!(service.requests().len(), 10);
        assert!(service.max_in_flight() > 10, "{}", service.max_in_flight());
    }
}
