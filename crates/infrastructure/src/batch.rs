//! Opportunistic batching of point reads: concurrent lookups share one query.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::home_runtime::HomeRuntime;

/// What one batch fetch answers: every found value under each key it answers
/// (a value may answer several keys, or none of the asked ones).
pub type Fetched<K, V> = Vec<(K, V)>;

type FetchFuture<K, V, E> = Pin<Box<dyn Future<Output = Result<Fetched<K, V>, E>> + Send>>;
type Fetch<K, V, E> = Arc<dyn Fn(Vec<K>) -> FetchFuture<K, V, E> + Send + Sync>;
type Reply<V, E> = oneshot::Sender<Result<Option<V>, E>>;

/// Coalesces concurrent point reads into batch reads, without waiting for a
/// batch to fill.
///
/// A lookup joins a queue; if fewer than `max_loaders` batches are being read,
/// it starts a loader, which takes everything queued (up to `max_batch`), reads
/// it in one query and answers each waiter, until the queue is empty. Lookups
/// arriving while a query runs wait for the next one. A lone lookup therefore
/// costs what it always did (a batch of one, started at once), while under load
/// one statement, one round trip and, on SQLite, one hand-off to sqlx's worker
/// thread serve dozens of lookups. A loader runs as its own task on the
/// runtime the batcher was made on (not on whichever request's worker
/// started it), so a cancelled request never strands the others waiting on
/// its batch, and a lookup waits at most `max_wait`, however stuck the
/// storage is.
pub struct Batcher<K, V, E> {
    fetch: Fetch<K, V, E>,
    queue: Mutex<Queue<K, V, E>>,
    max_batch: usize,
    max_loaders: usize,
    max_wait: Duration,
    runtime: HomeRuntime,
}

struct Queue<K, V, E> {
    waiting: VecDeque<(K, Reply<V, E>)>,
    loaders: usize,
}

/// Gives a loader's place back however its task ends (a panicking fetch, a
/// runtime shutting down), so the batcher never believes loaders run that
/// do not.
struct Loader<K, V, E>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    batcher: Arc<Batcher<K, V, E>>,
    ended: bool,
}

impl<K, V, E> Drop for Loader<K, V, E>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    fn drop(&mut self) {
        if !self.ended {
            self.batcher.lock().loaders -= 1;
        }
    }
}

impl<K, V, E> std::fmt::Debug for Batcher<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max_batch", &self.max_batch)
            .field("max_loaders", &self.max_loaders)
            .finish_non_exhaustive()
    }
}

