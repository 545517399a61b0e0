//! The delivery queue in memory (as `sql/deliveries.rs`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    AfterAttempt, Attempt, DeliveryQueue, DeliveryStatus, DueDelivery, Recorded, RepositoryError, Sweep,
};
use keymint_domain::{pick_fairly, ApiKey, BreakerPolicy, Candidate, EventType, FairShare, InFlight, KeyId};
use uuid::Uuid;

use super::{InMemoryApiKeyRepository, State};

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
