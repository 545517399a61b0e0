use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_domain::{BreakerPolicy, EventType, FairShare, KeyId, OrgId, Webhook, WebhookSecret, WebhookUrl};
use uuid::Uuid;

use crate::RepositoryError;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; it is retried only on request.
    Failed,
}

impl DeliveryStatus {
    /// The stable lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Reads a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
    }
}

/// One try at delivering an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When it started.
    pub attempted_at: DateTime<Utc>,
    /// How long until the answer (or the failure), milliseconds.
    pub latency_ms: u64,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed without an answer (timeout, refused address, …).
    pub error: Option<String>,
}

/// The longest failure reason an attempt keeps.
pub const MAX_ATTEMPT_ERROR_CHARS: usize = 256;

impl Attempt {
    /// The failure reason as every store keeps it alike: control characters
    /// (which PostgreSQL refuses in text, as NUL, or which forge log lines)
    /// as spaces, at most [`MAX_ATTEMPT_ERROR_CHARS`]. Stores record this.
    pub fn stored_error(&self) -> Option<String> {
        self.error.as_ref().map(|reason| {
            reason
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(MAX_ATTEMPT_ERROR_CHARS)
                .collect()
        })
    }

    /// Whether the endpoint accepted the event (any 2xx).
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|code| (200..300).contains(&code))
    }
}

/// An event on its way to one webhook, with its attempts so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id: the `webhook-id` header, the same on every attempt,
    /// for the receiver to de-duplicate.
    pub id: Uuid,
    /// Its order among all deliveries (the position a page of them starts after).
    pub seq: i64,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The key the event is about.
    pub key_id: KeyId,
    /// What happened.
    pub event_type: EventType,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// A claimed delivery: everything needed to send it once.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    /// The delivery's id (`webhook-id`).
    pub id: Uuid,
    /// Its endpoint.
    pub webhook_id: Uuid,
    /// Where to send it.
    pub url: WebhookUrl,
    /// What to sign it with: the current secret, and a rotated-out one while it
    /// is still honoured (both signatures are sent).
    pub secrets: Vec<WebhookSecret>,
    /// The exact body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What recording an attempt did to its endpoint's breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The endpoint was paused by this attempt's failure.
    pub paused: bool,
    /// The endpoint was paused or probed, and this attempt's success closed it.
    pub closed: bool,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    /// It was delivered.
    Delivered,
    /// It is tried again at this time.
    RetryAt(DateTime<Utc>),
    /// It is given up on.
    Failed,
}

impl AfterAttempt {
    /// The delivery's status from now on, and when it is next due (pending
    /// deliveries only).
    pub fn status(self) -> (DeliveryStatus, Option<DateTime<Utc>>) {
        match self {
            AfterAttempt::Delivered => (DeliveryStatus::Delivered, None),
            AfterAttempt::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            AfterAttempt::Failed => (DeliveryStatus::Failed, None),
        }
    }
}

/// Why a webhook could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// The organisation already has the most webhooks it may.
    #[error("the organisation's webhook limit is reached")]
    LimitReached,
    /// Storage failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// An organisation's webhooks and their deliveries, as management reads and
/// changes them. Every read and write is scoped by organisation.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new webhook and its secret, unless the organisation already
    /// has `max_per_org` (checked atomically with the insert).
    async fn insert_webhook(
        &self,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_org: u32,
    ) -> Result<(), WebhookStoreError>;

    /// The organisation's webhooks, oldest first.
    async fn webhooks(&self, org_id: OrgId) -> Result<Vec<Webhook>, RepositoryError>;

    /// One webhook; `None` for unknown ids and other organisations' webhooks.
    async fn webhook(&self, org_id: OrgId, id: Uuid) -> Result<Option<Webhook>, RepositoryError>;

    /// Replaces a webhook's URL, event types, enabled flag and `updated_at`
    /// (never its health, which deliveries move meanwhile). Returns whether it
    /// existed.
    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool, RepositoryError>;

    /// Gives a webhook a clean record (healthy, not paused): for a new URL or
    /// an endpoint enabled again.
    async fn reset_health(&self, org_id: OrgId, id: Uuid) -> Result<(), RepositoryError>;

    /// Replaces the signing secret; the previous one is still used to sign
    /// (alongside) until `previous_until`. Returns whether the webhook existed.
    async fn rotate_secret(
        &self,
        org_id: OrgId,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Deletes a webhook and its deliveries. Returns whether it existed.
    async fn delete_webhook(&self, org_id: OrgId, id: Uuid) -> Result<bool, RepositoryError>;

    /// A webhook's deliveries, newest first, strictly before `before` (a
    /// `seq`), with their attempts.
    async fn deliveries(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, RepositoryError>;

    /// Makes a delivery pending again, due `now`, whatever its status (a
    /// delivered one is sent again, with the same `webhook-id`). Returns it,
    /// or `None` when unknown.
    async fn retry_delivery(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, RepositoryError>;
}

/// The deliveries due to be sent, shared by every process: what the
/// dispatcher claims and reports on.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `share.room` pending deliveries due at `now` until
    /// `lease_until`: no other claim returns them before then, in this process
    /// or another. A delivery is not due while an earlier one of the same
    /// webhook and key is pending, so each key's events arrive in order, nor
    /// while its webhook is disabled (it waits, in order, until re-enabled) or
    /// paused by its breaker. Which due deliveries are taken is
    /// [`keymint_domain::pick_fairly`]'s to say, with every process's leased
    /// deliveries counted as in flight.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        share: FairShare,
    ) -> Result<Vec<DueDelivery>, RepositoryError>;

    /// Records an attempt that ended at `now` and what follows it, releasing
    /// the claim, and moves its endpoint's breaker by
    /// [`keymint_domain::EndpointHealth::after_attempt`], atomically with
    /// other attempts at the same endpoint.
    async fn record(
        &self,
        delivery_id: Uuid,
        attempt: &Attempt,
        next: AfterAttempt,
        breaker: BreakerPolicy,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RepositoryError>;

    /// How many endpoints are paused by their breaker at `now`.
    async fn paused_endpoints(&self, now: DateTime<Utc>) -> Result<usize, RepositoryError>;

    /// Queues the events no change causes, each once per key: `key.expiring`
    /// for unrevoked keys expiring after `now` and at or before
    /// `sweep.expiring_before`, and `key.credits_low` for keys whose credits
    /// (as of `now`, refills counted) are at most `sweep.credits_at_most`. A
    /// key is marked announced in the same transaction as its deliveries, so
    /// several processes sweeping at once announce it once. Returns how many
    /// keys were announced.
    async fn announce(&self, sweep: Sweep, now: DateTime<Utc>) -> Result<usize, RepositoryError>;

    /// Forgets settled (delivered or failed) deliveries made before `before`,
    /// with their attempts, so the history stays bounded. Returns how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, RepositoryError>;
}

pub use keymint_domain::Sweep;

/// Sends one delivery over HTTP.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `body` as JSON with `headers` to `url`, and says what happened.
    /// Never fails: a refused address, a timeout or a reset is an attempt
    /// with an error.
    async fn send(&self, url: &WebhookUrl, headers: &[(&'static str, String)], body: &str) -> Attempt;
}
