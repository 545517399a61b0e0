//! Webhooks and the delivery queue in memory (as `sql/webhooks.rs`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    AfterAttempt, Attempt, Delivery, DeliveryQueue, DeliveryStatus, DueDelivery, Recorded, RepositoryError, Sweep,
    WebhookStore, WebhookStoreError,
};
use keymint_domain::{
    pick_fairly, ApiKey, BreakerPolicy, Candidate, EndpointHealth, EventType, FairShare, InFlight, KeyId, OrgId,
    Webhook, WebhookSecret,
};
use uuid::Uuid;

use super::{InMemoryApiKeyRepository, State, StoredWebhook};

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

#[async_trait]
impl DeliveryQueue for InMemoryApiKeyRepository {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        share: FairShare,
    ) -> Result<Vec<DueDelivery>, RepositoryError> {
        let mut state = self.write();
        let State {
            deliveries, webhooks, ..
        } = &mut *state;
        let mut in_flight = InFlight::default();
        let mut candidates = Vec::new();
        let mut per_endpoint: HashMap<Uuid, usize> = HashMap::new();
        // Pending deliveries per (webhook, key) seen so far, in seq order: only
        // the first of each may go, so each key's events arrive in order.
        let mut blocked: HashSet<(Uuid, KeyId)> = HashSet::new();
        for stored in deliveries.iter() {
            let delivery = &stored.delivery;
            if delivery.status != DeliveryStatus::Pending {
                continue;
            }
            if stored.locked_until.is_some_and(|until| until > now) {
                in_flight.add(delivery.webhook_id, stored.org_id, 1);
            }
            if !blocked.insert((delivery.webhook_id, delivery.key_id)) {
                continue;
            }
            let Some(due_at) = delivery.next_attempt_at.filter(|at| *at <= now) else {
                continue;
            };
            let Some(webhook) = webhooks.iter().find(|w| w.webhook.id == delivery.webhook_id) else {
                continue;
            };
            let health = webhook.webhook.health;
            // A disabled webhook's deliveries wait, in order, until it is enabled.
            let paused = health.paused_until.is_some_and(|until| until > now);
            let leased = stored.locked_until.is_some_and(|until| until > now);
            if !webhook.webhook.enabled || paused || leased {
                continue;
            }
            candidates.push(Candidate {
                seq: delivery.seq,
                webhook_id: delivery.webhook_id,
                org_id: stored.org_id,
                due_at,
                probing: health.paused_until.is_some(),
            });
            *per_endpoint.entry(delivery.webhook_id).or_default() += 1;
        }
        // As the SQL adapter reads them: each endpoint's oldest due, up to its cap.
        candidates.sort_by_key(|c| (c.due_at, c.seq));
        let mut kept: HashMap<Uuid, usize> = HashMap::new();
        candidates.retain(|c| {
            let count = kept.entry(c.webhook_id).or_default();
            *count += 1;
            *count <= share.per_endpoint
        });
        let picked: HashSet<i64> = pick_fairly(candidates, in_flight, share).into_iter().collect();
        let mut due = Vec::with_capacity(picked.len());
        for stored in deliveries.iter_mut().filter(|d| picked.contains(&d.delivery.seq)) {
            let Some(webhook) = webhooks.iter().find(|w| w.webhook.id == stored.delivery.webhook_id) else {
                continue;
            };
            stored.locked_until = Some(lease_until);
            let mut secrets = vec![webhook.secret.clone()];
            if let Some((previous, until)) = &webhook.previous {
                if *until > now {
                    secrets.push(previous.clone());
                }
            }
            due.push(DueDelivery {
                id: stored.delivery.id,
                webhook_id: stored.delivery.webhook_id,
                url: webhook.webhook.url.clone(),
                secrets,
                payload: stored.payload.clone(),
                attempts: u32::try_from(stored.delivery.attempts.len()).unwrap_or(u32::MAX),
            });
        }
        Ok(due)
    }

    async fn paused_endpoints(&self, now: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let state = self.read();
        Ok(state
            .webhooks
            .iter()
            .filter(|w| w.webhook.health.paused_until.is_some_and(|until| until > now))
            .count())
    }

    async fn announce(&self, sweep: Sweep, now: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let mut state = self.write();
        let mut due: Vec<(EventType, ApiKey)> = Vec::new();
        for key in state.keys.values() {
            if sweep.finds_expiring(key, now) && !state.expiry_announced.contains(&key.id()) {
                due.push((EventType::KeyExpiring, key.clone()));
            }
            if sweep.finds_low_credits(key, now) && !state.credits_low_announced.contains(&key.id()) {
                due.push((EventType::KeyCreditsLow, key.clone()));
            }
        }
        let mut queued = 0;
        for (event_type, key) in &due {
            if *event_type == EventType::KeyExpiring {
                state.expiry_announced.insert(key.id());
            } else {
                state.credits_low_announced.insert(key.id());
            }
            queued += state.enqueue(*event_type, key, now);
        }
        drop(state);
        self.queued_some(queued);
        Ok(due.len())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let mut state = self.write();
        let count = state.deliveries.len();
        state
            .deliveries
            .retain(|d| d.delivery.status == DeliveryStatus::Pending || d.delivery.created_at >= before);
        Ok(count - state.deliveries.len())
    }

    async fn record(
        &self,
        delivery_id: Uuid,
        attempt: &Attempt,
        next: AfterAttempt,
        breaker: BreakerPolicy,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RepositoryError> {
        let mut state = self.write();
        let State {
            deliveries, webhooks, ..
        } = &mut *state;
        let Some(stored) = deliveries.iter_mut().find(|d| d.delivery.id == delivery_id) else {
            return Ok(Recorded::default());
        };
        stored.delivery.attempts.push(Attempt {
            error: attempt.stored_error(),
            ..attempt.clone()
        });
        stored.locked_until = None;
        (stored.delivery.status, stored.delivery.next_attempt_at) = next.status();
        let Some(webhook) = webhooks.iter_mut().find(|w| w.webhook.id == stored.delivery.webhook_id) else {
            return Ok(Recorded::default());
        };
        let before = webhook.webhook.health;
        let after = before.after_attempt(attempt.succeeded(), now, breaker);
        webhook.webhook.health = after;
        Ok(Recorded {
            paused: after.opened_from(&before),
            closed: before.paused_until.is_some() && after.paused_until.is_none(),
        })
    }
}
