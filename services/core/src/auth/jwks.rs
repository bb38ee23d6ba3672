//! JWKS handling: turning a JWK set into verification keys, and the cached remote set
//! behind `JWT_JWKS_URL`.
//!
//! Each usable key gets exactly one algorithm, fixed here from the key itself (its `alg`,
//! or RS256 for `kty: RSA` and ES256 for `kty: EC`/`crv: P-256` when `alg` is absent). A
//! token's header can only select a key by `kid`; it never chooses the algorithm.
//! Symmetric (`oct`) keys, encryption keys and other algorithms are skipped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::AuthError;

/// Largest JWKS document accepted from a URL.
const MAX_JWKS_BYTES: usize = 512 * 1024;

/// One verification key and the one algorithm it verifies.
pub(crate) struct VerifyKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The usable keys of a JWKS document.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    without_kid: Vec<Arc<VerifyKey>>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document, skipping (and logging) keys that cannot be used. Fails when
    /// the document is not a JWKS or holds no usable key.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, String> {
        let raw: RawSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut set = KeySet::default();
        for value in raw.keys {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping unparseable JWK");
                    continue;
                }
            };
            let kid = jwk.common.key_id.clone();
            match usable_key(&jwk) {
                Ok(key) => match kid {
                    Some(kid) => {
                        set.by_kid.insert(kid, Arc::new(key));
                    }
                    None => set.without_kid.push(Arc::new(key)),
                },
                Err(reason) => tracing::warn!(kid = ?kid, reason, "skipping JWK"),
            }
        }
        if set.len() == 0 {
            return Err("no usable RS256/ES256 signing key".to_string());
        }
        Ok(set)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// The key a token header names. Without a `kid`, only a set of exactly one key
    /// answers.
    pub(crate) fn select(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.len() == 1 => self
                .by_kid
                .values()
                .next()
                .or_else(|| self.without_kid.first())
                .cloned(),
            None => None,
        }
    }
}

fn usable_key(jwk: &Jwk) -> Result<VerifyKey, &'static str> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("encryption key");
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        (AlgorithmParameters::OctetKey(_), _) => return Err("symmetric keys are not accepted"),
        _ => return Err("unsupported key type or algorithm (RS256 and ES256 only)"),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "invalid key material")?;
    Ok(VerifyKey { alg, key })
}

/// Reads and parses a JWKS file (start-up only).
pub(crate) fn load_file(path: &std::path::Path) -> Result<KeySet, AuthError> {
    let bytes = std::fs::read(path)
        .map_err(|e| AuthError::InvalidJwks(format!("{}: {e}", path.display())))?;
    KeySet::parse(&bytes).map_err(|e| AuthError::InvalidJwks(format!("{}: {e}", path.display())))
}

struct Cache {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    /// Error of the latest fetch attempt, cleared by a successful one.
    last_error: Option<String>,
}

/// The key set behind `JWT_JWKS_URL`: cached; refreshed when a `kid` is unknown or the
/// cache is older than `max_age`; at most one fetch per `min_refresh_interval`, and
/// never two at once (concurrent verifications wait for the one fetch in flight).
pub(crate) struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    min_refresh_interval: Duration,
    max_age: Duration,
    cache: RwLock<Cache>,
    /// Held for the whole fetch; holds the time of the latest attempt.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteJwks {
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        min_refresh_interval: Duration,
        max_age: Duration,
    ) -> Result<Self, AuthError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| AuthError::JwksUnavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            url,
            client,
            min_refresh_interval,
            max_age,
            cache: RwLock::new(Cache {
                keys: None,
                fetched_at: None,
                last_error: None,
            }),
            refresh: tokio::sync::Mutex::new(None),
        })
    }

    fn snapshot(&self) -> (Option<Arc<KeySet>>, bool, Option<String>) {
        match self.cache.read() {
            Ok(cache) => {
                let stale = cache
                    .fetched_at
                    .is_none_or(|at| at.elapsed() >= self.max_age);
                (cache.keys.clone(), stale, cache.last_error.clone())
            }
            // A panic elsewhere poisoned the lock: behave as if nothing were cached.
            Err(_) => (None, true, Some("key cache unavailable".to_string())),
        }
    }

    /// The key for `kid`, refreshing the set when needed and allowed.
    pub(crate) async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, AuthError> {
        let (keys, stale, _) = self.snapshot();
        if !stale {
            if let Some(key) = keys.as_ref().and_then(|set| set.select(kid)) {
                return Ok(key);
            }
        }
        self.refresh().await;
        let (keys, _, last_error) = self.snapshot();
        match (keys.and_then(|set| set.select(kid)), last_error) {
            (Some(key), _) => Ok(key),
            (None, Some(error)) => Err(AuthError::JwksUnavailable(error)),
            (None, None) => Err(AuthError::UnknownKid(kid.map(str::to_string))),
        }
    }

    /// Fetches the set unless a fetch happened less than `min_refresh_interval` ago.
    /// Failures are recorded in the cache (old keys stay usable), never raised.
    pub(crate) async fn refresh(&self) {
        let mut last_attempt = self.refresh.lock().await;
        if last_attempt.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            return;
        }
        *last_attempt = Some(Instant::now());
        let result = self.fetch().await;
        let Ok(mut cache) = self.cache.write() else {
            return;
        };
        match result {
            Ok(set) => {
                tracing::info!(url = %self.url, keys = set.len(), "JWKS fetched");
                cache.keys = Some(Arc::new(set));
                cache.fetched_at = Some(Instant::now());
                cache.last_error = None;
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS fetch failed");
                cache.last_error = Some(error);
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("endpoint answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading body: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body)
    }
}
