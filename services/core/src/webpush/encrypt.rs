//! The `aes128gcm` content encoding of a Web Push message (RFC 8291 on RFC 8188).
//!
//! One record: a fresh 16-byte salt and a fresh P-256 key pair per message; the shared
//! secret with the device's `p256dh` key, mixed with its `auth` secret, gives the content
//! key and nonce (HKDF-SHA-256); the body is the header (`salt`, record size 4096, key id =
//! our ephemeral public key) followed by the plaintext, the last-record delimiter `0x02`,
//! sealed with AES-128-GCM. ECDH, HKDF, AES-GCM and randomness are `ring`'s; `p256` gives
//! the fixed-key agreement of the RFC 8291 example (tests) and VAPID's keys.

#[cfg(test)]
use p256::elliptic_curve::sec1::ToEncodedPoint;
#[cfg(test)]
use p256::PublicKey;
use p256::SecretKey;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf};

/// Largest plaintext one notification may carry: a push service takes 4,096 bytes of
/// body, less the 86-byte header, the 16-byte tag and the 1-byte delimiter.
pub const MAX_PLAINTEXT_BYTES: usize = 3993;

/// The record size written in the header (RFC 8188 `rs`).
const RECORD_SIZE: u32 = 4096;
const SALT_BYTES: usize = 16;
const AUTH_BYTES: usize = 16;
/// An uncompressed P-256 point: `0x04 || x || y`.
const POINT_BYTES: usize = 65;
/// RFC 8188: the delimiter after the plaintext of the last (here: only) record.
const LAST_RECORD_DELIMITER: u8 = 0x02;

/// Why a message could not be encrypted for a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    #[error("p256dh is not an uncompressed P-256 public key (65 bytes)")]
    InvalidP256dh,
    #[error("auth is not 16 bytes")]
    InvalidAuth,
    #[error("plaintext of {0} bytes is over {MAX_PLAINTEXT_BYTES}")]
    TooLarge(usize),
    #[error("no randomness available")]
    Random,
    #[error("encryption failed")]
    Crypto,
}

/// Encrypts `plaintext` for the device whose subscription keys are `p256dh` (65 bytes)
/// and `auth` (16 bytes): the whole request body, `Content-Encoding: aes128gcm`. The
/// ephemeral key pair and the agreement are `ring`'s (constant-time, fast even unoptimized).
pub fn encrypt(plaintext: &[u8], p256dh: &[u8], auth: &[u8]) -> Result<Vec<u8>, EncryptError> {
    check_inputs(plaintext, p256dh, auth)?;
    let random = SystemRandom::new();
    let mut salt = [0u8; SALT_BYTES];
    random.fill(&mut salt).map_err(|_| EncryptError::Random)?;
    let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &random)
        .map_err(|_| EncryptError::Random)?;
    let server_public = ephemeral
        .compute_public_key()
        .map_err(|_| EncryptError::Crypto)?;
    let device_key = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, p256dh);
    // ring checks the device key is a point on the curve.
    let shared =
        agreement::agree_ephemeral(ephemeral, &device_key, |s: &[u8]| <[u8; 32]>::try_from(s))
            .map_err(|_| EncryptError::InvalidP256dh)?
            .map_err(|_| EncryptError::Crypto)?;
    seal(
        plaintext,
        p256dh,
        auth,
        &salt,
        server_public.as_ref(),
        &shared,
    )
}

/// [`encrypt`] with the salt and the application server's private key given: the
/// RFC 8291 example's fixed inputs (ring takes no given private key for an agreement).
#[cfg(test)]
pub(crate) fn encrypt_with(
    plaintext: &[u8],
    p256dh: &[u8],
    auth: &[u8],
    salt: &[u8; SALT_BYTES],
    ephemeral: &SecretKey,
) -> Result<Vec<u8>, EncryptError> {
    check_inputs(plaintext, p256dh, auth)?;
    let device_key = PublicKey::from_sec1_bytes(p256dh).map_err(|_| EncryptError::InvalidP256dh)?;
    let server_public = ephemeral.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), device_key.as_affine());
    let shared: [u8; 32] = (*shared.raw_secret_bytes()).into();
    seal(
        plaintext,
        p256dh,
        auth,
        salt,
        server_public.as_bytes(),
        &shared,
    )
}

fn check_inputs(plaintext: &[u8], p256dh: &[u8], auth: &[u8]) -> Result<(), EncryptError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(EncryptError::TooLarge(plaintext.len()));
    }
    if p256dh.len() != POINT_BYTES || p256dh[0] != 0x04 {
        return Err(EncryptError::InvalidP256dh);
    }
    if auth.len() != AUTH_BYTES {
        return Err(EncryptError::InvalidAuth);
    }
    Ok(())
}

