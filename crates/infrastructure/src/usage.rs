//! `last_used_at` and verification counts, coalesced in memory and written in
//! batches by one flusher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keymint_application::{
    AnalyticsStore, BucketCount, CountedVerification, UsageSink, UsageTracker, VerificationCounter,
};
use keymint_domain::KeyId;
use prometheus_client::metrics::histogram::Histogram;

use crate::analytics::AnalyticsBuffer;

/// The most buckets one write transaction carries to storage (the SQL
/// adapter splits each into statements of its own size, `INSERT_CHUNK`):
/// short enough not to hold SQLite's one write lock long.
const ANALYTICS_BATCH: usize = 500;

/// Seconds one flush's analytics write takes, from a few buckets on
/// PostgreSQL (milliseconds) to a full buffer on a slow disk: beyond
/// `analytics.flush_seconds` (60 s by default) the writes fall behind.
const WRITE_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

const MINUTE: Duration = Duration::from_secs(60);

/// When a write of verification counts is due after one at `now`: the next
/// wall-clock multiple of `interval` (since the Unix epoch), an interval of a
/// minute or more rounded up to whole minutes. Every process then writes at
/// the same moments, each write just after minutes end, so a write takes
/// whole minutes and a count waits at most the (rounded) interval.
fn next_write(now: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let mut step = interval.as_secs().max(1);
    if interval >= MINUTE {
        step = step.div_ceil(60).saturating_mul(60);
    }
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let next = now.timestamp().div_euclid(step).saturating_add(1).saturating_mul(step);
    DateTime::from_timestamp(next, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Records `last_used_at` without a database write per verification: uses are
/// collected in memory and written every `interval` (at most one write per key
/// per interval), and on [`CoalescingUsageTracker::flush`] at shutdown.
///
/// With a resolution, a key this process wrote less than that long ago waits
/// until the resolution has passed: a key's first use is written at the next
/// flush, a key in steady use once per resolution. At
/// 100 000 keys in use, writing every key every 5 s was 20 000 row updates a
/// second, the largest part of PostgreSQL's work in the project's benchmark
/// (BENCHMARKS.md).
pub struct CoalescingUsageTracker {
    pending: Mutex<HashMap<KeyId, DateTime<Utc>>>,
    /// When each key's use was last written, kept for one resolution.
    written_at: Mutex<HashMap<KeyId, DateTime<Utc>>>,
    resolution: chrono::Duration,
    sink: Arc<dyn UsageSink>,
    /// Verification counts and where they go, when analytics are on.
    analytics: Option<Counting>,
    /// Serialises flushes so a shutdown flush waits for a periodic one in flight.
    flushing: tokio::sync::Mutex<()>,
    flushes: AtomicU64,
    failed_flushes: AtomicU64,
    written: AtomicU64,
}

/// What the tracker has written since start-up, and what waits to be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageStats {
    /// Flushes that wrote a batch.
    pub flushes: u64,
    /// Flushes whose write failed (their uses were kept for the next one).
    pub failed_flushes: u64,
    /// Keys whose `last_used_at` was written, summed over flushes.
    pub keys_written: u64,
    /// Keys with a use not yet written.
    pub pending: u64,
    /// Verification buckets not yet written.
    pub pending_buckets: u64,
    /// Verifications not counted because the analytics buffer was full.
    pub dropped_verifications: u64,
    /// Verification buckets written, summed over flushes.
    pub buckets_written: u64,
}

/// Verification counts waiting, where they go, and how often.
struct Counting {
    buffer: AnalyticsBuffer,
    store: Arc<dyn AnalyticsStore>,
    /// How long counts wait between writes (`analytics.flush_seconds`).
    interval: Duration,
    /// When the next write is due (on the wall clock: see [`next_write`]).
    next_write: Mutex<DateTime<Utc>>,
    /// How long each write of the counts took, failed ones too.
    writes: Histogram,
    /// Buckets written.
    written: AtomicU64,
}

impl std::fmt::Debug for CoalescingUsageTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoalescingUsageTracker").finish_non_exhaustive()
    }
}

impl CoalescingUsageTracker {
    /// A tracker writing through `sink` at every flush.
    pub fn new(sink: Arc<dyn UsageSink>) -> Self {
        Self::with_resolution(sink, Duration::ZERO)
    }

