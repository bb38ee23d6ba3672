#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoRosterStore` against DynamoDB Local: every check of the roster contract suite,
//! one test each, each on its own fresh table; then the adapter's own promises (schema,
//! read costs, corrupt items).
//!
//! Needs `DYNAMODB_ENDPOINT` (a DynamoDB Local on 127.0.0.1): `scripts/test.sh` starts one
//! (via `scripts/dynamodb-local.sh`). Without it these tests fail; they never skip.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;
use local_dynamo::client;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use switchboard_aws::dynamo::{
    create_table, delete_table, record_to_item, BY_USER_INDEX, GSI1PK, GSI1SK, PK, SK,
    TTL_ATTRIBUTE,
};
use switchboard_aws::DynamoRosterStore;
use switchboard_core::roster::{contract, ConnectionRecord, PageScope, RosterError, RosterStore};
use switchboard_core::testkit::record;
use switchboard_model::{ConnectionId, TenantId, UserId};

/// A store on a new table with a random name.
struct Fixture {
    client: Client,
    table: String,
    store: DynamoRosterStore,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_segments(4).await
    }

    async fn with_segments(segments: usize) -> Self {
        let client = client().await;
        let table = format!("roster-test-{}", uuid::Uuid::new_v4().simple());
        create_table(&client, &table).await.expect("create table");
        let store = DynamoRosterStore::new(client.clone(), table.clone(), segments);
        Self {
            client,
            table,
            store,
        }
    }

    async fn finish(self) {
        delete_table(&self.client, &self.table)
            .await
            .expect("delete table");
    }
}

/// A store on a new table (four scan segments) and its client, for `contract_tests!`.
async fn fresh_store() -> (Client, DynamoRosterStore) {
    let fixture = Fixture::new().await;
    (fixture.client, fixture.store)
}

contract_tests!(fresh_store:
    same_user_in_two_tenants_never_mixes,
    one_user_several_connections,
    remove_twice_is_fine,
    tenant_pages_visit_each_connection_once,
    segments_partition_the_roster,
    foreign_continuations_are_refused,
    count_is_live_connections_up_to_the_bound,
    tally_counts_live_connections_and_users_up_to_the_bound,
    live_tenants_are_named_in_order_up_to_the_limit,
    users_lookup_with_one_hundred_users,
    list_all_returns_every_item_once,
    invalid_ids_are_refused_before_any_write,
    expired_records_are_not_returned,
    token_expiry_is_kept_and_moved_only_on_existing_connections,
);

/// The contract's large tenant (over 1 MB), and proof that listing it took several pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tenant_is_listed_whole() {
    let fixture = Fixture::with_segments(1).await;
    contract::large_tenant_is_listed_whole(&fixture.store).await;
    let (found, stats) = fixture
        .store
        .list_tenant_with_stats(&t("big"))
        .await
        .unwrap();
    assert_eq!(found.len(), contract::LARGE_TENANT_ITEMS);
    assert!(
        stats.requests >= 2,
        "expected several Query pages: {stats:?}"
    );
    assert_eq!(stats.scanned_count, stats.count);
    let (all, stats) = fixture.store.list_all_with_stats().await.unwrap();
    assert_eq!(all.len(), contract::LARGE_TENANT_ITEMS + 1);
    assert!(
        stats.requests >= 2,
        "expected several Scan pages: {stats:?}"
    );
    // A count stops at its bound: it reads `up_to` items, not the tenant.
    let (counted, stats) = fixture
        .store
        .count_with_stats(&t("big"), None, 100)
        .await
        .unwrap();
    assert_eq!(counted, 100);
    assert_eq!((stats.requests, stats.scanned_count), (1, 100), "{stats:?}");
    // Counting the whole tenant follows its pages (a count reads like a list).
    let (counted, stats) = fixture
        .store
        .count_with_stats(&t("big"), None, u64::MAX)
        .await
        .unwrap();
    assert_eq!(counted, contract::LARGE_TENANT_ITEMS as u64);
    assert!(stats.requests >= 2, "expected several pages: {stats:?}");
    fixture.finish().await;
}