/// The body from the ECDH secret `shared` between our key `server_public` and the
/// device's `p256dh`: key derivation (RFC 8291 §3.4, RFC 8188 §2.2–2.3), header, record.
fn seal(
    plaintext: &[u8],
    p256dh: &[u8],
    auth: &[u8],
    salt: &[u8; SALT_BYTES],
    server_public: &[u8],
    shared: &[u8; 32],
) -> Result<Vec<u8>, EncryptError> {
    // RFC 8291 §3.4: IKM from the shared secret and the auth secret, bound to both keys.
    let mut ikm = [0u8; 32];
    hkdf_sha256(
        auth,
        shared,
        &[b"WebPush: info\0", p256dh, server_public],
        &mut ikm,
    )?;
    // RFC 8188 §2.2, §2.3: the content encryption key and the nonce.
    let mut key = [0u8; 16];
    hkdf_sha256(salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut key)?;
    let mut nonce = [0u8; aead::NONCE_LEN];
    hkdf_sha256(salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce)?;

    let header_len = SALT_BYTES + 4 + 1 + server_public.len();
    let mut body = Vec::with_capacity(header_len + plaintext.len() + 1 + aead::MAX_TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(POINT_BYTES as u8);
    body.extend_from_slice(server_public);

    let mut record = Vec::with_capacity(plaintext.len() + 1 + aead::MAX_TAG_LEN);
    record.extend_from_slice(plaintext);
    record.push(LAST_RECORD_DELIMITER);
    let key = aead::UnboundKey::new(&aead::AES_128_GCM, &key).map_err(|_| EncryptError::Crypto)?;
    // The only record has sequence number 0: its nonce is the derived one unchanged.
    aead::LessSafeKey::new(key)
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| EncryptError::Crypto)?;
    body.extend_from_slice(&record);
    Ok(body)
}

/// A fresh P-256 private key from the system's randomness (`None` if it fails, or in the
/// negligible case that eight draws in a row are not a valid scalar).
pub(crate) fn random_secret_key() -> Option<SecretKey> {
    let random = SystemRandom::new();
    (0..8).find_map(|_| {
        let mut bytes = [0u8; 32];
        random.fill(&mut bytes).ok()?;
        SecretKey::from_slice(&bytes).ok()
    })
}

/// HKDF-SHA-256 (RFC 5869): extract with `salt` from `ikm`, expand with `info` into `out`.
fn hkdf_sha256(
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<(), EncryptError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| EncryptError::Crypto)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    // RFC 8291, Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    /// The receiving side, to check round trips: RFC 8291 §3.4 from the device's keys.
    fn decrypt(body: &[u8], ua_private: &SecretKey, auth: &[u8]) -> Vec<u8> {
        let salt = &body[..16];
        assert_eq!(u32::from_be_bytes(body[16..20].try_into().unwrap()), 4096);
        let id_len = body[20] as usize;
        let server_public = &body[21..21 + id_len];
        let ua_public = ua_private.public_key().to_encoded_point(false);
        let shared = p256::ecdh::diffie_hellman(
            ua_private.to_nonzero_scalar(),
            PublicKey::from_sec1_bytes(server_public)
                .unwrap()
                .as_affine(),
        );
        let mut ikm = [0u8; 32];
        let info: [&[u8]; 3] = [b"WebPush: info\0", ua_public.as_bytes(), server_public];
        hkdf_sha256(auth, shared.raw_secret_bytes(), &info, &mut ikm).unwrap();
        let mut key = [0u8; 16];
        hkdf_sha256(salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut key).unwrap();
        let mut nonce = [0u8; 12];
        hkdf_sha256(salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce).unwrap();
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
        let mut record = body[21 + id_len..].to_vec();
        let plain = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                &mut record,
            )
            .unwrap();
        assert_eq!(plain.last(), Some(&LAST_RECORD_DELIMITER));
        plain[..plain.len() - 1].to_vec()
    }

    #[test]
    fn reproduces_the_rfc_8291_example() {
        let ephemeral = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        let salt: [u8; 16] = b64(SALT).try_into().unwrap();
        let body = encrypt_with(
            PLAINTEXT.as_bytes(),
            &b64(UA_PUBLIC),
            &b64(AUTH),
            &salt,
            &ephemeral,
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), BODY);
    }

    #[test]
    fn fresh_salt_and_key_each_time_and_the_device_can_read_it() {
        let device = SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let p256dh = b64(UA_PUBLIC);
        let auth = b64(AUTH);
        let first = encrypt(b"hello", &p256dh, &auth).unwrap();
        let second = encrypt(b"hello", &p256dh, &auth).unwrap();
        assert_ne!(first[..86], second[..86], "salt and key id differ");
        assert_eq!(decrypt(&first, &device, &auth), b"hello");
        assert_eq!(first.len(), 86 + 5 + 1 + 16);
    }

    #[test]
    fn the_largest_plaintext_fits_a_4096_byte_body_and_one_more_byte_is_refused() {
        let p256dh = b64(UA_PUBLIC);
        let auth = b64(AUTH);
        let largest = vec![b'x'; MAX_PLAINTEXT_BYTES];
        assert_eq!(encrypt(&largest, &p256dh, &auth).unwrap().len(), 4096);
        let over = vec![b'x'; MAX_PLAINTEXT_BYTES + 1];
        assert_eq!(
            encrypt(&over, &p256dh, &auth),
            Err(EncryptError::TooLarge(MAX_PLAINTEXT_BYTES + 1))
        );
    }

    #[test]
    fn refuses_bad_device_keys() {
        let p256dh = b64(UA_PUBLIC);
        let auth = b64(AUTH);
        assert_eq!(
            encrypt(b"x", &p256dh[..64], &auth),
            Err(EncryptError::InvalidP256dh)
        );
        let mut off_curve = p256dh.clone();
        off_curve[64] ^= 1;
        assert_eq!(
            encrypt(b"x", &off_curve, &auth),
            Err(EncryptError::InvalidP256dh)
        );
        assert_eq!(
            encrypt(b"x", &p256dh, &auth[..15]),
            Err(EncryptError::InvalidAuth)
        );
    }
}
