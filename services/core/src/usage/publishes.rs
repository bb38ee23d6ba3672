//! Counting publishes per tenant (docs/design.md: Usage): the publish API hands every answer
//! of `POST /v1/messages` given after the token was accepted (a 401 counts nothing) to
//! [`count_publish`]. `202` is `publishesAccepted`; a refusal by the caller's rights or a
//! tenant's settings (403), a size (413), a rate (429) or a full queue (503 `busy`) is
//! `publishesRefused`; anything else counts as neither — a `400` (no valid envelope), a
//! `503` because a store of ours is down, and a repeated publish answered `200` with its
//! receipt (it was counted when first accepted).

use axum::http::StatusCode;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::{Counts, Usage};
use crate::http::ApiError;

/// What an answer counts as: `Some(true)` accepted, `Some(false)` refused, `None` neither.
fn verdict(answer: Result<StatusCode, &ApiError>) -> Option<bool> {
    match answer {
        Ok(StatusCode::ACCEPTED) => Some(true),
        Ok(_) => None,
        Err(
            ApiError::Forbidden(_)
            | ApiError::Suspended(_)
            | ApiError::LimitExceeded { .. }
            | ApiError::TooLarge(_)
            | ApiError::Busy { .. },
        ) => Some(false),
        Err(_) => None,
    }
}

/// Counts one publish's answer for `tenant` (`None`: a broadcast, counted under `*`).
pub async fn count_publish(
    usage: &Usage,
    tenant: Option<&TenantId>,
    answer: Result<StatusCode, &ApiError>,
) {
    let Some(accepted) = verdict(answer) else {
        return;
    };
    let counts = Counts {
        publishes_accepted: u64::from(accepted),
        publishes_refused: u64::from(!accepted),
        ..Counts::default()
    };
    usage
        .record(tenant, OffsetDateTime::now_utc(), &counts)
        .await;
}

#[cfg(test)]
mod tests {
    use crate::tenants::Limit;

    use super::*;

    #[test]
    fn answers_count_as_accepted_refused_or_neither() {
        assert_eq!(verdict(Ok(StatusCode::ACCEPTED)), Some(true));
        assert_eq!(verdict(Ok(StatusCode::OK)), None);
        let refused = [
            ApiError::Forbidden("no".into()),
            ApiError::Suspended("no".into()),
            ApiError::TooLarge("big".into()),
            ApiError::LimitExceeded {
                limit: Limit::PublishesPerSecond,
                message: "slow".into(),
                retry_after_secs: Some(1),
            },
            ApiError::Busy {
                message: "full".into(),
                retry_after_secs: 1,
            },
        ];
        for error in &refused {
            assert_eq!(verdict(Err(error)), Some(false), "{error:?}");
        }
        for error in [
            ApiError::InvalidEnvelope("bad".into()),
            ApiError::Unauthorized("who".into()),
            ApiError::Unavailable("down".into()),
        ] {
            assert_eq!(verdict(Err(&error)), None, "{error:?}");
        }
    }
}