    /// A tracker writing a key's use again only once `resolution` has passed
    /// since it last wrote that key.
    pub fn with_resolution(sink: Arc<dyn UsageSink>, resolution: Duration) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            written_at: Mutex::new(HashMap::new()),
            resolution: chrono::Duration::from_std(resolution).unwrap_or(chrono::Duration::MAX),
            sink,
            analytics: None,
            flushing: tokio::sync::Mutex::new(()),
            flushes: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// Also counts verifications ([`VerificationCounter`]), written to `store`
    /// by the first flush once a write is due ([`next_write`]: the clock's
    /// multiples of `interval`, whole minutes from one up) and by
    /// [`CoalescingUsageTracker::flush`], whatever the resolution. The
    /// interval (and the write's own time) is what a crash can lose; a longer
    /// one merges more verifications of a key into one row write.
    pub fn with_analytics(mut self, store: Arc<dyn AnalyticsStore>, interval: Duration) -> Self {
        self.analytics = Some(Counting {
            buffer: AnalyticsBuffer::default(),
            store,
            interval,
            next_write: Mutex::new(next_write(Utc::now(), interval)),
            writes: Histogram::new(WRITE_BUCKETS),
            written: AtomicU64::new(0),
        });
        self
    }

    /// How long each write of verification counts took, in seconds (none
    /// without analytics).
    pub fn analytics_writes(&self) -> Option<&Histogram> {
        self.analytics.as_ref().map(|counting| &counting.writes)
    }

    /// Counts since start-up, and the uses waiting now.
    pub fn stats(&self) -> UsageStats {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner).len();
        UsageStats {
            flushes: self.flushes.load(Relaxed),
            failed_flushes: self.failed_flushes.load(Relaxed),
            keys_written: self.written.load(Relaxed),
            pending: u64::try_from(pending).unwrap_or(u64::MAX),
            pending_buckets: self.analytics.as_ref().map_or(0, |counting| {
                u64::try_from(counting.buffer.pending()).unwrap_or(u64::MAX)
            }),
            dropped_verifications: self.analytics.as_ref().map_or(0, |counting| counting.buffer.dropped()),
            buckets_written: self
                .analytics
                .as_ref()
                .map_or(0, |counting| counting.written.load(Relaxed)),
        }
    }

    /// Writes every pending use now, whatever the resolution (at shutdown).
    /// On failure the uses are put back (unless a newer one arrived meanwhile)
    /// to be written by the next flush.
    pub async fn flush(&self) -> anyhow::Result<usize> {
        self.write(true).await
    }

    /// Writes the pending uses the resolution lets through; the others wait.
    pub async fn flush_due(&self) -> anyhow::Result<usize> {
        self.write(false).await
    }

    /// Adds uses to the pending ones, keeping each key's latest.
    fn put_back(&self, uses: impl IntoIterator<Item = (KeyId, DateTime<Utc>)>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, at) in uses {
            let entry = pending.entry(id).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    async fn write(&self, everything: bool) -> anyhow::Result<usize> {
        let _flushing = self.flushing.lock().await;
        let counted = self.write_counts(everything, Utc::now()).await;
        let used = self.write_uses(everything).await;
        counted?;
        used
    }

    /// Writes every verification count; on failure the unwritten ones are put
    /// back for the next flush (a batch written before the failure stays
    /// written: counts are additive, nothing is counted twice).
    async fn write_counts(&self, everything: bool, now: DateTime<Utc>) -> anyhow::Result<()> {
        let Some(Counting {
            buffer,
            store,
            interval,
            next_write: due,
            writes,
            written,
        }) = &self.analytics
        else {
            return Ok(());
        };
        {
            let mut due = due.lock().unwrap_or_else(PoisonError::into_inner);
            let after_now = next_write(now, *interval);
            // Due later than a write from now would be: the clock was set back,
            // and waiting for the old moment could hold counts for hours.
            let clock_set_back = *due > after_now;
            if !everything && now < *due && !clock_set_back {
                return Ok(());
            }
            *due = after_now;
        }
        // A minute is written whole once it has ended: at 100 000 keys in use,
        // a write of two partial minutes carried each key's buckets twice.
        let mut taken = if everything || *interval < MINUTE {
            buffer.take_all(now)
        } else {
            buffer.take_ended(now)
        };
        if taken.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut outcome = Ok(());
        'tables: while let Some(counts) = taken.next_part() {
            let mut left = counts.into_iter();
            loop {
                let batch: Vec<BucketCount> = left.by_ref().take(ANALYTICS_BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                if let Err(err) = store.add_counts(&batch).await {
                    self.failed_flushes.fetch_add(1, Relaxed);
                    buffer.put_back(batch.into_iter().chain(left).chain(taken.into_rest()));
                    outcome = Err(err.into());
                    break 'tables;
                }
                written.fetch_add(batch.len() as u64, Relaxed);
            }
        }
        writes.observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn write_uses(&self, everything: bool) -> anyhow::Result<usize> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        // Due by the wall clock, not by the use's time: a key that goes quiet
        // after a held use still gets that use written a resolution later.
        let now = Utc::now();
        let (batch, held): (Vec<_>, Vec<_>) = {
            let written_at = self.written_at.lock().unwrap_or_else(PoisonError::into_inner);
            taken.into_iter().partition(|(id, _)| {
                everything
                    || written_at
                        .get(id)
                        .is_none_or(|written| now - *written >= self.resolution)
            })
        };
        self.put_back(held);
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(err) = self.sink.record_usage(&batch).await {
            self.failed_flushes.fetch_add(1, Relaxed);
            self.put_back(batch);
            return Err(err.into());
        }
        if self.resolution > chrono::Duration::zero() {
            let mut written_at = self.written_at.lock().unwrap_or_else(PoisonError::into_inner);
            written_at.extend(batch.iter().map(|(id, _)| (*id, now)));
            // A key written a resolution ago is due anyway: forget it, so the
            // map holds only keys written within the last resolution.
            written_at.retain(|_, written| now - *written < self.resolution);
        }
        self.flushes.fetch_add(1, Relaxed);
        self.written.fetch_add(batch.len() as u64, Relaxed);
        Ok(batch.len())
    }

    /// Flushes every `interval` until the tracker is dropped.
    pub fn spawn_flusher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(tracker) = weak.upgrade() else { break };
                if let Err(err) = tracker.flush_due().await {
                    tracing::warn!(error = format!("{err:#}"), "recording key usage failed; will retry");
                }
            }
        })
    }
}

