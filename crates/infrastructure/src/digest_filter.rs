//! The process's filter of lookup digests: which presented keys in no format
//! Keymint issues are worth a storage read.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use keymint_application::{DigestFilter, LookupDigests, RepositoryError};
use keymint_domain::KeyDigest;

/// The first eight bytes of every lookup digest stored, kept in memory (about
/// 16 bytes per imported key), reloaded when storage's digest generation
/// changes.
///
/// It only ever grows: a digest whose key was deleted stays until the process
/// restarts, costing one read if it is presented. That makes it safe against
/// every interleaving of a reload with this process's own imports: a digest,
/// once added, is never lost. Until the first load it answers "maybe" to
/// everything, so a process that cannot read storage yet still finds imported
/// keys.
#[derive(Debug, Default)]
pub struct LookupDigestFilter {
    known: RwLock<Option<HashSet<u64>>>,
    /// The generation the last reload saw; `i64::MIN` before any.
    generation: AtomicI64,
    reloads: AtomicU64,
}

impl LookupDigestFilter {
    /// A filter that has not loaded yet.
    pub fn new() -> Self {
        Self {
            generation: AtomicI64::new(i64::MIN),
            ..Self::default()
        }
    }

    /// Reloads every digest from `source` if its generation moved since the
    /// last reload. Returns whether it reloaded.
    pub async fn refresh(&self, source: &dyn LookupDigests) -> Result<bool, RepositoryError> {
        // Read before the digests: an import committed after this read moves
        // the generation again, so the next refresh reloads it.
        let generation = source.digest_generation().await?;
        if generation == self.generation.load(Relaxed) {
            return Ok(false);
        }
        let digests = source.lookup_digests().await?;
        {
            let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
            let set = known.get_or_insert_with(HashSet::new);
            set.extend(digests.iter().map(KeyDigest::short));
        }
        self.generation.store(generation, Relaxed);
        self.reloads.fetch_add(1, Relaxed);
        Ok(true)
    }

    /// Refreshes every `interval` until the process ends. Failures are
    /// logged; the filter keeps what it had (and the first load is retried).
    pub fn spawn_refresh(self: Arc<Self>, source: Arc<dyn LookupDigests>, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(err) = self.refresh(source.as_ref()).await {
                    tracing::warn!(error = %err, "could not refresh the lookup digest filter");
                }
            }
        });
    }

    /// How many digests it holds (`None` before the first load).
    pub fn digests(&self) -> Option<usize> {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(HashSet::len)
    }

    /// How many times it reloaded.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Relaxed)
    }
}

impl DigestFilter for LookupDigestFilter {
    fn may_hold(&self, digest: &KeyDigest) -> bool {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(|known| known.contains(&digest.short()))
    }

    fn add(&self, digest: &KeyDigest) {
        // Unloaded, the filter answers "maybe" to everything already; a set
        // made here would hold this digest alone and refuse every other.
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = known.as_mut() {
            known.insert(digest.short());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// Storage whose digests and generation the test sets.
    struct Source(Arc<Mutex<(i64, Vec<KeyDigest>)>>);

    #[async_trait]
    impl LookupDigests for Source {
        async fn digest_generation(&self) -> Result<i64, RepositoryError> {
            Ok(self.0.lock().unwrap().0)
        }

        async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError> {
            Ok(self.0.lock().unwrap().1.clone())
        }
    }

    fn source(state: Arc<Mutex<(i64, Vec<KeyDigest>)>>) -> Source {
        Source(state)
    }

    #[tokio::test]
    async fn before_its_first_load_it_sends_every_digest_to_storage_and_after_only_stored_ones() {
        let filter = LookupDigestFilter::new();
        let (stored, other) = (
            KeyDigest::of("an imported key of 20+"),
            KeyDigest::of("a typo of some other key"),
        );
        assert!(filter.may_hold(&other), "unloaded: every digest is worth a read");
        let state = Arc::new(Mutex::new((7, vec![stored])));
        assert!(filter.refresh(&source(Arc::clone(&state))).await.unwrap());
        assert!(filter.may_hold(&stored));
        assert!(!filter.may_hold(&other));
        assert_eq!(filter.digests(), Some(1));
    }

    #[tokio::test]
    async fn an_addition_before_the_first_load_keeps_every_digest_worth_a_read() {
        let filter = LookupDigestFilter::new();
        filter.add(&KeyDigest::of("imported while storage was unreachable"));
        assert!(filter.may_hold(&KeyDigest::of("imported earlier, not yet loaded")));
        assert_eq!(filter.digests(), None);
    }

    #[tokio::test]
    async fn it_reloads_only_when_the_generation_moves_and_never_forgets_its_own_additions() {
        let filter = LookupDigestFilter::new();
        let state = Arc::new(Mutex::new((1, vec![])));
        let source = source(Arc::clone(&state));
        assert!(filter.refresh(&source).await.unwrap());
        assert!(!filter.refresh(&source).await.unwrap(), "same generation: no reload");

        let own = KeyDigest::of("imported by this process");
        filter.add(&own);
        let elsewhere = KeyDigest::of("imported by another process");
        *state.lock().unwrap() = (2, vec![elsewhere]);
        assert!(!filter.may_hold(&elsewhere), "not seen before the refresh");
        assert!(filter.refresh(&source).await.unwrap());
        assert!(filter.may_hold(&elsewhere));
        assert!(filter.may_hold(&own), "a reload that did not see it keeps it");
        assert_eq!(filter.reloads(), 2);
    }
}
