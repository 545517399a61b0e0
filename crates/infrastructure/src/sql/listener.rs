//! Cross-process cache eviction on PostgreSQL: every process LISTENs on the
//! channel the repository NOTIFYs when a key changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keymint_application::VerificationCache;
use keymint_domain::KeyId;
use prometheus_client::metrics::histogram::Histogram;
use sea_orm::sqlx::postgres::PgListener;
use uuid::Uuid;

/// The PostgreSQL channel on which every change to a key is announced, so that
/// other Keymint processes evict it from their verification caches.
pub const KEY_CHANGES_CHANNEL: &str = "keymint_key_changed";

/// A change notification's payload: the key id, then when the change was sent
/// (microseconds since the Unix epoch, the sender's clock) so receivers can
/// tell how late they learn of it.
pub(crate) fn change_payload(id: KeyId, sent: SystemTime) -> String {
    let micros = sent.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros();
    format!("{id} {micros}")
}

/// The key id of a payload, and when it was sent if it says (payloads of a bare
/// id, as earlier versions sent, still evict).
fn parse_change(payload: &str) -> Option<(KeyId, Option<SystemTime>)> {
    let (id, sent) = match payload.split_once(' ') {
        Some((id, micros)) => (id, micros.parse().ok().map(|m| UNIX_EPOCH + Duration::from_micros(m))),
        None => (payload, None),
    };
    Some((KeyId::from_uuid(Uuid::parse_str(id).ok()?), sent))
}

/// What the listener has seen, read by metrics.
#[derive(Debug)]
pub struct ListenerStats {
    connected: AtomicBool,
    connections: AtomicU64,
    received: AtomicU64,
    lag: Histogram,
}

/// Upper bounds, in seconds, of the lag histogram's buckets: a healthy
/// database delivers within milliseconds; seconds mean a stalled listener.
const LAG_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

impl Default for ListenerStats {
    fn default() -> Self {
        Self {
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            received: AtomicU64::new(0),
            lag: Histogram::new(LAG_BUCKETS),
        }
    }
}

impl ListenerStats {
    /// Whether it is listening now.
    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Times it (re)connected since start-up.
    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }

    /// Notifications received since start-up.
    pub fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// From a change's commit to its arrival here, in seconds (clock skew
    /// between hosts included).
    pub fn lag(&self) -> &Histogram {
        &self.lag
    }

    fn receive(&self, sent: Option<SystemTime>) {
        self.received.fetch_add(1, Relaxed);
        if let Some(lag) = sent.and_then(|sent| SystemTime::now().duration_since(sent).ok()) {
            self.lag.observe(lag.as_secs_f64());
        }
    }
}

/// Evicts keys from `cache` as other processes change them, until `cache` is
/// dropped. Whenever the listening connection is (re)established, the whole cache
/// is cleared: notifications sent while it was down are lost, and the cache TTL
/// alone would otherwise bound how long a revoked key keeps verifying here.
///
/// The returned receiver fires once the first `LISTEN` is in place; a process
/// should wait for it before serving, so that nothing it caches predates it.
pub fn spawn_change_listener(
    url: String,
    cache: &Arc<dyn VerificationCache>,
    stats: Arc<ListenerStats>,
) -> (tokio::task::JoinHandle<()>, tokio::sync::oneshot::Receiver<()>) {
    let cache: Weak<dyn VerificationCache> = Arc::downgrade(cache);
    let (ready, listening) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready);
    let task = tokio::spawn(async move {
        loop {
            match listen(&url).await {
                Ok(mut listener) => {
                    let Some(strong) = cache.upgrade() else { return };
                    strong.evict_all();
                    drop(strong);
                    stats.connected.store(true, Relaxed);
                    stats.connections.fetch_add(1, Relaxed);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    loop {
                        let received = listener.try_recv().await;
                        let Some(strong) = cache.upgrade() else { return };
                        match received {
                            Ok(Some(notification)) => {
                                if let Some((id, sent)) = parse_change(notification.payload()) {
                                    strong.evict_key(id);
                                    stats.receive(sent);
                                }
                            }
                            // The connection was lost; the next call reconnects.
                            Ok(None) => strong.evict_all(),
                            Err(err) => {
                                stats.connected.store(false, Relaxed);
                                tracing::warn!(error = %err, "key change listener failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot listen for key changes; retrying"),
            }
            if cache.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (task, listening)
}

async fn listen(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(KEY_CHANGES_CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_carries_the_key_and_when_it_was_sent() {
        let id = KeyId::from_uuid(Uuid::from_u128(7));
        let sent = UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456);
        assert_eq!(parse_change(&change_payload(id, sent)), Some((id, Some(sent))));
    }

    #[test]
    fn a_bare_id_still_evicts_and_garbage_is_ignored() {
        let id = KeyId::from_uuid(Uuid::from_u128(7));
        assert_eq!(parse_change(&id.to_string()), Some((id, None)));
        assert_eq!(parse_change(&format!("{id} soon")), Some((id, None)));
        assert_eq!(parse_change("not-a-key 12"), None);
        assert_eq!(parse_change(""), None);
    }

    #[test]
    fn lag_is_observed_only_for_stamped_notifications() {
        let stats = ListenerStats::default();
        stats.receive(None);
        stats.receive(Some(SystemTime::now() - Duration::from_millis(30)));
        assert_eq!(stats.received(), 2);
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("lag", "", stats.lag().clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("lag_count 1"), "{text}");
        assert!(text.contains("lag_bucket{le=\"0.025\"} 0"), "{text}");
        assert!(text.contains("lag_bucket{le=\"0.05\"} 1"), "{text}");
    }
}
