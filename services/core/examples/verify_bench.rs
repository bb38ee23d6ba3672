//! Token verifications per second on one core, for HS256, RS256 and ES256 (about 2 s
//! each). Prints figures; asserts nothing.
//!
//! ```text
//! cargo run --release -p switchboard-core --example verify_bench
//! ```

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use switchboard_core::auth::{AuthConfig, KeySource, Verifier};

const SECRET: &[u8] = b"an-hs256-bench-secret-of-32-bytes";
const RSA_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/rsa1_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/ec1_private.pem");
const RUN_FOR: Duration = Duration::from_secs(2);

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
        keys: KeySource::JwksFile(jwks),
        ..AuthConfig::default()
    })
    .await?;
    let hs_verifier = Verifier::new(AuthConfig::with_hs256_secret(SECRET)).await?;

    let sign = |alg: Algorithm, kid: Option<&str>, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, &claims, key)
    };
    let cases = [
        (
            "HS256",
            &hs_verifier,
            sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET))?,
        ),
        (
            "RS256",
            &jwks_verifier,
            sign(
                Algorithm::RS256,
                Some("rsa-1"),
                &EncodingKey::from_rsa_pem(RSA_PRIVATE)?,
            )?,
        ),
        (
            "ES256",
            &jwks_verifier,
            sign(
                Algorithm::ES256,
                Some("ec-1"),
                &EncodingKey::from_ec_pem(EC_PRIVATE)?,
            )?,
        ),
    ];

    println!("token verification, one core, ~{}s each", RUN_FOR.as_secs());
    for (name, verifier, token) in cases {
        verifier.verify(&token).await?; // warm up, and prove the token is valid
        let start = Instant::now();
        let mut count: u64 = 0;
        while start.elapsed() < RUN_FOR {
            for _ in 0..64 {
                verifier.verify(&token).await?;
            }
            count += 64;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {:>9.0} verifications/s  ({:.1} µs each, {} bytes token)",
            count as f64 / secs,
            secs * 1e6 / count as f64,
            token.len()
        );
    }
    Ok(())
}
