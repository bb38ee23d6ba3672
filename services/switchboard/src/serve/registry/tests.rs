use std::net::Ipv4Addr;

use super::live::{OUTBOX_FRAMES, OUTBOX_KEPT};
use super::*;

fn claims(user: &str) -> Claims {
    of("acme", user)
}

fn id(n: usize) -> ConnectionId {
    ConnectionId::parse(format!("C{n:015}")).unwrap()
}

#[test]
fn caps_apply_per_server_and_per_user_and_free_up_on_unregister() {
    let registry = Registry::new(ConnectionLimits {
        max_connections: 3,
        max_per_user: 2,
        tenant_share: 10,
    });
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert!(registry
        .register(
            id(1),
            claims("alice"),
            TenantCaps::default(),
            ip,
            String::new()
        )
        .is_ok());
    assert!(registry
        .register(
            id(2),
            claims("alice"),
            TenantCaps::default(),
            ip,
            String::new()
        )
        .is_ok());
    assert_eq!(
        registry
            .register(
                id(3),
                claims("alice"),
                TenantCaps::default(),
                ip,
                String::new()
            )
            .err(),
        Some(RegisterError::UserFull(2))
    );
    assert!(registry
        .register(
            id(3),
            claims("bob"),
            TenantCaps::default(),
            ip,
            String::new()
        )
        .is_ok());
    assert!(registry.is_full());
    assert_eq!(
        registry
            .register(
                id(4),
                claims("carol"),
                TenantCaps::default(),
                ip,
                String::new()
            )
            .err(),
        Some(RegisterError::ServerFull(3))
    );
    registry.unregister(&id(1));
    assert!(!registry.is_full());
    assert!(registry
        .register(
            id(4),
            claims("alice"),
            TenantCaps::default(),
            ip,
            String::new()
        )
        .is_ok());
}

fn of(tenant: &str, user: &str) -> Claims {
    Claims::new(
        TenantId::parse(tenant).unwrap(),
        UserId::parse(user).unwrap(),
    )
}

/// A tenant at its share of `MAX_CONNECTIONS` is refused while others connect; its own
/// caps and its users' caps from its tenant settings are counted per tenant.
#[test]
fn a_tenant_is_held_to_its_share_and_its_own_caps() {
    let registry = Registry::new(ConnectionLimits {
        max_connections: 40,
        max_per_user: 100,
        tenant_share: 10,
    });
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let none = TenantCaps::default();
    for n in 0..10 {
        let user = format!("u{n}");
        assert!(registry
            .register(id(n), of("loud", &user), none, ip, String::new())
            .is_ok());
    }
    assert_eq!(
        registry
            .register(id(10), of("loud", "u0"), none, ip, String::new())
            .err(),
        Some(RegisterError::TenantShare(10))
    );
    assert!(registry
        .register(id(11), of("quiet", "q"), none, ip, String::new())
        .is_ok());
    let mut counts = registry.tenant_counts();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            (TenantId::parse("loud").unwrap(), 10),
            (TenantId::parse("quiet").unwrap(), 1)
        ]
    );
    // The tenant's own caps, named apart from the server's.
    let capped = TenantCaps {
        max_connections: Some(2),
        max_per_user: Some(1),
    };
    assert!(registry
        .register(id(12), of("small", "a"), capped, ip, String::new())
        .is_ok());
    assert_eq!(
        registry
            .register(id(13), of("small", "a"), capped, ip, String::new())
            .err(),
        Some(RegisterError::TenantUserFull(1))
    );
    assert!(registry
        .register(id(13), of("small", "b"), capped, ip, String::new())
        .is_ok());
    assert_eq!(
        registry
            .register(id(14), of("small", "c"), capped, ip, String::new())
            .err(),
        Some(RegisterError::TenantFull(2))
    );
    // Leaving frees the tenant's count.
    registry.unregister(&id(0));
    assert!(registry
        .register(id(10), of("loud", "u0"), none, ip, String::new())
        .is_ok());
}

#[tokio::test]
async fn close_tenant_closes_only_that_tenants_sockets() {
    let registry = Registry::new(ConnectionLimits::default());
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let none = TenantCaps::default();
    let a = registry
        .register(id(1), of("acme", "a"), none, ip, String::new())
        .unwrap();
    let b = registry
        .register(id(2), of("globex", "b"), none, ip, String::new())
        .unwrap();
    registry.close_tenant(&TenantId::parse("acme").unwrap(), 4003, "tenant suspended");
    assert_eq!(
        a.close_request(),
        Some(CloseRequest {
            code: 4003,
            reason: "tenant suspended"
        })
    );
    assert_eq!(b.close_request(), None);
}

