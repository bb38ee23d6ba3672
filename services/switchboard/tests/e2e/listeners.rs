//! Both listeners bound every connection (docs/design.md: The one-machine binary): a peer
//! that sends nothing, half a request or an HTTP/2 preface is closed within
//! `HEADER_READ_TIMEOUT_SECS`; a body trickled past `REQUEST_TIMEOUT_SECS` gets 408; one
//! address holds at most `LISTENER_MAX_CONNECTIONS_PER_ADDRESS` connections per listener, so a
//! flood under a 256-descriptor limit leaves `/healthz` answering; the open-files limit is
//! raised to the hard limit at start; `/metrics` is on the management listener only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::harness::{serve_command, token, Backend, TestServer, SECRET};

/// The client preface of cleartext HTTP/2 with prior knowledge (RFC 9113 §3.4), then an
/// empty SETTINGS frame.
const H2C_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// `switchboard serve` started under `ulimit -S -n <soft>` (and `-H -n <hard>` when given),
/// killed on drop.
struct LimitedServer {
    child: Child,
    addr: SocketAddr,
    management_addr: SocketAddr,
    logs: std::path::PathBuf,
}

impl LimitedServer {
    fn start(soft: u64, hard: Option<u64>, envs: &[(&str, &str)]) -> Self {
        let logs = std::env::temp_dir().join(format!("listeners-{}.log", uuid::Uuid::new_v4()));
        let limits = match hard {
            Some(hard) => format!("ulimit -S -n {soft} && ulimit -H -n {hard}"),
            None => format!("ulimit -n {soft}"),
        };
        let mut all = vec![("JWT_HS256_SECRET", SECRET), ("RUST_LOG", "info")];
        all.extend_from_slice(envs);
        let serve = serve_command(
            &[
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ],
            &all,
        );
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("{limits} && exec \"$0\" \"$@\""))
            .arg(serve.get_program())
            .args(serve.get_args())
            .env_clear()
            .envs(serve.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&logs).unwrap());
        let mut child = command.spawn().expect("bash starts the binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next_addr = |prefix: &str| -> SocketAddr {
            let line = lines.next().expect("an address line").unwrap();
            let rest = line
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{line}"));
            rest.split(['/', ' ']).next().unwrap().parse().unwrap()
        };
        let addr = next_addr("switchboard listening on http://");
        let management_addr = next_addr("switchboard management API on http://");
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            addr,
            management_addr,
            logs,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.logs);
    }
}

/// A connection to `to` from the loopback address `from` (Linux routes all of 127/8 to lo).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Reads until the server closes (end of stream or reset); `None` if still open at `deadline`.
async fn closed_by_server(mut stream: TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buffer = [0u8; 1024];
    let wait = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => continue, // an error answer, then the close
            }
        }
    })
    .await
    .ok()
}

