//! The Web Push HTTP adapter (RFC 8030 §5): one `POST` of the encrypted notification to
//! the device's endpoint, VAPID-signed.
//!
//! - TLS with rustls; trusted: the system's roots (the platform store, or the file
//!   `SSL_CERT_FILE` names instead when set) and the built-in Mozilla roots, plus every
//!   certificate in `SSL_CERT_FILE` (read once, at construction; an unreadable file or one
//!   without a certificate is an error).
//! - At most `PUSH_CONCURRENCY_PER_SERVICE` requests in flight per push service origin (a
//!   semaphore per origin, idle ones dropped past [`MAX_TRACKED_ORIGINS`]); a send waits
//!   for its turn at most [`MAX_QUEUE_WAIT`]. Each request, connect to last byte, is bounded
//!   by `PUSH_TIMEOUT_SECS`. No redirects, and no proxy (`HTTPS_PROXY` and friends are
//!   ignored: through a proxy the address rule below could not hold).
//! - Endpoints are URLs a client chose: outside [`EndpointPolicy::AllowLoopback`] the
//!   client never connects to a loopback, private, link-local, unspecified, multicast or
//!   CGNAT address — an IP-literal host is checked before the request, a name through a
//!   resolver that drops such addresses (a name with nothing else is refused) — `Fatal`.
//! - Answers: 200/201/202 → sent; 404/410 → `Gone`; 413 → `PayloadTooLarge`; 429 →
//!   `Throttled`; 5xx → `Transient`; any other → `Fatal`; no answer in time → `Timeout`; a
//!   failed connection → `Transient`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

use super::{encrypt, EncryptError, Notification, PushConfig, PushSender, SendError, VapidKeys};
use crate::devices::{classify, Device, EndpointPolicy};

/// Push service origins with a semaphore kept; past it, idle ones are dropped.
pub const MAX_TRACKED_ORIGINS: usize = 1_024;
/// Longest a send waits for a free slot of its push service.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(60);
/// Bytes of a push service's answer read (and dropped) so the connection can be reused.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("Web Push needs VAPID keys (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY, VAPID_SUBJECT)")]
    NoKeys,
    #[error("SSL_CERT_FILE={path:?}: {reason}")]
    CertFile { path: String, reason: String },
    #[error("the HTTPS client: {0}")]
    Client(String),
}

