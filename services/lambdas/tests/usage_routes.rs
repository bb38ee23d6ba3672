#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `$connect` and `$disconnect` count usage (docs/design.md: Usage, the AWS approximation):
//! the tenant's live counter and the minute's peak at connect, the connection's minutes
//! (rounded up, from `requestContext.connectedAt`) at disconnect.

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::connection::ConnectConfig;
use switchboard_core::roster::MemoryRosterStore;
use switchboard_core::tenants::Tenants;
use switchboard_core::usage::{Counts, MemoryUsageStore, Usage, UsageConfig, UsageStore};
use switchboard_lambdas::connect::{self, ConnectDeps};
use switchboard_lambdas::disconnect::{self, DisconnectDeps};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_model::TenantId;
use time::OffsetDateTime;

fn fixture(name: &str, connected_ms_ago: i64) -> WebsocketEvent {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut json: Value =
        serde_json::from_str(&text.replace("__TOKEN__", "header.payload.signature")).unwrap();
    let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1_000;
    json["requestContext"]["connectedAt"] = (now_ms - connected_ms_ago).into();
    serde_json::from_value(json).unwrap()
}

#[tokio::test]
async fn connect_raises_the_peak_and_disconnect_adds_the_minutes() {
    let config = UsageConfig::default();
    let store = Arc::new(MemoryUsageStore::new(100, 100, config.retention));
    let usage = Usage::new(store.clone(), &config);
    let roster = Arc::new(MemoryRosterStore::new());
    let connect = ConnectDeps {
        roster: roster.clone(),
        config: ConnectConfig::default(),
        tenants: Tenants::unlimited(),
        usage: Some(usage.clone()),
    };
    let disconnect = DisconnectDeps {
        roster,
        usage: Some(usage.clone()),
    };
    connect::handle(&connect, &fixture("connect_query.json", 0))
        .await
        .unwrap();
    // Connected 2 minutes and 1 second ago: 3 minutes, rounded up.
    disconnect::handle(&disconnect, &fixture("disconnect.json", 121_000))
        .await
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let now = OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let mut total = Counts::default();
    for minute in store
        .minutes(Some(&acme), now - hour, now + hour)
        .await
        .unwrap()
    {
        total.add(&minute.counts);
    }
    assert_eq!((total.peak_connections, total.connection_minutes), (1, 3));
    assert_eq!(
        store.add_live(&acme, 0).await.unwrap(),
        0,
        "back to none live"
    );
    assert_eq!(usage.errors(), 0);
}
