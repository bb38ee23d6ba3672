//! What the benchmark commands share: the release `switchboard serve` they start (in its
//! own process, killed when dropped), tokens for it, client sockets with small buffers, the
//! server's resident memory, a publish, and this process's open-files limit.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The HS256 secret of the servers these commands start.
const SECRET: &str = "benchmark-secret-0123456789abcdefghijklmnop";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A token of `tenant`/`user` with `roles`, valid for six hours.
pub fn token(tenant: &str, user: &str, roles: &[&str]) -> String {
    switchboard_core::testkit::token(
        SECRET.as_bytes(),
        tenant,
        user,
        roles,
        Duration::from_secs(6 * 3600),
    )
}

/// Raises this process's open-files limit to its hard limit (every socket takes one).
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current
}

/// The `switchboard` binary: `SWITCHBOARD_BIN`, else the one beside this example's folder
/// (target/release).
fn binary() -> PathBuf {
    std::env::var_os("SWITCHBOARD_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("switchboard"))
        })
        .unwrap()
}

/// A running `switchboard serve` on port 0, killed when dropped.
pub struct Server {
    child: Child,
    /// The public listener (WebSocket and publish API).
    pub addr: String,
    /// The management listener (`/metrics`, `@connections`).
    pub management_addr: String,
}

impl Server {
    /// Starts it with this process's environment plus `envs`, the secret of [`token`] and
    /// `RUST_LOG=error`, and waits for it to print its addresses.
    pub fn start(envs: &[(&str, &str)]) -> Self {
        Self::start_args(&[], envs)
    }

    /// As [`Server::start`], with `serve`'s flags `args` (e.g. `--dev`) after the listeners.
    pub fn start_args(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let binary = binary();
        let mut child = Command::new(&binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env("JWT_HS256_SECRET", SECRET)
            .env("RUST_LOG", "error")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (cargo build --release --bin switchboard, or set SWITCHBOARD_BIN)",
                    binary.display()
                )
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut after = |prefix: &str| loop {
            let line = lines.next().expect("server output").unwrap();
            if let Some(rest) = line.strip_prefix(prefix) {
                break rest.split(['/', ' ']).next().unwrap().to_string();
            }
        };
        let addr = after("switchboard listening on http://");
        let management_addr = after("switchboard management API on http://");
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            addr,
            management_addr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The WebSocket URL, without a token.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/main", self.addr)
    }

    /// The WebSocket URL with `token`.
    pub fn ws(&self, token: &str) -> String {
        format!("{}?token={token}", self.ws_url())
    }

    pub fn publish_url(&self) -> String {
        format!("http://{}/v1/messages", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client's socket settings: a small read buffer, writes sent at once.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A client socket to `url` with [`client_config`].
pub async fn connect(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async_with_config(url, Some(client_config()), false)
        .await
        .map(|(socket, _)| socket)
}

/// `POST` of `envelope` to the publish API at `url` as `token`: the status.
pub async fn publish(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    envelope: &serde_json::Value,
) -> u16 {
    http.post(url)
        .bearer_auth(token)
        .json(envelope)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The resident memory of process `pid`, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