/// Sends pushes over HTTPS.
pub struct WebPushSender {
    client: reqwest::Client,
    vapid: VapidKeys,
    policy: EndpointPolicy,
    concurrency: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl WebPushSender {
    /// The sender for `config` (which must hold VAPID keys), trusting `SSL_CERT_FILE`'s
    /// certificates when the process environment sets it.
    pub fn new(config: &PushConfig) -> Result<Self, SenderError> {
        let cert_file = std::env::var("SSL_CERT_FILE")
            .ok()
            .filter(|v| !v.trim().is_empty());
        Self::with_cert_file(config, cert_file.as_deref())
    }

    /// [`WebPushSender::new`] with the extra certificates' file given.
    pub fn with_cert_file(
        config: &PushConfig,
        cert_file: Option<&str>,
    ) -> Result<Self, SenderError> {
        let vapid = config.vapid.clone().ok_or(SenderError::NoKeys)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("switchboard")
            .dns_resolver(Arc::new(FilteringResolver {
                policy: config.endpoint_policy,
            }));
        if let Some(path) = cert_file {
            for certificate in certificates(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| SenderError::Client(e.to_string()))?;
        Ok(Self {
            client,
            vapid,
            policy: config.endpoint_policy,
            concurrency: config.concurrency_per_service.max(1),
            slots: Mutex::default(),
        })
    }

    /// The semaphore of `origin`'s requests.
    fn slots_of(&self, origin: &str) -> Arc<Semaphore> {
        let Ok(mut slots) = self.slots.lock() else {
            return Arc::new(Semaphore::new(self.concurrency));
        };
        if let Some(semaphore) = slots.get(origin) {
            return semaphore.clone();
        }
        if slots.len() >= MAX_TRACKED_ORIGINS {
            // Only this map holds an idle origin's semaphore.
            slots.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        }
        let semaphore = Arc::new(Semaphore::new(self.concurrency));
        slots.insert(origin.to_string(), semaphore.clone());
        semaphore
    }
}

#[async_trait]
impl PushSender for WebPushSender {
    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), SendError> {
        let subscription = &device.subscription;
        let url = reqwest::Url::parse(&subscription.endpoint)
            .map_err(|e| SendError::Fatal(format!("endpoint: {e}")))?;
        if url.scheme() != "https" {
            return Err(SendError::Fatal("endpoint: not https".into()));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            allowed(ip, self.policy).map_err(SendError::Fatal)?;
        }
        let (Some(p256dh), Some(auth)) = (subscription.p256dh_bytes(), subscription.auth_bytes())
        else {
            return Err(SendError::Fatal("malformed subscription keys".into()));
        };
        let origin = url.origin().ascii_serialization();
        let authorization = self
            .vapid
            .authorization(&origin)
            .map_err(|e| SendError::Fatal(e.to_string()))?;

        let semaphore = self.slots_of(&origin);
        let _permit = tokio::time::timeout(MAX_QUEUE_WAIT, semaphore.acquire_owned())
            .await
            .map_err(|_| SendError::Timeout)?
            .map_err(|_| SendError::Transient("sender closed".into()))?;
        // Encrypted once it is this send's turn: waiting sends hold no body.
        let body =
            encrypt(notification.payload.as_bytes(), &p256dh, &auth).map_err(|e| match e {
                EncryptError::TooLarge(_) => SendError::PayloadTooLarge,
                other => SendError::Fatal(other.to_string()),
            })?;
        let mut request = self
            .client
            .post(url)
            .header("TTL", notification.ttl_secs.to_string())
            .header("Urgency", notification.urgency.as_str())
            .header(http::header::CONTENT_ENCODING, "aes128gcm")
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::AUTHORIZATION, authorization)
            .body(body);
        if let Some(topic) = &notification.topic {
            request = request.header("Topic", topic.as_str());
        }
        let mut response = request.send().await.map_err(request_error)?;
        let status = response.status().as_u16();
        // Read a little of the answer so the connection can be reused; never all of it.
        let mut read = 0;
        while read < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        match status {
            200..=202 => Ok(()),
            404 | 410 => Err(SendError::Gone),
            413 => Err(SendError::PayloadTooLarge),
            429 => Err(SendError::Throttled),
            500..=599 => Err(SendError::Transient(format!(
                "push service answered {status}"
            ))),
            _ => Err(SendError::Fatal(format!("push service answered {status}"))),
        }
    }
}

/// A request that got no answer: timed out, refused by the address check, or a network
/// failure.
fn request_error(error: reqwest::Error) -> SendError {
    if error.is_timeout() {
        return SendError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RefusedAddress>() {
            return SendError::Fatal(refused.to_string());
        }
        source = cause.source();
    }
    if error.is_builder() {
        return SendError::Fatal(error.to_string());
    }
    SendError::Transient(error.to_string())
}

/// `Err` naming the range when `policy` forbids connecting to `ip`.
fn allowed(ip: IpAddr, policy: EndpointPolicy) -> Result<(), String> {
    match classify(ip) {
        Ok(false) => Ok(()),
        Ok(true) if policy == EndpointPolicy::AllowLoopback => Ok(()),
        Ok(true) => Err(format!("must not be a loopback address ({ip})")),
        Err(range) => Err(range),
    }
}

/// A name that resolves to no address the policy allows.
#[derive(Debug, thiserror::Error)]
#[error("endpoint host {name} resolves to no public address")]
struct RefusedAddress {
    name: String,
}

/// The system resolver, keeping only addresses the endpoint policy allows.
struct FilteringResolver {
    policy: EndpointPolicy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = resolved
                .filter(|addr| allowed(addr.ip(), policy).is_ok())
                .collect();
            if kept.is_empty() {
                return Err(Box::new(RefusedAddress { name: host }) as Box<_>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Every certificate in the PEM file at `path`.
fn certificates(path: &str) -> Result<Vec<reqwest::Certificate>, SenderError> {
    let failed = |reason: String| SenderError::CertFile {
        path: path.to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("no certificate in the file".into()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests;
