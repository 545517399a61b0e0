use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    event_payload, AfterAttempt, Attempt, CreditChange, CreditChangeOutcome, Delivery, DeliveryQueue, DeliveryStatus,
    DueDelivery, EventQuery, Idempotency, KeyLookup, KeyQuery, KeyStore, LookupDigests, Recorded, RepositoryError,
    StorageHealth, Sweep, UsageLedger, UsageSink, WebhookStore, WebhookStoreError,
};
use keymint_domain::{
    pick_fairly, ApiKey, AuditAction, AuditEvent, BreakerPolicy, Candidate, Credits, Demand, EndpointHealth, EventType,
    FairShare, InFlight, KeyDigest, KeyId, Ledger, LookupId, OrgId, Outcome, SecretHash, Webhook, WebhookSecret,
    WindowCount,
};
use tokio::sync::Notify;
use uuid::Uuid;

/// Keys held in the process's memory: for tests and demos (`database.url =
/// "memory:"`). It keeps the same uniqueness, scoping, limit and revision rules as
/// the SQL adapter, and loses everything when the process exits.
#[derive(Debug, Default)]
pub struct InMemoryApiKeyRepository {
    state: RwLock<State>,
    queued: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<KeyId, ApiKey>,
    events: Vec<AuditEvent>,
    windows: HashMap<KeyId, Vec<WindowCount>>,
    /// By organisation and idempotency key: the request's fingerprint, the
    /// credits it left, and when.
    answers: HashMap<(OrgId, String), (String, Credits, DateTime<Utc>)>,
    webhooks: Vec<StoredWebhook>,
    /// Keys whose `key.expiring` went out.
    expiry_announced: std::collections::HashSet<KeyId>,
    /// Keys whose `key.credits_low` went out (forgotten when a person changes
    /// their credits).
    credits_low_announced: std::collections::HashSet<KeyId>,
    /// In `seq` order.
    deliveries: Vec<StoredDelivery>,
    next_seq: i64,
    /// Counts lookup digests added.
    digest_generation: i64,
}

#[derive(Debug)]
struct StoredWebhook {
    webhook: Webhook,
    secret: WebhookSecret,
    previous: Option<(WebhookSecret, DateTime<Utc>)>,
}

#[derive(Debug)]
struct StoredDelivery {
    delivery: Delivery,
    org_id: OrgId,
    payload: String,
    locked_until: Option<DateTime<Utc>>,
}

impl State {
    /// Records `event` and queues its deliveries about `key`, under the same
    /// lock: both or neither, like the SQL adapter's transaction. Returns how
    /// many were queued.
    fn record(&mut self, event: &AuditEvent, key: &ApiKey) -> usize {
        self.events.push(event.clone());
        self.enqueue(EventType::of_action(event.action), key, event.occurred_at)
    }

    fn enqueue(&mut self, event_type: EventType, key: &ApiKey, at: DateTime<Utc>) -> usize {
        let subscribed: Vec<Uuid> = self
            .webhooks
            .iter()
            .filter(|w| {
                w.webhook.org_id == key.org_id() && w.webhook.enabled && w.webhook.event_types.contains(event_type)
            })
            .map(|w| w.webhook.id)
            .collect();
        if subscribed.is_empty() {
            return 0;
        }
        let payload = event_payload(event_type, key, at);
        for webhook_id in &subscribed {
            self.next_seq += 1;
            self.deliveries.push(StoredDelivery {
                delivery: Delivery {
                    id: Uuid::now_v7(),
                    seq: self.next_seq,
                    webhook_id: *webhook_id,
                    key_id: key.id(),
                    event_type,
                    status: DeliveryStatus::Pending,
                    created_at: at,
                    next_attempt_at: Some(at),
                    attempts: Vec::new(),
                },
                org_id: key.org_id(),
                payload: payload.clone(),
                locked_until: None,
            });
        }
        subscribed.len()
    }

    /// Whether `candidate`'s id, public key, any lookup id or any lookup
    /// digest clashes with another key.
    fn clashes(&self, candidate: &ApiKey) -> bool {
        let lookups = |key: &ApiKey| {
            std::iter::once(key.lookup_id().clone()).chain(key.previous_credential().map(|p| p.lookup_id.clone()))
        };
        let candidate_digests: Vec<KeyDigest> = lookup_digests(candidate).collect();
        self.keys.values().filter(|key| key.id() != candidate.id()).any(|key| {
            key.public_key() == candidate.public_key()
                || lookups(key).any(|l| lookups(candidate).any(|c| c == l))
                || lookup_digests(key).any(|d| candidate_digests.contains(&d))
        })
    }
}

/// The lookup digests of `key`'s current and rotated-out private keys.
fn lookup_digests(key: &ApiKey) -> impl Iterator<Item = KeyDigest> + '_ {
    let parts = key.parts();
    parts
        .credential
        .lookup_digest
        .into_iter()
        .chain(parts.previous.as_ref().and_then(|p| p.lookup_digest))
}