fn t(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn u(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn c(id: &str) -> ConnectionId {
    ConnectionId::parse(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_builds_the_spec_schema_and_is_idempotent() {
    let fixture = Fixture::new().await;
    // A second call on the existing table succeeds.
    create_table(&fixture.client, &fixture.table).await.unwrap();
    let table = fixture
        .client
        .describe_table()
        .table_name(&fixture.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, KeyType)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    assert_eq!(
        keys,
        vec![(PK.into(), KeyType::Hash), (SK.into(), KeyType::Range)]
    );
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode().cloned()),
        Some(BillingMode::PayPerRequest)
    );
    let [index] = table.global_secondary_indexes() else {
        panic!("expected exactly one GSI: {table:?}");
    };
    assert_eq!(index.index_name(), Some(BY_USER_INDEX));
    let index_keys: Vec<(String, KeyType)> = index
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    assert_eq!(
        index_keys,
        vec![
            (GSI1PK.into(), KeyType::Hash),
            (GSI1SK.into(), KeyType::Range)
        ]
    );
    assert_eq!(
        index
            .projection()
            .and_then(|p| p.projection_type().cloned()),
        Some(ProjectionType::All)
    );
    let ttl = fixture
        .client
        .describe_time_to_live()
        .table_name(&fixture.table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_lookups_read_only_what_they_return() {
    let fixture = Fixture::new().await;
    let store = &fixture.store;
    let mut records = Vec::new();
    for tenant in ["acme", "globex", "initech"] {
        for user in 0..10 {
            for conn in 0..2 {
                records.push(record(
                    tenant,
                    &format!("user-{user}"),
                    &format!("{tenant}-{user}-{conn}"),
                ));
            }
        }
    }
    store.put_batch(&records, 4).await.unwrap();

    let (found, stats) = store
        .list_users_with_stats(&t("acme"), &[u("user-1"), u("user-2")])
        .await
        .unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(
        (stats.scanned_count, stats.count, stats.returned),
        (4, 4, 4)
    );
    assert_eq!(stats.requests, 2, "one query per user");

    let (found, stats) = store.list_tenant_with_stats(&t("globex")).await.unwrap();
    assert_eq!(found.len(), 20);
    assert_eq!(
        (stats.scanned_count, stats.count, stats.returned),
        (20, 20, 20)
    );

    let (found, stats) = store
        .list_connections_with_stats(&t("acme"), &[c("acme-0-0"), c("globex-0-0"), c("nope")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((stats.scanned_count, stats.returned), (1, 1));

    let (found, stats) = store.list_all_with_stats().await.unwrap();
    assert_eq!(found.len(), 60);
    assert_eq!(stats.scanned_count, 60);
    assert!(stats.requests >= 4, "one scan per segment at least");
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lookup_over_one_hundred_ids_is_chunked() {
    let fixture = Fixture::new().await;
    let records: Vec<ConnectionRecord> = (0..250)
        .map(|i| record("acme", &format!("u{}", i % 9), &format!("c{i:03}")))
        .collect();
    fixture.store.put_batch(&records, 4).await.unwrap();
    let wanted: Vec<ConnectionId> = (0..260).map(|i| c(&format!("c{i:03}"))).collect();
    let (found, stats) = fixture
        .store
        .list_connections_with_stats(&t("acme"), &wanted)
        .await
        .unwrap();
    assert_eq!(found.len(), 250);
    let ids: BTreeSet<String> = found.iter().map(|r| r.connection_id.to_string()).collect();
    assert_eq!(ids.len(), 250);
    assert!(stats.requests >= 3, "260 keys need 3 BatchGetItem requests");
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_segment_count_lists_everything_once() {
    for segments in [1, 3, 7] {
        let fixture = Fixture::with_segments(segments).await;
        let records: Vec<ConnectionRecord> = (0..120)
            .map(|i| record(&format!("t{}", i % 5), "u", &format!("c{i:03}")))
            .collect();
        fixture.store.put_batch(&records, 4).await.unwrap();
        let all = fixture.store.list_all().await.unwrap();
        let ids: BTreeSet<String> = all.iter().map(|r| r.connection_id.to_string()).collect();
        assert_eq!((all.len(), ids.len()), (120, 120), "{segments} segments");
        fixture.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replaces_and_moves_the_user_index() {
    let fixture = Fixture::new().await;
    let store = &fixture.store;
    store.put(&record("acme", "alice", "c-1")).await.unwrap();
    store.put(&record("acme", "bob", "c-1")).await.unwrap();
    assert!(store
        .list_users(&t("acme"), &[u("alice")])
        .await
        .unwrap()
        .is_empty());
    let bob = store.list_users(&t("acme"), &[u("bob")]).await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(store.list_tenant(&t("acme")).await.unwrap().len(), 1);
    fixture.finish().await;
}

/// One item of the wrong shape (another writer's) is skipped and counted; the rest of the
/// tenant is still found. `roles` written as a space-separated string is read as roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_item_is_skipped_and_counted() {
    let fixture = Fixture::new().await;
    let mut bad: HashMap<String, AttributeValue> = record_to_item(&record("acme", "alice", "c-1"));
    bad.insert("expiresAt".into(), AttributeValue::S("soon".into()));
    let mut string_roles = record_to_item(&record("acme", "alice", "c-2"));
    string_roles.insert("roles".into(), AttributeValue::S("reader publisher".into()));
    for item in [
        bad,
        string_roles,
        record_to_item(&record("acme", "bob", "c-3")),
    ] {
        fixture
            .client
            .put_item()
            .table_name(&fixture.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let (found, stats) = fixture
        .store
        .list_tenant_with_stats(&t("acme"))
        .await
        .unwrap();
    let mut ids: Vec<String> = found.iter().map(|r| r.connection_id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["c-2", "c-3"]);
    assert_eq!(stats.skipped, 1);
    let c2 = found.iter().find(|r| r.connection_id == c("c-2")).unwrap();
    assert_eq!(c2.roles, ["reader", "publisher"]);
    let users = fixture
        .store
        .list_users(&t("acme"), &[u("alice")])
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    let (page, _) = fixture
        .store
        .list_page_with_stats(&PageScope::Tenant(t("acme")), None, 10)
        .await
        .unwrap();
    assert_eq!((page.records.len(), page.skipped), (2, 1));
    assert_eq!(fixture.store.list_all().await.unwrap().len(), 2);
    fixture.finish().await;
}

/// A tally reads the tenant's partition only as far as its bound (plus one item, to know
/// whether it is complete), projecting `user` and `expiresAt`; the roster cannot name its
/// live tenants without a scan, so it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tally_reads_only_up_to_its_bound_and_tenants_are_not_listed() {
    let fixture = Fixture::new().await;
    let records: Vec<ConnectionRecord> = (0..300)
        .map(|i| record("big", &format!("u{}", i % 7), &format!("c{i:04}")))
        .collect();
    fixture.store.put_batch(&records, 8).await.unwrap();
    let (tally, stats) = fixture
        .store
        .tally_with_stats(&t("big"), 100)
        .await
        .unwrap();
    assert_eq!(
        (tally.connections, tally.complete),
        (100, false),
        "{tally:?}"
    );
    assert_eq!((stats.requests, stats.scanned_count), (1, 101), "{stats:?}");
    let (tally, _) = fixture
        .store
        .tally_with_stats(&t("big"), 10_000)
        .await
        .unwrap();
    assert_eq!(
        (tally.connections, tally.users, tally.complete),
        (300, 7, true)
    );
    assert_eq!(fixture.store.live_tenants(100).await.unwrap(), None);
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_unavailable() {
    let client = client().await;
    let store = DynamoRosterStore::new(client, "no-such-table-here", 4);
    let err = store.list_tenant(&t("acme")).await.unwrap_err();
    assert!(matches!(err, RosterError::Unavailable(_)), "{err:?}");
    let err = store
        .put(&record("acme", "alice", "c-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, RosterError::Unavailable(_)), "{err:?}");
}

/// The paging property of the publisher on DynamoDB Local: for random roster sizes,
/// page sizes and segment counts, running every work item to completion delivers a
/// tenant message and a broadcast to each matching connection exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_fanout_delivers_each_connection_once() {
    use rand::Rng;
    use switchboard_core::testkit::{check_paged_fanout, spread_records};
    // A fixed seed per run would hide nothing here; print it so a failure can be replayed.
    let seed: u64 = std::env::var("PAGING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("PAGING_SEED={seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut cases = vec![(0, 1, 1_000, 4), (5_000, 3, 1_000, 4)];
    for _ in 0..3 {
        cases.push((
            rng.random_range(0..5_000),
            rng.random_range(1..6),
            rng.random_range(50..1_500),
            rng.random_range(1..9),
        ));
    }
    for (size, tenants, page_size, segments) in cases {
        let fixture = Fixture::new().await;
        let records = spread_records(size, tenants);
        fixture.store.put_batch(&records, 8).await.unwrap();
        let roster: std::sync::Arc<dyn RosterStore> = std::sync::Arc::new(fixture.store.clone());
        eprintln!("{size} records, {tenants} tenants, shard {page_size}, {segments} segments");
        check_paged_fanout(roster, &records, page_size, segments).await;
        fixture.finish().await;
    }
}

/// Presence pages a 2,500-connection tenant 1,000 at a time with `Query` only: every page
/// reads exactly what it returns (`ScannedCount == Count`), one request a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_pages_read_only_what_they_return() {
    let fixture = Fixture::new().await;
    let mut records: Vec<ConnectionRecord> = (0..2_500)
        .map(|i| record("big", &format!("u{}", i % 40), &format!("c{i:05}")))
        .collect();
    records.extend((0..30).map(|i| record("other", "x", &format!("o{i:03}"))));
    fixture.store.put_batch(&records, 8).await.unwrap();
    let scope = PageScope::Tenant(t("big"));
    let mut start: Option<String> = None;
    let mut sizes = Vec::new();
    let mut seen = BTreeSet::new();
    loop {
        let (page, stats) = fixture
            .store
            .list_page_with_stats(&scope, start.as_deref(), 1_000)
            .await
            .unwrap();
        assert_eq!(stats.requests, 1);
        assert_eq!(
            stats.scanned_count, stats.count,
            "a Query reads what it returns"
        );
        assert_eq!(stats.count as usize, page.records.len());
        sizes.push(page.records.len());
        seen.extend(page.records.iter().map(|r| r.connection_id.to_string()));
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    assert_eq!(&sizes[..3], [1_000, 1_000, 500]);
    assert_eq!(seen.len(), 2_500);
    fixture.finish().await;
}
