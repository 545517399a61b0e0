//! Delivering key events to webhooks: the body of a delivery, how
//! deliveries are retried, and the dispatcher that claims them, sends them
//! signed, at least once, and records what became of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{retry_delay, ApiKey, BreakerPolicy, EventType, FairShare, PermissionName};
use serde_json::{json, Value};

use crate::{AfterAttempt, Clock, DeliveryQueue, DueDelivery, Recorded, RepositoryError, Sweep, WebhookSender};

/// The body of a delivery: `{type, timestamp, data}` with the key's public
/// fields, never key material (no private key, no hash). Built once, when the
/// event is queued, so every attempt sends the same bytes.
pub fn event_payload(event_type: EventType, key: &ApiKey, at: DateTime<Utc>) -> String {
    let data = json!({
        "id": key.id().to_string(),
        "org_id": key.org_id().to_string(),
        "name": key.name().as_str(),
        "description": key.description().map(|d| d.as_str()),
        "environment": key.environment().as_str(),
        "public_key": key.public_key().as_str(),
        "private_key_display": key.private_key_display().as_str(),
        "permissions": key.permissions().iter().map(PermissionName::as_str).collect::<Vec<_>>(),
        "owner_id": key.owner_id().map(|o| o.as_str()),
        "meta": key.meta().map(|meta| meta.as_raw()),
        "credits": key.credits().map(|credits| json!({"remaining": credits.as_of(at).remaining()})),
        "created_at": rfc3339(key.created_at()),
        "expires_at": key.expires_at().map(rfc3339),
        "is_revoked": key.is_revoked(),
        "revoked_at": key.revoked_at().map(rfc3339),
        "leaked_at": key.leaked_at().map(rfc3339),
    });
    json!({"type": event_type.as_str(), "timestamp": rfc3339(at), "data": data}).to_string()
}

fn rfc3339(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// The first retry's delay (before jitter).
    pub backoff_base: Duration,
    /// The longest delay between attempts.
    pub backoff_cap: Duration,
    /// How long a claim holds a delivery: longer than one attempt can take, so
    /// a delivery is only re-claimed when the process holding it died.
    pub lease: Duration,
    /// How long before its `expires_at` a key's `key.expiring` goes out.
    pub expiring_notice: Duration,
    /// At how many credits left a key's `key.credits_low` goes out.
    pub credits_low_at: u64,
    /// How long settled deliveries (and their attempts) are kept.
    pub retention: Duration,
    /// The most deliveries in flight to one endpoint, across every process.
    pub max_in_flight_per_endpoint: usize,
    /// The most deliveries in flight for one organisation, across every process.
    pub max_in_flight_per_org: usize,
    /// When an endpoint that keeps failing is paused.
    pub breaker: BreakerPolicy,
}

/// What became of this process's delivery attempts, for metrics.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    paused: AtomicU64,
    closed: AtomicU64,
    paused_now: AtomicU64,
}

impl DeliveryStats {
    /// Attempts the endpoint accepted.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Attempts that failed and will be retried.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Attempts that failed for the last time (the delivery is `failed`).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Times an endpoint's breaker opened (paused it) in this process.
    pub fn breakers_opened(&self) -> u64 {
        self.paused.load(Ordering::Relaxed)
    }

    /// Times a success closed a paused or probed endpoint's breaker here.
    pub fn breakers_closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Endpoints paused across the deployment, as of the last sweep.
    pub fn paused_endpoints(&self) -> u64 {
        self.paused_now.load(Ordering::Relaxed)
    }

    fn count(&self, next: AfterAttempt) {
        let counter = match next {
            AfterAttempt::Delivered => &self.delivered,
            AfterAttempt::RetryAt(_) => &self.retried,
            AfterAttempt::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends claimed deliveries and records what became of them.
#[derive(Clone)]
pub struct DeliverWebhooks {
    queue: Arc<dyn DeliveryQueue>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
    stats: Arc<DeliveryStats>,
}

impl std::fmt::Debug for DeliverWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverWebhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DeliverWebhooks {
    /// Wires the dispatcher to its ports.
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn Clock>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            queue,
            sender,
            clock,
            policy,
            stats: Arc::default(),
        }
    }

    /// What became of this dispatcher's attempts.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Claims up to `room` due deliveries for this process, each leased for
    /// one attempt, sharing the senders fairly between organisations and
    /// endpoints. Send each with [`DeliverWebhooks::deliver`].
    pub async fn claim(&self, room: usize) -> Result<Vec<DueDelivery>, RepositoryError> {
        let now = self.clock.now();
        let share = FairShare {
            room,
            per_endpoint: self.policy.max_in_flight_per_endpoint,
            per_org: self.policy.max_in_flight_per_org,
        };
        self.queue.claim(now, now + self.policy.lease, share).await
    }

    /// The periodic work: queues the events no change causes (`key.expiring`,
    /// `key.credits_low`, once per key) and forgets settled deliveries older
    /// than the retention. Returns how many keys were announced and how many
    /// deliveries forgotten.
    pub async fn sweep(&self) -> Result<(usize, usize), RepositoryError> {
        let now = self.clock.now();
        let sweep = Sweep {
            expiring_before: now + self.policy.expiring_notice,
            credits_at_most: self.policy.credits_low_at,
        };
        let announced = self.queue.announce(sweep, now).await?;
        let pruned = self.queue.prune(now - self.policy.retention).await?;
        let paused = self.queue.paused_endpoints(now).await?;
        self.stats
            .paused_now
            .store(u64::try_from(paused).unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok((announced, pruned))
    }

    /// Makes one attempt at a claimed delivery and records what became of it:
    /// delivered, retried later with backoff, or failed for good.
    pub async fn deliver(&self, delivery: DueDelivery) {
        let id = delivery.id.to_string();
        let timestamp = self.clock.now().timestamp();
        let body = delivery.payload.as_bytes();
        let signatures: Vec<String> = delivery
            .secrets
            .iter()
            .map(|secret| secret.sign(&id, timestamp, body))
            .collect();
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signatures.join(" ")),
        ];
        let attempt = self.sender.send(&delivery.url, &headers, &delivery.payload).await;
        let failures = delivery.attempts + 1;
        let next = if attempt.succeeded() {
            AfterAttempt::Delivered
        } else if failures >= self.policy.max_attempts {
            AfterAttempt::Failed
        } else {
            let delay = retry_delay(
                failures,
                self.policy.backoff_base,
                self.policy.backoff_cap,
                rand::random::<f64>(),
            );
            AfterAttempt::RetryAt(self.clock.now() + delay)
        };
        self.stats.count(next);
        let recorded = self
            .queue
            .record(delivery.id, &attempt, next, self.policy.breaker, self.clock.now())
            .await;
        match recorded {
            Ok(Recorded { paused, closed }) => {
                if paused {
                    self.stats.paused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(webhook = %delivery.webhook_id, "a webhook endpoint keeps failing: paused");
                }
                if closed {
                    self.stats.closed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(webhook = %delivery.webhook_id, "a paused webhook endpoint answered again");
                }
            }
            // The claim lapses and the delivery is sent again: at least once.
            Err(err) => {
                tracing::warn!(delivery = %delivery.id, error = %err, "a delivery's attempt could not be recorded")
            }
        }
    }
}