impl InMemoryApiKeyRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    // Every change below is checked before anything is touched, so a panic cannot
    // leave State half-updated and a poisoned lock is safe to keep using.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signalled when deliveries were queued, so the dispatcher sends them at
    /// once instead of at its next poll.
    pub fn deliveries_queued(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    fn queued_some(&self, queued: usize) {
        if queued > 0 {
            self.queued.notify_one();
        }
    }
}

#[async_trait]
impl KeyStore for InMemoryApiKeyRepository {
    async fn insert(
        &self,
        key: &ApiKey,
        event: &AuditEvent,
        max_active: u32,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let mut state = self.write();
        if state.keys.contains_key(&key.id()) || state.clashes(key) {
            return Err(RepositoryError::Conflict);
        }
        // An imported key must not be any stored key in another form (see the
        // SQL adapter).
        if let (AuditAction::Imported, Some(digest)) = (event.action, key.secret_hash().sha256_digest()) {
            let holds = |stored: &ApiKey| {
                let previous = stored.previous_credential();
                lookup_digests(stored).any(|d| d.matches(&digest))
                    || stored.secret_hash().sha256_digest().is_some_and(|d| d.matches(&digest))
                    || previous
                        .and_then(|p| p.secret_hash.sha256_digest())
                        .is_some_and(|d| d.matches(&digest))
            };
            if state.keys.values().any(holds) {
                return Err(RepositoryError::Conflict);
            }
        }
        let active = state
            .keys
            .values()
            .filter(|k| k.org_id() == key.org_id() && k.is_active(now))
            .count();
        if active + usize::from(key.is_active(now)) > usize::try_from(max_active).unwrap_or(usize::MAX) {
            return Err(RepositoryError::LimitReached);
        }
        if key.parts().credential.lookup_digest.is_some() {
            state.digest_generation += 1;
        }
        state.keys.insert(key.id(), key.clone());
        let queued = state.record(event, key);
        drop(state);
        self.queued_some(queued);
        Ok(())
    }

    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError> {
        Ok(self.read().keys.get(&id).filter(|key| key.org_id() == org_id).cloned())
    }

    async fn list(&self, query: &KeyQuery) -> Result<Vec<ApiKey>, RepositoryError> {
        let state = self.read();
        let mut keys: Vec<&ApiKey> = state
            .keys
            .values()
            .filter(|key| key.org_id() == query.org_id)
            .filter(|key| query.environment.is_none_or(|env| key.environment() == env))
            .filter(|key| query.revoked.is_none_or(|revoked| key.is_revoked() == revoked))
            .filter(|key| query.owner_id.is_none() || key.owner_id() == query.owner_id.as_ref())
            .filter(|key| query.name.as_ref().is_none_or(|search| search.matches(key.name())))
            .filter(|key| {
                query
                    .after
                    .is_none_or(|after| (key.created_at(), key.id()) < (after.created_at, after.id))
            })
            .collect();
        keys.sort_by_key(|key| std::cmp::Reverse((key.created_at(), key.id())));
        Ok(keys.into_iter().take(query.limit).cloned().collect())
    }

    async fn update(&self, key: &ApiKey, expected_revision: u32, event: &AuditEvent) -> Result<(), RepositoryError> {
        let mut state = self.write();
        let Some(current) = state
            .keys
            .get(&key.id())
            .filter(|stored| stored.org_id() == key.org_id())
        else {
            return Err(RepositoryError::Stale);
        };
        if current.revision() != expected_revision {
            return Err(RepositoryError::Stale);
        }
        let last_used_at = current.last_used_at();
        if state.clashes(key) {
            return Err(RepositoryError::Conflict);
        }
        let credits = current.credits().copied();
        let mut parts = key.parts().clone();
        // Usage is recorded separately; a change must not roll it back.
        parts.last_used_at = last_used_at;
        // Nor may it undo spending, unless it sets the credits anew.
        if event.fields.iter().any(|field| field == "credits") {
            state.credits_low_announced.remove(&key.id());
        } else {
            parts.credits = credits;
        }
        let stored = ApiKey::restore(parts);
        state.keys.insert(key.id(), stored.clone());
        let queued = state.record(event, &stored);
        drop(state);
        self.queued_some(queued);
        Ok(())
    }

    async fn delete(&self, org_id: OrgId, id: KeyId, event: &AuditEvent) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        if state.keys.get(&id).is_none_or(|key| key.org_id() != org_id) {
            return Ok(false);
        }
        let removed = state.keys.remove(&id);
        state.windows.remove(&id);
        let queued = match removed {
            Some(key) => state.record(event, &key),
            None => 0,
        };
        drop(state);
        self.queued_some(queued);
        Ok(true)
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, RepositoryError> {
        let state = self.read();
        let mut events: Vec<&AuditEvent> = state
            .events
            .iter()
            .filter(|e| e.org_id == query.org_id && e.key_id == query.key_id)
            .filter(|e| {
                query
                    .after
                    .is_none_or(|after| (e.occurred_at, e.id) < (after.occurred_at, after.id))
            })
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
        Ok(events.into_iter().take(query.limit).cloned().collect())
    }
}

