use std::io::Write;

use switchboard_model::{Claims, Target, TenantId, UserId};

use super::*;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn publisher_of(name: &str) -> Claims {
    let mut claims = Claims::new(tenant(name), UserId::parse("svc").unwrap());
    claims.roles = vec!["publisher".into()];
    claims
}

fn users(name: &str) -> Target {
    Target::Users {
        tenant: tenant(name),
        users: vec![UserId::parse("u").unwrap()],
    }
}

fn tenants(text: &str) -> Tenants {
    Tenants::from_table(SettingsTable::parse(text).unwrap())
}

fn limit_of(result: Result<(), LimitError>) -> Option<Limit> {
    match result {
        Err(LimitError::Exceeded { limit, .. }) => Some(limit),
        _ => None,
    }
}

#[test]
fn publishes_meet_the_target_tenants_settings() {
    let t = tenants(
        r#"{"tenants":{"acme":{"publishesPerSecond":2,"maxPayloadBytes":10,"allowedTargets":["users"]},
            "frozen":{"suspended":true}}}"#,
    );
    let acme = publisher_of("acme");
    assert_eq!(
        limit_of(t.admit_publish(
            &acme,
            &Target::Tenant {
                tenant: tenant("acme")
            },
            1
        )),
        Some(Limit::AllowedTargets)
    );
    assert_eq!(
        limit_of(t.admit_publish(&acme, &users("acme"), 11)),
        Some(Limit::MaxPayloadBytes)
    );
    assert!(t.admit_publish(&acme, &users("acme"), 10).is_ok());
    assert!(t.admit_publish(&acme, &users("acme"), 10).is_ok());
    match t.admit_publish(&acme, &users("acme"), 10) {
        Err(LimitError::Exceeded {
            limit: Limit::PublishesPerSecond,
            retry_after_secs: Some(1),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Other tenants have no limits of their own.
    let globex = publisher_of("globex");
    for _ in 0..10 {
        assert!(t.admit_publish(&globex, &users("globex"), 100_000).is_ok());
    }
    assert!(matches!(
        t.admit_publish(&publisher_of("frozen"), &users("frozen"), 1),
        Err(LimitError::Suspended { .. })
    ));
}

#[test]
fn connections_meet_the_tenant_and_user_caps() {
    let t = tenants(
        r#"{"defaults":{"maxConnectionsPerUser":3},"tenants":{"acme":{"maxConnections":2}}}"#,
    );
    let acme = tenant("acme");
    assert!(t.admit_connection(&acme, 1, 0).is_ok());
    assert_eq!(
        limit_of(t.admit_connection(&acme, 2, 0)),
        Some(Limit::MaxConnections)
    );
    assert_eq!(
        limit_of(t.admit_connection(&tenant("globex"), 1_000, 3)),
        Some(Limit::MaxConnectionsPerUser)
    );
    assert!(Tenants::unlimited()
        .admit_connection(&acme, u64::MAX - 1, 1_000)
        .is_ok());
}

#[test]
fn the_file_is_read_at_start_and_again_when_it_changes() {
    let dir = std::env::temp_dir().join(format!("tenants-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tenants.json");
    std::fs::write(&path, r#"{"tenants":{"acme":{"maxConnections":5}}}"#).unwrap();
    let lookup = |key: &str| (key == "TENANTS_FILE").then(|| path.display().to_string());
    let t = Tenants::from_lookup(lookup).unwrap();
    assert_eq!(t.settings(&tenant("acme")).max_connections, Some(5));
    assert_eq!(t.reload_if_changed().unwrap(), None);

    // A later modification time: the new text is read; suspended tenants are named.
    std::thread::sleep(Duration::from_millis(20));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(br#"{"tenants":{"acme":{"suspended":true}}}"#)
        .unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    assert_eq!(t.reload_if_changed().unwrap(), Some(vec![tenant("acme")]));
    assert!(t.is_suspended(&tenant("acme")));

    // An invalid file is an error and the settings in force stay.
    let file = std::fs::File::create(&path).unwrap();
    std::fs::write(&path, r#"{"tenants":{"acme":{"suspended":1}}}"#).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    let error = t.reload_if_changed().unwrap_err();
    assert!(
        error.to_string().contains("tenants.acme.suspended"),
        "{error}"
    );
    assert!(t.is_suspended(&tenant("acme")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn start_up_refuses_a_bad_or_missing_file_naming_it() {
    let error = Tenants::from_lookup(|key| {
        (key == "TENANTS_FILE").then(|| "/nonexistent/tenants.json".to_string())
    })
    .unwrap_err();
    assert!(error.to_string().starts_with("TENANTS_FILE="), "{error}");
    let error =
        Tenants::from_lookup(|key| (key == "TENANTS_FILE").then(|| " ".to_string())).unwrap_err();
    assert!(error.to_string().contains("TENANTS_FILE"), "{error}");
    assert!(Tenants::from_lookup(|_| None).is_ok());
}

#[test]
fn history_lasts_the_tenants_own_ttl() {
    let t = tenants(r#"{"tenants":{"acme":{"historyTtlSecs":60}}}"#);
    let default = Duration::from_secs(300);
    assert_eq!(
        t.history_ttl(Some(&tenant("acme")), default),
        Duration::from_secs(60)
    );
    assert_eq!(t.history_ttl(Some(&tenant("globex")), default), default);
    assert_eq!(t.history_ttl(None, default), default);
}

#[test]
fn a_share_is_a_percent_of_the_bound_and_never_zero() {
    assert_eq!(share_of(100_000, 25), 25_000);
    assert_eq!(share_of(40, 25), 10);
    assert_eq!(share_of(3, 25), 1);
    assert_eq!(share_of(3, 100), 3);
    assert_eq!(share_of(usize::MAX, 100), usize::MAX);
    assert_eq!(share_of(0, 50), 1);
}
