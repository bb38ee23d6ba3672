//! `switchboard keys generate` and `switchboard token --key`, run as processes, against a
//! server verifying the generated JWKS (`JWT_JWKS_FILE`), as a deployed stack does.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::cli::switchboard;
use super::harness::{assert_refused, command_refused, Backend, Client, TestServer, SECRET};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-e2e-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `keys generate --out <dir>`: its stdout.
fn generate(dir: &Path) -> String {
    let (ok, stdout, stderr) =
        switchboard(&["keys", "generate", "--out", dir.to_str().unwrap()], &[]);
    assert!(ok, "{stderr}");
    stdout
}

/// `token --key <dir>/private-key.pem` with extra arguments and variables.
fn token_with_key(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> String {
    let key = dir.join("private-key.pem");
    let mut args = vec!["token", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = switchboard(&args, envs);
    assert!(ok, "{stderr}");
    stdout
}

async fn handshake_status(server: &TestServer, token: &str) -> Option<u16> {
    let url = format!("{}?token={token}", server.ws_url());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(other) => panic!("handshake failed without an HTTP answer: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_keys_sign_tokens_a_jwks_server_accepts() {
    let ours = temp_dir("keys-ours");
    let theirs = temp_dir("keys-theirs");
    let printed = generate(&ours);
    generate(&theirs);
    let jwks_path = ours.join("jwks.json");
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(&jwks_path).unwrap()).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    assert!(printed.contains(&kid), "{printed}");
    assert!(
        printed.contains("JWT_JWKS_FILE="),
        "the next step is printed: {printed}"
    );

    // A second `generate` into the same folder refuses and leaves the key alone.
    let before = std::fs::read(ours.join("private-key.pem")).unwrap();
    let (status, stderr) =
        command_refused(&["keys", "generate", "--out", ours.to_str().unwrap()], &[]);
    assert_refused(status, &stderr, "--out");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(ours.join("private-key.pem")).unwrap(), before);

    let issuer = [
        ("JWT_ISSUER", "https://smoke.example"),
        ("JWT_AUDIENCE", "switchboard"),
    ];
    let mut server_env = vec![("JWT_JWKS_FILE", jwks_path.to_str().unwrap())];
    server_env.extend_from_slice(&issuer);
    let server = TestServer::start_raw(Backend::Memory, &[], &server_env).await;

    // Signed with our key (issuer and audience from the same variables the server reads);
    // an HS256 secret in the environment does not matter: --key wins.
    let mut mint_env = issuer.to_vec();
    mint_env.push(("JWT_HS256_SECRET", SECRET));
    let alice = token_with_key(&ours, &["--tenant", "acme", "--user", "alice"], &mint_env);
    let header: Value = {
        use base64::Engine;
        let head = alice.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(head)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], kid.as_str());
    let mut client = Client::connect(&server, &alice).await;

    let backend = token_with_key(
        &ours,
        &[
            "--tenant",
            "acme",
            "--user",
            "backend",
            "--role",
            "publisher",
        ],
        &issuer,
    );
    let (status, _) = server
        .publish(
            &backend,
            &json!({"id":"es256-1","target":{"type":"users","tenant":"acme","users":["alice"]},"data":{"signed":"ES256"}}),
        )
        .await;
    assert_eq!(status, 202);
    let frame = client.next_json().await;
    assert_eq!(frame["id"], "es256-1");
    assert_eq!(frame["data"], json!({"signed":"ES256"}));

    // Another generated key: refused, under its own kid and under ours.
    let stranger = token_with_key(&theirs, &["--tenant", "acme", "--user", "alice"], &issuer);
    assert_eq!(handshake_status(&server, &stranger).await, Some(401));
    let impostor = token_with_key(
        &theirs,
        &["--tenant", "acme", "--user", "alice", "--kid", &kid],
        &issuer,
    );
    assert_eq!(handshake_status(&server, &impostor).await, Some(401));
    // Our key without the issuer the server requires: refused too.
    let no_issuer = token_with_key(&ours, &["--tenant", "acme", "--user", "alice"], &[]);
    assert_eq!(handshake_status(&server, &no_issuer).await, Some(401));
    let (status, _) = server
        .publish(
            &stranger,
            &json!({"target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
        )
        .await;
    assert_eq!(status, 401);

    std::fs::remove_dir_all(&ours).unwrap();
    std::fs::remove_dir_all(&theirs).unwrap();
}

#[test]
fn token_with_a_missing_or_foreign_key_file_says_why() {
    let dir = temp_dir("keys-bad");
    generate(&dir);
    // A missing file names it; a file that is not a private key (the JWKS) says so.
    for (file, says) in [("nope.pem", "nope.pem"), ("jwks.json", "PRIVATE KEY")] {
        let path = dir.join(file);
        let args = ["token", "--key", path.to_str().unwrap()];
        let args = [&args[..], &["--tenant", "acme", "--user", "a"]].concat();
        let (status, stderr) = command_refused(&args, &[]);
        assert_refused(status, &stderr, "--key");
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
