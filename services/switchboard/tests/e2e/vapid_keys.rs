//! `switchboard vapid-keys`, run as a process: it prints a fresh pair as the two settings,
//! the pair is valid (the public key is the private key's), `serve` starts with it and
//! serves the public key, and a public key from another pair is refused at start.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use switchboard_core::webpush::VapidKeys;

use super::cli::switchboard;
use super::harness::{assert_refused, serve_refused, Backend, TestServer, SECRET};

/// `(public, private)` as `vapid-keys` prints them.
fn vapid_keys() -> (String, String) {
    let (ok, stdout, stderr) = switchboard(&["vapid-keys"], &[]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let [public, private] = lines.as_slice() else {
        panic!("expected two lines: {stdout}");
    };
    let public = public.strip_prefix("VAPID_PUBLIC_KEY=").expect(public);
    let private = private.strip_prefix("VAPID_PRIVATE_KEY=").expect(private);
    (public.to_string(), private.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_keys_are_a_valid_pair_that_serve_accepts() {
    let (public, private) = vapid_keys();
    assert_eq!(URL_SAFE_NO_PAD.decode(&public).unwrap().len(), 65);
    assert_eq!(URL_SAFE_NO_PAD.decode(&private).unwrap().len(), 32);
    VapidKeys::parse(&public, &private, "mailto:ops@example.com")
        .expect("the public key is the private key's");
    let (other_public, other_private) = vapid_keys();
    assert_ne!(other_public, public, "each run makes a new pair");
    assert_ne!(other_private, private);

    let vapid = [
        ("VAPID_PUBLIC_KEY", public.as_str()),
        ("VAPID_PRIVATE_KEY", private.as_str()),
        ("VAPID_SUBJECT", "mailto:ops@example.com"),
    ];
    let mut server = TestServer::start_process(Backend::Memory, &[], &vapid);
    let answer: serde_json::Value = reqwest::get(server.http("/v1/push/vapid-public-key"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["publicKey"], public.as_str());
    assert!(
        server.wait_exit(Duration::from_millis(200)).is_none(),
        "serve keeps running"
    );

    let mismatched = [
        ("JWT_HS256_SECRET", SECRET),
        ("VAPID_PUBLIC_KEY", other_public.as_str()),
        ("VAPID_PRIVATE_KEY", private.as_str()),
        ("VAPID_SUBJECT", "mailto:ops@example.com"),
    ];
    let (status, stderr) = serve_refused(&[], &mismatched);
    assert_refused(status, &stderr, "VAPID_PUBLIC_KEY");
    assert!(
        !stderr.contains(&private),
        "the private key is never shown: {stderr}"
    );
}