async fn healthz_within(url: String, within: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder().timeout(within).build().unwrap();
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_h2c_connections_are_closed_and_healthz_answers_under_256_descriptors() {
    let server = LimitedServer::start(
        256,
        None,
        &[
            ("HEADER_READ_TIMEOUT_SECS", "2"),
            ("LISTENER_MAX_CONNECTIONS_PER_ADDRESS", "50"),
        ],
    );
    let timeout = Duration::from_secs(2);
    // 300 connections from 127.0.0.2, alternating listeners: nothing sent, half an HTTP/2
    // preface, or a whole one (cleartext HTTP/2).
    let started = Instant::now();
    let mut waits = Vec::new();
    for i in 0..300 {
        let to = if i % 2 == 0 {
            server.addr
        } else {
            server.management_addr
        };
        let mut stream = connect_from([127, 0, 0, 2], to).await.expect("connects");
        match i % 3 {
            0 => {}
            1 => stream.write_all(&H2C_PREFACE[..16]).await.unwrap(),
            _ => stream.write_all(H2C_PREFACE).await.unwrap(),
        }
        let deadline = Instant::now() + timeout + Duration::from_secs(3);
        waits.push(tokio::spawn(closed_by_server(stream, deadline)));
    }
    let opened = started.elapsed();
    // Meanwhile a fresh connection from another address is answered on both listeners.
    for url in [
        format!("http://{}/healthz", server.addr),
        format!("http://{}/healthz", server.management_addr),
    ] {
        let asked = Instant::now();
        let status = healthz_within(url.clone(), Duration::from_secs(2)).await;
        assert_eq!(
            status,
            Ok(200),
            "{url} after {:?} (300 connections opened in {opened:?}); logs:\n{}",
            asked.elapsed(),
            server.logs()
        );
    }
    let mut still_open = 0;
    let mut last_close = Duration::ZERO;
    for wait in waits {
        match wait.await.unwrap() {
            Some(at) => last_close = last_close.max(at.duration_since(started)),
            None => still_open += 1,
        }
    }
    assert_eq!(
        still_open, 0,
        "connections the server left open past the {timeout:?} first-request timeout (+3 s)"
    );
    assert!(
        last_close <= opened + timeout + Duration::from_secs(3),
        "{last_close:?}"
    );
    // Those over the per-address cap were refused at accept, and counted.
    let metrics = reqwest::get(format!("http://{}/metrics", server.management_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_listener_connections_refused_total{"))
        .filter(|l| l.contains(r#"reason="address_max""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused > 0.0, "no refusal counted:\n{metrics}");
    println!(
        "300 connections opened in {opened:?}, all closed by {last_close:?}; {refused} refused at accept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_that_goes_quiet_is_closed() {
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let closed = closed_by_server(stream, Instant::now() + Duration::from_secs(4)).await;
    assert!(
        closed.is_some(),
        "an idle kept-alive connection stayed open"
    );
}

/// Sends `head` (a request whose body is announced longer than sent), then trickles one body
/// byte every 100 ms; returns the status line the server answers with (within `within`).
async fn trickle(to: SocketAddr, head: String, within: Duration) -> Option<String> {
    let stream = TcpStream::connect(to).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let trickler = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let status = tokio::time::timeout(within, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            if answer.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .map(str::to_string)
    })
    .await
    .ok()
    .flatten();
    trickler.abort();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_answered_408_on_both_listeners() {
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("REQUEST_TIMEOUT_SECS", "1")]).await;
    let bearer = token("acme", "alice", &["publisher"]);
    let publish = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{{"
    );
    let post_frame = "POST /main/@connections/abc HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                      Content-Length: 10000\r\n\r\n{"
        .to_string();
    for (to, head) in [(server.addr, publish), (server.management_addr, post_frame)] {
        let started = Instant::now();
        let status = trickle(to, head, Duration::from_secs(5)).await;
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.1 408 Request Timeout"),
            "{to} after {:?}",
            started.elapsed()
        );
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
    // A request in time is served as before.
    let (status, _) = server
        .publish(
            &bearer,
            &json!({"target": {"type": "users", "tenant": "acme", "users": ["bob"]}, "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_files_limit_is_raised_to_the_hard_limit_and_logged() {
    let server = LimitedServer::start(256, Some(4096), &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(open_files, ["4096", "4096"], "{limits}");
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("open-files limit"))
        .unwrap_or_else(|| panic!("no open-files line in:\n{logs}"));
    assert!(line.contains("256") && line.contains("4096"), "{line}");
    // 4096 descriptors cannot hold the default caps: said at start, naming the settings.
    assert!(
        logs.lines()
            .any(|l| l.contains("WARN") && l.contains("LISTENER_MAX_CONNECTIONS")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_on_the_management_listener_and_healthz_on_both() {
    let server = TestServer::start(Backend::Memory).await;
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    assert_eq!(get(server.http("/metrics")).await, 404);
    assert_eq!(get(server.management("/metrics")).await, 200);
    assert_eq!(get(server.http("/healthz")).await, 200);
    assert_eq!(get(server.management("/healthz")).await, 200);
}
