//! What a browser and a push service do with a Web Push request, written here apart from
//! the server's own code (`switchboard_core::webpush`) so the e2e tests check it rather
//! than repeat it: a subscription's key pair (P-256, the `p256` crate), the RFC 8291 /
//! RFC 8188 `aes128gcm` decryption (ECDH from `p256`, HKDF-SHA-256 and AES-128-GCM from
//! `ring`), and the RFC 8292 VAPID `Authorization` header (ES256 verified by
//! `jsonwebtoken`). The crypto helper's `scripts/webpush-check.py` checks one captured
//! request with Python's `http_ece` as well.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use ring::{aead, hkdf};
use serde_json::{json, Value};

/// A fresh P-256 key: its secret and its uncompressed public point (65 bytes).
fn p256_key() -> (p256::SecretKey, Vec<u8>) {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            let public = secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec();
            return (secret, public);
        }
    }
}

/// A server's VAPID key pair as `VAPID_PUBLIC_KEY` / `VAPID_PRIVATE_KEY` take them.
pub struct VapidPair {
    pub public: String,
    pub private: String,
}

impl VapidPair {
    pub fn generate() -> Self {
        let (secret, public) = p256_key();
        Self {
            public: URL_SAFE_NO_PAD.encode(public),
            private: URL_SAFE_NO_PAD.encode(secret.to_bytes()),
        }
    }
}

/// What a browser's `PushManager.subscribe` holds: the endpoint, the key pair and the
/// authentication secret.
pub struct Subscriber {
    pub endpoint: String,
    secret: p256::SecretKey,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Subscriber {
    pub fn new(endpoint: String) -> Self {
        let (secret, public) = p256_key();
        Self {
            endpoint,
            secret,
            public,
            auth: rand::random(),
        }
    }

    /// `PushSubscription.toJSON()`.
    pub fn subscription(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(&self.public),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }

    /// The plaintext of one `aes128gcm` body (RFC 8188 §2, one record; RFC 8291 §3.4).
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        // Header: salt (16) | rs (4) | idlen (1) | keyid (the sender's public key).
        if body.len() < 21 {
            return Err(format!("{} bytes: no aes128gcm header", body.len()));
        }
        let salt = &body[..16];
        let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let idlen = body[20] as usize;
        if idlen != 65 || body.len() < 21 + idlen + 17 {
            return Err(format!("keyid of {idlen} bytes in {} bytes", body.len()));
        }
        let sender = &body[21..21 + idlen];
        let record = &body[21 + idlen..];
        if record.len() > rs {
            return Err(format!("{} bytes past one record of {rs}", record.len()));
        }
        let sender_key =
            p256::PublicKey::from_sec1_bytes(sender).map_err(|e| format!("keyid: {e}"))?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender_key.as_affine());
        // RFC 8291 §3.3: IKM from the ECDH secret, keyed by the auth secret.
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(&self.public);
        key_info.extend_from_slice(sender);
        let ikm = expand(
            &hkdf::Salt::new(hkdf::HKDF_SHA256, &self.auth).extract(shared.raw_secret_bytes()),
            &key_info,
            32,
        );
        // RFC 8188 §2.2 / §2.3: the content key and nonce from the salt.
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
        let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16);
        let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12);
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|e| e.to_string())?,
        );
        let nonce = aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|e| e.to_string())?;
        let mut data = record.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::empty(), &mut data)
            .map_err(|_| "AES-128-GCM tag does not verify".to_string())?;
        // Padding: the last record ends with 0x02, then zeros.
        let end = plain
            .iter()
            .rposition(|b| *b != 0)
            .ok_or("no padding delimiter")?;
        if plain[end] != 2 {
            return Err(format!("padding delimiter {:#x}, not 0x02", plain[end]));
        }
        Ok(plain[..end].to_vec())
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    prk.expand(&[info], Len(len))
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

/// Checks an `Authorization: vapid t=<jwt>, k=<key>` header (RFC 8292 §3): `k` is the
/// server's public key, the JWT is ES256-signed by it, its `aud` is the push service's
/// origin, `exp` at most 24 h away, `sub` a `mailto:` or `https:` URL. Answers the claims.
pub fn check_vapid(header: &str, public_key: &str, origin: &str) -> Result<Value, String> {
    let rest = header
        .strip_prefix("vapid ")
        .ok_or_else(|| format!("not a vapid scheme: {header}"))?;
    let mut jwt = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => jwt = Some(v),
            Some(("k", v)) => key = Some(v),
            _ => {}
        }
    }
    let (jwt, key) = jwt.zip(key).ok_or("t= and k= both needed")?;
    if key != public_key {
        return Err(format!("k={key} is not the configured public key"));
    }
    let point = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &decoding, &validation)
        .map_err(|e| format!("JWT: {e}"))?
        .claims;
    let now = super::harness::expires_in(0);
    let exp = claims["exp"].as_u64().ok_or("exp not a number")?;
    if exp > now + 24 * 3600 {
        return Err(format!("exp {exp} more than 24 h past {now}"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub:?}"));
    }
    Ok(claims)
}

#[test]
fn decrypts_the_rfc_8291_example() {
    // RFC 8291 §5 (Appendix A): the receiver's keys and the encrypted message.
    let d = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
    let secret =
        p256::SecretKey::from_slice(&d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
    let public = secret
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    assert_eq!(
        public,
        d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
    );
    let subscriber = Subscriber {
        endpoint: String::new(),
        secret,
        public,
        auth: d("BTBZMqHH6r4Tts7J_aSIgg").try_into().unwrap(),
    };
    let body = d("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN");
    assert_eq!(
        subscriber.decrypt(&body).unwrap(),
        b"When I grow up, I want to be a watermelon"
    );
}
