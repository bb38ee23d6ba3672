//! A scripted [`PushSender`]: answers per device endpoint (default: accepted), and a record
//! of every accepted send.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::devices::Device;
use crate::webpush::{Notification, PushSender, SendError};

/// A push sender whose answers are scripted per endpoint (default: accepted), which
/// records every accepted send and counts attempts.
#[derive(Default)]
pub struct ScriptedSender {
    scripts: Mutex<HashMap<String, VecDeque<Result<(), SendError>>>>,
    always: Mutex<HashMap<String, SendError>>,
    sent: Mutex<Vec<(Device, Notification)>>,
    attempts: AtomicUsize,
    latency: Duration,
}

impl ScriptedSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every send takes `latency`.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// The next sends to `endpoint` answer these results, in order, then succeed.
    pub fn script(&self, endpoint: &str, results: Vec<Result<(), SendError>>) {
        self.scripts
            .lock()
            .unwrap()
            .insert(endpoint.to_string(), results.into());
    }

    /// Every send to `endpoint` answers `error`.
    pub fn always_fail(&self, endpoint: &str, error: SendError) {
        self.always
            .lock()
            .unwrap()
            .insert(endpoint.to_string(), error);
    }

    /// `(device, notification)` of every accepted send, in order.
    pub fn sent(&self) -> Vec<(Device, Notification)> {
        self.sent.lock().unwrap().clone()
    }

    /// The users of every accepted send, sorted.
    pub fn sent_users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .sent()
            .iter()
            .map(|(d, _)| d.user.to_string())
            .collect();
        users.sort();
        users
    }

    /// Sends attempted, accepted or not.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PushSender for ScriptedSender {
    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), SendError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let endpoint = device.subscription.endpoint.as_str();
        let scripted = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(endpoint)
            .and_then(VecDeque::pop_front);
        let always = self.always.lock().unwrap().get(endpoint).cloned();
        let result = match (scripted, always) {
            (Some(result), _) => result,
            (None, Some(error)) => Err(error),
            (None, None) => Ok(()),
        };
        if result.is_ok() {
            self.sent
                .lock()
                .unwrap()
                .push((device.clone(), notification.clone()));
        }
        result
    }
}
