//! Connection usage: `connectionMinutes` and `peakConnections`.
//!
//! - `serve` ([`sample_connections`]): once a minute each tenant's live connections (from
//!   the registry) are added to that minute's `connectionMinutes` and raise its
//!   `peakConnections` — one write per tenant with connections per minute. The peak is the
//!   largest sample: a burst between two samples is not seen.
//! - AWS ([`connection_opened`], [`connection_closed`]): no process sees every socket, so
//!   `$connect` adds 1 to a live counter per tenant and raises the minute's peak to the
//!   new count, and `$disconnect` takes 1 off and adds the connection's minutes (its
//!   duration, rounded up) to the minute of the disconnect. The approximation: minutes
//!   are attributed to the minute the connection ended, not spread over its life; a
//!   `$disconnect` API Gateway never delivers loses those minutes and leaves the live
//!   counter (hence later peaks) one too high.

use std::time::Duration;

use switchboard_model::TenantId;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::{Counts, Usage};

/// How often `serve` samples its connections: once a minute, so each sample is a minute.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// Samples `counts` (each tenant's live connections) every [`SAMPLE_EVERY`] until
/// `shutdown` turns true.
pub async fn sample_connections<F>(usage: Usage, counts: F, shutdown: watch::Receiver<bool>)
where
    F: Fn() -> Vec<(TenantId, usize)> + Send,
{
    sample_every(SAMPLE_EVERY, usage, counts, shutdown).await;
}

async fn sample_every<F>(
    every: Duration,
    usage: Usage,
    counts: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn() -> Vec<(TenantId, usize)> + Send,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is at once: nothing has been connected for a minute yet.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now = OffsetDateTime::now_utc();
        for (tenant, live) in counts() {
            let live = u64::try_from(live).unwrap_or(u64::MAX);
            let counts = Counts {
                connection_minutes: live,
                peak_connections: live,
                ..Counts::default()
            };
            usage.record(Some(&tenant), now, &counts).await;
        }
    }
}

/// `$connect` on AWS: the tenant's live counter goes up by one, and the minute's peak is
/// raised to it.
pub async fn connection_opened(usage: &Usage, tenant: &TenantId, at: OffsetDateTime) {
    match usage.store.add_live(tenant, 1).await {
        Ok(live) => {
            let counts = Counts {
                peak_connections: u64::try_from(live).unwrap_or(0),
                ..Counts::default()
            };
            usage.record(Some(tenant), at, &counts).await;
        }
        Err(error) => usage.failed(Some(tenant), &error),
    }
}

/// `$disconnect` on AWS: the live counter goes down by one, and the connection's minutes
/// (from `connected_at` to `at`, rounded up) are added to the minute of `at`.
pub async fn connection_closed(
    usage: &Usage,
    tenant: &TenantId,
    connected_at: OffsetDateTime,
    at: OffsetDateTime,
) {
    if let Err(error) = usage.store.add_live(tenant, -1).await {
        usage.failed(Some(tenant), &error);
    }
    let seconds = u64::try_from((at - connected_at).whole_seconds()).unwrap_or(0);
    let counts = Counts {
        connection_minutes: seconds.div_ceil(60),
        ..Counts::default()
    };
    usage.record(Some(tenant), at, &counts).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{MemoryUsageStore, UsageConfig, UsageStore};
    use super::*;

    fn usage() -> (Arc<MemoryUsageStore>, Usage) {
        let config = UsageConfig::default();
        let store = Arc::new(MemoryUsageStore::new(1_000, 1_000, config.retention));
        (store.clone(), Usage::new(store, &config))
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    async fn total(store: &MemoryUsageStore, tenant: &TenantId) -> Counts {
        let now = OffsetDateTime::now_utc();
        let minutes = store
            .minutes(
                Some(tenant),
                now - time::Duration::hours(1),
                now + time::Duration::hours(1),
            )
            .await
            .unwrap();
        let mut total = Counts::default();
        for minute in minutes {
            total.add(&minute.counts);
        }
        total
    }

    #[tokio::test]
    async fn the_sampler_adds_each_tenants_connections_once_a_period() {
        let (store, usage) = usage();
        let (stop, stopped) = watch::channel(false);
        // A short period stands for the minute (the core has no paused clock).
        let every = Duration::from_millis(200);
        let sampler = tokio::spawn(sample_every(
            every,
            usage,
            || vec![(tenant("acme"), 3), (tenant("globex"), 1)],
            stopped,
        ));
        tokio::time::sleep(every * 2 + every / 2).await;
        stop.send(true).unwrap();
        sampler.await.unwrap();
        let acme = total(&store, &tenant("acme")).await;
        assert_eq!(acme.connection_minutes, 6, "two samples of 3");
        assert_eq!(acme.peak_connections, 3);
        assert_eq!(total(&store, &tenant("globex")).await.connection_minutes, 2);
    }

    #[tokio::test]
    async fn aws_connections_count_their_minutes_at_disconnect_and_raise_the_peak() {
        let (store, usage) = usage();
        let acme = tenant("acme");
        let now = OffsetDateTime::now_utc();
        connection_opened(&usage, &acme, now).await;
        connection_opened(&usage, &acme, now).await;
        connection_closed(&usage, &acme, now - time::Duration::seconds(61), now).await;
        connection_opened(&usage, &acme, now).await;
        let counts = total(&store, &acme).await;
        assert_eq!(counts.peak_connections, 2);
        assert_eq!(
            counts.connection_minutes, 2,
            "61 s is two minutes, rounded up"
        );
        assert_eq!(store.add_live(&acme, 0).await.unwrap(), 2);
    }
}
