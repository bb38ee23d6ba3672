//! `switchboard keys generate`: an ES256 (P-256) signing key and the JWKS that verifies it,
//! for a deployment that verifies tokens from a JWKS (`JWT_JWKS_FILE`, an issuers file's
//! `jwksFile`; docs/design.md: Identity). `switchboard token --key` signs with the key.
//!
//! - The private key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey`
//!   writes), file mode 0600.
//! - The JWKS: `{"keys":[{"kty":"EC","crv":"P-256","x","y","kid","alg":"ES256","use":"sig"}]}`,
//!   `kid` = the key's RFC 7638 JWK thumbprint (SHA-256 of `{"crv","kty","x","y"}` in that
//!   order, no whitespace, base64url), so tokens name their key and a JWKS may hold several.
//!
//! Keys come from `ring` (the crypto library jsonwebtoken already uses); signing goes
//! through jsonwebtoken, the library the verifier uses.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::{Args, Subcommand};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::{CliError, Refusal};

/// File name of the private key in `--out`.
pub const PRIVATE_KEY_FILE: &str = "private-key.pem";
/// File name of the JWKS in `--out`.
pub const JWKS_FILE: &str = "jwks.json";

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write an ES256 private key (private-key.pem) and its JWKS (jwks.json) into a folder.
    Generate {
        /// Folder to write into (created when missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists (use --force to replace it)")]
    Exists(PathBuf),
    #[error("not a PKCS#8 PEM private key ({0})")]
    NotPem(&'static str),
    #[error("not an EC P-256 PKCS#8 key: {0}")]
    Rejected(String),
    #[error("key generation failed")]
    Generation,
    #[error("signing failed: {0}")]
    Signing(String),
}

impl From<KeyError> for CliError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Exists(_) => Refusal::new(
                "--out",
                error.to_string(),
                "pass --force to replace the key, or choose another folder",
            )
            .into(),
            KeyError::NotPem(_) | KeyError::Rejected(_) => {
                Refusal::new("--key", error.to_string(), "see switchboard token --help").into()
            }
            KeyError::Generation | KeyError::Signing(_) | KeyError::Io { .. } => {
                CliError::Failed(error.to_string())
            }
        }
    }
}

/// An ES256 private key with its public point.
pub struct SigningKey {
    pkcs8: Vec<u8>,
    /// The uncompressed point `04 || x || y` (65 bytes).
    public: Vec<u8>,
}

