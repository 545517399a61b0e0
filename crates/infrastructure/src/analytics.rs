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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
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

/// What a verification is counted under within its minute (the minute is
/// its table's).
struct Bucket {
    org_id: OrgId,
    key_id: KeyId,
    owner_id: Option<Arc<str>>,
    outcome: VerificationOutcome,
    tags: Tags,
}

/// A bucket's tags. None and the overflow set (the commonest under random
/// tags: one per key past its cap) are variants, kept without a tag set.
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
}

/// `Slot::tags` of a count without tags.
const NO_TAGS: u32 = 0;
/// `Slot::tags` of the overflow bucket.
const OVERFLOW: u32 = 1;
/// `Slot::tags` from here up: the table's own tag sets, by index.
const FIRST_OWN_TAGS: u32 = 2;

/// Who a key is: said once per minute table, however many buckets it has.
struct KeyEntry {
    key_id: KeyId,
    org_id: OrgId,
    owner_id: Option<Arc<str>>,
}

/// What a count is kept under in its table: its key and tag set by their
/// index there, and the outcome: 12 bytes where a [`Bucket`] is 80. At
/// 100 000 keys in use most keys have one bucket a minute, and a minute's
/// buckets are in memory while the one before is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Slot {
    key: u32,
    tags: u32,
    outcome: VerificationOutcome,
}

/// One minute's counts in one shard: a write can take the minutes that have
/// ended and leave the current one counting.
#[derive(Default)]
struct Minute {
    /// Each key counted this minute, by the index its slots use.
    keys: Vec<KeyEntry>,
    /// Each key's first entry in `keys`.
    key_index: HashMap<KeyId, u32>,
    /// A key's entries for other owners (its owner changed within the
    /// minute; each count keeps the owner it was verified under).
    other_owners: HashMap<(KeyId, Option<Arc<str>>), u32>,
    /// Tag sets of their own counted this minute, and the index (from
    /// [`FIRST_OWN_TAGS`]) their slots use.
    tag_index: HashMap<TagSet, u32>,
    /// Count and credits spent, per bucket.
    counts: HashMap<Slot, (u64, u64)>,
    /// How many of `counts` have tags of their own.
    tagged: usize,
}

impl Minute {
    /// `key`'s entry, if it has one with that owner.
    fn key_of(&self, key_id: KeyId, owner_id: &Option<Arc<str>>) -> Option<u32> {
        let index = *self.key_index.get(&key_id)?;
        if self.keys[index as usize].owner_id == *owner_id {
            return Some(index);
        }
        self.other_owners.get(&(key_id, owner_id.clone())).copied()
    }

    fn add_key(&mut self, key_id: KeyId, org_id: OrgId, owner_id: Option<Arc<str>>) -> u32 {
        // The bucket bound keeps a table far below u32::MAX entries.
        let index = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        match self.key_index.entry(key_id) {
            Entry::Vacant(first) => {
                first.insert(index);
            }
            Entry::Occupied(_) => {
                self.other_owners.insert((key_id, owner_id.clone()), index);
            }
        }
        self.keys.push(KeyEntry {
            key_id,
            org_id,
            owner_id,
        });
        index
    }

    fn add_tag_set(&mut self, tags: TagSet) -> u32 {
        let index = u32::try_from(self.tag_index.len())
            .unwrap_or(u32::MAX)
            .saturating_add(FIRST_OWN_TAGS);
        self.tag_index.insert(tags, index);
        index
    }
}

#[derive(Default)]
struct Shard {
    /// By the minute's start. Usually one or two: the current minute, and
    /// the one that just ended until a write takes it; more only while
    /// writes fail (bounded by `held`).
    minutes: BTreeMap<DateTime<Utc>, Minute>,
    /// Buckets in `minutes`, all together.
    held: usize,
    /// Of them, those with tags of their own.
    tagged: usize,
    /// How many tag sets each key started a bucket with, per minute: the
    /// per-key cap's memory, kept across takes for the current and previous
    /// minute only (one small entry per key that sent tags).
    tag_sets: HashMap<(KeyId, DateTime<Utc>), u8>,
}

/// Whether `key` may start a bucket with another tag set in `minute`: at
/// most [`MAX_TAG_SETS_PER_KEY_MINUTE`].
fn may_start_tag_set(started: &HashMap<(KeyId, DateTime<Utc>), u8>, key: KeyId, minute: DateTime<Utc>) -> bool {
    started
        .get(&(key, minute))
        .is_none_or(|started| usize::from(*started) < MAX_TAG_SETS_PER_KEY_MINUTE)
}

