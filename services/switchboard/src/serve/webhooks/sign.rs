//! Standard Webhooks signing (https://www.standardwebhooks.com): the endpoint's secret
//! (`whsec_` + standard base64 of 24 to 64 bytes) and the `webhook-signature` header,
//! `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

/// The prefix every secret carries.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest key bytes a secret may decode to (192 bits).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most key bytes a secret may decode to (the HMAC-SHA256 block size).
pub const MAX_SECRET_BYTES: usize = 64;

/// An endpoint's signing key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`. The error says what is wrong, never what the text was.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(encoded) = text.trim().strip_prefix(SECRET_PREFIX) else {
            return Err(format!("does not start with {SECRET_PREFIX}"));
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("not standard base64 after {SECRET_PREFIX}"))?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "decodes to {} bytes, fewer than {MIN_SECRET_BYTES}",
                bytes.len()
            ));
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "decodes to {} bytes, more than {MAX_SECRET_BYTES}",
                bytes.len()
            ));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The `webhook-signature` value of a delivery of `body` with `id` at `timestamp`
    /// (epoch seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use standardwebhooks::Webhook;
    use time::OffsetDateTime;

    /// The Standard Webhooks reference secret (its test vectors).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn headers(id: &str, timestamp: i64, signature: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn matches_the_reference_vector() {
        let signature = Secret::parse(SECRET).unwrap().sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn the_standard_webhooks_crate_verifies_what_we_sign_and_refuses_a_change() {
        let secret = Secret::parse(SECRET).unwrap();
        let receiver = Webhook::new(SECRET).unwrap();
        let body =
            br#"{"id":"evt_1","type":"user.online","timestamp":"2026-01-01T00:00:00Z","data":{}}"#;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let signature = secret.sign("evt_1", now, body);
        receiver
            .verify(body, &headers("evt_1", now, &signature))
            .expect("verified");
        let changed =
            br#"{"id":"evt_1","type":"user.offline","timestamp":"2026-01-01T00:00:00Z","data":{}}"#;
        assert!(receiver
            .verify(changed, &headers("evt_1", now, &signature))
            .is_err());
        assert!(receiver
            .verify(body, &headers("evt_1", now - 1, &signature))
            .is_err());
        assert!(receiver
            .verify(body, &headers("evt_2", now, &signature))
            .is_err());
    }

    #[test]
    fn refuses_malformed_secrets_without_echoing_them() {
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        for (text, problem) in [
            (
                "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "does not start with whsec_",
            ),
            ("whsec_not*base64!", "not standard base64"),
            (short.as_str(), "fewer than 24"),
            (long.as_str(), "more than 64"),
        ] {
            let error = Secret::parse(text).unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(
                !error.contains(text.trim_start_matches("whsec_")),
                "{error}"
            );
        }
        let edge = format!("whsec_{}", STANDARD.encode([7u8; 64]));
        assert!(Secret::parse(&edge).is_ok());
        assert_eq!(format!("{:?}", Secret::parse(SECRET).unwrap()), "Secret(…)");
    }
}