#[async_trait]
impl KeyLookup for InMemoryApiKeyRepository {
    async fn find_by_lookup(&self, lookup_id: &LookupId) -> Result<Option<ApiKey>, RepositoryError> {
        let state = self.read();
        Ok(state
            .keys
            .values()
            .find(|key| {
                key.lookup_id() == lookup_id || key.previous_credential().is_some_and(|p| &p.lookup_id == lookup_id)
            })
            .cloned())
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKey>, RepositoryError> {
        let state = self.read();
        Ok(state
            .keys
            .values()
            .find(|key| lookup_digests(key).any(|d| d.matches(digest)))
            .cloned())
    }

    async fn rehash(&self, id: KeyId, old: &SecretHash, new: &SecretHash) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        Ok(state.keys.get_mut(&id).is_some_and(|key| key.rehash(old, new.clone())))
    }
}

#[async_trait]
impl LookupDigests for InMemoryApiKeyRepository {
    async fn digest_generation(&self) -> Result<i64, RepositoryError> {
        Ok(self.read().digest_generation)
    }

    async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError> {
        Ok(self.read().keys.values().flat_map(lookup_digests).collect())
    }
}

#[async_trait]
impl UsageSink for InMemoryApiKeyRepository {
    async fn record_usage(&self, usage: &[(KeyId, DateTime<Utc>)]) -> Result<(), RepositoryError> {
        let mut state = self.write();
        for (id, at) in usage {
            if let Some(key) = state.keys.get_mut(id) {
                if key.last_used_at().is_none_or(|last| last < *at) {
                    let mut parts = key.parts().clone();
                    parts.last_used_at = Some(*at);
                    *key = ApiKey::restore(parts);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl StorageHealth for InMemoryApiKeyRepository {
    async fn ping(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}

#[async_trait]
impl UsageLedger for InMemoryApiKeyRepository {
    async fn settle(
        &self,
        id: KeyId,
        demands: &[(Demand, DateTime<Utc>)],
    ) -> Result<Option<Vec<Outcome>>, RepositoryError> {
        let mut state = self.write();
        let Some(key) = state.keys.get(&id) else {
            return Ok(None);
        };
        let limits = key.ratelimits().clone();
        let mut ledger = Ledger::new(
            key.credits().copied(),
            state.windows.get(&id).cloned().unwrap_or_default(),
        );
        let outcomes = demands
            .iter()
            .map(|(demand, now)| ledger.settle(&limits, demand, *now))
            .collect();
        if let Some(key) = state.keys.get_mut(&id) {
            let mut parts = key.parts().clone();
            parts.credits = ledger.credits().copied();
            *key = ApiKey::restore(parts);
        }
        state.windows.insert(id, ledger.windows().to_vec());
        Ok(Some(outcomes))
    }

    async fn change_credits(
        &self,
        org_id: OrgId,
        id: KeyId,
        change: CreditChange,
        event: &AuditEvent,
        idempotency: Option<&Idempotency>,
        now: DateTime<Utc>,
    ) -> Result<CreditChangeOutcome, RepositoryError> {
        let mut state = self.write();
        if let Some(idempotency) = idempotency {
            state.answers.retain(|_, (_, _, at)| *at >= idempotency.not_before);
        }
        let Some(key) = state.keys.get(&id).filter(|key| key.org_id() == org_id) else {
            return Ok(CreditChangeOutcome::NotFound);
        };
        if let Some(idempotency) = idempotency {
            let earlier = state.answers.get(&(org_id, idempotency.key.clone()));
            if let Some(outcome) = earlier.and_then(|(request, credits, at)| idempotency.recall(request, *credits, *at))
            {
                return Ok(outcome);
            }
        }
        let Some(credits) = key.credits().copied() else {
            return Ok(CreditChangeOutcome::Unlimited);
        };
        let after = match change.apply(credits, now) {
            Ok(after) => after,
            Err(refusal) => return Ok(CreditChangeOutcome::Refused(refusal)),
        };
        let mut parts = key.parts().clone();
        parts.credits = Some(after);
        let stored = ApiKey::restore(parts);
        state.keys.insert(id, stored.clone());
        state.credits_low_announced.remove(&id);
        let queued = state.record(event, &stored);
        if let Some(idempotency) = idempotency {
            state.answers.insert(
                (org_id, idempotency.key.clone()),
                (idempotency.fingerprint.clone(), after, now),
            );
        }
        drop(state);
        self.queued_some(queued);
        Ok(CreditChangeOutcome::Applied(after))
    }
}

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