impl Shard {
    /// Adds to `bucket` in `minute`, or to its key's overflow bucket when a new
    /// tag set would pass either cap (the per-key cap only for `fresh` counts:
    /// counts put back were admitted once); says whether it was added (not
    /// when it would be a new bucket past the buffer's bound).
    fn add(&mut self, bucket: Bucket, minute: DateTime<Utc>, sums: (u64, u64), fresh: bool) -> bool {
        let table = self.minutes.entry(minute).or_default();
        let full = self.held >= MAX_PENDING_BUCKETS / SHARDS;
        // A key or tag set new to the table is a new bucket: past the bound,
        // neither is kept.
        let key = match table.key_of(bucket.key_id, &bucket.owner_id) {
            Some(key) => key,
            None if full => return false,
            None => table.add_key(bucket.key_id, bucket.org_id, bucket.owner_id),
        };
        let tags = match bucket.tags {
            Tags::None => NO_TAGS,
            Tags::Overflow => OVERFLOW,
            Tags::Own(set) => {
                let known = table.tag_index.get(&set).copied();
                let outcome = bucket.outcome;
                match known {
                    Some(tags) if table.counts.contains_key(&Slot { key, tags, outcome }) => tags,
                    _ if self.tagged >= MAX_PENDING_TAG_SETS / SHARDS => OVERFLOW,
                    _ if fresh && !may_start_tag_set(&self.tag_sets, bucket.key_id, minute) => OVERFLOW,
                    _ if full => return false,
                    known => {
                        if fresh {
                            *self.tag_sets.entry((bucket.key_id, minute)).or_default() += 1;
                        }
                        known.unwrap_or_else(|| table.add_tag_set(set))
                    }
                }
            }
        };
        let slot = Slot {
            key,
            tags,
            outcome: bucket.outcome,
        };
        if let Some(entry) = table.counts.get_mut(&slot) {
            entry.0 += sums.0;
            entry.1 += sums.1;
            return true;
        }
        if full {
            return false;
        }
        if tags >= FIRST_OWN_TAGS {
            table.tagged += 1;
            self.tagged += 1;
        }
        table.counts.insert(slot, sums);
        self.held += 1;
        true
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

/// Counts taken from the buffer to be written, one table per shard and
/// minute, oldest minute first: converted one table at a time, so that no
/// more than a small part of them is held twice.
pub struct TakenCounts(Vec<(DateTime<Utc>, Minute)>);

impl TakenCounts {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, table)| table.counts.is_empty())
    }

    /// The next table's counts (the oldest minute's first), or `None` when
    /// all were given.
    pub fn next_part(&mut self) -> Option<Vec<BucketCount>> {
        self.0.pop().map(stored)
    }

    /// Every count not yet given (to put back after a failed write).
    pub fn into_rest(self) -> impl Iterator<Item = BucketCount> {
        self.0.into_iter().flat_map(stored)
    }
}

