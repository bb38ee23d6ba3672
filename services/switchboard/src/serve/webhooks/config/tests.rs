//! The refusals of `WebhookConfig::from_lookup`, each named as `serve` prints it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::HashMap;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn read(pairs: &[(&str, &str)], dev: bool) -> Result<Option<WebhookConfig>, ConfigError> {
    WebhookConfig::from_lookup(lookup(pairs), dev, None)
}

/// The refusal's text, checked never to hold the secret's base64.
fn refusal(result: Result<Option<WebhookConfig>, ConfigError>) -> String {
    let text = result.expect_err("refused").to_string();
    assert!(!text.contains("C2FVsBQIhrscChlQ"), "secret echoed: {text}");
    text
}

/// A `WEBHOOK_FILE` with `text`, kept for the test's life.
struct File(std::path::PathBuf);

impl File {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("webhooks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file_refusal(text: &str, dev: bool, known: Option<&HashSet<TenantId>>) -> String {
    let file = File::new(text);
    let result = WebhookConfig::from_lookup(lookup(&[(FILE_VAR, &file.path())]), dev, known);
    let text = refusal(result);
    assert!(text.starts_with("WEBHOOK_FILE="), "{text}");
    text
}

fn entry(url: &str, secret: &str) -> String {
    serde_json::json!({"tenants": {"acme": {"url": url, "secret": secret}}}).to_string()
}

#[test]
fn no_endpoint_means_no_events() {
    assert!(read(&[], false).unwrap().is_none());
    // The numbers are checked all the same.
    let text = refusal(read(&[(TIMEOUT_SECS_VAR, "0")], false));
    assert!(text.contains(TIMEOUT_SECS_VAR), "{text}");
}

#[test]
fn reads_the_global_endpoint_with_defaults() {
    let config = read(
        &[
            (URL_VAR, "https://hooks.example.com/in?x=1"),
            (SECRET_VAR, SECRET),
        ],
        false,
    )
    .unwrap()
    .unwrap();
    let global = config.global.as_ref().unwrap();
    assert_eq!(global.url.as_str(), "https://hooks.example.com/in?x=1");
    assert_eq!(config.retry_window, Duration::from_secs(24 * 3600));
    assert_eq!(config.capacity, 100_000);
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert!(config.tenants.is_empty());
    assert!(!format!("{config:?}").contains("C2FVsBQIhrscChlQ"));
    assert!(!config.summary().contains("x=1"), "{}", config.summary());
}

#[test]
fn reads_a_tenant_file_checked_against_the_tenants() {
    let file = File::new(&entry("https://acme.example.com/hook", SECRET));
    let known: HashSet<TenantId> = [TenantId::parse("acme").unwrap()].into();
    let config =
        WebhookConfig::from_lookup(lookup(&[(FILE_VAR, &file.path())]), false, Some(&known))
            .unwrap()
            .unwrap();
    assert!(config.global.is_none());
    let acme = config
        .tenants
        .get(&TenantId::parse("acme").unwrap())
        .unwrap();
    assert_eq!(acme.url.host_str(), Some("acme.example.com"));
}

#[test]
fn dev_allows_loopback_http_only() {
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]:8/x",
    ] {
        assert!(
            read(&[(URL_VAR, url), (SECRET_VAR, SECRET)], true).is_ok(),
            "{url}"
        );
        let text = refusal(read(&[(URL_VAR, url), (SECRET_VAR, SECRET)], false));
        assert!(
            text.starts_with("WEBHOOK_URL=") && text.contains("must be https"),
            "{text}"
        );
    }
    let text = refusal(read(
        &[(URL_VAR, "http://10.0.0.8/hook"), (SECRET_VAR, SECRET)],
        true,
    ));
    assert!(text.contains("loopback"), "{text}");
    let text = file_refusal(&entry("http://hooks.example.com/", SECRET), true, None);
    assert!(
        text.contains("tenants.acme.url: ") && text.contains("loopback"),
        "{text}"
    );
    let text = file_refusal(&entry("http://127.0.0.1/", SECRET), false, None);
    assert!(
        text.contains("tenants.acme.url: ") && text.contains("must be https"),
        "{text}"
    );
}

#[test]
fn refuses_user_info_and_fragments_without_showing_the_password() {
    let text = refusal(read(
        &[
            (URL_VAR, "https://user:hunter2@hooks.example.com/"),
            (SECRET_VAR, SECRET),
        ],
        false,
    ));
    assert!(
        text.contains("user info") && !text.contains("hunter2"),
        "{text}"
    );
    let text = refusal(read(
        &[
            (URL_VAR, "https://hooks.example.com/#x"),
            (SECRET_VAR, SECRET),
        ],
        false,
    ));
    assert!(text.contains("fragment"), "{text}");
    let text = file_refusal(
        &entry("https://me:hunter2@hooks.example.com/", SECRET),
        false,
        None,
    );
    assert!(
        text.contains("tenants.acme.url: ") && !text.contains("hunter2"),
        "{text}"
    );
    let text = file_refusal(&entry("https://hooks.example.com/#x", SECRET), false, None);
    assert!(
        text.contains("tenants.acme.url: ") && text.contains("fragment"),
        "{text}"
    );
    let text = refusal(read(&[(URL_VAR, "not a url"), (SECRET_VAR, SECRET)], false));
    assert!(text.starts_with("WEBHOOK_URL="), "{text}");
}

