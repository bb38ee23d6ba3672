//! The in-process queue's tenant shares, through the real binary (issue 24's noisy
//! neighbours): one tenant's dead letters never push out another's, listing thousands of
//! letters delays no publish, and a tenant at its share of the queue is refused alone.
//!
//! Every server here has a roster nobody answers (and one SDK attempt per call), so each
//! message fails at once: with `--max-receives 1` it is a dead letter within milliseconds,
//! with a long visibility timeout it stays queued.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::{dead_letter_ids, eventually, token, Backend, DeadRoster, TestServer};

/// The real binary with an unreachable DynamoDB roster, `args` and `envs`.
fn server_with_dead_roster(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
    let dead = DeadRoster::unreachable();
    TestServer::start_process(Backend::Memory, &dead.args(args), &dead.envs(envs))
}

/// Dead-letters at once: one receive, redelivery after 10 ms.
const DIE_AT_ONCE: [&str; 4] = ["--visibility-timeout", "10ms", "--max-receives", "1"];

fn to_tenant(tenant: &str, id: &str) -> Value {
    json!({"id": id, "target": {"type": "tenant", "tenant": tenant}, "data": 1})
}

/// Letters listed plus letters dropped: every message that died.
async fn died(server: &TestServer) -> f64 {
    server.metric("switchboard_dead_letters").await
        + server
            .metric("switchboard_dead_letters_dropped_total")
            .await
}

