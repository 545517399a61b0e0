//! Webhooks: an organisation's endpoints, managed here, and the dispatcher that
//! delivers every key event to them, signed, at least once, in order per key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{
    retry_delay, ApiKey, BreakerPolicy, EndpointHealth, EventType, EventTypes, FairShare, PermissionName, Webhook,
    WebhookSecret, WebhookUrl, WebhookUrlError,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::use_cases::api_keys::paginate;
use crate::{
    Actor, AfterAttempt, Clock, Delivery, DeliveryQueue, DueDelivery, KeyGenerator, MissingPermission, Page,
    Permission, Recorded, RepositoryError, Sweep, WebhookSender, WebhookStore, WebhookStoreError,
};

/// The rules an operator configures for webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Whether `http` URLs are accepted (only `https` otherwise).
    pub allow_http: bool,
    /// Whether URLs may name private, loopback and link-local addresses
    /// (only public ones otherwise).
    pub allow_private_targets: bool,
    /// The most webhooks one organisation may have.
    pub max_per_org: u32,
    /// How long a rotated-out secret keeps signing alongside the new one.
    pub secret_overlap: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_targets: false,
            max_per_org: 20,
            secret_overlap: Duration::hours(24),
        }
    }
}

/// What a new webhook is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where deliveries go, as given (checked against the policy).
    pub url: String,
    /// What it receives; every event type when `None`.
    pub event_types: Option<EventTypes>,
    /// Whether it receives events from now on.
    pub enabled: bool,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<EventTypes>,
    /// Enabled or disabled.
    pub enabled: Option<bool>,
}

/// Why a webhook operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such webhook (or delivery) in the caller's organisation.
    #[error("no such webhook")]
    NotFound,
    /// The URL is refused.
    #[error(transparent)]
    InvalidUrl(WebhookUrlError),
    /// The organisation already has the most webhooks it may.
    #[error("the organisation already has {max} webhooks")]
    LimitReached {
        /// The configured maximum.
        max: u32,
    },
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<RepositoryError> for WebhookError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(e) => WebhookError::StorageUnavailable(e),
            other => WebhookError::Unexpected(other.into()),
        }
    }
}

/// A webhook with its signing secret, right after creation or rotation: the
/// only moment the secret is shown.
#[derive(Debug)]
pub struct WebhookWithSecret {
    /// The webhook.
    pub webhook: Webhook,
    /// Its signing secret.
    pub secret: WebhookSecret,
}

/// Every operation on an organisation's webhooks.
#[derive(Clone)]
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    generator: Arc<dyn KeyGenerator>,
    clock: Arc<dyn Clock>,
    policy: WebhookPolicy,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Wires the use cases to their ports.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        generator: Arc<dyn KeyGenerator>,
        clock: Arc<dyn Clock>,
        policy: WebhookPolicy,
    ) -> Self {
        Self {
            store,
            generator,
            clock,
            policy,
        }
    }

    fn url(&self, raw: &str) -> Result<WebhookUrl, WebhookError> {
        let url = WebhookUrl::parse(raw, self.policy.allow_http).map_err(WebhookError::InvalidUrl)?;
        if self.policy.allow_private_targets {
            Ok(url)
        } else {
            url.public_only().map_err(WebhookError::InvalidUrl)
        }
    }

    /// Creates a webhook; its secret is in the answer only.
    pub async fn create(&self, actor: &Actor, new: NewWebhook) -> Result<WebhookWithSecret, WebhookError> {
        actor.authorize(Permission::Write)?;
        let url = self.url(&new.url)?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: self.generator.event_id(),
            org_id: actor.org_id(),
            url,
            event_types: new.event_types.unwrap_or_else(EventTypes::all),
            enabled: new.enabled,
            created_at: now,
            updated_at: now,
            health: EndpointHealth::default(),
        };
        let secret = self.generator.webhook_secret();
        match self
            .store
            .insert_webhook(&webhook, &secret, self.policy.max_per_org)
            .await
        {
            Ok(()) => Ok(WebhookWithSecret { webhook, secret }),
            Err(WebhookStoreError::LimitReached) => Err(WebhookError::LimitReached {
                max: self.policy.max_per_org,
            }),
            Err(WebhookStoreError::Repository(err)) => Err(err.into()),
        }
    }

    /// The organisation's webhooks, oldest first.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Webhook>, WebhookError> {
        actor.authorize(Permission::Read)?;
        Ok(self.store.webhooks(actor.org_id()).await?)
    }

    /// One webhook.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Webhook, WebhookError> {
        actor.authorize(Permission::Read)?;
        self.store
            .webhook(actor.org_id(), id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// Changes a webhook's URL, event types or enabled flag.
    pub async fn update(&self, actor: &Actor, id: Uuid, patch: WebhookPatch) -> Result<Webhook, WebhookError> {
        actor.authorize(Permission::Write)?;
        let url = patch.url.as_deref().map(|raw| self.url(raw)).transpose()?;
        let mut webhook = self
            .store
            .webhook(actor.org_id(), id)
            .await?
            .ok_or(WebhookError::NotFound)?;
        // A new address, or an endpoint switched back on, starts with a clean
        // record: its pause was about what it was before.
        let moved = url.as_ref().is_some_and(|url| *url != webhook.url);
        let switched_on = patch.enabled == Some(true) && !webhook.enabled;
        webhook.url = url.unwrap_or(webhook.url);
        webhook.event_types = patch.event_types.unwrap_or(webhook.event_types);
        webhook.enabled = patch.enabled.unwrap_or(webhook.enabled);
        webhook.updated_at = self.clock.now();
        if !self.store.update_webhook(&webhook).await? {
            return Err(WebhookError::NotFound);
        }
        if moved || switched_on {
            self.store.reset_health(webhook.org_id, webhook.id).await?;
            webhook.health = EndpointHealth::default();
        }
        Ok(webhook)
    }

    /// Gives a webhook a new signing secret, returned once. Deliveries are
    /// signed with both the new and the old secret for the policy's overlap, so
    /// receivers can switch without losing any.
    pub async fn rotate_secret(&self, actor: &Actor, id: Uuid) -> Result<WebhookWithSecret, WebhookError> {
        actor.authorize(Permission::Write)?;
        let secret = self.generator.webhook_secret();
        let now = self.clock.now();
        if !self
            .store
            .rotate_secret(actor.org_id(), id, &secret, now + self.policy.secret_overlap)
            .await?
        {
            return Err(WebhookError::NotFound);
        }
        let webhook = self.get(actor, id).await?;
        Ok(WebhookWithSecret { webhook, secret })
    }

    /// Deletes a webhook and its deliveries.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<(), WebhookError> {
        actor.authorize(Permission::Write)?;
        if self.store.delete_webhook(actor.org_id(), id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// One page of a webhook's deliveries, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        actor: &Actor,
        id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page<Delivery, i64>, WebhookError> {
        let webhook = self.get(actor, id).await?;
        let items = self
            .store
            .deliveries(actor.org_id(), webhook.id, before, limit + 1)
            .await?;
        Ok(paginate(items, limit, |delivery| delivery.seq))
    }

    /// Sends a delivery again now, whatever became of it.
    pub async fn retry(&self, actor: &Actor, id: Uuid, delivery_id: Uuid) -> Result<Delivery, WebhookError> {
        actor.authorize(Permission::Write)?;
        self.store
            .retry_delivery(actor.org_id(), id, delivery_id, self.clock.now())
            .await?
            .ok_or(WebhookError::NotFound)
    }
}

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
