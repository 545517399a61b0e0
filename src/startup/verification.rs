//! What key verification is made of: the hashing, caching, limiting and
//! usage adapters, and the in-process verifier other services build from them.

use std::sync::Arc;
use std::time::Duration;

use keymint_application::{ApiKeyRepository, Clock, LookupDigests, VerificationCache, VerifyApiKey, VerifyStats};
use keymint_domain::KeyFormat;
use keymint_infrastructure::metrics::Observed;
use keymint_infrastructure::sql::{self, Database, DatabaseUrl, ListenerStats, SqlApiKeyRepository};
use keymint_infrastructure::{
    Argon2Hasher, BatchingMeter, CoalescingUsageTracker, KeyHasher, LookupDigestFilter, ShardedVerificationCache,
    SystemClock, WindowFailureLimiter,
};
use secrecy::ExposeSecret;

use super::storage::connect_and_migrate;
use crate::configuration::{Settings, StorageUrl};

/// What a service needs to verify Keymint keys in-process (see
/// `examples/protected_service.rs`): the use case, and the usage tracker to flush
/// when the service stops.
#[derive(Debug)]
pub struct KeyVerifier {
    /// Verifies presented keys.
    pub verify: VerifyApiKey,
    /// Records `last_used_at`; flush it at shutdown.
    pub usage: Arc<CoalescingUsageTracker>,
}

/// A key verifier over the configured database, with its own cache and limits.
pub async fn key_verifier(settings: &Settings) -> anyhow::Result<KeyVerifier> {
    let StorageUrl::Sql(url) = &settings.database.url else {
        anyhow::bail!("database.url: the in-memory store cannot be shared with another process");
    };
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(SqlApiKeyRepository::new(
        connect_and_migrate(url, &settings.database).await?,
    ));
    let parts = VerificationParts::new(settings, repository.clone())?;
    parts.listen_for_changes(settings).await;
    Ok(KeyVerifier {
        verify: parts.use_case(repository, settings.keys.format()),
        usage: parts.usage,
    })
}

/// The hashing, caching, limiting and usage adapters a verifier is made of.
pub(super) struct VerificationParts {
    pub(super) hasher: Arc<KeyHasher>,
    pub(super) digests: Arc<LookupDigestFilter>,
    stats: Arc<VerifyStats>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) cache: Arc<ShardedVerificationCache>,
    limiter: Arc<WindowFailureLimiter>,
    pub(super) usage: Arc<CoalescingUsageTracker>,
    /// Whether verifications are counted (`analytics.enabled`).
    counting: bool,
    listener: Arc<ListenerStats>,
    meter: Arc<BatchingMeter>,
}

impl VerificationParts {
    pub(super) fn new(settings: &Settings, repository: Arc<dyn ApiKeyRepository>) -> anyhow::Result<Self> {
        let verify = &settings.verify;
        let meter = Arc::new(BatchingMeter::new(repository.clone()));
        let mut usage = CoalescingUsageTracker::with_resolution(repository.clone(), verify.usage_resolution);
        if settings.analytics.enabled {
            usage = usage.with_analytics(repository, settings.analytics.flush);
        }
        let usage = Arc::new(usage);
        usage.spawn_flusher(verify.usage_flush);
        let argon2 = Argon2Hasher::new(settings.argon2_params()).map_err(|e| e.0)?;
        Ok(Self {
            hasher: Arc::new(KeyHasher::new(settings.hash_scheme(), argon2)),
            digests: Arc::new(LookupDigestFilter::new()),
            stats: Arc::default(),
            clock: Arc::new(SystemClock),
            cache: Arc::new(ShardedVerificationCache::new(verify.cache_capacity, verify.cache_ttl)),
            limiter: Arc::new(WindowFailureLimiter::new(
                verify.max_failures_per_key,
                verify.max_failures_per_client,
                verify.failure_window,
            )),
            usage,
            counting: settings.analytics.enabled,
            listener: Arc::default(),
            meter,
        })
    }

    /// On PostgreSQL, evicts keys that other processes change (LISTEN/NOTIFY),
    /// returning once the listener is in place (or its connect timeout passed).
    pub(super) async fn listen_for_changes(&self, settings: &Settings) {
        if let StorageUrl::Sql(DatabaseUrl::Postgres(url)) = &settings.database.url {
            let cache: Arc<dyn VerificationCache> = self.cache.clone();
            let (_, listening) =
                sql::spawn_change_listener(url.expose_secret().to_owned(), &cache, self.listener.clone());
            let wait = settings.database.connect_timeout.max(Duration::from_secs(1));
            if tokio::time::timeout(wait, listening).await.is_err() {
                tracing::warn!("not yet listening for key changes; other processes' changes reach this one within the cache TTL until it is");
            }
        }
    }

    /// Loads the lookup digest filter before serving, then keeps it current
    /// with other processes' imports. If storage does not answer now, the
    /// filter reads storage for every foreign key until a load succeeds.
    pub(super) async fn load_digests(&self, settings: &Settings, repository: Arc<dyn ApiKeyRepository>) {
        let source: Arc<dyn LookupDigests> = repository;
        if let Err(err) = self.digests.refresh(source.as_ref()).await {
            tracing::warn!(error = %err, "the lookup digest filter could not load yet; imported keys are read from storage until it does");
        }
        self.digests
            .clone()
            .spawn_refresh(source, settings.verify.digest_refresh);
    }

    /// What of these the metrics export, with the database's pools.
    pub(super) fn observed(&self, settings: &Settings, database: Option<Database>) -> Observed {
        let listens = matches!(settings.database.url, StorageUrl::Sql(DatabaseUrl::Postgres(_)));
        Observed {
            cache: Some(self.cache.clone()),
            hashing: Some(self.hasher.load().clone()),
            budgets: Some(self.limiter.clone()),
            usage: Some(self.usage.clone()),
            database,
            listener: listens.then(|| self.listener.clone()),
            meter: Some(self.meter.stats()),
            webhooks: None,
            verify: Some(self.stats.clone()),
            digests: Some(self.digests.clone()),
        }
    }

    pub(super) fn use_case(&self, repository: Arc<dyn ApiKeyRepository>, format: KeyFormat) -> VerifyApiKey {
        let verify = VerifyApiKey::new(
            repository,
            self.hasher.clone(),
            self.clock.clone(),
            self.cache.clone(),
            self.limiter.clone(),
            self.usage.clone(),
        )
        .with_meter(self.meter.clone())
        .with_key_format(format)
        .with_digest_filter(self.digests.clone())
        .with_stats(self.stats.clone());
        if self.counting {
            verify.with_counter(self.usage.clone())
        } else {
            verify
        }
    }
}
