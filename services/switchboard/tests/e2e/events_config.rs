//! Event settings at start-up (issue 23; docs/design.md: Events), through the real
//! binary: a bad `WEBHOOK_*` or `EVENTS_OFFLINE_DELAY_SECS` refuses start-up naming the
//! setting — and for `WEBHOOK_FILE` the entry — with exit code 78, never echoing a
//! secret; `serve --dev` accepts a loopback `http` endpoint.

use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use super::harness::{assert_refused, serve_refused, Backend, TestServer, LISTEN, SECRET};

/// A valid secret: `whsec_` + standard base64 of `bytes` bytes.
fn secret(bytes: usize) -> String {
    let key: Vec<u8> = (0..bytes).map(|i| i as u8 ^ 0x5a).collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Writes `value` to a fresh temporary file.
fn file(name: &str, value: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("e2e-{name}-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn refused(envs: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut all = vec![("JWT_HS256_SECRET", SECRET)];
    all.extend_from_slice(envs);
    serve_refused(&LISTEN, &all)
}

#[test]
fn a_webhook_file_naming_a_tenant_not_in_the_tenants_file_is_refused_naming_the_entry() {
    let tenants = file("tenants", &json!({"tenants": {"acme": {}}}));
    let good = secret(32);
    let webhooks = file(
        "webhooks",
        &json!({"tenants": {
            "acme": {"url": "https://hooks.example.com/acme", "secret": good},
            "globex": {"url": "https://hooks.example.com/globex", "secret": good},
        }}),
    );
    let (status, stderr) = refused(&[
        ("TENANTS_FILE", tenants.to_str().unwrap()),
        ("WEBHOOK_FILE", webhooks.to_str().unwrap()),
    ]);
    assert_refused(status, &stderr, "WEBHOOK_FILE");
    assert!(stderr.contains("tenants.globex"), "{stderr}");
    assert!(
        !stderr.contains(&good),
        "the secret is never shown: {stderr}"
    );
    // The same file without TENANTS_FILE: any tenant may have an endpoint.
    let mut server = TestServer::start_process(
        Backend::Memory,
        &[],
        &[("WEBHOOK_FILE", webhooks.to_str().unwrap())],
    );
    assert!(server
        .wait_exit(std::time::Duration::from_millis(200))
        .is_none());
    let _ = std::fs::remove_file(tenants);
    let _ = std::fs::remove_file(webhooks);
}

#[test]
fn a_short_secret_in_the_webhook_file_is_refused_naming_the_entry() {
    let short = secret(16);
    let webhooks = file(
        "webhooks",
        &json!({"tenants": {"acme": {"url": "https://hooks.example.com/", "secret": short}}}),
    );
    let (status, stderr) = refused(&[("WEBHOOK_FILE", webhooks.to_str().unwrap())]);
    assert_refused(status, &stderr, "WEBHOOK_FILE");
    assert!(stderr.contains("tenants.acme.secret"), "{stderr}");
    assert!(
        !stderr.contains(&short),
        "the secret is never shown: {stderr}"
    );
    let _ = std::fs::remove_file(webhooks);
}

#[test]
fn a_webhook_url_that_is_not_https_is_refused_outside_dev_mode() {
    let good = secret(32);
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://hooks.example.com/",
        "ftp://x/",
    ] {
        let (status, stderr) = refused(&[("WEBHOOK_URL", url), ("WEBHOOK_SECRET", &good)]);
        assert_refused(status, &stderr, "WEBHOOK_URL");
        assert!(
            !stderr.contains(&good),
            "the secret is never shown: {stderr}"
        );
    }
}

#[test]
fn a_short_or_malformed_webhook_secret_is_refused_without_its_value() {
    let url = "https://hooks.example.com/";
    for bad in [
        secret(16),
        "not-a-whsec-secret-but-long-enough-0123456789".to_string(),
    ] {
        let (status, stderr) = refused(&[("WEBHOOK_URL", url), ("WEBHOOK_SECRET", &bad)]);
        assert_refused(status, &stderr, "WEBHOOK_SECRET");
        assert!(
            !stderr.contains(&bad),
            "the secret is never shown: {stderr}"
        );
    }
}

#[test]
fn a_webhook_url_without_its_secret_and_the_reverse_are_refused() {
    let url = "https://hooks.example.com/";
    let (status, stderr) = refused(&[("WEBHOOK_URL", url)]);
    assert_refused(status, &stderr, "WEBHOOK_SECRET");
    let good = secret(32);
    let (status, stderr) = refused(&[("WEBHOOK_SECRET", &good)]);
    assert_refused(status, &stderr, "WEBHOOK_URL");
    assert!(
        !stderr.contains(&good),
        "the secret is never shown: {stderr}"
    );
}

#[test]
fn an_offline_delay_past_900_seconds_is_refused() {
    for bad in ["901", "-1", "soon"] {
        let (status, stderr) = refused(&[("EVENTS_OFFLINE_DELAY_SECS", bad)]);
        assert_refused(status, &stderr, "EVENTS_OFFLINE_DELAY_SECS");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_accepts_a_loopback_http_endpoint() {
    let good = secret(32);
    let envs = [
        ("WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
        ("WEBHOOK_SECRET", good.as_str()),
        ("EVENTS_OFFLINE_DELAY_SECS", "900"),
    ];
    let mut server = TestServer::start_logged(Backend::Memory, &["--dev"], &envs, None);
    let health = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(server
        .wait_exit(std::time::Duration::from_millis(100))
        .is_none());
}
