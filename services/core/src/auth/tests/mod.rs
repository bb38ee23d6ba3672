//! The verifier's tests, by subject: acceptance, the attack suite, start-up, the JWKS URL
//! cache and several issuers. Here: the keys and token helpers they share, a local JWKS
//! endpoint ([`JwksServer`]) and an issuer fixture ([`issuer`], also used by `overlap`).

mod acceptance;
mod attacks;
mod issuers;
mod jwks_url;
mod startup;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard_model::{TenantId, UserId};

use super::*;

const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes!";
const RSA1_PRIVATE: &[u8] = include_bytes!("../testdata/rsa1_private.pem");
const RSA1_PUBLIC: &[u8] = include_bytes!("../testdata/rsa1_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("../testdata/rsa2_private.pem");
const EC1_PRIVATE: &[u8] = include_bytes!("../testdata/ec1_private.pem");
const JWKS: &str = include_str!("../testdata/jwks.json");
const JWKS_ROTATED: &str = include_str!("../testdata/jwks_rotated.json");

fn jwks_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/auth/testdata/jwks.json")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Valid claims for tenant `acme`, user `alice`, expiring in 10 minutes.
fn claims() -> Value {
    json!({"sub": "alice", "tenant": "acme", "roles": ["publisher"], "exp": now() + 600})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET),
        None,
        claims,
    )
}

fn rs(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA1_PRIVATE).unwrap();
    sign(Algorithm::RS256, &key, Some(kid), claims)
}

fn rs2(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    sign(Algorithm::RS256, &key, Some(kid), claims)
}

fn es(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC1_PRIVATE).unwrap();
    sign(Algorithm::ES256, &key, Some(kid), claims)
}

/// A token with an arbitrary header and an empty or given signature.
fn raw(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        signature
    )
}

async fn hs_verifier() -> Verifier {
    Verifier::new(AuthConfig::with_hs256_secret(SECRET))
        .await
        .unwrap()
}

async fn verifier_with(edit: impl FnOnce(&mut AuthConfig)) -> Verifier {
    let mut config = AuthConfig::with_hs256_secret(SECRET);
    edit(&mut config);
    Verifier::new(config).await.unwrap()
}

async fn jwks_verifier() -> Verifier {
    let config = AuthConfig {
        keys: KeySource::JwksFile(jwks_path()),
        ..AuthConfig::default()
    };
    Verifier::new(config).await.unwrap()
}

/// A local JWKS endpoint that counts fetches and can be taken down.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
    body: Arc<RwLock<String>>,
}

impl JwksServer {
    async fn start(body: &str) -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let body = Arc::new(RwLock::new(body.to_string()));
        let (f, u, b) = (fetches.clone(), up.clone(), body.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (f, u, b) = (f.clone(), u.clone(), b.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if u.load(Ordering::SeqCst) {
                        (http::StatusCode::OK, b.read().unwrap().clone())
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/jwks.json"),
            fetches,
            up,
            body,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    async fn verifier(&self, min_refresh_interval: Duration) -> Verifier {
        let config = AuthConfig {
            keys: KeySource::JwksUrl(self.url.clone()),
            jwks_min_refresh_interval: min_refresh_interval,
            ..AuthConfig::default()
        };
        Verifier::new(config).await.unwrap()
    }
}

/// An issuer with `keys`, accepting `tenants` (`["*"]`: any).
pub(super) fn issuer(iss: &str, keys: IssuerKeys, tenants: &[&str]) -> IssuerConfig {
    IssuerConfig {
        issuer: iss.to_string(),
        keys,
        audience: Vec::new(),
        tenants: if tenants == ["*"] {
            AllowedTenants::Any
        } else {
            AllowedTenants::Only(
                tenants
                    .iter()
                    .map(|t| TenantId::parse(*t).unwrap())
                    .collect(),
            )
        },
        tenant_claim: None,
        roles_claim: None,
        global_admin: false,
        allow_shared_tenants: false,
    }
}
