//! Wiring: adapters chosen from configuration, plugged into the use cases, served
//! over HTTP.
//!
//! The store is opened in `storage`; the adapters a key verifier is made of,
//! for this server and for services that verify keys in-process, are made in
//! `verification`; this module builds the application from them and runs it.

mod storage;
mod verification;

pub use storage::connect_and_migrate;
pub use verification::{key_verifier, KeyVerifier};

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;
use keymint_application::{
    Analytics, ApiKeys, Authenticate, DeliverWebhooks, ReportLeaks, Retention, TokenVerifier, Webhooks,
};
use keymint_infrastructure::metrics::{self, Observed};
use keymint_infrastructure::sql::Database;
use keymint_infrastructure::{
    CoalescingUsageTracker, DevTokenRequest, GithubKeysConfig, GithubReportSignatures, Hs256Verifier,
    HttpWebhookSender, JwksVerifier, OsKeyGenerator,
};
use keymint_web::{AppState, ConsoleSignIn, HttpMetrics, HttpSettings, MetricsRegistry};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use crate::configuration::{AuthMode, Profile, Settings};
use storage::Storage;
use verification::VerificationParts;

/// A built, bound, not yet running Keymint.
pub struct Application {
    address: SocketAddr,
    server: Server,
    /// The metrics listener, when metrics have an address of their own.
    metrics: Option<(SocketAddr, ServerHandle)>,
    database: Option<Database>,
    usage: Arc<CoalescingUsageTracker>,
    /// How many more times the shutdown flush is tried (one per pooled connection).
    flush_attempts: u32,
    /// Sends webhook deliveries until the server stops.
    dispatcher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Sends due webhook deliveries until aborted, up to `senders` at once (each
/// waits at most one attempt's timeout; the claim shares them fairly between
/// organisations and endpoints): claiming more as soon as any finishes, at
/// once when this process queued some, else every `poll` (other processes'
/// events, retries); and every `sweep`, queues the events no change causes.
/// Deletes analytics buckets past their retention once per `interval` across
/// every process sharing the database: each process tries every `interval`
/// (the first try at once), and a try prunes only if no process did within
/// the last `interval` (recorded in the database, so restarts do not prune
/// again early).
fn spawn_pruner(analytics: Analytics, retention: Retention, interval: std::time::Duration) {
    let every = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::hours(1));
    tokio::spawn(async move {
        loop {
            match analytics.prune(retention, every).await {
                Ok(None | Some(0)) => {}
                Ok(Some(deleted)) => tracing::info!(deleted, "analytics buckets past their retention deleted"),
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    "pruning analytics buckets failed; will retry"
                ),
            }
            tokio::time::sleep(interval).await;
        }
    });
}

