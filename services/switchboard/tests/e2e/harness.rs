//! Starts `switchboard serve` on port 0, in this process (`cli::serve::start_in_process`,
//! the binary's own start-up path) or as the real binary (for the CLI, signals and logs),
//! and talks to it as clients do.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "an-end-to-end-test-secret-of-32-bytes-or-more";

/// Which roster the server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Dynamodb,
}

/// A running `switchboard serve`, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The `@connections` listener.
    pub management_addr: SocketAddr,
    running: Running,
}

enum Running {
    /// The real binary (killed on drop).
    Process(Child),
    /// Started in this process (stopped on drop).
    InProcess(switchboard::serve::Server),
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::InProcess(server) => server.stop_now(),
        }
    }
}

pub fn dynamodb_endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").expect(
        "DYNAMODB_ENDPOINT is not set: run the tests with scripts/test.sh, which starts DynamoDB Local",
    )
}

/// `switchboard serve <args>` with a clean environment plus `envs`.
pub fn serve_command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "RUST_LOG",
            if std::env::var("TEST_LOG").is_ok() {
                "debug"
            } else {
                "warn"
            },
        )
        .stdout(Stdio::piped())
        .stderr(if std::env::var("TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Both listeners on port 0, for a process started with exactly these flags.
pub const LISTEN: [&str; 4] = [
    "--listen",
    "127.0.0.1:0",
    "--management-listen",
    "127.0.0.1:0",
];

/// `switchboard <args>` (any command) with a clean environment plus `envs`, run to its end.
pub fn run_switchboard(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .output()
        .expect("switchboard runs")
}

/// Runs `switchboard <args>` expecting it to refuse to start: its exit status and stderr.
pub fn command_refused(args: &[&str], envs: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let output = run_switchboard(args, envs);
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `serve` expecting it to refuse to start: its exit status and stderr.
pub fn serve_refused(args: &[&str], envs: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut command = serve_command(args, envs);
    command.stderr(Stdio::piped()).stdout(Stdio::null());
    let mut child = command.spawn().expect("switchboard binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve {args:?} kept running; expected a start-up refusal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts a start-up refusal (docs/design.md: The one-machine binary): exit code 78 and,
/// as the last two lines of stderr (logs may precede them),
/// `switchboard: configuration error: <setting>: <problem>` then `  fix: <what to do>`, the
/// first naming `setting`.
#[track_caller]
pub fn assert_refused(status: std::process::ExitStatus, stderr: &str, setting: &str) {
    assert_eq!(
        status.code(),
        Some(78),
        "not a refusal's exit code: {stderr}"
    );
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let [.., first, fix] = lines.as_slice() else {
        panic!("fewer than two lines: {stderr}");
    };
    let refusal = first
        .strip_prefix("switchboard: configuration error: ")
        .unwrap_or_else(|| panic!("not a refusal's first line: {first:?} in {stderr}"));
    let (named, problem) = refusal
        .split_once(": ")
        .unwrap_or_else(|| panic!("no `<setting>: <problem>`: {first:?}"));
    assert!(
        named.contains(setting),
        "{setting} not named as the setting: {first:?}"
    );
    assert!(!problem.trim().is_empty(), "no problem: {first:?}");
    let fix = fix
        .strip_prefix("  fix: ")
        .unwrap_or_else(|| panic!("not a refusal's fix line: {fix:?} in {stderr}"));
    assert!(!fix.trim().is_empty(), "no fix: {stderr}");
}

/// The flags every test server gets unless the test gives them: port 0 for both listeners
/// and a short visibility timeout.
fn test_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    if !args.contains(&"--visibility-timeout") {
        all.extend(["--visibility-timeout", "100ms"]);
    }
    if !args.contains(&"--management-listen") {
        all.extend(["--management-listen", "127.0.0.1:0"]);
    }
    all.extend_from_slice(args);
    all
}

/// The DynamoDB backend's flags and variables: fresh tables on DynamoDB Local.
fn dynamodb_setup() -> ([&'static str; 3], Vec<(&'static str, String)>) {
    let table = format!("e2e-{}", uuid::Uuid::new_v4());
    (
        ["--roster", "dynamodb", "--create-table"],
        vec![
            ("DYNAMODB_ENDPOINT", dynamodb_endpoint()),
            ("HISTORY_TABLE", format!("{table}-history")),
            ("ROSTER_TABLE", table),
        ],
    )
}

impl TestServer {
    /// In this process, with the test secret.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[], &[]).await
    }

    /// In this process, with the test secret plus `envs`.
    pub async fn start_with(backend: Backend, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut all = vec![("JWT_HS256_SECRET", SECRET)];
        all.extend_from_slice(envs);
        Self::start_raw(backend, args, &all).await
    }

    /// In this process, with exactly these variables (no JWT secret unless given).
    pub async fn start_raw(backend: Backend, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut all = test_args(args);
        // In this process the AWS SDK takes credentials and region from the process
        // environment, never from `vars`: without them in `vars`, DynamoDB Local gets the
        // dummy ones, as the binary does with the tests' "local" values.
        let sdk_only = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"];
        let mut vars: std::collections::HashMap<String, String> = envs
            .iter()
            .filter(|(k, _)| !sdk_only.contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if backend == Backend::Dynamodb {
            let (flags, dynamo_vars) = dynamodb_setup();
            all.extend(flags);
            vars.extend(dynamo_vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        let server = switchboard::cli::serve::start_in_process(&all, vars)
            .await
            .unwrap_or_else(|e| panic!("serve {all:?} starts: {e}"));
        TestServer {
            addr: server.addr,
            management_addr: server.management_addr,
            running: Running::InProcess(server),
        }
    }

    /// The real binary, with the test secret plus `envs` (for signals and process exit).
    pub fn start_process(backend: Backend, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut all = vec![("JWT_HS256_SECRET", SECRET)];
        all.extend_from_slice(envs);
        Self::start_logged(backend, args, &all, None)
    }

    /// The real binary with exactly these variables, its stderr (its logs) written to
    /// `stderr` when given.
    pub fn start_logged(
        backend: Backend,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: Option<std::fs::File>,
    ) -> Self {
        let mut command = serve_command(&test_args(args), envs);
        if let Some(file) = stderr {
            command.stderr(file);
        }
        if backend == Backend::Dynamodb {
            let (flags, vars) = dynamodb_setup();
            command
                .args(flags)
                .envs(vars)
                .env("AWS_ACCESS_KEY_ID", "local")
                .env("AWS_SECRET_ACCESS_KEY", "local")
                .env("AWS_REGION", "us-east-1");
        }
        let mut child = command.spawn().expect("switchboard binary starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for prefix in [
                    "switchboard listening on http://",
                    "switchboard management API on http://",
                ] {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        let addr = rest
                            .split(['/', ' '])
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let next_addr = || -> SocketAddr {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("server printed its addresses")
                .parse()
                .expect("address parses")
        };
        let addr = next_addr();
        let management_addr = next_addr();
        TestServer {
            addr,
            management_addr,
            running: Running::Process(child),
        }
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.running {
            Running::Process(child) => child,
            Running::InProcess(_) => panic!("an in-process server has no process: start_process"),
        }
    }

    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the management listener.
    pub fn management(&self, path: &str) -> String {
        format!("http://{}{path}", self.management_addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/main", self.addr)
    }

    pub async fn publish(&self, token: &str, envelope: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.http("/v1/messages"))
            .bearer_auth(token)
            .json(envelope)
            .send()
            .await
            .expect("publish request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// `/metrics`, on the management listener.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.management("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one metric line (`name{labels} value`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

pub fn token(tenant: &str, user: &str, roles: &[&str]) -> String {
    switchboard_core::testkit::token(
        SECRET.as_bytes(),
        tenant,
        user,
        roles,
        Duration::from_secs(600),
    )
}

/// The test signing keys (`core/src/auth/testdata`): `rsa-1` signs RS256, `ec-1` ES256.
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/src/auth/testdata");

/// An issuers file (`JWT_ISSUERS_FILE`) in a fresh temporary folder that also holds the
/// public key of each test key as its own JWKS file, `rsa-1.json` and `ec-1.json`:
/// `issuers(folder)` gives the file's `issuers` list, its `jwksFile`s naming those.
pub fn issuers_file(issuers: impl FnOnce(&Path) -> Value) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-e2e-issuers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{TESTDATA}/jwks.json")).unwrap())
            .unwrap();
    for kid in ["rsa-1", "ec-1"] {
        let key = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        std::fs::write(
            dir.join(format!("{kid}.json")),
            json!({ "keys": [key] }).to_string(),
        )
        .unwrap();
    }
    let file = dir.join("issuers.json");
    std::fs::write(&file, json!({ "issuers": issuers(&dir) }).to_string()).unwrap();
    file
}

/// The issuer of acme's and globex's own admins and users (RS256, `rsa-1`).
pub const TENANT_IDP: &str = "https://tenant-idp.example";
/// The operators' issuer: every tenant, global admins (ES256, `ec-1`).
pub const OPS_IDP: &str = "https://ops-idp.example";

/// An issuers file of [`TENANT_IDP`] (tenants acme and globex) and [`OPS_IDP`] (`*`,
/// `globalAdmin`, sharing tenants).
pub fn tenant_and_ops_issuers_file() -> PathBuf {
    issuers_file(|dir| {
        json!([
            {"issuer": TENANT_IDP, "jwksFile": dir.join("rsa-1.json"),
             "tenants": ["acme", "globex"]},
            {"issuer": OPS_IDP, "jwksFile": dir.join("ec-1.json"), "tenants": "*",
             "globalAdmin": true, "allowSharedTenants": true}
        ])
    })
}

/// A token of [`TENANT_IDP`] for `user` of `tenant` (its admins are tenant-scoped).
pub fn tenant_idp_token(tenant: &str, user: &str, roles: &[&str]) -> String {
    let claims = json!({"iss": TENANT_IDP, "sub": user, "tenant": tenant, "roles": roles,
                        "exp": expires_in(300)});
    signed_token("rsa-1", &claims)
}

/// A global admin of [`OPS_IDP`] (`root` of tenant `ops`).
pub fn ops_admin_token() -> String {
    let claims = json!({"iss": OPS_IDP, "sub": "root", "tenant": "ops", "roles": ["admin"],
                        "exp": expires_in(300)});
    signed_token("ec-1", &claims)
}

/// A token of `claims` signed with test key `kid` (`rsa-1`: RS256, else `ec-1`: ES256).
pub fn signed_token(kid: &str, claims: &Value) -> String {
    let (alg, pem) = if kid == "rsa-1" {
        (Algorithm::RS256, "rsa1_private.pem")
    } else {
        (Algorithm::ES256, "ec1_private.pem")
    };
    let pem = std::fs::read(format!("{TESTDATA}/{pem}")).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    encode(&header, claims, &key).unwrap()
}

/// `exp` for a token valid `ttl_secs` from now.
pub fn expires_in(ttl_secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + ttl_secs
}

/// The envelope `id`s of a `GET /v1/dead-letters` page, in its order.
pub fn dead_letter_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| {
            let body: Value = serde_json::from_str(letter["body"].as_str().unwrap()).unwrap();
            body["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A DynamoDB roster nobody answers (a port that was free): every roster call fails at once,
/// so every message fails (and dead-letters at its last receive).
pub struct DeadRoster {
    endpoint: String,
}

impl DeadRoster {
    pub fn unreachable() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Its flags, then `args`.
    pub fn args<'a>(&self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--roster", "dynamodb"];
        all.extend_from_slice(args);
        all
    }

    /// Its variables, then `envs`.
    pub fn envs<'a>(&'a self, envs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![
            ("DYNAMODB_ENDPOINT", self.endpoint.as_str()),
            ("ROSTER_TABLE", "unreachable"),
            // Receipts would live on the same unreachable DynamoDB and refuse every publish.
            ("RECEIPT_TTL_SECS", "0"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_REGION", "us-east-1"),
            // The real binary: a refused connection fails the message at once, without the
            // SDK's backoff (in this process the SDK reads only the process environment).
            ("AWS_MAX_ATTEMPTS", "1"),
        ];
        all.extend_from_slice(envs);
        all
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected client and its connection id (learned through `whoami`).
pub struct Client {
    pub socket: Socket,
    pub connection_id: String,
    pub subprotocol: Option<String>,
}

impl Client {
    /// Connects with the token in the query string.
    pub async fn connect(server: &TestServer, token: &str) -> Client {
        let url = format!("{}?token={token}", server.ws_url());
        let (socket, response) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        Self::finish(socket, response).await
    }

    /// Connects with the token in `Sec-WebSocket-Protocol: bearer, <jwt>`.
    pub async fn connect_subprotocol(server: &TestServer, token: &str) -> Client {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("bearer, {token}").parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("handshake");
        Self::finish(socket, response).await
    }

    async fn finish(
        socket: Socket,
        response: tokio_tungstenite::tungstenite::handshake::client::Response,
    ) -> Client {
        let subprotocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        let mut client = Client {
            socket,
            connection_id: String::new(),
            subprotocol,
        };
        let whoami = client.request(r#"{"action":"whoami"}"#).await;
        client.connection_id = whoami["connectionId"].as_str().unwrap().to_string();
        client
    }

    pub async fn send(&mut self, text: &str) {
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends a frame and returns the next text frame.
    pub async fn request(&mut self, text: &str) -> Value {
        self.send(text).await;
        self.next_json().await
    }

    /// The next text frame as JSON (panics after 10 s).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a frame within 10 s")
                .expect("socket open")
                .expect("frame");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Every frame until the one whose id is `marker` (excluded).
    pub async fn frames_until(&mut self, marker: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame["id"] == marker {
                return frames;
            }
            frames.push(frame);
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(Duration::from_secs(15), self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("no close within 15 s"),
            }
        }
    }
}

/// Polls `check` until it is true (or panics after `within`).
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not true within {within:?}: {what}");
}
