//! Wiring: adapters chosen from configuration, plugged into the use cases, served
//! over HTTP.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;
use keymint_application::{
    ApiKeyRepository, ApiKeys, Authenticate, Clock, OrganizationDirectory, TokenVerifier, VerificationCache,
    VerifyApiKey,
};
use keymint_infrastructure::sql::{self, Database, SqlApiKeyRepository};
use keymint_infrastructure::{
    Argon2Hasher, CoalescingUsageTracker, Hs256Verifier, InMemoryApiKeyRepository, InMemoryOrganizationDirectory,
    JwksVerifier, OsKeyGenerator, ShardedVerificationCache, SqlOrganizationDirectory, SystemClock,
    WindowFailureLimiter,
};
use keymint_migrations::{Migrator, MigratorTrait};
use keymint_web::{AppState, HttpSettings};
use secrecy::ExposeSecret;

use crate::configuration::{AuthMode, Settings};

/// The URL that selects the in-memory repository.
pub const MEMORY_URL: &str = "memory:";

/// A built, bound, not yet running Keymint.
pub struct Application {
    address: SocketAddr,
    server: Server,
    database: Option<Database>,
    usage: Arc<CoalescingUsageTracker>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Connects to the configured database and brings its schema up to date.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Database> {
    let database = sql::connect(settings.database.url.expose_secret(), &settings.database_options())
        .await
        .context("database.url: cannot open the database")?;
    Migrator::up(&database.write, None)
        .await
        .context("applying database migrations failed")?;
    Ok(database)
}

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
    let repository: Arc<dyn ApiKeyRepository> =
        Arc::new(SqlApiKeyRepository::new(connect_and_migrate(settings).await?));
    let parts = VerificationParts::new(settings, repository.clone())?;
    parts.listen_for_changes(settings).await;
    Ok(KeyVerifier {
        verify: parts.use_case(repository),
        usage: parts.usage,
    })
}

/// The hashing, caching, limiting and usage adapters a verifier is made of.
struct VerificationParts {
    hasher: Arc<Argon2Hasher>,
    clock: Arc<dyn Clock>,
    cache: Arc<ShardedVerificationCache>,
    limiter: Arc<WindowFailureLimiter>,
    usage: Arc<CoalescingUsageTracker>,
}

impl VerificationParts {
    fn new(settings: &Settings, repository: Arc<dyn ApiKeyRepository>) -> anyhow::Result<Self> {
        let verify = &settings.verify;
        let usage = Arc::new(CoalescingUsageTracker::new(repository));
        usage.spawn_flusher(Duration::from_secs(verify.usage_flush_seconds));
        Ok(Self {
            hasher: Arc::new(Argon2Hasher::new(settings.argon2_params()).map_err(|e| e.0)?),
            clock: Arc::new(SystemClock),
            cache: Arc::new(ShardedVerificationCache::new(
                verify.cache_capacity,
                Duration::from_secs(verify.cache_ttl_seconds),
            )),
            limiter: Arc::new(WindowFailureLimiter::new(
                verify.max_failures_per_key,
                verify.max_failures_per_client,
                Duration::from_secs(verify.failure_window_seconds),
            )),
            usage,
        })
    }

    /// On PostgreSQL, evicts keys that other processes change (LISTEN/NOTIFY),
    /// returning once the listener is in place (or its connect timeout passed).
    async fn listen_for_changes(&self, settings: &Settings) {
        let url = settings.database.url.expose_secret();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let cache: Arc<dyn VerificationCache> = self.cache.clone();
            let (_, listening) = sql::spawn_change_listener(url.to_owned(), &cache);
            let wait = Duration::from_secs(settings.database.connect_timeout_seconds.max(1));
            if tokio::time::timeout(wait, listening).await.is_err() {
                tracing::warn!("not yet listening for key changes; other processes' changes reach this one within the cache TTL until it is");
            }
        }
    }

    fn use_case(&self, repository: Arc<dyn ApiKeyRepository>) -> VerifyApiKey {
        VerifyApiKey::new(
            repository,
            self.hasher.clone(),
            self.clock.clone(),
            self.cache.clone(),
            self.limiter.clone(),
            self.usage.clone(),
        )
    }
}

impl Application {
    /// Opens storage (running migrations), builds every adapter and binds the
    /// listener. Port 0 binds a free port; [`Application::address`] tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (repository, directory, database): (Arc<dyn ApiKeyRepository>, Arc<dyn OrganizationDirectory>, _) =
            if settings.database.url.expose_secret() == MEMORY_URL {
                (
                    Arc::new(InMemoryApiKeyRepository::new()),
                    Arc::new(InMemoryOrganizationDirectory::default()),
                    None,
                )
            } else {
                let database = connect_and_migrate(&settings).await?;
                (
                    Arc::new(SqlApiKeyRepository::new(database.clone())),
                    Arc::new(SqlOrganizationDirectory::new(database.clone())),
                    Some(database),
                )
            };
        let verifier: Arc<dyn TokenVerifier> = match settings.auth_mode()? {
            AuthMode::Hs256(config) => Arc::new(Hs256Verifier::new(&config)),
            AuthMode::Jwks(config) => {
                let verifier = Arc::new(JwksVerifier::new(config)?);
                // Warm the cache; if the provider is down now, requests will retry
                // (and answer 503 until a key set has been fetched once).
                let _ = verifier.refresh().await;
                verifier.spawn_refresh();
                verifier
            }
        };
        let parts = VerificationParts::new(&settings, repository.clone())?;
        parts.listen_for_changes(&settings).await;
        let usage = parts.usage.clone();
        let state = AppState {
            api_keys: ApiKeys::new(
                repository.clone(),
                parts.hasher.clone(),
                Arc::new(OsKeyGenerator),
                parts.clock.clone(),
                settings.key_policy(),
            )
            .with_cache(parts.cache.clone()),
            verify: parts.use_case(repository.clone()),
            authenticate: Authenticate::new(verifier, directory, settings.auth.require_permissions),
            storage: repository,
            default_environment: settings.default_environment()?,
        };
        if settings.uses_development_secret() {
            tracing::warn!(
                "!!! DEVELOPMENT AUTH: bearer tokens are checked against the PUBLIC development secret. \
                 Anyone can mint tokens for any organisation. Never expose this instance; \
                 set KEYMINT_AUTH__HS256_SECRET (or KEYMINT_PROFILE=production) for real use. !!!"
            );
        }
        let requested = settings.listen_addr()?;
        let listener =
            TcpListener::bind(requested).with_context(|| format!("server.listen: cannot bind {requested}"))?;
        let address = listener.local_addr()?;
        let http = HttpSettings {
            body_limit: settings.server.body_limit_bytes,
            workers: settings.server.workers,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_seconds),
        };
        let server = keymint_web::serve(listener, state, http)?;
        tracing::info!(%address, "Keymint listening");
        Ok(Self {
            address,
            server,
            database,
            usage,
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle to stop the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or a handle), lets in-flight requests
    /// finish, then closes the database cleanly.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // In-flight requests are done: whatever usage they recorded is written now.
        match self.usage.flush().await {
            Ok(written) => tracing::info!(keys = written, "key usage flushed"),
            Err(err) => tracing::error!(error = format!("{err:#}"), "key usage could not be flushed at shutdown"),
        }
        if let Some(database) = self.database {
            database.close().await;
        }
        tracing::info!("Keymint stopped");
        result
    }
}