fn spawn_dispatcher(
    deliver: DeliverWebhooks,
    queued: Arc<Notify>,
    senders: usize,
    poll: Duration,
    sweep: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut in_flight = tokio::task::JoinSet::new();
        let mut swept: Option<tokio::time::Instant> = None;
        loop {
            if swept.is_none_or(|at| at.elapsed() >= sweep) {
                swept = Some(tokio::time::Instant::now());
                if let Err(err) = deliver.sweep().await {
                    tracing::warn!(error = format!("{err:#}"), "keys could not be swept for announcements");
                }
            }
            let room = senders.saturating_sub(in_flight.len());
            let mut full = false;
            if room > 0 {
                match deliver.claim(room).await {
                    Ok(due) => {
                        full = due.len() == room;
                        for delivery in due {
                            let deliver = deliver.clone();
                            in_flight.spawn(async move { deliver.deliver(delivery).await });
                        }
                    }
                    Err(err) => tracing::warn!(error = format!("{err:#}"), "webhook deliveries could not be claimed"),
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = queued.notified() => {}
                () = tokio::time::sleep(poll) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
    })
}

/// The bearer-token verifier for the configured mode; a JWKS is fetched once
/// before serving and then refreshed in the background.
async fn token_verifier(mode: &AuthMode) -> anyhow::Result<Arc<dyn TokenVerifier>> {
    Ok(match mode {
        AuthMode::Hs256(config) => Arc::new(Hs256Verifier::new(config)),
        AuthMode::Jwks(config) => {
            let verifier = Arc::new(JwksVerifier::new(config.clone())?);
            // Warm the cache; if the provider is down now, requests will retry
            // (and answer 503 until a key set has been fetched once).
            let _ = verifier.refresh().await;
            verifier.spawn_refresh();
            verifier
        }
    })
}

/// Starts the metrics listener when metrics have an address of their own.
fn serve_metrics(
    settings: &Settings,
    registry: &MetricsRegistry,
) -> anyhow::Result<Option<(SocketAddr, ServerHandle)>> {
    let Some(requested) = settings.metrics.listen.filter(|_| settings.metrics.enabled) else {
        return Ok(None);
    };
    let listener = TcpListener::bind(requested).with_context(|| format!("metrics.listen: cannot bind {requested}"))?;
    let address = listener.local_addr()?;
    let server = keymint_web::serve_metrics(listener, registry.clone())?;
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(%address, "metrics listening");
    Ok(Some((address, handle)))
}

impl Application {
    /// Opens storage (running migrations), builds every adapter and binds the
    /// listener. Port 0 binds a free port; [`Application::address`] tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let Storage {
            repository,
            directory,
            database,
            queued,
        } = Storage::open(&settings).await?;
        let verifier = token_verifier(&settings.auth.mode).await?;
        let parts = VerificationParts::new(&settings, repository.clone())?;
        parts.listen_for_changes(&settings).await;
        parts.load_digests(&settings, repository.clone()).await;
        let sender = HttpWebhookSender::new(
            settings.webhooks.timeout,
            settings.webhooks.allow_private_targets,
            parts.clock.clone(),
        )?;
        let deliver = DeliverWebhooks::new(
            repository.clone(),
            Arc::new(sender),
            parts.clock.clone(),
            settings.delivery_policy(),
        );
        let mut registry = Registry::default();
        metrics::register_process(&mut registry);
        let keymint = registry.sub_registry_with_prefix("keymint");
        metrics::register(
            keymint,
            Observed {
                webhooks: Some(deliver.stats()),
                ..parts.observed(&settings, database.clone())
            },
        );
        let http_metrics = HttpMetrics::register(keymint);
        let registry = MetricsRegistry(Arc::new(registry));
        let generator = Arc::new(OsKeyGenerator::new(settings.keys.format()));
        let api_keys = ApiKeys::new(
            repository.clone(),
            parts.hasher.clone(),
            generator.clone(),
            parts.clock.clone(),
            settings.key_policy(),
        )
        .with_cache(parts.cache.clone())
        .with_ledger(repository.clone())
        .with_digest_filter(parts.digests.clone());
        let verify = parts.use_case(repository.clone(), settings.keys.format());
        let github = Arc::new(GithubReportSignatures::new(GithubKeysConfig {
            url: settings.leaks.github_keys_url.clone(),
            http_timeout: settings.leaks.github_keys_timeout,
            refetch_cooldown: settings.leaks.github_keys_cooldown,
            refresh_interval: settings.leaks.github_keys_refresh,
        })?);
        // Fetched on the first alert, not at start-up: most deployments never
        // receive one, and some cannot reach GitHub at all.
        github.spawn_refresh();
        let dispatcher = spawn_dispatcher(
            deliver,
            queued,
            settings.webhooks.max_in_flight,
            settings.webhooks.poll_interval,
            settings.webhooks.sweep_interval,
        );
        let analytics = Analytics::new(repository.clone(), parts.clock.clone());
        if settings.analytics.enabled {
            spawn_pruner(
                analytics.clone(),
                settings.analytics_retention(),
                settings.analytics.prune_interval,
            );
        }
        let state = AppState {
            analytics,
            webhooks: Webhooks::new(
                repository.clone(),
                generator,
                parts.clock.clone(),
                settings.webhook_policy(),
            ),
            leaks: ReportLeaks::new(verify.clone(), api_keys.clone(), settings.leaks.action),
            report_signatures: github,
            api_keys,
            verify,
            authenticate: Authenticate::new(verifier, directory, settings.auth.require_permissions),
            storage: repository,
            default_environment: settings.keys.default_environment,
            metrics: http_metrics,
        };
        tracing::info!(
            auth = %settings.describe_auth(),
            require_permissions = settings.auth.require_permissions,
            "management API tokens are verified"
        );
        if let Some((setting, url)) = settings.auth.insecure_source() {
            tracing::warn!(
                setting,
                url,
                "token signing keys are fetched over plain http: anyone on the path can swap them and mint tokens; \
                 use https"
            );
        }
        if settings.uses_development_secret() {
            tracing::warn!(
                "!!! DEVELOPMENT AUTH: management API tokens are checked against the PUBLIC development secret. \
                 Anyone can mint tokens for any organisation. Never expose this instance; \
                 set KEYMINT_AUTH__HS256_SECRET (or KEYMINT_PROFILE=production) for real use. !!!"
            );
        }
        let requested = settings.server.listen;
        let listener =
            TcpListener::bind(requested).with_context(|| format!("server.listen: cannot bind {requested}"))?;
        let address = listener.local_addr()?;
        let metrics = serve_metrics(&settings, &registry)?;
        let http = HttpSettings {
            body_limit: settings.server.body_limit_bytes,
            import_body_limit: settings.server.import_body_limit_bytes,
            body_timeout: settings.server.body_timeout,
            scanner_body_limit: settings.leaks.github_body_limit_bytes,
            body_memory: settings.server.body_memory_bytes,
            scanner_body_memory: settings.leaks.github_body_memory_bytes,
            workers: settings.server.workers,
            shutdown_timeout: settings.server.shutdown_timeout,
            metrics: (settings.metrics.enabled && settings.metrics.listen.is_none()).then_some(registry),
            console: settings.console.enabled.then(|| console_sign_in(&settings, address)),
            trusted_proxies: keymint_web::TrustedProxies::new(settings.server.trusted_proxies.clone())
                .forwarded_header(settings.server.forwarded_header),
        };
        let server = keymint_web::serve(listener, state, http)?;
        tracing::info!(%address, "Keymint listening");
        Ok(Self {
            address,
            server,
            metrics,
            database,
            usage: parts.usage,
            flush_attempts: settings.database.max_connections,
            dispatcher,
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` is served when it has an address of its own.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(address, _)| *address)
    }

    /// A handle to stop the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or a handle), lets in-flight requests
    /// finish, then closes the database cleanly.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // A delivery cut short here is claimed again when its lease lapses.
        self.dispatcher.abort();
        if let Some((_, metrics)) = &self.metrics {
            metrics.stop(true).await;
        }
        // In-flight requests are done: whatever usage they recorded is written now.
        // A PostgreSQL connection opened by an HTTP worker died with the worker's
        // runtime (its socket belonged to it); a failed flush keeps its uses and
        // drops that connection, so trying once per pooled connection reaches a
        // live or a fresh one.
        let mut flushed = self.usage.flush().await;
        for _ in 0..self.flush_attempts {
            if flushed.is_ok() {
                break;
            }
            flushed = self.usage.flush().await;
        }
        match flushed {
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

/// How the console signs people in: at the issuer when it has a client id
/// there; in the development profile, with tokens this process signs (only
/// when it verifies them with that same secret, and only on a loopback
/// listener unless `console.allow_remote_dev_sign_in`); otherwise not at all.
fn console_sign_in(settings: &Settings, listening: SocketAddr) -> ConsoleSignIn {
    let rules = &settings.auth.hs256.rules;
    if let (Some(client_id), Some(issuer)) = (&settings.console.client_id, &rules.issuer) {
        return ConsoleSignIn::Oidc {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            audience: rules.audience.clone(),
            scope: settings.console.scope.clone(),
            org_claim: rules.org_claim.clone(),
        };
    }
    match &settings.auth.mode {
        AuthMode::Hs256(config) if settings.profile == Profile::Development => {
            // Whoever reaches the development sign-in acts for any organisation,
            // with tokens signed by whatever secret is configured: a strong
            // secret on a development profile must not make it a skeleton key.
            if !listening.ip().is_loopback() {
                if !settings.console.allow_remote_dev_sign_in {
                    tracing::warn!(
                        %listening,
                        "the console's development sign-in is off: this listener is reachable from other hosts; \
                         sign in with an OIDC issuer (console.client_id), or set \
                         console.allow_remote_dev_sign_in = true on a trusted network"
                    );
                    return ConsoleSignIn::Unavailable;
                }
                tracing::warn!(
                    %listening,
                    "!!! the console's development sign-in is reachable from other hosts: anyone who reaches \
                     /console gets a token for any organisation (console.allow_remote_dev_sign_in) !!!"
                );
            }
            let config = config.clone();
            let ttl_seconds = settings.console.dev_session_minutes.saturating_mul(60);
            ConsoleSignIn::Development(Arc::new(move |org_id, subject| {
                let now = keymint_infrastructure::unix_now();
                DevTokenRequest {
                    org_id,
                    subject: subject.to_owned(),
                    ttl_seconds,
                }
                .sign(&config, now)
                .map(|token| (token, now.saturating_add(ttl_seconds)))
                .map_err(|err| err.to_string())
            }))
        }
        _ => ConsoleSignIn::Unavailable,
    }
}
