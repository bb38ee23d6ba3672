use super::super::contract::{self, device};
use super::*;

#[tokio::test]
async fn memory_store_passes_the_device_contract() {
    contract::run_all(|| async { MemoryDeviceStore::new(1_000) }).await;
}

fn numbered(tenant: &str, user: &str, n: usize) -> Device {
    device(
        tenant,
        user,
        &format!("https://push.example.com/{user}/{n}"),
    )
}

fn is_full(result: Result<Vec<DeviceId>, DeviceError>) -> bool {
    matches!(result, Err(DeviceError::Unavailable(message)) if message.contains("full"))
}

#[tokio::test]
async fn a_full_store_refuses_new_devices_rather_than_growing() {
    let store = MemoryDeviceStore::new(3);
    for n in 0..3 {
        store.put(&numbered("acme", "alice", n), 10).await.unwrap();
    }
    assert!(is_full(store.put(&numbered("acme", "bob", 0), 10).await));
    assert_eq!(store.len(), 3);
    // Registering a known device again does not grow the store.
    assert!(store.put(&numbered("acme", "alice", 1), 10).await.is_ok());
    // Neither does a new device whose user's oldest makes way for it.
    assert_eq!(
        store
            .put(&numbered("acme", "alice", 3), 3)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.len(), 3);
}

/// The noisy-neighbour case: a tenant at its share is refused, another tenant is not.
#[tokio::test]
async fn a_tenant_at_its_share_is_refused_and_others_still_register() {
    let store = MemoryDeviceStore::shared(100, 10);
    for n in 0..10 {
        store
            .put(&numbered("loud", &format!("u{n}"), 0), 10)
            .await
            .unwrap();
    }
    let refused = store.put(&numbered("loud", "u99", 0), 10).await;
    assert!(is_full(refused));
    for n in 0..10 {
        store
            .put(&numbered("quiet", &format!("u{n}"), 0), 10)
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 20);
}

#[tokio::test]
async fn expired_devices_make_room_at_the_bound() {
    let store = MemoryDeviceStore::shared(4, 2);
    for n in 0..2 {
        let mut old = numbered("acme", &format!("u{n}"), 0);
        old.expires_at = OffsetDateTime::now_utc().unix_timestamp() - 1;
        store.put(&old, 10).await.unwrap();
    }
    // The tenant is at its share, but only with expired devices.
    store.put(&numbered("acme", "u9", 0), 10).await.unwrap();
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn removing_frees_room() {
    let store = MemoryDeviceStore::new(1);
    let device = numbered("acme", "alice", 0);
    store.put(&device, 10).await.unwrap();
    assert!(is_full(store.put(&numbered("acme", "bob", 0), 10).await));
    assert!(store
        .remove(&device.tenant, &device.user, &device.id)
        .await
        .unwrap());
    assert!(store.is_empty());
    store.put(&numbered("acme", "bob", 0), 10).await.unwrap();
}
