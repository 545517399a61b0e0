//! A set of public keys fetched over HTTP and cached by id: an identity
//! provider's JWKS, GitHub's secret-scanning signing keys.
//!
//! An unknown id triggers at most one refetch per cooldown, however many
//! requests carry it (single-flight behind a mutex); a scheduled refresh drops
//! keys the publisher removed. If the publisher is down, cached keys keep
//! working.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::Mutex;

/// Runs `refresh` on `owner` every `interval` for as long as anything else
/// holds `owner`: the scheduled refresh of a key set (a JWKS, GitHub's keys),
/// which ends by itself when its owner is dropped.
pub(crate) fn spawn_refresh_loop<T, F, Fut>(
    owner: &Arc<T>,
    interval: Duration,
    refresh: F,
) -> tokio::task::JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak: Weak<T> = Arc::downgrade(owner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(owner) = weak.upgrade() else { break };
            refresh(owner).await;
        }
    })
}

/// Keys by id, as last fetched.
pub(crate) type Keys<K> = HashMap<String, Arc<K>>;

struct Snapshot<K> {
    keys: Keys<K>,
    /// Bumped on every successful fetch, so waiters can tell a refresh happened.
    generation: u64,
    fetched: bool,
}

/// What a look-up in the cache found.
pub(crate) struct Cached<K> {
    /// The key, if cached.
    pub(crate) key: Option<Arc<K>>,
    /// Whether any fetch ever succeeded.
    pub(crate) fetched: bool,
    /// The cache generation looked at.
    pub(crate) generation: u64,
}

/// The cache and the HTTP client fetching into it.
pub(crate) struct RemoteKeySet<K> {
    /// What the keys are, for logs ("JWKS", "GitHub secret-scanning keys").
    what: &'static str,
    client: reqwest::Client,
    max_document_bytes: usize,
    cooldown: Duration,
    snapshot: RwLock<Snapshot<K>>,
    /// Held while fetching; records when the last unknown-key refetch started.
    fetching: Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

impl<K> RemoteKeySet<K> {
    /// An empty cache whose fetches time out after `http_timeout`, read at most
    /// `max_document_bytes`, never follow redirects, and refetch for unknown ids
    /// at most once per `cooldown`.
    pub(crate) fn new(
        what: &'static str,
        http_timeout: Duration,
        max_document_bytes: usize,
        cooldown: Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(http_timeout)
            .timeout(http_timeout)
            // Fetched rarely and from whichever worker needs it: no pooled
            // connections tied to one worker's runtime.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .with_context(|| format!("cannot build the HTTP client for the {what}"))?;
        Ok(Self {
            what,
            client,
            max_document_bytes,
            cooldown,
            snapshot: RwLock::new(Snapshot {
                keys: HashMap::new(),
                generation: 0,
                fetched: false,
            }),
            fetching: Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many fetches were attempted so far.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// GETs `url`, refusing non-success answers and bodies over the limit
    /// (counted as they arrive, whatever `Content-Length` says).
    pub(crate) async fn get_limited(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        let limit = self.max_document_bytes;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            bail!("GET {url}: document larger than {limit} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.with_context(|| format!("reading {url}"))? {
            if body.len() + chunk.len() > limit {
                bail!("GET {url}: document larger than {limit} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn fetch_into<F, Fut>(&self, fetch: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Keys<K>>>,
    {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let keys = fetch().await?;
        let count = keys.len();
        let mut snapshot = self.snapshot.write().unwrap_or_else(PoisonError::into_inner);
        snapshot.keys = keys;
        snapshot.generation += 1;
        snapshot.fetched = true;
        tracing::info!(keys = count, what = self.what, "public keys fetched");
        Ok(())
    }

    /// Fetches the set now (start-up and the periodic refresh). On failure the
    /// cached keys stay in use.
    ///
    /// It does not start the unknown-key cooldown: a key rotated in just after
    /// a scheduled refresh is still picked up on first sight.
    pub(crate) async fn refresh<F, Fut>(&self, fetch: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Keys<K>>>,
    {
        let _fetching = self.fetching.lock().await;
        self.fetch_into(fetch)
            .await
            .inspect_err(|e| tracing::warn!(error = format!("{e:#}"), what = self.what, "key refresh failed"))
    }

    /// Refetches because a request named a key we lack, unless another request
    /// just did so (then its result is used) or the cooldown has not passed.
    pub(crate) async fn refetch_for_unknown<F, Fut>(&self, seen_generation: u64, fetch: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Keys<K>>>,
    {
        let mut last = self.fetching.lock().await;
        if self.lookup(|_| None).generation != seen_generation {
            return;
        }
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_into(fetch).await {
            tracing::warn!(
                error = format!("{e:#}"),
                what = self.what,
                "refetch for an unknown key id failed"
            );
        }
    }

    /// Picks a cached key with `pick`.
    pub(crate) fn lookup(&self, pick: impl FnOnce(&Keys<K>) -> Option<Arc<K>>) -> Cached<K> {
        let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        Cached {
            key: pick(&snapshot.keys),
            fetched: snapshot.fetched,
            generation: snapshot.generation,
        }
    }
}
