//! Verification counts, added up in memory on the hot path and handed to
//! storage in batches by the usage flusher ([`crate::CoalescingUsageTracker`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use keymint_application::{BucketCount, CountedVerification};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome, MAX_TAG_SETS_PER_KEY_MINUTE};

/// Shards, so that verifications of different keys rarely wait for one lock.
const SHARDS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bucket {
    org_id: OrgId,
    key_id: KeyId,
    owner_id: Option<Arc<str>>,
    outcome: VerificationOutcome,
    minute: DateTime<Utc>,
    tags: TagSet,
}

#[derive(Default)]
struct Shard {
    /// Count and credits spent, per bucket, since the last flush.
    counts: HashMap<Bucket, (u64, u64)>,
    /// The tag sets each key was counted under, per minute: the cap's memory.
    /// Kept across flushes for the current and previous minute only.
    tag_sets: HashMap<(KeyId, DateTime<Utc>), HashSet<u64>>,
}

impl Shard {
    /// `tags`, or the overflow set once the key has had its share of distinct
    /// tag sets this minute.
    fn admit(&mut self, key_id: KeyId, minute: DateTime<Utc>, tags: TagSet) -> TagSet {
        if tags.is_empty() {
            return tags;
        }
        let mut hasher = DefaultHasher::new();
        tags.hash(&mut hasher);
        let fingerprint = hasher.finish();
        let seen = self.tag_sets.entry((key_id, minute)).or_default();
        if seen.contains(&fingerprint) || seen.len() < MAX_TAG_SETS_PER_KEY_MINUTE {
            seen.insert(fingerprint);
            tags
        } else {
            TagSet::overflow()
        }
    }
}

/// Verification counts not yet written, bounded: per key and minute at most
/// [`MAX_TAG_SETS_PER_KEY_MINUTE`] tag sets (then the overflow bucket), so
/// its size follows the keys in use, not what clients send.
pub struct AnalyticsBuffer {
    shards: Vec<Mutex<Shard>>,
}

impl std::fmt::Debug for AnalyticsBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsBuffer").finish_non_exhaustive()
    }
}

impl Default for AnalyticsBuffer {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
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
        let minute = Granularity::Minute.bucket_of(verification.at);
        let mut shard = self.shard(verification.key_id);
        let tags = shard.admit(verification.key_id, minute, verification.tags);
        let bucket = Bucket {
            org_id: verification.org_id,
            key_id: verification.key_id,
            owner_id: verification.owner_id,
            outcome: verification.outcome,
            minute,
            tags,
        };
        let entry = shard.counts.entry(bucket).or_default();
        entry.0 += 1;
        entry.1 += verification.spent_credits;
    }

    /// Everything counted since the last take, emptying the buffer; the cap's
    /// memory of minutes before the previous one is dropped.
    pub fn take(&self, now: DateTime<Utc>) -> Vec<BucketCount> {
        let keep_from = Granularity::Minute.bucket_of(now) - Granularity::Minute.width();
        let mut taken = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.tag_sets.retain(|(_, minute), _| *minute >= keep_from);
            taken.extend(
                shard
                    .counts
                    .drain()
                    .map(|(bucket, (count, spent_credits))| BucketCount {
                        org_id: bucket.org_id,
                        key_id: bucket.key_id,
                        owner_id: bucket.owner_id.map(|owner| OwnerId::restore(owner.as_ref())),
                        outcome: bucket.outcome,
                        minute: bucket.minute,
                        tags: bucket.tags,
                        count,
                        spent_credits,
                    }),
            );
        }
        taken
    }

    /// Adds counts back after a failed write, to be written by the next flush.
    pub fn put_back(&self, counts: Vec<BucketCount>) {
        for count in counts {
            let bucket = Bucket {
                org_id: count.org_id,
                key_id: count.key_id,
                owner_id: count.owner_id.map(|owner| Arc::from(owner.as_str())),
                outcome: count.outcome,
                minute: count.minute,
                tags: count.tags,
            };
            let mut shard = self.shard(bucket.key_id);
            let entry = shard.counts.entry(bucket).or_default();
            entry.0 += count.count;
            entry.1 += count.spent_credits;
        }
    }

    /// Buckets waiting to be written.
    pub fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).counts.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use keymint_domain::{Tag, OVERFLOW_TAG};
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
}