/// Publishes `count` messages to `tenant` (ids `<prefix>-<n>`), `parallel` at a time;
/// each must be accepted.
async fn publish_many(server: &TestServer, tenant: &str, prefix: &str, count: usize) {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    let publisher = token(tenant, "backend", &["publisher"]);
    let url = server.http("/v1/messages");
    futures::stream::iter(0..count)
        .map(|n| {
            let request = http
                .post(&url)
                .bearer_auth(&publisher)
                .json(&to_tenant(tenant, &format!("{prefix}-{n}")));
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(32)
        .for_each(|status| async move { assert_eq!(status, 202) })
        .await;
}

/// The ids of the dead letters `query` lists (one page) and the next cursor.
async fn list(
    http: &reqwest::Client,
    server: &TestServer,
    query: &str,
) -> (Vec<String>, Option<String>) {
    let admin = token("ops", "root", &["admin"]);
    let response = http
        .get(server.http(&format!("/v1/dead-letters{query}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    (
        dead_letter_ids(&page),
        page["next"].as_str().map(str::to_string),
    )
}

/// B's one dead letter, then A's `a_count`: B's is still listed, A holds `a_kept`.
async fn a_never_drops_b(envs: &[(&str, &str)], a_count: usize, a_kept: usize) {
    let server = server_with_dead_roster(&DIE_AT_ONCE, envs);
    publish_many(&server, "b", "b", 1).await;
    eventually(Duration::from_secs(20), "B's letter", || async {
        died(&server).await == 1.0
    })
    .await;
    publish_many(&server, "a", "a", a_count).await;
    eventually(Duration::from_secs(30), "A's letters", || async {
        died(&server).await == (a_count + 1) as f64
    })
    .await;
    let http = reqwest::Client::new();
    let (b, _) = list(&http, &server, "?tenant=b").await;
    assert_eq!(b, ["b-0"], "B's letter survives A's");
    let (a, _) = list(&http, &server, "?tenant=a&limit=1000").await;
    assert_eq!(a.len(), a_kept, "{a:?}");
    let (all, _) = list(&http, &server, "?limit=1000").await;
    assert_eq!(all.len(), a_kept + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_beyond_its_dead_letter_share_drops_only_its_own() {
    // A share of 3 (30 % of 10): A's 20 letters keep its newest 3.
    a_never_drops_b(
        &[
            ("DEAD_LETTER_CAPACITY", "10"),
            ("TENANT_SHARE_PERCENT", "30"),
        ],
        20,
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_dead_letter_list_drops_the_largest_tenants_letters() {
    // Shares as large as the list: when it is full, the tenant holding the most (A)
    // drops its own oldest.
    a_never_drops_b(
        &[
            ("DEAD_LETTER_CAPACITY", "4"),
            ("TENANT_SHARE_PERCENT", "100"),
        ],
        20,
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_ten_thousand_dead_letters_delays_no_publish() {
    const LETTERS: usize = 10_000;
    let server = server_with_dead_roster(
        &DIE_AT_ONCE,
        &[
            ("DEAD_LETTER_CAPACITY", "10000"),
            ("TENANT_SHARE_PERCENT", "100"),
        ],
    );
    publish_many(&server, "a", "a", LETTERS).await;
    eventually(Duration::from_secs(120), "10,000 dead letters", || async {
        died(&server).await == LETTERS as f64
    })
    .await;

    let quiet = publish_latencies(&server, "quiet", || true).await;
    // An admin pages through every letter, over and over, while B publishes.
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicUsize::new(0));
    let lister = tokio::spawn(page_until(server.http(""), pages.clone(), stop.clone()));
    // Two passes through each scope at least (11 + 11 + 1 pages a pass).
    let busy = publish_latencies(&server, "busy", || pages.load(Ordering::SeqCst) >= 46).await;
    stop.store(true, Ordering::SeqCst);
    lister.await.unwrap();
    let report = |latencies: &[Duration]| {
        format!(
            "{} publishes: p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100],
            latencies[latencies.len() - 1]
        )
    };
    eprintln!(
        "alone: {}; beside {} pages of up to 1,000 dead letters: {}",
        report(&quiet),
        pages.load(Ordering::SeqCst),
        report(&busy)
    );
    let slowest = busy[busy.len() - 1];
    assert!(
        slowest < Duration::from_millis(100),
        "a publish took {slowest:?} while dead letters were listed"
    );
}

/// Pages through the dead letters 1,000 at a time, from first to last, as a global admin
/// and as tenants `a` and `b` in turn, over and over until `stop`, counting in `pages`.
async fn page_until(base: String, pages: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    /// Only the cursor: the test's own parsing stays light.
    #[derive(serde::Deserialize)]
    struct Cursor {
        next: Option<String>,
    }
    let http = reqwest::Client::new();
    let admin = token("ops", "root", &["admin"]);
    for scope in ["", "&tenant=a", "&tenant=b"].into_iter().cycle() {
        let mut next: Option<String> = None;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let cursor = next.map(|n| format!("&next={n}")).unwrap_or_default();
            let response = http
                .get(format!("{base}/v1/dead-letters?limit=1000{scope}{cursor}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            next = response.json::<Cursor>().await.unwrap().next;
            pages.fetch_add(1, Ordering::SeqCst);
            if next.is_none() {
                break;
            }
        }
    }
}

/// The answer times of B's publishes, one after another (200, then on until `enough`;
/// 20,000 at most), sorted.
async fn publish_latencies(
    server: &TestServer,
    prefix: &str,
    enough: impl Fn() -> bool,
) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let publisher = token("b", "backend", &["publisher"]);
    let mut latencies = Vec::new();
    for n in 0..20_000 {
        if n >= 200 && enough() {
            break;
        }
        let started = Instant::now();
        let status = http
            .post(server.http("/v1/messages"))
            .bearer_auth(&publisher)
            .json(&to_tenant("b", &format!("{prefix}-{n}")))
            .send()
            .await
            .unwrap()
            .status();
        latencies.push(started.elapsed());
        assert_eq!(status, 202);
    }
    latencies.sort();
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_queue_share_gets_503_while_others_get_202() {
    // 25 % of 8: each tenant may hold 2 messages; a failed message waits 60 s.
    let server = server_with_dead_roster(
        &["--visibility-timeout", "60s"],
        &[("QUEUE_CAPACITY", "8"), ("TENANT_SHARE_PERCENT", "25")],
    );
    let a = token("a", "backend", &["publisher"]);
    let b = token("b", "backend", &["publisher"]);
    for n in 0..2 {
        assert_eq!(
            server
                .publish(&a, &to_tenant("a", &format!("a-{n}")))
                .await
                .0,
            202
        );
    }
    let refused = reqwest::Client::new()
        .post(server.http("/v1/messages"))
        .bearer_auth(&a)
        .json(&to_tenant("a", "a-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    for n in 0..2 {
        let (status, body) = server.publish(&b, &to_tenant("b", &format!("b-{n}"))).await;
        assert_eq!(status, 202, "B is not held to A's share: {body}");
    }
    assert_eq!(server.publish(&b, &to_tenant("b", "b-2")).await.0, 503);
    assert_eq!(server.metric("switchboard_queue_depth").await, 4.0);
}