fn registered() -> (Registry, ConnectionId, Arc<LiveConnection>) {
    let registry = Registry::new(ConnectionLimits::default());
    let id = ConnectionId::parse("AAAAAAAAAAAAAAAA").unwrap();
    let live = registry
        .register(
            id.clone(),
            claims("alice"),
            TenantCaps::default(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            String::new(),
        )
        .unwrap();
    (registry, id, live)
}

#[tokio::test]
async fn only_own_ids_are_reported_gone() {
    let tag = InstanceTag("Abcd".into());
    let poster = LocalPoster::new(
        Arc::new(Registry::new(ConnectionLimits::default())),
        tag.clone(),
        Default::default(),
    );
    let frame = Frame::from("x");
    let own = ConnectionId::parse("Abcd000000000000").unwrap();
    let foreign = ConnectionId::parse("Wxyz000000000000").unwrap();
    assert_eq!(poster.post(&own, &frame).await, Err(PostError::Gone));
    assert_eq!(poster.post(&foreign, &frame).await, Ok(()));
    assert_eq!(poster.foreign_skipped.get(), 1);
    assert_eq!(InstanceTag::random().as_str().len(), 4);
}

#[tokio::test]
async fn a_full_outbox_closes_with_1008_and_reports_gone_without_waiting() {
    let (registry, id, live) = registered();
    let poster = LocalPoster::new(
        Arc::new(registry),
        InstanceTag("AAAA".into()),
        Default::default(),
    );
    let frame = Frame::from("x");
    for _ in 0..OUTBOX_FRAMES {
        assert_eq!(poster.post(&id, &frame).await, Ok(()));
    }
    assert_eq!(poster.post(&id, &frame).await, Err(PostError::Gone));
    assert_eq!(
        live.close_request(),
        Some(CloseRequest {
            code: CLOSE_SLOW_CONSUMER,
            reason: "not reading fast enough"
        })
    );
    // Closing: later posts are gone at once too.
    assert_eq!(poster.post(&id, &frame).await, Err(PostError::Gone));
}

#[tokio::test]
async fn close_ends_an_expired_token_connection_with_4001() {
    let (registry, id, live) = registered();
    let poster = LocalPoster::new(
        Arc::new(registry),
        InstanceTag("AAAA".into()),
        Default::default(),
    );
    assert_eq!(poster.close(&id).await, Ok(()));
    assert!(matches!(
        live.next(),
        Next::Close(CloseRequest {
            code: CLOSE_TOKEN_EXPIRED,
            reason: "token expired"
        })
    ));
    // Unknown here (closed already, or another instance's): nothing to do.
    let absent = ConnectionId::parse("Wxyz000000000000").unwrap();
    assert_eq!(poster.close(&absent).await, Ok(()));
}

#[tokio::test]
async fn close_is_seen_before_queued_frames_and_first_request_wins() {
    let (_registry, _id, live) = registered();
    for _ in 0..OUTBOX_FRAMES {
        live.send(Outgoing::Text("x".into())).unwrap();
    }
    live.close(1000, "deleted");
    live.close(1001, "server shutting down");
    assert!(matches!(
        live.next(),
        Next::Close(CloseRequest { code: 1000, .. })
    ));
    assert_eq!(live.closing().await.code, 1000);
    assert_eq!(live.queued(), OUTBOX_FRAMES);
}

#[tokio::test]
async fn frames_come_out_in_order_and_a_wake_up_is_never_lost() {
    let (_registry, _id, live) = registered();
    assert!(matches!(live.next(), Next::Idle));
    assert!(!live.has_work());
    // Sent before anyone waits: the wake-up is kept for the next wait.
    live.send(Outgoing::Text("1".into())).unwrap();
    live.send(Outgoing::Text("2".into())).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), live.woken())
        .await
        .expect("a kept wake-up");
    assert!(live.has_work());
    for expected in ["1", "2"] {
        match live.next() {
            Next::Frame(Outgoing::Text(text)) => assert_eq!(text.as_str(), expected),
            other => panic!("expected frame {expected}, got {other:?}"),
        }
    }
    assert!(matches!(live.next(), Next::Idle));
    // A drained burst gives its queue back.
    for _ in 0..OUTBOX_FRAMES {
        live.send(Outgoing::Text("x".into())).unwrap();
    }
    while let Next::Frame(_) = live.next() {}
    assert!(live.outbox().frames.capacity() <= OUTBOX_KEPT);
}