#[test]
fn refuses_bad_secrets_naming_the_variable_or_entry() {
    let short = format!("whsec_{}", STANDARD.encode([1u8; 23]));
    let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
    for (secret, problem) in [
        (short.as_str(), "fewer than 24"),
        ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_"),
        ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o!", "base64"),
        (long.as_str(), "more than 64"),
    ] {
        let text = refusal(read(
            &[(URL_VAR, "https://h.example.com/"), (SECRET_VAR, secret)],
            false,
        ));
        assert!(
            text.starts_with("WEBHOOK_SECRET=") && text.contains(problem),
            "{text}"
        );
        let text = file_refusal(&entry("https://h.example.com/", secret), false, None);
        assert!(
            text.contains("tenants.acme.secret: ") && text.contains(problem),
            "{text}"
        );
    }
}

#[test]
fn url_and_secret_go_together() {
    let text = refusal(read(&[(URL_VAR, "https://h.example.com/")], false));
    assert!(
        text.starts_with("WEBHOOK_SECRET=") && text.contains("WEBHOOK_URL"),
        "{text}"
    );
    let text = refusal(read(&[(SECRET_VAR, SECRET)], false));
    assert!(
        text.starts_with("WEBHOOK_URL=") && text.contains("WEBHOOK_SECRET"),
        "{text}"
    );
    let text = file_refusal(
        r#"{"tenants":{"acme":{"url":"https://h.example.com/"}}}"#,
        false,
        None,
    );
    assert!(text.contains("tenants.acme.secret: required"), "{text}");
}

#[test]
fn refuses_a_malformed_file_naming_the_entry() {
    let known: HashSet<TenantId> = [TenantId::parse("other").unwrap()].into();
    for (text, place, known) in [
        (
            r#"{"tenants":{},"extra":1}"#.to_string(),
            "unknown key `extra`",
            None,
        ),
        (
            r#"{"tenants":{"acme":{"url":"https://h.example.com/","secret":"x","retries":3}}}"#
                .to_string(),
            "tenants.acme: unknown key `retries`",
            None,
        ),
        (
            format!(
                r#"{{"tenants":{{"a#b":{{"url":"https://h.example.com/","secret":"{SECRET}"}}}}}}"#
            ),
            "tenants.a#b: bad tenant id",
            None,
        ),
        (
            entry("https://h.example.com/", SECRET),
            "tenants.acme: not a tenant of TENANTS_FILE",
            Some(&known),
        ),
        ("[]".to_string(), "must be a JSON object", None),
        ("{".to_string(), "not JSON", None),
        (
            r#"{"tenants":[]}"#.to_string(),
            "tenants: must be an object",
            None,
        ),
        (
            r#"{"tenants":{"acme":"https://h.example.com/"}}"#.to_string(),
            "tenants.acme: must be an object",
            None,
        ),
    ] {
        let refused = file_refusal(&text, false, known);
        assert!(refused.contains(place), "{place}: {refused}");
    }
    // As `serve` prints it: the variable, the file, the entry.
    let file = File::new(&entry("http://h.example.com/", SECRET));
    let error =
        WebhookConfig::from_lookup(lookup(&[(FILE_VAR, &file.path())]), false, None).unwrap_err();
    let printed = crate::cli::refusal::Refusal::from(error).to_string();
    let expected = format!(
        "configuration error: WEBHOOK_FILE: {:?}: tenants.acme.url: ",
        file.path()
    );
    assert!(printed.starts_with(&expected), "{printed}");
    let text = refusal(read(&[(FILE_VAR, "/nonexistent/webhooks.json")], false));
    assert!(
        text.starts_with("WEBHOOK_FILE=\"/nonexistent/webhooks.json\""),
        "{text}"
    );
}

#[test]
fn refuses_zero_and_oversized_numbers() {
    for (name, bad) in [
        (RETRY_HOURS_VAR, "0"),
        (RETRY_HOURS_VAR, "73"),
        (QUEUE_CAPACITY_VAR, "0"),
        (QUEUE_CAPACITY_VAR, "1000001"),
        (TIMEOUT_SECS_VAR, "0"),
        (TIMEOUT_SECS_VAR, "61"),
        (TIMEOUT_SECS_VAR, "-1"),
    ] {
        let text = refusal(read(
            &[
                (URL_VAR, "https://h.example.com/"),
                (SECRET_VAR, SECRET),
                (name, bad),
            ],
            false,
        ));
        assert!(text.starts_with(&format!("{name}=")), "{text}");
    }
    let config = read(
        &[
            (URL_VAR, "https://h.example.com/"),
            (SECRET_VAR, SECRET),
            (RETRY_HOURS_VAR, "72"),
            (QUEUE_CAPACITY_VAR, "1000000"),
            (TIMEOUT_SECS_VAR, "60"),
        ],
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(config.retry_window, Duration::from_secs(72 * 3600));
}