impl<K, V, E> Batcher<K, V, E>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Reads with `fetch`, at most `max_batch` keys per read and at most
    /// `max_loaders` reads at once (both at least one); a lookup gives up
    /// after `max_wait`. Loaders run on the current runtime, if any.
    pub fn new<F, Fut>(max_batch: usize, max_loaders: usize, max_wait: Duration, fetch: F) -> Arc<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Fetched<K, V>, E>> + Send + 'static,
    {
        Arc::new(Self {
            fetch: Arc::new(move |keys| Box::pin(fetch(keys))),
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                loaders: 0,
            }),
            max_batch: max_batch.max(1),
            max_loaders: max_loaders.max(1),
            max_wait,
            runtime: HomeRuntime::current(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue<K, V, E>> {
        // Every critical section leaves the queue consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value stored under `key`, read in whichever batch comes next.
    /// `Err(None)`: no answer within `max_wait`, or the loader was lost (the
    /// runtime is shutting down).
    pub async fn load(self: &Arc<Self>, key: K) -> Result<Option<V>, Option<E>> {
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self.lock();
            queue.waiting.push_back((key, reply));
            if queue.loaders < self.max_loaders {
                queue.loaders += 1;
                self.runtime.spawn(Arc::clone(self).run());
            }
        }
        match tokio::time::timeout(self.max_wait, answer).await {
            Ok(Ok(Ok(found))) => Ok(found),
            Ok(Ok(Err(e))) => Err(Some(e)),
            Ok(Err(_)) | Err(_) => Err(None),
        }
    }

    async fn run(self: Arc<Self>) {
        let mut loader = Loader {
            batcher: Arc::clone(&self),
            ended: false,
        };
        loop {
            let batch: Vec<(K, Reply<V, E>)> = {
                let mut queue = self.lock();
                // Whoever gave up waiting needs no read.
                queue.waiting.retain(|(_, reply)| !reply.is_closed());
                if queue.waiting.is_empty() {
                    // Decided under the lock a lookup queues under: nothing can be
                    // queued after this check without seeing one loader fewer.
                    queue.loaders -= 1;
                    loader.ended = true;
                    return;
                }
                let take = queue.waiting.len().min(self.max_batch);
                queue.waiting.drain(..take).collect()
            };
            let mut keys: Vec<K> = batch.iter().map(|(key, _)| key.clone()).collect();
            // A batch may ask for one key twice (two presentations of one key id).
            let mut seen = HashSet::with_capacity(keys.len());
            keys.retain(|key| seen.insert(key.clone()));
            match (self.fetch)(keys).await {
                Ok(found) => {
                    let found: HashMap<K, V> = found.into_iter().collect();
                    for (key, reply) in batch {
                        let _ = reply.send(Ok(found.get(&key).cloned()));
                    }
                }
                Err(e) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;

    /// A store of squares that records every batch it was asked for.
    fn squares(calls: Arc<Mutex<Vec<Vec<u32>>>>) -> Arc<Batcher<u32, u64, String>> {
        Batcher::new(8, 1, Duration::from_secs(5), move |keys: Vec<u32>| {
            let calls = calls.clone();
            async move {
                calls.lock().unwrap().push(keys.clone());
                tokio::time::sleep(Duration::from_millis(20)).await;
                if keys.contains(&13) {
                    return Err("unlucky".to_owned());
                }
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 2 == 0)
                    .map(|k| (k, u64::from(k) * u64::from(k)))
                    .collect())
            }
        })
    }

    #[tokio::test]
    async fn a_lone_lookup_is_a_batch_of_one() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = squares(calls.clone());
        assert_eq!(batcher.load(4).await, Ok(Some(16)));
        assert_eq!(batcher.load(3).await, Ok(None));
        assert_eq!(*calls.lock().unwrap(), vec![vec![4], vec![3]]);
    }

    #[tokio::test]
    async fn concurrent_lookups_share_reads_and_each_gets_its_own_answer() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = squares(calls.clone());
        // Each key asked twice in a row, so every batch holds repeats.
        let lookups = (0..20u32).map(|i| {
            let batcher = batcher.clone();
            async move { (i / 2, batcher.load(i / 2).await) }
        });
        let answers = futures_util::future::join_all(lookups).await;
        for (k, answer) in answers {
            let expected = (k % 2 == 0).then(|| u64::from(k) * u64::from(k));
            assert_eq!(answer, Ok(expected), "key {k}");
        }
        let calls = calls.lock().unwrap();
        // One loader, at most 8 lookups a read: 20 lookups in 3 reads.
        assert_eq!(calls.len(), 3, "{calls:?}");
        for batch in calls.iter() {
            let unique: HashSet<&u32> = batch.iter().collect();
            assert_eq!(unique.len(), batch.len(), "a key asked twice in one read: {batch:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_read_fails_its_batch_only() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = squares(calls.clone());
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.load(2).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Queued while the first read runs: one batch, which fails on 13.
        let (a, b) = tokio::join!(batcher.load(13), batcher.load(6));
        assert_eq!(first.await.unwrap(), Ok(Some(4)));
        assert_eq!(a, Err(Some("unlucky".to_owned())));
        assert_eq!(b, Err(Some("unlucky".to_owned())));
        assert_eq!(batcher.load(6).await, Ok(Some(36)), "the next batch reads again");
    }

    #[tokio::test]
    async fn a_cancelled_lookup_does_not_strand_its_batch() {
        let reads = Arc::new(AtomicUsize::new(0));
        let batcher: Arc<Batcher<u32, u32, String>> = Batcher::new(8, 1, Duration::from_secs(5), {
            let reads = reads.clone();
            move |keys: Vec<u32>| {
                reads.fetch_add(1, SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(keys.into_iter().map(|k| (k, k + 1)).collect())
                }
            }
        });
        // The lookup that started the loader gives up mid-read.
        let abandoned = tokio::time::timeout(Duration::from_millis(5), batcher.load(1)).await;
        assert!(abandoned.is_err());
        assert_eq!(batcher.load(2).await, Ok(Some(3)));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), batcher.load(1)).await,
            Ok(Ok(Some(2)))
        );
    }

    #[tokio::test]
    async fn a_stuck_read_fails_its_lookups_after_the_wait() {
        let batcher: Arc<Batcher<u32, u32, String>> =
            Batcher::new(8, 1, Duration::from_millis(50), |keys: Vec<u32>| async move {
                if keys.contains(&0) {
                    std::future::pending::<()>().await;
                }
                Ok(keys.into_iter().map(|k| (k, k)).collect())
            });
        assert_eq!(batcher.load(0).await, Err(None), "gave up after the wait");
        // The one loader is still stuck on key 0: this lookup waits for it too.
        assert_eq!(batcher.load(1).await, Err(None));
        assert_eq!(batcher.lock().loaders, 1);
    }

    #[tokio::test]
    async fn a_loader_that_panics_gives_its_place_back() {
        let batcher: Arc<Batcher<u32, u32, String>> =
            Batcher::new(8, 1, Duration::from_secs(5), |keys: Vec<u32>| async move {
                assert!(!keys.contains(&0), "a bug in the read");
                Ok(keys.into_iter().map(|k| (k, k)).collect())
            });
        assert_eq!(batcher.load(0).await, Err(None), "the read was lost");
        assert_eq!(batcher.load(3).await, Ok(Some(3)), "a new loader starts");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(batcher.lock().loaders, 0);
    }

    #[tokio::test]
    async fn loaders_stop_when_idle_and_start_again() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = squares(calls.clone());
        assert_eq!(batcher.load(2).await, Ok(Some(4)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(batcher.lock().loaders, 0);
        assert_eq!(batcher.load(8).await, Ok(Some(64)));
    }
}