/// A table's buckets and sums as storage takes them.
fn stored((minute, table): (DateTime<Utc>, Minute)) -> Vec<BucketCount> {
    let mut sets = vec![TagSet::empty(); table.tag_index.len()];
    for (set, index) in table.tag_index {
        if let Some(place) = (index as usize).checked_sub(FIRST_OWN_TAGS as usize) {
            sets[place] = set;
        }
    }
    let keys = table.keys;
    table
        .counts
        .into_iter()
        .map(|(slot, (count, spent_credits))| {
            let key = &keys[slot.key as usize];
            BucketCount {
                org_id: key.org_id,
                key_id: key.key_id,
                owner_id: key.owner_id.as_ref().map(|owner| OwnerId::restore(owner.as_ref())),
                outcome: slot.outcome,
                minute,
                tags: match slot.tags {
                    NO_TAGS => TagSet::empty(),
                    OVERFLOW => TagSet::overflow(),
                    own => sets[(own - FIRST_OWN_TAGS) as usize].clone(),
                },
                count,
                spent_credits,
            }
        })
        .collect()
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
            tags: Tags::of(verification.tags),
        };
        let minute = Granularity::Minute.bucket_of(verification.at);
        let added = self
            .shard(verification.key_id)
            .add(bucket, minute, (1, verification.spent_credits), true);
        if !added {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Everything counted since the last take, emptying the buffer.
    #[cfg(test)]
    fn take_list(&self, now: DateTime<Utc>) -> Vec<BucketCount> {
        self.take_all(now).into_rest().collect()
    }

    /// Everything counted and not yet taken, emptying the buffer (at
    /// shutdown, or when writes are more frequent than minutes).
    pub fn take_all(&self, now: DateTime<Utc>) -> TakenCounts {
        self.take(now, false)
    }

    /// The counts of every minute but the current one, which goes on
    /// counting, to be written whole by a later take. (Every other: after
    /// the clock was set back, "ended" minutes would be in its future.)
    pub fn take_ended(&self, now: DateTime<Utc>) -> TakenCounts {
        self.take(now, true)
    }

    /// The counts of every minute, or of every minute but `now`'s. The caps
    /// then apply to what is left and new counts alone, however long the
    /// write takes; the per-key cap's memory of minutes before the previous
    /// one is dropped. Each shard is held only to move its tables out: the
    /// counts are converted for storage later, one table at a time
    /// ([`TakenCounts::next_part`]).
    fn take(&self, now: DateTime<Utc>, keep_current: bool) -> TakenCounts {
        let current = Granularity::Minute.bucket_of(now);
        let keep_from = current - Granularity::Minute.width();
        let mut taken = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.tag_sets.retain(|(_, minute), _| *minute >= keep_from);
            let kept = keep_current.then(|| shard.minutes.remove_entry(&current)).flatten();
            let ended = std::mem::take(&mut shard.minutes);
            shard.minutes.extend(kept);
            for table in ended.values() {
                shard.held -= table.counts.len();
                shard.tagged -= table.tagged;
            }
            taken.extend(ended);
        }
        // Popped from the end: the oldest minute is written first.
        taken.sort_by_key(|(minute, _)| std::cmp::Reverse(*minute));
        TakenCounts(taken)
    }

    /// Adds counts back after a failed write, to be written by the next flush
    /// (within the same bound: what does not fit is tallied as dropped).
    pub fn put_back(&self, counts: impl IntoIterator<Item = BucketCount>) {
        for count in counts {
            let bucket = Bucket {
                org_id: count.org_id,
                key_id: count.key_id,
                owner_id: count.owner_id.map(|owner| Arc::from(owner.as_str())),
                outcome: count.outcome,
                tags: Tags::of(count.tags),
            };
            // Counts taken since may have filled the tagged share: the cap
            // holds for what comes back too.
            let added = self
                .shard(bucket.key_id)
                .add(bucket, count.minute, (count.count, count.spent_credits), false);
            if !added {
                self.dropped.fetch_add(count.count, Relaxed);
            }
        }
    }

    /// Buckets waiting to be written.
    pub fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).held)
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
        let mut taken = buffer.take_list(at);
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
    fn a_take_of_ended_minutes_leaves_the_current_one_counting_and_gives_the_oldest_first() {
        let buffer = AnalyticsBuffer::default();
        let minute = |m: u32| Utc.with_ymd_and_hms(2026, 12, 4, 10, m, 0).unwrap();
        let second = chrono::Duration::seconds(1);
        for key in 0..40 {
            buffer.count(verification(key, &["region=eu"], minute(0) + second * 5));
            buffer.count(verification(key, &["region=eu"], minute(1) + second * 59));
            buffer.count(verification(key, &["region=eu"], minute(2) + second * 5));
        }
        let mut taken = buffer.take_ended(minute(2) + second * 10);
        let mut minutes = Vec::new();
        while let Some(part) = taken.next_part() {
            assert!(part.iter().all(|count| count.minute == part[0].minute));
            minutes.push(part[0].minute);
        }
        assert_eq!(minutes.len(), 2 * SHARDS, "two minutes over every shard");
        assert!(minutes.windows(2).all(|pair| pair[0] <= pair[1]), "oldest first");
        assert_eq!(minutes[0], minute(0));
        assert_eq!(buffer.pending(), 40, "the current minute waits for its end");
        // More of the current minute adds to what waits, and is taken whole.
        buffer.count(verification(0, &["region=eu"], minute(2) + second * 30));
        assert!(buffer.take_ended(minute(2) + second * 50).is_empty());
        let current = buffer.take_ended(minute(3)).into_rest().collect::<Vec<_>>();
        assert_eq!(current.len(), 40);
        assert_eq!(current.iter().map(|count| count.count).sum::<u64>(), 41);
        assert_eq!(buffer.pending(), 0);
    }

    #[test]
    fn after_the_clock_is_set_back_a_take_of_ended_minutes_takes_all_but_the_current_one() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        buffer.count(verification(1, &[], at));
        let earlier = at - chrono::Duration::hours(1);
        buffer.count(verification(1, &[], earlier));
        let taken: Vec<_> = buffer.take_ended(earlier).into_rest().collect();
        assert_eq!(taken.len(), 1, "the minute before the clock went back is taken");
        assert_eq!(taken[0].minute, Granularity::Minute.bucket_of(at));
        assert_eq!(buffer.pending(), 1, "the (new) current minute waits");
    }

    #[test]
    fn the_tagged_share_taken_with_ended_minutes_is_free_again_for_the_current_one() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let next_minute = at + chrono::Duration::minutes(1);
        let shards = SHARDS as u128;
        let share = MAX_PENDING_TAG_SETS / SHARDS;
        for key in 0..share as u128 {
            buffer.count(verification(key * shards, &["region=eu"], at));
        }
        let late = verification(share as u128 * shards, &["region=us"], next_minute);
        buffer.count(late.clone());
        let ended = buffer.take_ended(next_minute).into_rest().collect::<Vec<_>>();
        assert_eq!(ended.len(), share);
        // The current minute's table is still held, with the one count that
        // came while the share was full: new tag sets have room again.
        assert_eq!(buffer.pending(), 1);
        buffer.count(verification(0, &["region=us"], next_minute));
        let mut current: Vec<_> = buffer.take_all(next_minute).into_rest().collect();
        current.sort_by_key(|count| count.key_id == late.key_id);
        assert_eq!(current[0].tags.iter().collect::<Vec<_>>(), ["region=us"], "free again");
        assert!(current[1].tags.contains(OVERFLOW_TAG), "the share was full then");
    }

    #[test]
    fn a_key_whose_owner_changes_within_a_minute_keeps_each_owner_s_counts_apart() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let owned = |owner: &str| CountedVerification {
            owner_id: Some(Arc::from(owner)),
            ..verification(1, &["region=eu"], at)
        };
        buffer.count(owned("alice"));
        buffer.count(owned("bob"));
        buffer.count(owned("alice"));
        buffer.count(owned("bob"));
        buffer.count(owned("bob"));
        buffer.count(verification(2, &["region=eu"], at));
        let mut taken = buffer.take_list(at);
        taken.sort_by_key(|count| (count.key_id, count.owner_id.as_ref().map(|o| o.as_str().to_owned())));
        let seen: Vec<_> = taken
            .iter()
            .map(|count| {
                let owner = count.owner_id.as_ref().map(|o| o.as_str().to_owned());
                let tags: Vec<_> = count.tags.iter().map(str::to_owned).collect();
                (count.key_id.as_uuid().as_u128(), owner, tags, count.count)
            })
            .collect();
        let eu = vec!["region=eu".to_owned()];
        assert_eq!(
            seen,
            [
                (1, Some("alice".to_owned()), eu.clone(), 2),
                (1, Some("bob".to_owned()), eu.clone(), 3),
                (2, None, eu, 1),
            ]
        );
        // Owners back and forth, and put back among new counts, are each one
        // bucket, one of the key's tag sets in the minute.
        buffer.count(owned("bob"));
        buffer.put_back(taken);
        buffer.count(owned("alice"));
        let again = buffer.take_list(at);
        assert_eq!(again.len(), 3, "{again:?}");
        assert_eq!(again.iter().map(|count| count.count).sum::<u64>(), 8);
        assert_eq!(std::mem::size_of::<Slot>(), 12, "what a bucket costs in the table");
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
        let taken = buffer.take_list(at);
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
        assert!(buffer.take_list(at)[0].tags.contains(OVERFLOW_TAG));
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
        let taken = buffer.take_list(at);
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
        assert!(!buffer.take_list(at)[0].tags.contains(OVERFLOW_TAG));
    }

    #[test]
    fn counts_put_back_after_a_failed_write_stay_within_the_tagged_share() {
        let buffer = AnalyticsBuffer::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 5).unwrap();
        let shards = SHARDS as u128;
        let failed = buffer.take_list(at);
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
        let taken = buffer.take_list(at);
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
        let taken = buffer.take_list(at);
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
