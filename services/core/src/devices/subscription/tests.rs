use serde_json::json;

use super::*;

/// The user agent key and auth secret of RFC 8291's worked example (section 5).
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

fn with_endpoint(endpoint: &str) -> Value {
    json!({"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}})
}

fn refusal(value: &Value, policy: EndpointPolicy) -> SubscriptionError {
    Subscription::parse(value, policy).expect_err("should be refused")
}

fn endpoint_refusal(endpoint: &str) -> String {
    let error = refusal(&with_endpoint(endpoint), EndpointPolicy::Public);
    assert_eq!(error.field, "endpoint", "{endpoint}: {error}");
    error.problem
}

#[test]
fn accepts_a_chrome_subscription() {
    let value = json!({
        "endpoint": "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHqjZxM0VImWWqDRN7U0a3AycjUf4O-byuxb_wJsKRaKvV_iKw56s16ekq6FUqoCF7k2nICUpd8fHPxVTgqLunFeVeB9lLCQZyohyAztTH8ZQL9WCxKpA6dvTG_TUIhQUFq_n",
        "expirationTime": null,
        "keys": {"p256dh": P256DH, "auth": AUTH}
    });
    let subscription = Subscription::parse(&value, EndpointPolicy::Public).unwrap();
    assert_eq!(subscription.origin(), "https://fcm.googleapis.com");
    assert_eq!(subscription.p256dh_bytes().unwrap()[0], 0x04);
    assert_eq!(subscription.auth_bytes().unwrap().len(), 16);
    assert_eq!(subscription.keys.p256dh, P256DH);
}

#[test]
fn accepts_a_firefox_subscription_with_a_numeric_expiration_and_padded_keys() {
    let value = json!({
        "endpoint": "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABlXyZ-dGVzdC1maXJlZm94LXN1YnNjcmlwdGlvbg",
        "expirationTime": 1_767_225_600_000_u64,
        "keys": {"p256dh": format!("{P256DH}="), "auth": format!("{AUTH}==")}
    });
    let subscription = Subscription::parse(&value, EndpointPolicy::Public).unwrap();
    assert_eq!(
        subscription.origin(),
        "https://updates.push.services.mozilla.com"
    );
    assert!(subscription.p256dh_bytes().is_some());
    assert!(subscription.auth_bytes().is_some());
}

#[test]
fn the_origin_keeps_a_port_other_than_443() {
    let value = with_endpoint("https://push.example.com:8443/send/abc?x=1");
    let subscription = Subscription::parse(&value, EndpointPolicy::Public).unwrap();
    assert_eq!(subscription.origin(), "https://push.example.com:8443");
}

#[test]
fn refuses_what_is_not_an_https_url() {
    assert!(endpoint_refusal("http://push.example.com/x").contains("https"));
    assert!(endpoint_refusal("ftp://push.example.com/x").contains("https"));
    assert!(endpoint_refusal("/relative/path").contains("absolute URL"));
    assert!(endpoint_refusal("").contains("absolute URL"));
}

#[test]
fn refuses_userinfo_and_fragments() {
    assert!(endpoint_refusal("https://user:pw@push.example.com/x").contains("user name"));
    assert!(endpoint_refusal("https://user@push.example.com/x").contains("user name"));
    assert!(endpoint_refusal("https://push.example.com/x#frag").contains("fragment"));
}

#[test]
fn refuses_an_endpoint_over_2048_bytes() {
    let long = format!("https://push.example.com/{}", "a".repeat(2_048));
    assert!(endpoint_refusal(&long).contains("2048 bytes"));
    let fits = format!("https://push.example.com/{}", "a".repeat(2_048 - 25));
    assert_eq!(fits.len(), 2_048);
    assert!(Subscription::parse(&with_endpoint(&fits), EndpointPolicy::Public).is_ok());
}

#[test]
fn refuses_non_public_ip_literals() {
    for (host, range) in [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("[fc00::1]", "private"),
        ("[fd12:3456::1]", "private"),
        ("[fe80::1]", "link-local"),
        ("[::]", "unspecified"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:169.254.169.254]", "link-local"),
    ] {
        let problem = endpoint_refusal(&format!("https://{host}/push"));
        assert!(problem.contains(range), "{host}: {problem}");
    }
}

#[test]
fn refuses_ip_literals_in_other_spellings() {
    // The URL parser reads these as the IPv4 addresses they spell.
    assert!(endpoint_refusal("https://0x7f.1/push").contains("loopback"));
    assert!(endpoint_refusal("https://2130706433/push").contains("loopback"));
    assert!(endpoint_refusal("https://012.0.0.1/push").contains("private"));
}

#[test]
fn refuses_loopback_outside_dev_mode() {
    for host in [
        "127.0.0.1",
        "127.8.9.10",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "localhost",
        "LOCALHOST.",
        "push.localhost",
    ] {
        let problem = endpoint_refusal(&format!("https://{host}:8443/push"));
        assert!(problem.contains("loopback"), "{host}: {problem}");
    }
}

#[test]
fn dev_mode_allows_loopback_and_nothing_else() {
    for endpoint in [
        "https://127.0.0.1:41234/push/a",
        "https://localhost:41234/push/a",
        "https://[::1]:41234/push/a",
    ] {
        let subscription =
            Subscription::parse(&with_endpoint(endpoint), EndpointPolicy::AllowLoopback)
                .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        assert!(subscription.origin().ends_with(":41234"));
    }
    for endpoint in [
        "https://10.0.0.1/push",
        "https://192.168.0.10:8443/push",
        "https://169.254.169.254/latest",
        "http://127.0.0.1:41234/push",
    ] {
        let error = refusal(&with_endpoint(endpoint), EndpointPolicy::AllowLoopback);
        assert_eq!(error.field, "endpoint", "{endpoint}");
    }
}

#[test]
fn public_addresses_and_names_pass() {
    for endpoint in [
        "https://8.8.8.8/push",
        "https://[2001:4860:4860::8888]/push",
        "https://100.128.0.1/push",
        "https://172.32.0.1/push",
        "https://web.push.apple.com/QGuQyavXutnMH6G0Y",
    ] {
        assert!(
            Subscription::parse(&with_endpoint(endpoint), EndpointPolicy::Public).is_ok(),
            "{endpoint}"
        );
    }
}

#[test]
fn refuses_wrong_key_sizes() {
    let short_point = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([4u8; 64]);
    let value = json!({"endpoint": "https://push.example.com/x",
        "keys": {"p256dh": short_point, "auth": AUTH}});
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "keys.p256dh");
    assert!(error.problem.contains("65 bytes, not 64"), "{error}");

    let long_auth = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([1u8; 17]);
    let value = json!({"endpoint": "https://push.example.com/x",
        "keys": {"p256dh": P256DH, "auth": long_auth}});
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "keys.auth");
    assert!(error.problem.contains("16 bytes, not 17"), "{error}");

    let value = json!({"endpoint": "https://push.example.com/x",
        "keys": {"p256dh": P256DH, "auth": "A".repeat(10_000)}});
    assert_eq!(refusal(&value, EndpointPolicy::Public).field, "keys.auth");
}

