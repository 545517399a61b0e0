//! Webhooks in memory (as `sql/webhooks.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{Delivery, DeliveryStatus, RepositoryError, WebhookStore, WebhookStoreError};
use keymint_domain::{EndpointHealth, OrgId, Webhook, WebhookSecret};
use uuid::Uuid;

use super::{InMemoryApiKeyRepository, StoredWebhook};

#[async_trait]
impl WebhookStore for InMemoryApiKeyRepository {
    async fn insert_webhook(
        &self,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_org: u32,
    ) -> Result<(), WebhookStoreError> {
        let mut state = self.write();
        let count = state
            .webhooks
            .iter()
            .filter(|w| w.webhook.org_id == webhook.org_id)
            .count();
        if count >= usize::try_from(max_per_org).unwrap_or(usize::MAX) {
            return Err(WebhookStoreError::LimitReached);
        }
        state.webhooks.push(StoredWebhook {
            webhook: webhook.clone(),
            secret: secret.clone(),
            previous: None,
        });
        Ok(())
    }

    async fn webhooks(&self, org_id: OrgId) -> Result<Vec<Webhook>, RepositoryError> {
        let state = self.read();
        let mut found: Vec<Webhook> = state
            .webhooks
            .iter()
            .filter(|w| w.webhook.org_id == org_id)
            .map(|w| w.webhook.clone())
            .collect();
        found.sort_by_key(|w| (w.created_at, w.id));
        Ok(found)
    }

    async fn webhook(&self, org_id: OrgId, id: Uuid) -> Result<Option<Webhook>, RepositoryError> {
        let state = self.read();
        Ok(state
            .webhooks
            .iter()
            .find(|w| w.webhook.id == id && w.webhook.org_id == org_id)
            .map(|w| w.webhook.clone()))
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        let Some(stored) = state
            .webhooks
            .iter_mut()
            .find(|w| w.webhook.id == webhook.id && w.webhook.org_id == webhook.org_id)
        else {
            return Ok(false);
        };
        stored.webhook.url = webhook.url.clone();
        stored.webhook.event_types = webhook.event_types.clone();
        stored.webhook.enabled = webhook.enabled;
        stored.webhook.updated_at = webhook.updated_at;
        Ok(true)
    }

    async fn reset_health(&self, org_id: OrgId, id: Uuid) -> Result<(), RepositoryError> {
        let mut state = self.write();
        if let Some(stored) = state
            .webhooks
            .iter_mut()
            .find(|w| w.webhook.id == id && w.webhook.org_id == org_id)
        {
            stored.webhook.health = EndpointHealth::default();
        }
        Ok(())
    }

    async fn rotate_secret(
        &self,
        org_id: OrgId,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        let Some(stored) = state
            .webhooks
            .iter_mut()
            .find(|w| w.webhook.id == id && w.webhook.org_id == org_id)
        else {
            return Ok(false);
        };
        let previous = std::mem::replace(&mut stored.secret, secret.clone());
        stored.previous = Some((previous, previous_until));
        Ok(true)
    }

    async fn delete_webhook(&self, org_id: OrgId, id: Uuid) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        let before = state.webhooks.len();
        state
            .webhooks
            .retain(|w| !(w.webhook.id == id && w.webhook.org_id == org_id));
        if state.webhooks.len() == before {
            return Ok(false);
        }
        state.deliveries.retain(|d| d.delivery.webhook_id != id);
        Ok(true)
    }

    async fn deliveries(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, RepositoryError> {
        let state = self.read();
        Ok(state
            .deliveries
            .iter()
            .rev()
            .filter(|d| d.org_id == org_id && d.delivery.webhook_id == webhook_id)
            .filter(|d| before.is_none_or(|before| d.delivery.seq < before))
            .take(limit)
            .map(|d| d.delivery.clone())
            .collect())
    }

    async fn retry_delivery(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, RepositoryError> {
        let mut state = self.write();
        let Some(stored) = state
            .deliveries
            .iter_mut()
            .find(|d| d.org_id == org_id && d.delivery.webhook_id == webhook_id && d.delivery.id == delivery_id)
        else {
            return Ok(None);
        };
        stored.delivery.status = DeliveryStatus::Pending;
        stored.delivery.next_attempt_at = Some(now);
        let delivery = stored.delivery.clone();
        // A person asking to send again is asking now: a paused endpoint is
        // probed at once (one delivery at a time) rather than after its pause.
        if let Some(webhook) = state.webhooks.iter_mut().find(|w| w.webhook.id == webhook_id) {
            if webhook.webhook.health.paused_until.is_some_and(|until| until > now) {
                webhook.webhook.health.paused_until = Some(now);
            }
        }
        drop(state);
        self.queued_some(1);
        Ok(Some(delivery))
    }
}
