//! Cross-process cache eviction on PostgreSQL: every process LISTENs on the
//! channel the repository NOTIFYs when a key changes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use keymint_application::VerificationCache;
use keymint_domain::KeyId;
use sea_orm::sqlx::postgres::PgListener;
use uuid::Uuid;

use super::repository::KEY_CHANGES_CHANNEL;

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
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    loop {
                        let received = listener.try_recv().await;
                        let Some(strong) = cache.upgrade() else { return };
                        match received {
                            Ok(Some(notification)) => {
                                if let Ok(id) = Uuid::parse_str(notification.payload()) {
                                    strong.evict_key(KeyId::from_uuid(id));
                                }
                            }
                            // The connection was lost; the next call reconnects.
                            Ok(None) => strong.evict_all(),
                            Err(err) => {
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
