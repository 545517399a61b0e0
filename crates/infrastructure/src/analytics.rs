//! Verification counts, added up in memory on the hot path and handed to
//! storage in batches by the usage flusher ([`crate::CoalescingUsageTracker`]).
//!
//! What clients send cannot grow it without bound: a key's tag sets per
//! minute are capped ([`MAX_TAG_SETS_PER_KEY_MINUTE`]), tagged buckets of all
//! keys together are capped ([`MAX_PENDING_TAG_SETS`]; past either cap the
//! verification is counted in its key's overflow bucket, so counts stay
//! exact), and so are buckets of any kind ([`MAX_PENDING_BUCKETS`]; past it,
//! when storage has been failing for long or more keys are in use than the
//! buffer was sized for, a verification is not counted but tallied as dropped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use keymint_application::{BucketCount, CountedVerification};
use keymint_domain::{
    Granularity, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome, MAX_TAG_SETS_PER_KEY_MINUTE, OVERFLOW_TAG,
};

/// Shards, so that verifications of different keys rarely wait for one lock.
pub(crate) const SHARDS: usize = 16;

/// Tagged buckets (one key's verifications under one tag set in one minute)
/// held between two writes, all keys together. 16 384 of them, at ten tags
/// of 128 characters each, are about 22 MB; random tags from every key cannot
/// hold more.
pub const MAX_PENDING_TAG_SETS: usize = 16_384;

/// Buckets of any kind held between two writes: a little over two minutes of
/// 100 000 keys in use, each with one outcome and its overflow bucket.
pub const MAX_PENDING_BUCKETS: usize = 262_144;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bucket {
    org_id: OrgId,
    key_id: KeyId,
    owner_id: Option<Arc<str>>,
    outcome: VerificationOutcome,
    minute: DateTime<Utc>,
    tags: Tags,
}

/// A bucket's tags. The overflow set is the commonest under random tags (one
/// per key past its cap), so it is a variant, not two allocations: at
/// 200 000 buckets, some 13 MB less.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Tags {
    None,
    Overflow,
    Own(TagSet),
}

impl Tags {
    fn of(tags: TagSet) -> Self {
        if tags.is_empty() {
            Tags::None
        } else if tags.contains(OVERFLOW_TAG) {
            Tags::Overflow
        } else {
            Tags::Own(tags)
        }
    }

    fn into_set(self) -> TagSet {
        match self {
            Tags::None => TagSet::empty(),
            Tags::Overflow => TagSet::overflow(),
            Tags::Own(tags) => tags,
        }
    }
}

impl Bucket {
    /// Tags a client chose (not none, not the overflow set).
    fn has_own_tags(&self) -> bool {
        matches!(self.tags, Tags::Own(_))
    }
}

#[derive(Default)]
struct Shard {
    /// Count and credits spent, per bucket, since the last take.
    counts: HashMap<Bucket, (u64, u64)>,
    /// How many of `counts` have tags of their own.
    tagged: usize,
    /// How many tag sets each key started a bucket with, per minute: the
    /// per-key cap's memory, kept across takes for the current and previous
    /// minute only (one small entry per key that sent tags).
    tag_sets: HashMap<(KeyId, DateTime<Utc>), u8>,
}

impl Shard {
    /// Adds to `bucket`, unless it would be a new bucket past the cap; says
    /// whether it was added.
    fn add(&mut self, bucket: Bucket, count: u64, spent_credits: u64) -> bool {
        if let Some(entry) = self.counts.get_mut(&bucket) {
            entry.0 += count;
            entry.1 += spent_credits;
            return true;
        }
        if self.counts.len() >= MAX_PENDING_BUCKETS / SHARDS {
            return false;
        }
        if bucket.has_own_tags() {
            self.tagged += 1;
        }
        self.counts.insert(bucket, (count, spent_credits));
        true
    }

    /// `bucket`, or its key's overflow bucket when a new tag set would pass
    /// either cap.
    fn admit(&mut self, mut bucket: Bucket) -> Bucket {
        if !bucket.has_own_tags() || self.counts.contains_key(&bucket) {
            return bucket;
        }
        if self.tagged >= MAX_PENDING_TAG_SETS / SHARDS {
            bucket.tags = Tags::Overflow;
            return bucket;
        }
        let started = self.tag_sets.entry((bucket.key_id, bucket.minute)).or_default();
        if usize::from(*started) >= MAX_TAG_SETS_PER_KEY_MINUTE {
            bucket.tags = Tags::Overflow;
        } else {
            *started += 1;
        }
        bucket
    }
}

/// Verification counts not yet written, bounded whatever clients send (see
/// the module's documentation).
pub struct AnalyticsBuffer {
    shards: Vec<Mutex<Shard>>,
    /// Verifications not counted because the buffer was full.
    dropped: AtomicU64,
}

impl std::fmt::Debug for AnalyticsBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsBuffer").finish_non_exhaustive()
    }
}

/// Counts taken from the buffer to be written, by shard: converted one
/// shard's at a time, so that no more than a sixteenth of them is held twice.
pub struct TakenCounts(Vec<HashMap<Bucket, (u64, u64)>>);

