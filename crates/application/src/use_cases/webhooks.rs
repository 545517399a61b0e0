//! Webhooks: an organisation's endpoints, managed here, and the dispatcher that
//! delivers every key event to them, signed, at least once, in order per key.
//! The dispatcher, and the body every delivery sends, are in `delivery`.

use std::sync::Arc;

use chrono::Duration;
use keymint_domain::{EndpointHealth, EventTypes, Webhook, WebhookSecret, WebhookUrl, WebhookUrlError};
use uuid::Uuid;

use crate::use_cases::api_keys::paginate;
use crate::{
    Actor, Clock, Delivery, KeyGenerator, MissingPermission, Page, Permission, RepositoryError, WebhookStore,
    WebhookStoreError,
};

mod delivery;

pub use delivery::{event_payload, DeliverWebhooks, DeliveryPolicy, DeliveryStats};

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
