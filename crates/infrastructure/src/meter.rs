//! Group commit for metered verifications: concurrent verifications of one key
//! are settled together, in arrival order, in one storage transaction.
//!
//! Under load the cost of a write is shared by every verification that
//! arrived while the previous one ran, so a hot key costs one transaction per
//! batch, not one per request; at low load a batch is one verification and
//! its answer is as fresh as a single write. Nothing is handed out ahead of
//! use, so nothing has to be returned on shutdown and no process can hold
//! credits another one runs short of.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{Meter, RepositoryError, UsageLedger};
use keymint_domain::{Demand, KeyId, Outcome};
use tokio::sync::oneshot;

/// The most verifications settled in one transaction; more wait for the next.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Option<Outcome>, RepositoryError>>;

struct Pending {
    demand: Demand,
    now: DateTime<Utc>,
    reply: Reply,
}

type Queues = Mutex<HashMap<KeyId, Vec<Pending>>>;

/// How the meter has been doing, for `/metrics`.
#[derive(Debug, Default)]
pub struct MeterStats {
    batches: AtomicU64,
    settled: AtomicU64,
    failed_batches: AtomicU64,
}

impl MeterStats {
    /// Transactions run.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Verifications settled by them.
    pub fn settled(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Transactions that failed (their verifications answered with an error).
    pub fn failed_batches(&self) -> u64 {
        self.failed_batches.load(Ordering::Relaxed)
    }
}

/// A [`Meter`] that settles each key's concurrent demands in batches.
pub struct BatchingMeter {
    ledger: Arc<dyn UsageLedger>,
    queues: Arc<Queues>,
    stats: Arc<MeterStats>,
}

impl std::fmt::Debug for BatchingMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingMeter").finish_non_exhaustive()
    }
}

impl BatchingMeter {
    /// A meter over `ledger`. Needs a Tokio runtime: each busy key's batches
    /// run in a task of their own, so a verification that is abandoned by its
    /// client never strands the others waiting behind it.
    pub fn new(ledger: Arc<dyn UsageLedger>) -> Self {
        Self {
            ledger,
            queues: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<MeterStats> {
        Arc::clone(&self.stats)
    }
}

/// One error for every verification of a failed batch (errors are not
/// `Clone`; the kind is what callers act on, the cause is logged once here).
fn shared(err: &RepositoryError) -> RepositoryError {
    match err {
        RepositoryError::Unavailable(_) => RepositoryError::Unavailable(anyhow!("storage is unavailable")),
        _ => RepositoryError::Unexpected(anyhow!("settling usage failed")),
    }
}

/// Ends a key's queue if its task dies (a panic in an adapter): the waiting
/// verifications get an error instead of waiting forever, and the next one
/// starts a new task.
struct EndQueue {
    queues: Arc<Queues>,
    id: KeyId,
}

impl Drop for EndQueue {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
        }
    }
}

async fn drain(ledger: Arc<dyn UsageLedger>, queues: Arc<Queues>, stats: Arc<MeterStats>, id: KeyId) {
    let _end = EndQueue {
        queues: Arc::clone(&queues),
        id,
    };
    loop {
        let batch: Vec<Pending> = {
            let mut queues = queues.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(pending) = queues.get_mut(&id) else {
                return;
            };
            if pending.is_empty() {
                queues.remove(&id);
                return;
            }
            let take = pending.len().min(MAX_BATCH);
            pending.drain(..take).collect()
        };
        let (demands, replies): (Vec<(Demand, DateTime<Utc>)>, Vec<Reply>) =
            batch.into_iter().map(|p| ((p.demand, p.now), p.reply)).unzip();
        let result = ledger.settle(id, &demands).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(Some(outcomes)) => {
                stats.settled.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The requester may have gone; what it spent stays spent.
                    let _ = reply.send(Ok(Some(outcome)));
                }
            }
            Ok(None) => {
                for reply in replies {
                    let _ = reply.send(Ok(None));
                }
            }
            Err(err) => {
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, key_id = %id, batch = replies.len(), "settling usage failed");
                for reply in replies {
                    let _ = reply.send(Err(shared(&err)));
                }
            }
        }
    }
}

#[async_trait]
impl Meter for BatchingMeter {
    async fn charge(&self, id: KeyId, demand: Demand, now: DateTime<Utc>) -> Result<Option<Outcome>, RepositoryError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { demand, now, reply };
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            match queues.entry(id) {
                Entry::Occupied(mut queue) => {
                    queue.get_mut().push(pending);
                    false
                }
                Entry::Vacant(slot) => {
                    slot.insert(vec![pending]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(drain(
                Arc::clone(&self.ledger),
                Arc::clone(&self.queues),
                Arc::clone(&self.stats),
                id,
            ));
        }
        answer
            .await
            .map_err(|_| RepositoryError::Unexpected(anyhow!("the usage settlement task ended without an answer")))?
    }
}