impl TakenCounts {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(HashMap::is_empty)
    }

    /// The next shard's counts, or `None` when all were given.
    pub fn next_shard(&mut self) -> Option<Vec<BucketCount>> {
        self.0.pop().map(|table| table.into_iter().map(stored).collect())
    }

    /// Every count not yet given (to put back after a failed write).
    pub fn into_rest(self) -> impl Iterator<Item = BucketCount> {
        self.0.into_iter().flatten().map(stored)
    }
}

/// A bucket and its sums as storage takes them.
fn stored((bucket, (count, spent_credits)): (Bucket, (u64, u64))) -> BucketCount {
    BucketCount {
        org_id: bucket.org_id,
        key_id: bucket.key_id,
        owner_id: bucket.owner_id.map(|owner| OwnerId::restore(owner.as_ref())),
        outcome: bucket.outcome,
        minute: bucket.minute,
        tags: bucket.tags.into_set(),
        count,
        spent_credits,
    }
}

impl Default for AnalyticsBuffer {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            dropped: AtomicU64::new(0),
        }
    }
}

impl AnalyticsBuffer {
    fn shard(&self, key_id: KeyId) -> std::sync::MutexGuard<'_, Shard> {
        let index = (key_id.as_uuid().as_u128() % SHARDS as u128) as usize;
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one verification.
    pub fn count(&self, verification: CountedVerification) {
        let bucket = Bucket {
            org_id: verification.org_id,
            key_id: verification.key_id,
            owner_id: verification.owner_id,
            outcome: verification.outcome,
            minute: Granularity::Minute.bucket_of(verification.at),
            tags: Tags::of(verification.tags),
        };
        let mut shard = self.shard(verification.key_id);
        let bucket = shard.admit(bucket);
        if !shard.add(bucket, 1, verification.spent_credits) {
            drop(shard);
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Everything counted since the last take, emptying the buffer; the cap's
    /// memory of minutes before the previous one is dropped.
    #[cfg(test)]
    fn take(&self, now: DateTime<Utc>) -> Vec<BucketCount> {
        self.take_all(now).into_rest().collect()
    }

    /// Everything counted since the last take, emptying the buffer (so the
    /// caps apply to new counts alone, however long the write takes); the
    /// cap's memory of minutes before the previous one is dropped. Each shard
    /// is held only to swap its table out: the counts are converted for
    /// storage later, one shard's at a time ([`TakenCounts::next_shard`]).
    pub fn take_all(&self, now: DateTime<Utc>) -> TakenCounts {
        let keep_from = Granularity::Minute.bucket_of(now) - Granularity::Minute.width();
        let tables = self
            .shards
            .iter()
            .map(|shard| {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard.tag_sets.retain(|(_, minute), _| *minute >= keep_from);
                shard.tagged = 0;
                std::mem::take(&mut shard.counts)
            })
            .collect();
        TakenCounts(tables)
    }

    /// Adds counts back after a failed write, to be written by the next flush
    /// (within the same bound: what does not fit is tallied as dropped).
    pub fn put_back(&self, counts: impl IntoIterator<Item = BucketCount>) {
        for count in counts {
            let mut bucket = Bucket {
                org_id: count.org_id,
                key_id: count.key_id,
                owner_id: count.owner_id.map(|owner| Arc::from(owner.as_str())),
                outcome: count.outcome,
                minute: count.minute,
                tags: Tags::of(count.tags),
            };
            let mut shard = self.shard(bucket.key_id);
            // Counts taken since may have filled the tagged share: the cap holds
            // for what comes back too.
            if bucket.has_own_tags()
                && shard.tagged >= MAX_PENDING_TAG_SETS / SHARDS
                && !shard.counts.contains_key(&bucket)
            {
                bucket.tags = Tags::Overflow;
            }
            if !shard.add(bucket, count.count, count.spent_credits) {
                drop(shard);
                self.dropped.fetch_add(count.count, Relaxed);
            }
        }
    }

    /// Buckets waiting to be written.
    pub fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).counts.len())
            .sum()
    }

    /// Verifications not counted since start-up because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use keymint_domain::Tag;
    use uuid::Uuid;

    use super::*;

    fn verification(key: u128, tags: &[&str], at: DateTime<Utc>) -> CountedVerification {
        CountedVerification {
            org_id: OrgId::from_uuid(Uuid::from_u128(7)),
            key_id: KeyId::from_uuid(Uuid::from_u128(key)),
            owner_id: None,
            outcome: VerificationOutcome::Valid,
            tags: TagSet::new(tags.iter().map(|tag| Tag::new(*tag).unwrap())).unwrap(),
            spent_credits: 2,
            at,
        }
    }

    #[test]
    fn verifications_of_one_bucket_add_up_and_a_take_empties_the_buffer() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        for second in 0..50 {
            buffer.count(verification(1, &["b", "a"], at + chrono::Duration::seconds(second)));
        }
        buffer.count(verification(1, &["a", "b"], at + chrono::Duration::seconds(60)));
        let mut taken = buffer.take(at);
        taken.sort_by_key(|count| count.minute);
        assert_eq!(taken.len(), 2, "two minutes");
        assert_eq!((taken[0].count, taken[0].spent_credits), (50, 100));
        assert_eq!(taken[0].minute, Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap());
        assert_eq!(taken[1].count, 1);
        assert_eq!(buffer.pending(), 0);
        buffer.put_back(taken);
        assert_eq!(buffer.pending(), 2, "a failed write's counts wait for the next flush");
    }

    #[test]
    fn a_key_s_tag_sets_beyond_the_cap_go_to_the_overflow_bucket_and_counts_stay_exact() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let sets = MAX_TAG_SETS_PER_KEY_MINUTE + 20;
        for i in 0..sets {
            buffer.count(verification(1, &[&format!("path=/{i}")], at));
        }
        // The first sets, seen again, keep their own bucket.
        buffer.count(verification(1, &["path=/0"], at));
        // Another key has its own share.
        buffer.count(verification(2, &["path=/999"], at));
        let taken = buffer.take(at);
        let total: u64 = taken.iter().map(|count| count.count).sum();
        assert_eq!(total, sets as u64 + 2);
        let overflow: u64 = taken
            .iter()
            .filter(|count| count.tags.contains(OVERFLOW_TAG))
            .map(|count| count.count)
            .sum();
        assert_eq!(overflow, 20);
        assert_eq!(taken.len(), MAX_TAG_SETS_PER_KEY_MINUTE + 2);
        // The cap holds across flushes within the minute.
        buffer.count(verification(1, &["path=/new"], at));
        assert!(buffer.take(at)[0].tags.contains(OVERFLOW_TAG));
    }

    #[test]
    fn random_tags_from_every_key_are_held_to_the_buffer_s_share_and_still_counted() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let keys = MAX_PENDING_TAG_SETS as u128;
        for key in 0..keys {
            for set in 0..3 {
                buffer.count(verification(key, &[&format!("req={key}.{set}")], at));
            }
        }
        let taken = buffer.take(at);
        let total: u64 = taken.iter().map(|count| count.count).sum();
        assert_eq!(total, keys as u64 * 3, "every verification counted");
        let own_tags = taken
            .iter()
            .filter(|count| !count.tags.is_empty() && !count.tags.contains(OVERFLOW_TAG))
            .count();
        assert_eq!(own_tags, MAX_PENDING_TAG_SETS, "no more tagged buckets than the cap");
        assert_eq!(buffer.dropped(), 0);
        // The cap is per write: the next interval has its own share.
        buffer.count(verification(1, &["after=take"], at));
        assert!(!buffer.take(at)[0].tags.contains(OVERFLOW_TAG));
    }

    #[test]
    fn counts_put_back_after_a_failed_write_stay_within_the_tagged_share() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let shards = SHARDS as u128;
        let failed = buffer.take(at);
        assert!(failed.is_empty());
        // New tagged counts fill shard 0's share while a write is failing.
        let share = MAX_PENDING_TAG_SETS / SHARDS;
        for key in 0..share as u128 {
            buffer.count(verification(key * shards, &["region=eu"], at));
        }
        let back = verification(99_999 * shards, &["region=us"], at);
        buffer.put_back([BucketCount {
            org_id: back.org_id,
            key_id: back.key_id,
            owner_id: None,
            outcome: back.outcome,
            minute: Granularity::Minute.bucket_of(at),
            tags: back.tags,
            count: 3,
            spent_credits: 0,
        }]);
        let taken = buffer.take(at);
        let returned: Vec<_> = taken.iter().filter(|count| count.key_id == back.key_id).collect();
        assert_eq!(returned.len(), 1);
        assert_eq!(returned[0].count, 3, "still counted");
        assert!(returned[0].tags.contains(OVERFLOW_TAG), "{:?}", returned[0].tags);
        assert_eq!(taken.len(), share + 1);
    }

    #[test]
    fn past_the_bucket_cap_verifications_are_tallied_as_dropped_not_held() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let beyond = 16 * 100;
        for key in 0..(MAX_PENDING_BUCKETS + beyond) as u128 {
            buffer.count(verification(key, &[], at));
        }
        assert_eq!(buffer.pending(), MAX_PENDING_BUCKETS);
        assert_eq!(buffer.dropped(), beyond as u64);
        // Keys already held are still counted.
        buffer.count(verification(0, &[], at));
        assert_eq!(buffer.dropped(), beyond as u64);
        let taken = buffer.take(at);
        assert_eq!(
            taken.iter().map(|count| count.count).sum::<u64>(),
            MAX_PENDING_BUCKETS as u64 + 1
        );
        // A failed write's counts go back within the same bound: a bucket
        // of a key the full buffer does not hold is dropped, with its count.
        let stranger = BucketCount {
            key_id: KeyId::from_uuid(Uuid::from_u128(u128::MAX)),
            count: 5,
            ..taken[0].clone()
        };
        buffer.put_back(taken);
        buffer.put_back(vec![stranger]);
        assert_eq!(buffer.dropped(), beyond as u64 + 5);
        assert_eq!(buffer.pending(), MAX_PENDING_BUCKETS);
    }
}