impl UsageTracker for CoalescingUsageTracker {
    fn record(&self, id: KeyId, at: DateTime<Utc>) {
        self.put_back([(id, at)]);
    }
}

impl VerificationCounter for CoalescingUsageTracker {
    fn count(&self, verification: CountedVerification) {
        if let Some(counting) = &self.analytics {
            counting.buffer.count(verification);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryApiKeyRepository;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[tokio::test]
    async fn a_key_in_steady_use_waits_a_resolution_and_shutdown_writes_everything() {
        let repository = Arc::new(InMemoryApiKeyRepository::new());
        let tracker = CoalescingUsageTracker::with_resolution(repository, Duration::from_secs(3600));
        let (a, b) = (
            KeyId::from_uuid(Uuid::from_u128(1)),
            KeyId::from_uuid(Uuid::from_u128(2)),
        );
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        tracker.record(a, at(0));
        assert_eq!(tracker.flush_due().await.unwrap(), 1, "a first use is written at once");
        tracker.record(a, at(5));
        tracker.record(b, at(5));
        assert_eq!(tracker.flush_due().await.unwrap(), 1, "b's first use; a waits");
        tracker.record(a, at(30));
        assert_eq!(tracker.flush_due().await.unwrap(), 0);
        assert_eq!(
            tracker.pending.lock().unwrap().get(&a),
            Some(&at(30)),
            "the latest use waits"
        );
        assert_eq!(tracker.flush().await.unwrap(), 1, "shutdown writes what waits");
        assert_eq!(tracker.stats().keys_written, 3);
        assert_eq!(tracker.stats().pending, 0);
    }

    #[tokio::test]
    async fn a_held_use_is_written_once_the_resolution_has_passed_even_if_the_key_goes_quiet() {
        let repository = Arc::new(InMemoryApiKeyRepository::new());
        let tracker = CoalescingUsageTracker::with_resolution(repository, Duration::from_millis(200));
        let a = KeyId::from_uuid(Uuid::from_u128(1));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        tracker.record(a, t0);
        assert_eq!(tracker.flush_due().await.unwrap(), 1);
        tracker.record(a, t0 + chrono::Duration::seconds(1));
        assert_eq!(
            tracker.flush_due().await.unwrap(),
            0,
            "written less than a resolution ago"
        );
        // No further use: the held one is written once the resolution passed.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(tracker.flush_due().await.unwrap(), 1);
        assert_eq!(tracker.stats().pending, 0);
    }

    #[test]
    fn writes_fall_due_on_wall_clock_multiples_of_the_interval_in_whole_minutes_from_one() {
        let at = |h: u32, m: u32, s: u32| Utc.with_ymd_and_hms(2026, 12, 4, h, m, s).unwrap();
        let seconds = Duration::from_secs;
        assert_eq!(next_write(at(10, 0, 5), seconds(60)), at(10, 1, 0));
        assert_eq!(
            next_write(at(10, 0, 0), seconds(60)),
            at(10, 1, 0),
            "not the same moment again"
        );
        assert_eq!(
            next_write(at(10, 0, 5), seconds(90)),
            at(10, 2, 0),
            "90 s is two minutes"
        );
        assert_eq!(next_write(at(10, 3, 5), seconds(300)), at(10, 5, 0));
        assert_eq!(next_write(at(10, 0, 5), seconds(1)), at(10, 0, 6));
        assert_eq!(next_write(at(10, 0, 5), seconds(15)), at(10, 0, 15));
        assert_eq!(next_write(at(10, 0, 5), Duration::ZERO), at(10, 0, 6));
        assert_eq!(
            next_write(at(10, 0, 5), Duration::MAX),
            DateTime::<Utc>::MAX_UTC,
            "never"
        );
    }

    /// A tracker counting into a store that records what each write carried.
    fn recording_tracker(interval: Duration) -> (CoalescingUsageTracker, Arc<Mutex<Vec<BucketCount>>>) {
        use keymint_application::MockAnalyticsStore;
        let written = Arc::new(Mutex::new(Vec::<BucketCount>::new()));
        let mut store = MockAnalyticsStore::new();
        let sink = written.clone();
        store.expect_add_counts().returning(move |counts| {
            sink.lock().unwrap().extend_from_slice(counts);
            Ok(())
        });
        let tracker = CoalescingUsageTracker::new(Arc::new(InMemoryApiKeyRepository::new()))
            .with_analytics(Arc::new(store), interval);
        (tracker, written)
    }

    fn counted(key: u128, at: DateTime<Utc>) -> CountedVerification {
        use keymint_domain::{OrgId, TagSet, VerificationOutcome};
        CountedVerification {
            org_id: OrgId::from_uuid(Uuid::from_u128(7)),
            key_id: KeyId::from_uuid(Uuid::from_u128(key)),
            owner_id: None,
            outcome: VerificationOutcome::Valid,
            tags: TagSet::empty(),
            spent_credits: 1,
            at,
        }
    }

    #[tokio::test]
    async fn a_due_write_takes_the_ended_minutes_and_a_shutdown_takes_the_current_one_too() {
        let (tracker, written) = recording_tracker(Duration::from_secs(60));
        let now = Utc::now();
        let minute = keymint_domain::Granularity::Minute.bucket_of(now);
        let ended = minute - chrono::Duration::minutes(1);
        tracker.count(counted(1, ended + chrono::Duration::seconds(30)));
        tracker.count(counted(2, minute + chrono::Duration::seconds(1)));
        // Not due yet: the first write falls on the next minute.
        tracker.write_counts(false, now).await.unwrap();
        assert!(written.lock().unwrap().is_empty());
        let next = minute + chrono::Duration::minutes(1);
        tracker.count(counted(3, next));
        tracker
            .write_counts(false, next + chrono::Duration::seconds(2))
            .await
            .unwrap();
        let minutes: Vec<_> = written.lock().unwrap().iter().map(|count| count.minute).collect();
        assert_eq!(
            minutes,
            [ended, minute],
            "the ended minutes, oldest first; not the current one"
        );
        assert_eq!(tracker.stats().pending_buckets, 1);
        tracker.flush().await.unwrap();
        assert_eq!(
            written.lock().unwrap().len(),
            3,
            "shutdown writes the current minute too"
        );
    }

    #[tokio::test]
    async fn a_clock_set_back_does_not_hold_the_counts_until_the_old_due_time() {
        let (tracker, written) = recording_tracker(Duration::from_secs(60));
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        tracker.count(counted(1, later));
        tracker
            .write_counts(false, later + chrono::Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(written.lock().unwrap().len(), 1);
        // The clock goes back an hour: the next write is due within a minute
        // of it, not an hour later.
        tracker.count(counted(2, now));
        let back = now + chrono::Duration::minutes(1);
        tracker.write_counts(false, back).await.unwrap();
        assert_eq!(written.lock().unwrap().len(), 2, "{:?}", written.lock().unwrap());
    }

    #[tokio::test]
    async fn under_a_minute_every_write_takes_the_current_minute_too() {
        let (tracker, written) = recording_tracker(Duration::from_secs(1));
        let now = Utc::now();
        tracker.count(counted(1, now));
        tracker
            .write_counts(false, now + chrono::Duration::seconds(2))
            .await
            .unwrap();
        assert_eq!(written.lock().unwrap().len(), 1);
    }

    /// A write that fails after its first batch keeps the rest (of that
    /// shard, and the shards not yet taken), and the next flush writes exactly
    /// those: no count lost or written twice.
    #[tokio::test]
    async fn a_failed_analytics_write_keeps_what_it_did_not_write_for_the_next_flush() {
        use keymint_application::{MockAnalyticsStore, RepositoryError};
        let written = Arc::new(Mutex::new(Vec::<BucketCount>::new()));
        let calls = Arc::new(AtomicU64::new(0));
        let mut store = MockAnalyticsStore::new();
        {
            let (written, calls) = (written.clone(), calls.clone());
            store.expect_add_counts().returning(move |counts| {
                if calls.fetch_add(1, Relaxed) == 1 {
                    return Err(RepositoryError::Unavailable(anyhow::anyhow!("storage is down")));
                }
                written.lock().unwrap().extend_from_slice(counts);
                Ok(())
            });
        }
        let tracker = CoalescingUsageTracker::new(Arc::new(InMemoryApiKeyRepository::new()))
            .with_analytics(Arc::new(store), Duration::ZERO);
        // The shard written first (the last) holds over two batches, so its
        // second fails with a third left; another shard is not yet written.
        let shards = crate::analytics::SHARDS as u128;
        let first: Vec<u128> = (0..1200).map(|i| i * shards + shards - 1).collect();
        let later: Vec<u128> = (0..100).map(|i| i * shards).collect();
        let keys = first.len() + later.len();
        // One moment for all: counts across a minute's end would be two tables.
        let at = Utc::now();
        for key in first.into_iter().chain(later) {
            tracker.count(counted(key, at));
        }
        assert!(tracker.flush().await.is_err(), "the second batch failed");
        let stats = tracker.stats();
        assert_eq!(written.lock().unwrap().len(), ANALYTICS_BATCH);
        assert_eq!(stats.buckets_written, ANALYTICS_BATCH as u64);
        assert_eq!(stats.pending_buckets, (keys - ANALYTICS_BATCH) as u64);
        assert_eq!(stats.failed_flushes, 1);
        tracker.flush().await.unwrap();
        let mut keys_written: Vec<KeyId> = written.lock().unwrap().iter().map(|count| count.key_id).collect();
        keys_written.sort();
        keys_written.dedup();
        assert_eq!(keys_written.len(), keys, "every key's count written once");
        assert_eq!(
            written.lock().unwrap().iter().map(|count| count.count).sum::<u64>(),
            keys as u64
        );
        assert_eq!(tracker.stats().pending_buckets, 0);
    }

    #[tokio::test]
    async fn usage_is_coalesced_to_the_latest_time_per_key_and_flushed() {
        let repository = Arc::new(InMemoryApiKeyRepository::new());
        let tracker = CoalescingUsageTracker::new(repository);
        let id = KeyId::from_uuid(Uuid::from_u128(1));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for s in [3, 1, 2] {
            tracker.record(id, t0 + chrono::Duration::seconds(s));
        }
        assert_eq!(
            tracker.pending.lock().unwrap().get(&id),
            Some(&(t0 + chrono::Duration::seconds(3)))
        );
        assert_eq!(tracker.stats().pending, 1);
        assert_eq!(tracker.flush().await.unwrap(), 1, "one write for three uses");
        assert_eq!(tracker.flush().await.unwrap(), 0);
        let stats = tracker.stats();
        assert_eq!(
            (
                stats.flushes,
                stats.failed_flushes,
                stats.keys_written,
                stats.pending,
                stats.pending_buckets
            ),
            (1, 0, 1, 0, 0),
            "an empty flush writes nothing and is not counted"
        );
    }
}
