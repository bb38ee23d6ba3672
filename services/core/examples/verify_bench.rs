//! Token verifications per second on one core, for HS256, RS256 and ES256 with the single
//! key source, then RS256 and ES256 through `JWT_ISSUERS_FILE` (the token's issuer is one
//! of 50, each with its own keys), about 2 s each. Prints figures and the per-issuer
//! figure as a share of the single-key one; asserts nothing.
//!
//! ```text
//! cargo run --release -p switchboard-core --example verify_bench
//! ```

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use switchboard_core::auth::{
    AllowedTenants, AuthConfig, IssuerConfig, IssuerKeys, IssuersConfig, KeySource, Verifier,
};
use switchboard_model::TenantId;

const SECRET: &[u8] = b"an-hs256-bench-secret-of-32-bytes";
const RSA_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/rsa1_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/ec1_private.pem");
const RUN_FOR: Duration = Duration::from_secs(2);
const ROUNDS: u32 = 20;
/// Issuers in the per-issuer configuration; the benchmark's tokens name the last one.
const ISSUERS: usize = 50;

fn main() -> Result<(), Box<dyn Error>> {
    // One thread: the figures are per core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({
        "sub": "alice", "tenant": "acme", "roles": ["publisher"], "exp": now + 3600
    });
    let jwks = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/auth/testdata/jwks.json");
    let jwks_verifier = Verifier::new(AuthConfig {
        keys: KeySource::JwksFile(jwks.clone()),
        ..AuthConfig::default()
    })
    .await?;
    let hs_verifier = Verifier::new(AuthConfig::with_hs256_secret(SECRET)).await?;
    let issuers = (0..ISSUERS)
        .map(|i| {
            Ok(IssuerConfig {
                issuer: format!("https://idp-{i}.example"),
                keys: IssuerKeys::JwksFile(jwks.clone()),
                audience: vec!["switchboard".to_string()],
                tenants: AllowedTenants::Only(vec![TenantId::parse("acme")?]),
                tenant_claim: None,
                roles_claim: None,
                global_admin: false,
                // Every bench issuer vouches for `acme`.
                allow_shared_tenants: true,
            })
        })
        .collect::<Result<Vec<_>, Box<dyn Error>>>()?;
    let issuer_verifier = Verifier::new(AuthConfig {
        keys: KeySource::Issuers(IssuersConfig {
            path: "bench-issuers.json".into(),
            issuers,
        }),
        ..AuthConfig::default()
    })
    .await?;
    let issuer_claims = json!({
        "iss": format!("https://idp-{}.example", ISSUERS - 1), "aud": "switchboard",
        "sub": "alice", "tenant": "acme", "roles": ["publisher"], "exp": now + 3600
    });

    let sign_claims =
        |claims: &serde_json::Value, alg: Algorithm, kid: Option<&str>, key: &EncodingKey| {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_string);
            jsonwebtoken::encode(&header, claims, key)
        };
    let sign =
        |alg: Algorithm, kid: Option<&str>, key: &EncodingKey| sign_claims(&claims, alg, kid, key);
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE)?;
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE)?;
    let cases = [
        (
            "HS256",
            &hs_verifier,
            sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET))?,
        ),
        (
            "RS256",
            &jwks_verifier,
            sign(Algorithm::RS256, Some("rsa-1"), &rsa)?,
        ),
        (
            "ES256",
            &jwks_verifier,
            sign(Algorithm::ES256, Some("ec-1"), &ec)?,
        ),
        (
            "RS256 per-issuer",
            &issuer_verifier,
            sign_claims(&issuer_claims, Algorithm::RS256, Some("rsa-1"), &rsa)?,
        ),
        (
            "ES256 per-issuer",
            &issuer_verifier,
            sign_claims(&issuer_claims, Algorithm::ES256, Some("ec-1"), &ec)?,
        ),
    ];
    // Interleaved rounds, the median round per case: other processes on a shared machine slow
    // some rounds down, and the per-issuer and single-key runs should see the same noise.
    for (_, verifier, token) in &cases {
        verifier.verify(token).await?; // warm up, and prove the token is valid
    }
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, verifier, token)) in cases.iter().enumerate() {
            let start = Instant::now();
            let mut count: u64 = 0;
            while start.elapsed() < RUN_FOR / ROUNDS {
                for _ in 0..16 {
                    verifier.verify(token).await?;
                }
                count += 16;
            }
            rounds[i].push(count as f64 / start.elapsed().as_secs_f64());
        }
    }
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied().unwrap_or(0.0)
    };
    let rates: Vec<f64> = rounds.into_iter().map(median).collect();

    println!(
        "token verification, one core, ~{}s each ({ROUNDS} interleaved rounds, median shown)",
        RUN_FOR.as_secs()
    );
    for (i, (name, _, token)) in cases.iter().enumerate() {
        let rate = rates[i];
        let share = name
            .strip_suffix(" per-issuer")
            .and_then(|alg| {
                let single = cases.iter().position(|(n, _, _)| n == &alg)?;
                Some(format!(
                    ", {:.1}% of single-key {alg}",
                    rate * 100.0 / rates[single]
                ))
            })
            .unwrap_or_default();
        println!(
            "{name:<17} {rate:>9.0} verifications/s  ({:.1} µs each, {} bytes token{share})",
            1e6 / rate,
            token.len()
        );
    }
    Ok(())
}
