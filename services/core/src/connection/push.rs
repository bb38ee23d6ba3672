//! `push_subscribe` and `push_unsubscribe` (docs/design.md: Web Push): the connection's
//! user registers or removes a device over its socket, as over `POST` / `DELETE
//! /v1/push/subscriptions` ([`crate::push_api`], which holds the shared steps).

use serde_json::Value;
use switchboard_model::{Claims, ConnectionId, ErrorCode, ServerReply};
use time::OffsetDateTime;

use crate::push_api::{register, unregister, DeviceRequestError};
use crate::webpush::WebPush;

/// Codes: [`ErrorCode::PushUnavailable`] where push is off on this deployment (no VAPID
/// keys), [`ErrorCode::BadRequest`] for an invalid subscription or device id (the message
/// names the field), [`ErrorCode::UnknownDevice`] for a `push_unsubscribe` naming no device
/// of this user, [`ErrorCode::DevicesUnavailable`] when the device store failed.
fn refused(error: ErrorCode) -> ServerReply {
    ServerReply::Error { error }
}

/// The reply to a failed push action; an invalid subscription's field is named from the
/// frame (`subscription.keys.auth`).
fn failed(error: DeviceRequestError, connection_id: &ConnectionId) -> ServerReply {
    match error {
        DeviceRequestError::Invalid(invalid) => ServerReply::Refused {
            error: ErrorCode::BadRequest,
            message: invalid.to_string(),
        },
        DeviceRequestError::Store(store) => {
            tracing::warn!(error = %store, %connection_id, "push action failed: device store unavailable");
            refused(ErrorCode::DevicesUnavailable)
        }
    }
}

/// `push_subscribe`: registers `subscription` for the connection's tenant and user.
pub(super) async fn subscribe(
    push: Option<&WebPush>,
    subscription: &Value,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> ServerReply {
    let Some(push) = push else {
        return refused(ErrorCode::PushUnavailable);
    };
    match register(push, claims, subscription, OffsetDateTime::now_utc()).await {
        Ok(id) => ServerReply::PushSubscribed { id: id.to_string() },
        Err(DeviceRequestError::Invalid(mut invalid)) if invalid.field != "subscription" => {
            invalid.field = format!("subscription.{}", invalid.field);
            failed(invalid.into(), connection_id)
        }
        Err(e) => failed(e, connection_id),
    }
}

/// `push_unsubscribe`: removes the connection's user's device `id`.
pub(super) async fn unsubscribe(
    push: Option<&WebPush>,
    id: &str,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> ServerReply {
    let Some(push) = push else {
        return refused(ErrorCode::PushUnavailable);
    };
    match unregister(push, claims, id).await {
        Ok(true) => ServerReply::PushUnsubscribed,
        Ok(false) => refused(ErrorCode::UnknownDevice),
        Err(e) => failed(e, connection_id),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use switchboard_model::{TenantId, UserId};

    use super::super::{handle_client_frame, ActionDeps};
    use super::*;
    use crate::devices::{DeviceId, DeviceStore, MemoryDeviceStore};
    use crate::push_api::tests::{subscription, web_push, AUTH, P256DH};

    fn deps(push: Option<crate::webpush::WebPush>) -> ActionDeps {
        ActionDeps {
            roster: Arc::new(crate::roster::MemoryRosterStore::new()),
            history: Arc::new(crate::history::MemoryHistoryStore::new(10)),
            history_config: crate::history::HistoryConfig::default(),
            verifier: None,
            push,
        }
    }

    /// The one reply to `frame` from alice of acme, as JSON.
    async fn reply(deps: &ActionDeps, frame: serde_json::Value) -> serde_json::Value {
        let claims = Claims::new(
            TenantId::parse("acme").unwrap(),
            UserId::parse("alice").unwrap(),
        );
        let id = ConnectionId::parse("c-1").unwrap();
        let outcome = handle_client_frame(deps, &frame.to_string(), &id, &claims).await;
        assert_eq!(outcome.frames.len(), 1);
        serde_json::from_str(&outcome.frames[0]).unwrap()
    }

    async fn alices(store: &MemoryDeviceStore) -> usize {
        store
            .list_users(
                &TenantId::parse("acme").unwrap(),
                &[UserId::parse("alice").unwrap()],
            )
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn subscribe_then_unsubscribe_over_the_socket() {
        let (push, store) = web_push(10);
        let deps = deps(Some(push));
        let endpoint = "https://push.example.net/send/1";
        let id = DeviceId::of_endpoint(endpoint).to_string();
        let subscribe = json!({"action": "push_subscribe", "subscription": subscription(endpoint)});
        assert_eq!(
            reply(&deps, subscribe).await,
            json!({"type": "push_subscribed", "id": id})
        );
        assert_eq!(alices(&store).await, 1);
        let unsubscribe = json!({"action": "push_unsubscribe", "id": id});
        assert_eq!(
            reply(&deps, unsubscribe.clone()).await,
            json!({"type": "push_unsubscribed"})
        );
        assert_eq!(alices(&store).await, 0);
        assert_eq!(
            reply(&deps, unsubscribe).await,
            json!({"type": "error", "error": "unknown_device"})
        );
    }

    #[tokio::test]
    async fn bad_subscriptions_name_the_field_under_subscription() {
        let (push, store) = web_push(10);
        let deps = deps(Some(push));
        let cases = [
            (
                json!({"endpoint": "https://push.example.net/x", "keys": {"p256dh": P256DH, "auth": "AAAA"}}),
                "subscription.keys.auth: ",
            ),
            (
                subscription("https://192.168.0.1/x"),
                "subscription.endpoint: ",
            ),
            (json!(null), "subscription: "),
            (
                json!({"endpoint": "https://push.example.net/x", "keys": {"p256dh": AUTH, "auth": AUTH}}),
                "subscription.keys.p256dh: ",
            ),
        ];
        for (subscription, field) in cases {
            let answer = reply(
                &deps,
                json!({"action": "push_subscribe", "subscription": subscription}),
            )
            .await;
            assert_eq!(answer["type"], "error");
            assert_eq!(answer["error"], "bad_request", "{answer}");
            assert!(
                answer["message"].as_str().unwrap().starts_with(field),
                "{subscription}: {answer}"
            );
        }
        let answer = reply(&deps, json!({"action": "push_unsubscribe", "id": 7})).await;
        assert!(
            answer["message"].as_str().unwrap().starts_with("id: "),
            "{answer}"
        );
        assert_eq!(alices(&store).await, 0);
    }

    #[tokio::test]
    async fn push_off_answers_push_unavailable() {
        let deps = deps(None);
        for frame in [
            json!({"action": "push_subscribe", "subscription": subscription("https://push.example.net/x")}),
            json!({"action": "push_unsubscribe", "id": "abc"}),
        ] {
            assert_eq!(
                reply(&deps, frame).await,
                json!({"type": "error", "error": "push_unavailable"})
            );
        }
    }
}
