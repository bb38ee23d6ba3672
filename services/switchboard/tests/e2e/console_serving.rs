//! The operator console's serving: `serve`'s `/console` (page, assets, `config.json`) and
//! `switchboard console`, the real binary forwarding `/v1/…` to a real `serve` or to small
//! axum stubs (an echo, a 9 MiB answer, an API that never answers), within its bounds.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{
    assert_refused, command_refused, run_switchboard, token, Backend, Client, TestServer,
};

const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";

/// A `switchboard console` process, killed on drop.
struct Console {
    child: Child,
    addr: SocketAddr,
    /// Its stdout lines after the first.
    lines: Receiver<String>,
}

impl Console {
    fn start(args: &[&str]) -> Console {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("console")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            // Would be used if the console read the environment's proxy settings.
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .stdout(Stdio::piped())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("switchboard console starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("console printed its address");
        let addr = first
            .strip_prefix("console: http://")
            .and_then(|rest| rest.strip_suffix("/console"))
            .unwrap_or_else(|| panic!("not `console: http://<addr>/console`: {first:?}"))
            .parse()
            .expect("an address");
        Console { child, addr, lines }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// An HTTP stub on a free loopback port answering every path with `app`.
async fn stub(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get(url: &str) -> reqwest::Response {
    http().get(url).send().await.unwrap()
}

/// The headers of every console answer.
#[track_caller]
fn assert_console_headers(headers: &reqwest::header::HeaderMap, content_type: &str) {
    assert_eq!(headers["content-type"], content_type);
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

/// The page, its two assets and `config.json`, as a browser asks for them at `base`.
async fn assert_serves_the_console(base: &str, config: Value) {
    for path in ["/console", "/console/"] {
        let page = get(&format!("{base}{path}")).await;
        assert_eq!(page.status(), 200, "{path}");
        assert_console_headers(page.headers(), "text/html; charset=utf-8");
        assert_eq!(page.headers()["content-security-policy"], CSP, "{path}");
        let text = page.text().await.unwrap();
        assert!(
            text.contains("<title>Switchboard console</title>"),
            "{text}"
        );
    }
    for (path, content_type) in [
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let asset = get(&format!("{base}{path}")).await;
        assert_eq!(asset.status(), 200, "{path}");
        assert_console_headers(asset.headers(), content_type);
    }
    let answer = get(&format!("{base}/console/config.json")).await;
    assert_eq!(answer.status(), 200);
    assert_console_headers(answer.headers(), "application/json");
    assert_eq!(answer.json::<Value>().await.unwrap(), config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_the_console_and_its_config() {
    let server = TestServer::start(Backend::Memory).await;
    assert_serves_the_console(
        &server.http(""),
        json!({"deployment": "serve", "websocketUrl": null, "devToken": false, "stage": "main"}),
    )
    .await;

    let dev = TestServer::start_raw(Backend::Memory, &["--dev", "--stage", "blue"], &[]).await;
    assert_serves_the_console(
        &dev.http(""),
        json!({"deployment": "serve", "websocketUrl": null, "devToken": true, "stage": "blue"}),
    )
    .await;
}

/// Through `switchboard console` to a real `serve`: a publish, its receipt and presence,
/// each answered as `serve` answers it (status, body; the token carried), and exactly one
/// line on stdout; SIGTERM stops it with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forwards_publish_receipt_and_presence_to_serve() {
    let server = TestServer::start(Backend::Memory).await;
    let api = server.http("");
    let mut console = Console::start(&["--api", &api, "--websocket", "ws://127.0.0.1:1/main"]);
    assert_serves_the_console(
        &console.url(""),
        json!({"deployment": "aws", "websocketUrl": "ws://127.0.0.1:1/main", "devToken": false}),
    )
    .await;

    let admin = token("acme", "ops", &["admin"]);
    let mut alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    let envelope = json!({
        "target": {"type": "users", "tenant": "acme", "users": ["alice"]},
        "data": {"via": "console"}
    });
    let published = http()
        .post(console.url("/v1/messages"))
        .bearer_auth(&admin)
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    assert_eq!(published.headers()["content-type"], "application/json");
    let id = published.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(alice.next_json().await["data"], json!({"via": "console"}));

    for path in [
        format!("/v1/messages/{id}?tenant=acme"),
        "/v1/tenants/acme/presence".to_string(),
        "/v1/tenants/acme/users/alice/presence".to_string(),
    ] {
        let read = |url: String| http().get(url).bearer_auth(&admin).send();
        let direct = read(server.http(&path)).await.unwrap();
        let (direct_status, direct_body) = (direct.status(), direct.text().await.unwrap());
        let forwarded = read(console.url(&path)).await.unwrap();
        assert_eq!(forwarded.status(), direct_status, "{path}");
        assert_eq!(direct_status, 200, "{path}: {direct_body}");
        let forwarded: Value = forwarded.json().await.unwrap();
        if path.contains("/messages/") {
            assert_eq!(forwarded["id"], id.as_str());
        } else {
            // Presence does not change in between: the same answer.
            assert_eq!(
                forwarded,
                serde_json::from_str::<Value>(&direct_body).unwrap()
            );
        }
    }
    let presence: Value = get(&console.url("/v1/tenants/acme/presence"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        presence["error"], "unauthorized",
        "no token, none forwarded"
    );
    let unauthorized = get(&console.url("/v1/tenants/acme/presence")).await;
    assert_eq!(unauthorized.status(), 401);

    let status = Command::new("kill")
        .args(["-TERM", &console.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = console.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        console.lines.recv_timeout(Duration::from_secs(5)).ok(),
        None,
        "more than one line on stdout"
    );
}

/// What the echo stub saw: method, path, query, every header, the body.
async fn echo(
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or("?"))))
        .collect();
    let seen = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": body,
    });
    (
        StatusCode::CREATED,
        [("content-type", "application/x-echo+json")],
        seen.to_string(),
    )
}

/// An API with a path prefix: an echo, a redirect, answers of 9 MiB (with and without a
/// length) and one that never comes.
fn stub_api() -> Router {
    const NINE_MIB: usize = 9 * 1024 * 1024;
    Router::new()
        .route("/prod/v1/echo", any(echo))
        .route(
            "/prod/v1/redirect",
            any(|| async { (StatusCode::FOUND, [("location", "/prod/v1/echo")], "") }),
        )
        .route("/prod/v1/big", any(|| async { vec![b'x'; NINE_MIB] }))
        .route(
            "/prod/v1/big-stream",
            any(|| async {
                let chunks = (0..9).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024 * 1024]));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/prod/v1/slow",
            any(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "too late"
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forwards_only_what_it_should_within_its_bounds() {
    let upstream = stub(stub_api()).await;
    let api = format!("http://127.0.0.1:{}/prod/", upstream.port());
    let console = Console::start(&["--api", &api, "--api-timeout", "1s"]);

    // Method, path under the prefix, query, Authorization, Content-Type and body; no other
    // header. The API's status and Content-Type come back.
    let answer = http()
        .put(console.url("/v1/echo?tenant=acme&x=%2F"))
        .header("authorization", "Bearer abc")
        .header("content-type", "application/json")
        .header("cookie", "session=secret")
        .header("x-other", "1")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["content-type"], "application/x-echo+json");
    let seen: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/prod/v1/echo");
    assert_eq!(seen["query"], "tenant=acme&x=%2F");
    assert_eq!(seen["body"], r#"{"a":1}"#);
    assert_eq!(seen["headers"]["authorization"], "Bearer abc");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    for absent in ["cookie", "x-other", "referer", "origin"] {
        assert!(
            seen["headers"].get(absent).is_none(),
            "{absent} forwarded: {seen}"
        );
    }

    // A redirect is answered, not followed.
    let redirect = get(&console.url("/v1/redirect")).await;
    assert_eq!(redirect.status(), 302);

    let refused = |status: u16, code: &'static str| {
        move |response: reqwest::Response| async move {
            assert_eq!(response.status(), status, "{code}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], code, "{body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
    };
    for path in ["/v1/big", "/v1/big-stream"] {
        refused(502, "bad_gateway")(get(&console.url(path)).await).await;
    }
    let started = std::time::Instant::now();
    refused(504, "gateway_timeout")(get(&console.url("/v1/slow")).await).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let post = |bytes: usize| {
        http()
            .post(console.url("/v1/echo"))
            .body(vec![b'x'; bytes])
            .send()
    };
    refused(413, "payload_too_large")(post(1024 * 1024 + 1000).await.unwrap()).await;
    assert_eq!(
        post(1024 * 1024).await.unwrap().status(),
        201,
        "a body of exactly 1 MiB is forwarded"
    );

    for path in [
        "/",
        "/v2/echo",
        "/healthz",
        "/console/other",
        "/v1/x/../../echo",
    ] {
        refused(404, "not_found")(get(&console.url(path)).await).await;
    }
    // Raw paths, as a client that does not normalise them sends them: they would climb out
    // of the API's prefix.
    for path in ["/v1/../../prod/v1/echo", "/v1/%2e%2e/%2E%2E/prod/v1/echo"] {
        let (status, body) = raw_get(console.addr, path, "127.0.0.1").await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // DNS rebinding: a page of another site reaches the loopback port under its own name.
    for host in ["evil.example", "localhost.evil.example", "10.0.0.1:8788"] {
        for path in ["/v1/echo", "/console", "/console/config.json"] {
            let (status, body) = raw_get(console.addr, path, host).await;
            assert_eq!(status, 403, "{host}{path}: {body}");
            assert!(body.contains("\"forbidden\""), "{body}");
        }
    }
    let (status, _) = raw_get(console.addr, "/v1/echo", "localhost").await;
    assert_eq!(status, 201, "localhost is loopback");
}

/// `GET path` with exactly this `Host`: the status and body.
async fn raw_get(addr: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_answers_502_when_the_api_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console = Console::start(&["--api", &format!("http://127.0.0.1:{port}")]);
    let answer = get(&console.url("/v1/tenants")).await;
    assert_eq!(answer.status(), 502);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["error"],
        "bad_gateway"
    );
}

#[test]
fn console_refuses_a_public_listen_and_unsafe_urls_naming_the_flag() {
    for (args, flag) in [
        (
            vec!["--api", "https://api.example", "--listen", "0.0.0.0:0"],
            "--listen",
        ),
        (
            vec!["--api", "https://api.example", "--listen", "10.1.2.3:8788"],
            "--listen",
        ),
        (vec!["--api", "http://api.example"], "--api"),
        (vec!["--api", "http://10.0.0.1:8080"], "--api"),
        (vec!["--api", "api.example"], "--api"),
        (vec!["--api", "https://user:pw@api.example"], "--api"),
        (vec!["--api", "https://api.example/v1/messages"], "--api"),
        (
            vec![
                "--api",
                "https://api.example",
                "--websocket",
                "ws://ws.example/prod",
            ],
            "--websocket",
        ),
        (
            vec![
                "--api",
                "https://api.example",
                "--websocket",
                "https://ws.example",
            ],
            "--websocket",
        ),
    ] {
        let mut all = vec!["console"];
        all.extend(args.iter().copied());
        let output = run_switchboard(&all, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_refused(output.status, &stderr, flag);
        assert!(output.stdout.is_empty(), "printed an address: {args:?}");
    }
    // Without --api: clap's refusal, in the same shape.
    let (status, stderr) = command_refused(&["console"], &[]);
    assert_refused(status, &stderr, "--api");
}
