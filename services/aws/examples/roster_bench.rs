//! Roster read-cost benchmark against DynamoDB Local (not part of the tests).
//!
//! ```text
//! source scripts/dynamodb-local.sh && dynamodb_local_start   # sets DYNAMODB_ENDPOINT
//! cargo run --release -p switchboard-aws --example roster_bench
//! dynamodb_local_stop
//! ```
//!
//! Creates a fresh table, loads 20,000 items (100 tenants × 100 users × 2 connections)
//! with concurrent `BatchWriteItem`, then times a 2-user lookup, a tenant lookup and
//! list-all, printing items read (`ScannedCount`), items matched (`Count`), records
//! returned, requests and time. Exits non-zero when a targeted lookup reads more than it
//! returns or a figure is off (2 users → 4 items, tenant → 200, list-all → 20,000).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use switchboard_aws::config::DynamoConfig;
use switchboard_aws::dynamo::DynamoStores;
use switchboard_aws::dynamo::{create_table, delete_table};
use switchboard_aws::{DynamoRosterStore, LookupStats};
use switchboard_core::roster::{ConnectionRecord, RosterError, DEFAULT_CONNECTION_TTL_SECS};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

const TENANTS: usize = 100;
const USERS: usize = 100;
const CONNECTIONS_PER_USER: usize = 2;
const RUNS: usize = 5;
const LOAD_CONCURRENCY: usize = 16;

type BoxError = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("roster-bench: a goal was missed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("roster-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, BoxError> {
    let mut config = DynamoConfig::from_lookup(|k| std::env::var(k).ok())?;
    if config.endpoint.is_none() {
        return Err("DYNAMODB_ENDPOINT is not set: start DynamoDB Local with \
             `source scripts/dynamodb-local.sh && dynamodb_local_start` (or \
             `eval \"$(bash scripts/dynamodb-local.sh start)\"`) and run again"
            .into());
    }
    config.roster_table = format!("roster-bench-{}", uuid::Uuid::new_v4().simple());
    let stores = DynamoStores::connect(&config).await;
    create_table(stores.client(), &config.roster_table).await?;
    let outcome = bench(&stores.roster()).await;
    delete_table(stores.client(), &config.roster_table).await?;
    outcome
}

fn fixture() -> Result<Vec<ConnectionRecord>, BoxError> {
    let now = OffsetDateTime::now_utc();
    let mut records = Vec::with_capacity(TENANTS * USERS * CONNECTIONS_PER_USER);
    for tenant in 0..TENANTS {
        for user in 0..USERS {
            for conn in 0..CONNECTIONS_PER_USER {
                records.push(ConnectionRecord::from_raw(
                    &format!("c-{tenant:03}-{user:03}-{conn}"),
                    &format!("tenant-{tenant:03}"),
                    &format!("user-{user:03}"),
                    vec!["reader".into()],
                    now,
                    DEFAULT_CONNECTION_TTL_SECS,
                )?);
            }
        }
    }
    Ok(records)
}

async fn bench(store: &DynamoRosterStore) -> Result<bool, BoxError> {
    let records = fixture()?;
    let started = Instant::now();
    store.put_batch(&records, LOAD_CONCURRENCY).await?;
    println!(
        "loaded {} items ({TENANTS} tenants x {USERS} users x {CONNECTIONS_PER_USER} connections) \
         into {} in {:.2?} (BatchWriteItem, {LOAD_CONCURRENCY} in flight, {} scan segments)",
        records.len(),
        store.table_name(),
        started.elapsed(),
        store.scan_segments(),
    );

    let tenant = TenantId::parse("tenant-042")?;
    let users = [UserId::parse("user-007")?, UserId::parse("user-042")?];

    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>9} {:>12} {:>12}",
        "lookup", "read", "matched", "returned", "requests", "first", "median"
    );
    let mut ok = true;
    let two_users = measure(|| store.list_users_with_stats(&tenant, &users)).await?;
    ok &= report("users (2 users)", &two_users, Some(4), true);
    let whole_tenant = measure(|| store.list_tenant_with_stats(&tenant)).await?;
    ok &= report("tenant", &whole_tenant, Some(200), true);
    let everything = measure(|| store.list_all_with_stats()).await?;
    ok &= report(
        "list-all (scan)",
        &everything,
        Some(records.len() as u64),
        false,
    );
    println!();
    println!("read = ScannedCount (items DynamoDB read), matched = Count, returned = live records");
    Ok(ok)
}

struct Measured {
    stats: LookupStats,
    first: Duration,
    median: Duration,
}

async fn measure<F, Fut>(lookup: F) -> Result<Measured, RosterError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<ConnectionRecord>, LookupStats), RosterError>>,
{
    let mut times = Vec::with_capacity(RUNS);
    let mut stats = LookupStats::default();
    for _ in 0..RUNS {
        let started = Instant::now();
        let (_, run_stats) = lookup().await?;
        times.push(started.elapsed());
        stats = run_stats;
    }
    let first = times.first().copied().unwrap_or_default();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    Ok(Measured {
        stats,
        first,
        median,
    })
}

fn report(name: &str, m: &Measured, expected_read: Option<u64>, targeted: bool) -> bool {
    let s = m.stats;
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>9} {:>12.2?} {:>12.2?}",
        name, s.scanned_count, s.count, s.returned, s.requests, m.first, m.median
    );
    let mut ok = true;
    if targeted && s.scanned_count != s.count {
        println!(
            "  MISSED: targeted lookup read {} items but matched {}",
            s.scanned_count, s.count
        );
        ok = false;
    }
    if let Some(expected) = expected_read {
        if s.scanned_count != expected || s.returned != expected {
            println!("  MISSED: expected {expected} items read and returned");
            ok = false;
        }
    }
    ok
}