impl SigningKey {
    /// A new random P-256 key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generation)?;
        Self::from_pkcs8(document.as_ref())
    }

    /// A PKCS#8 DER key (P-256, with its public key, as `openssl genpkey` and `ring` write).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self {
            pkcs8: der.to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// A `-----BEGIN PRIVATE KEY-----` PEM text.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Err(KeyError::NotPem(
                "SEC1 `EC PRIVATE KEY`: convert it with `openssl pkcs8 -topk8 -nocrypt`",
            ));
        }
        let start = text
            .find(PEM_BEGIN)
            .ok_or(KeyError::NotPem("no `BEGIN PRIVATE KEY` line"))?
            + PEM_BEGIN.len();
        let end = text[start..]
            .find(PEM_END)
            .ok_or(KeyError::NotPem("no `END PRIVATE KEY` line"))?
            + start;
        let body: String = text[start..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| KeyError::NotPem("the body is not base64"))?;
        Self::from_pkcs8(&der)
    }

    /// Reads a PEM key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text)
    }

    /// The key as PKCS#8 PEM, 64 characters a line.
    pub fn to_pem(&self) -> String {
        let encoded = STANDARD.encode(&self.pkcs8);
        let mut pem = format!("{PEM_BEGIN}\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        pem
    }

    fn coordinates(&self) -> (String, String) {
        // `public` is 04 || x (32 bytes) || y (32 bytes): ring checked the key.
        let point = self.public.get(1..).unwrap_or_default();
        let (x, y) = point.split_at(point.len() / 2);
        (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
    }

    /// The RFC 7638 JWK thumbprint: the default `kid`.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        thumbprint_of(&x, &y)
    }

    /// The public JWK, `kid` = the thumbprint.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = self.coordinates();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": thumbprint_of(&x, &y),
            "alg": "ES256",
            "use": "sig",
        })
    }

    /// A compact ES256 JWS of `claims`, its header naming `kid`.
    pub fn sign(&self, kid: &str, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order.
fn thumbprint_of(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// What `generate` wrote.
pub struct Generated {
    pub private_key: PathBuf,
    pub jwks: PathBuf,
    pub kid: String,
}

/// Writes a new key pair into `dir`: the private key (0600) and the JWKS. Refuses to
/// replace either file unless `force`; checks both before writing either.
pub fn generate_into(dir: &Path, force: bool) -> Result<Generated, KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let private_key = dir.join(PRIVATE_KEY_FILE);
    let jwks = dir.join(JWKS_FILE);
    for path in [&private_key, &jwks] {
        if path.exists() {
            if !force {
                return Err(KeyError::Exists(path.clone()));
            }
            // Removed, not truncated: a new file gets the mode below whatever the old had.
            fs::remove_file(path).map_err(io(path))?;
        }
    }
    let key = SigningKey::generate()?;
    write_new(&private_key, key.to_pem().as_bytes(), 0o600).map_err(io(&private_key))?;
    let document = json!({ "keys": [key.public_jwk()] });
    let text = format!("{document:#}\n");
    write_new(&jwks, text.as_bytes(), 0o644).map_err(io(&jwks))?;
    Ok(Generated {
        private_key,
        jwks,
        kid: key.thumbprint(),
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub fn keys_command(args: KeysArgs) -> Result<(), CliError> {
    match args.command {
        KeysCommand::Generate { out, force } => {
            let generated = generate_into(&out, force)?;
            let key = generated.private_key.display();
            let jwks = generated.jwks.display();
            println!("wrote {key} (ES256 private key, mode 0600: keep it secret)");
            println!("wrote {jwks} (its JWKS, kid {})", generated.kid);
            println!(
                "next:
  verify with it:  JWT_JWKS_FILE={jwks} switchboard serve
                   (or \"jwksFile\" of an issuer in JWT_ISSUERS_FILE; on AWS see infra/README.md)
  sign with it:    switchboard token --key {key} --tenant <tenant> --user <user>"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/src/auth/testdata");

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-keys-{name}-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn thumbprint_matches_rfc_7638_for_the_rfc_7517_example_key() {
        // RFC 7517 appendix A.1's EC key; the digest computed independently (Python's
        // json.dumps(sort_keys=True, separators=(",", ":")) + hashlib.sha256).
        assert_eq!(
            thumbprint_of(
                "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
            ),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }

    #[test]
    fn reads_an_openssl_key_and_finds_its_published_public_point() {
        let key = SigningKey::read(&Path::new(TESTDATA).join("ec1_private.pem")).unwrap();
        let jwks: Value = serde_json::from_str(
            &fs::read_to_string(Path::new(TESTDATA).join("jwks.json")).unwrap(),
        )
        .unwrap();
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == "ec-1")
            .unwrap();
        let jwk = key.public_jwk();
        assert_eq!(jwk["x"], published["x"]);
        assert_eq!(jwk["y"], published["y"]);
        assert_eq!(jwk["kid"], key.thumbprint());
    }

    #[test]
    fn pem_round_trips_and_refuses_other_formats() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem();
        assert!(pem.lines().all(|l| l.len() <= 64));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert!(matches!(
            SigningKey::from_pem(
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"
            ),
            Err(KeyError::NotPem(_))
        ));
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(KeyError::NotPem(_))
        ));
        // An RSA key is PKCS#8 PEM but not P-256.
        let rsa = fs::read_to_string(Path::new(TESTDATA).join("rsa1_private.pem")).unwrap();
        assert!(matches!(
            SigningKey::from_pem(&rsa),
            Err(KeyError::Rejected(_))
        ));
    }

    #[test]
    fn generate_writes_a_private_key_and_a_jwks_and_refuses_to_overwrite() {
        let dir = temp_dir("generate");
        let first = generate_into(&dir, false).unwrap();
        let key = SigningKey::read(&first.private_key).unwrap();
        assert_eq!(key.thumbprint(), first.kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&first.private_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let jwks: Value = serde_json::from_str(&fs::read_to_string(&first.jwks).unwrap()).unwrap();
        assert_eq!(jwks, json!({ "keys": [key.public_jwk()] }));
        assert_eq!(jwks["keys"][0]["kid"], first.kid.as_str());
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert_eq!(jwks["keys"][0]["crv"], "P-256");

        let pem_before = fs::read_to_string(&first.private_key).unwrap();
        let refused = generate_into(&dir, false);
        assert!(matches!(refused, Err(KeyError::Exists(_))));
        assert_eq!(fs::read_to_string(&first.private_key).unwrap(), pem_before);

        let second = generate_into(&dir, true).unwrap();
        assert_ne!(second.kid, first.kid);
        assert_ne!(fs::read_to_string(&second.private_key).unwrap(), pem_before);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lone_jwks_file_also_blocks_generation() {
        let dir = temp_dir("lone");
        fs::write(dir.join(JWKS_FILE), "{}").unwrap();
        assert!(matches!(
            generate_into(&dir, false),
            Err(KeyError::Exists(_))
        ));
        assert!(!dir.join(PRIVATE_KEY_FILE).exists(), "nothing written");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn signed_tokens_verify_against_their_own_jwks_only() {
        use switchboard_core::auth::{AuthConfig, KeySource, Verifier};
        let dir = temp_dir("verify");
        let generated = generate_into(&dir, false).unwrap();
        let key = SigningKey::read(&generated.private_key).unwrap();
        let other = SigningKey::generate().unwrap();
        let verifier = Verifier::new(AuthConfig {
            keys: KeySource::JwksFile(generated.jwks.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims = json!({"sub":"alice","tenant":"acme","roles":["publisher"],"exp":exp});
        let verified = verifier
            .verify(&key.sign(&key.thumbprint(), &claims).unwrap())
            .await
            .unwrap();
        assert_eq!(verified.user.as_str(), "alice");
        assert_eq!(verified.tenant.as_str(), "acme");
        // Another key, under this key's kid or its own: refused.
        assert!(verifier
            .verify(&other.sign(&key.thumbprint(), &claims).unwrap())
            .await
            .is_err());
        assert!(verifier
            .verify(&other.sign(&other.thumbprint(), &claims).unwrap())
            .await
            .is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
