//! The outbox in memory: an event and its deliveries recorded under one lock,
//! both or neither (as `sql/outbox.rs`).

use chrono::{DateTime, Utc};
use keymint_application::{event_payload, Delivery, DeliveryStatus};
use keymint_domain::{ApiKey, AuditEvent, EventType};
use uuid::Uuid;

use super::{State, StoredDelivery};

impl State {
    /// Records `event` and queues its deliveries about `key`, under the same
    /// lock: both or neither, like the SQL adapter's transaction; an event
    /// that sets the credits anew re-arms the credits-low announcement
    /// ([`AuditEvent::sets_credits`]). Returns how many were queued.
    pub(super) fn record(&mut self, event: &AuditEvent, key: &ApiKey) -> usize {
        self.events.push(event.clone());
        if event.sets_credits() {
            self.credits_low_announced.remove(&key.id());
        }
        self.enqueue(EventType::of_action(event.action), key, event.occurred_at)
    }

    pub(super) fn enqueue(&mut self, event_type: EventType, key: &ApiKey, at: DateTime<Utc>) -> usize {
        let subscribed: Vec<Uuid> = self
            .webhooks
            .iter()
            .filter(|w| w.webhook.org_id == key.org_id() && w.webhook.receives(event_type))
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
}