#[test]
fn refuses_a_compressed_or_off_curve_point_and_bad_base64() {
    let mut compressed = [7u8; 65];
    compressed[0] = 0x02;
    let value = json!({"endpoint": "https://push.example.com/x", "keys": {
        "p256dh": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(compressed),
        "auth": AUTH}});
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "keys.p256dh");
    assert!(error.problem.contains("0x04"), "{error}");

    let mut off_curve = [7u8; 65];
    off_curve[0] = 0x04;
    let value = json!({"endpoint": "https://push.example.com/x", "keys": {
        "p256dh": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(off_curve),
        "auth": AUTH}});
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "keys.p256dh");
    assert!(error.problem.contains("P-256 curve"), "{error}");

    let value = json!({"endpoint": "https://push.example.com/x",
        "keys": {"p256dh": P256DH, "auth": "BTBZMqHH6r4Tts7J/aSIgg"}});
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "keys.auth");
    assert!(error.problem.contains("base64url"), "{error}");
}

#[test]
fn refuses_unknown_fields_by_name() {
    let mut value = with_endpoint("https://push.example.com/x");
    value["extra"] = json!(1);
    let error = refusal(&value, EndpointPolicy::Public);
    assert_eq!(error.field, "extra");
    assert!(error.problem.contains("unknown field"), "{error}");

    let mut value = with_endpoint("https://push.example.com/x");
    value["keys"]["secret"] = json!("x");
    assert_eq!(refusal(&value, EndpointPolicy::Public).field, "keys.secret");
}

#[test]
fn refuses_missing_and_mistyped_fields() {
    let cases = [
        (json!("https://push.example.com/x"), "subscription"),
        (
            json!({"keys": {"p256dh": P256DH, "auth": AUTH}}),
            "endpoint",
        ),
        (
            json!({"endpoint": 7, "keys": {"p256dh": P256DH, "auth": AUTH}}),
            "endpoint",
        ),
        (json!({"endpoint": "https://push.example.com/x"}), "keys"),
        (
            json!({"endpoint": "https://push.example.com/x", "keys": []}),
            "keys",
        ),
        (
            json!({"endpoint": "https://push.example.com/x", "keys": {"auth": AUTH}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": "https://push.example.com/x", "keys": {"p256dh": P256DH}}),
            "keys.auth",
        ),
        (
            json!({"endpoint": "https://push.example.com/x", "expirationTime": "soon",
                "keys": {"p256dh": P256DH, "auth": AUTH}}),
            "expirationTime",
        ),
    ];
    for (value, field) in cases {
        let error = refusal(&value, EndpointPolicy::Public);
        assert_eq!(error.field, field, "{value}: {error}");
    }
}

#[test]
fn the_error_reads_field_colon_problem() {
    let error = refusal(
        &with_endpoint("http://push.example.com/x"),
        EndpointPolicy::Public,
    );
    assert_eq!(
        error.to_string(),
        "endpoint: must be an https URL, not http:"
    );
}

#[test]
fn unvalidated_keys_decode_to_none() {
    let subscription = Subscription {
        endpoint: "not a url".into(),
        keys: SubscriptionKeys {
            p256dh: "short".into(),
            auth: "%%%".into(),
        },
    };
    assert_eq!(subscription.p256dh_bytes(), None);
    assert_eq!(subscription.auth_bytes(), None);
    assert_eq!(subscription.origin(), "");
}
