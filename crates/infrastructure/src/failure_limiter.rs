//! Failure budgets per client and per client on each key, kept in this process.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use keymint_application::FailureLimiter;
use keymint_domain::LookupId;

/// Failure budgets in fixed windows: `per_client` failed attempts per client
/// over all keys, and `per_key` per client on any one key.
///
/// No budget is keyed by the lookup id alone: it is public, and a budget on it
/// would let anyone who knows it make the key answer `RATE_LIMITED` to its own
/// users. A client that has not failed is therefore never refused here.
///
/// Reservation and refund happen under one lock, so a burst of concurrent
/// guesses gets exactly the budget's worth of hashes and no more.
#[derive(Debug)]
pub struct WindowFailureLimiter {
    per_key: u32,
    per_client: u32,
    window: chrono::Duration,
    /// Keys the per-key map by a keyed 64-bit digest of the lookup id, so a
    /// check allocates nothing and the map holds no key material.
    digest: RandomState,
    budgets: Mutex<Budgets>,
    refused_by_client: AtomicU64,
    refused_by_key: AtomicU64,
}

/// Attempts refused without hashing since start-up, by the budget that ran out
/// (a client over both counts as a client refusal), and what is tracked now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Refused because the client's budget over all keys was spent.
    pub refused_by_client: u64,
    /// Refused because the client's budget on that one key was spent.
    pub refused_by_key: u64,
    /// Clients and (client, key) pairs with a live window.
    pub tracked: u64,
}

#[derive(Debug, Default)]
struct Budgets {
    clients: Tracked<IpAddr>,
    keys: Tracked<(u64, Option<IpAddr>)>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

impl Window {
    fn live(&self, now: DateTime<Utc>, window: chrono::Duration) -> bool {
        now >= self.started && now - self.started < window
    }
}

/// Windows by client or by (client, key), swept of ended windows whenever the
/// map has doubled since the last sweep (or reached [`MAX_TRACKED`]), so that
/// sweeping costs O(1) per failure, amortised, and the map never holds more
/// than [`MAX_TRACKED`] entries.
#[derive(Debug)]
struct Tracked<K> {
    windows: HashMap<K, Window>,
    sweep_at: usize,
}

impl<K> Default for Tracked<K> {
    fn default() -> Self {
        Self {
            windows: HashMap::new(),
            sweep_at: SWEEP_ABOVE,
        }
    }
}

/// Below this many tracked entries nothing is swept.
const SWEEP_ABOVE: usize = 10_000;
/// The most entries a map keeps even when every window is live: past it, the
/// older half is forgotten. Memory stays bounded under any flood; what is lost
/// is only some clients' past failures, never a rightful user's access.
const MAX_TRACKED: usize = 200_000;

impl<K: std::hash::Hash + Eq + Copy> Tracked<K> {
    /// Whether `key` has room for one more failure under `limit` (0: no limit).
    fn has_room(&self, key: &K, limit: u32, now: DateTime<Utc>, window: chrono::Duration) -> bool {
        limit == 0
            || self
                .windows
                .get(key)
                .is_none_or(|w| !w.live(now, window) || w.failures < limit)
    }

    fn count(&mut self, key: K, limit: u32, now: DateTime<Utc>, window: chrono::Duration) {
        if limit == 0 {
            return;
        }
        if self.windows.len() >= self.sweep_at {
            self.sweep(now, window);
        }
        let entry = self.windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if !entry.live(now, window) {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    fn sweep(&mut self, now: DateTime<Utc>, window: chrono::Duration) {
        self.windows.retain(|_, w| w.live(now, window));
        if self.windows.len() >= MAX_TRACKED {
            let mut starts: Vec<DateTime<Utc>> = self.windows.values().map(|w| w.started).collect();
            let middle = starts.len() / 2;
            let (_, median, _) = starts.select_nth_unstable(middle);
            let median = *median;
            self.windows.retain(|_, w| w.started > median);
        }
        self.sweep_at = (self.windows.len() * 2).clamp(SWEEP_ABOVE, MAX_TRACKED);
    }

    /// Gives back one failure counted at `reserved_at`, if its window is still
    /// the key's: only the window the attempt was counted in owes it back.
    fn give_back(&mut self, key: &K, reserved_at: DateTime<Utc>, window: chrono::Duration) {
        if let Some(entry) = self.windows.get_mut(key).filter(|w| w.live(reserved_at, window)) {
            entry.failures = entry.failures.saturating_sub(1);
        }
    }
}

impl WindowFailureLimiter {
    /// At most `per_key` failures per client on one key and `per_client` per
    /// client over all keys in each `window`; 0 disables that budget.
    pub fn new(per_key: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_key,
            per_client,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            digest: RandomState::new(),
            budgets: Mutex::new(Budgets::default()),
            refused_by_client: AtomicU64::new(0),
            refused_by_key: AtomicU64::new(0),
        }
    }

    /// Refusals since start-up, and the windows tracked now.
    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            refused_by_client: self.refused_by_client.load(Relaxed),
            refused_by_key: self.refused_by_key.load(Relaxed),
            tracked: u64::try_from(self.tracked()).unwrap_or(u64::MAX),
        }
    }

    fn key(&self, lookup_id: &LookupId, client: Option<IpAddr>) -> (u64, Option<IpAddr>) {
        (self.digest.hash_one(lookup_id.as_str()), client)
    }

    /// How many clients and (client, key) pairs are tracked.
    pub fn tracked(&self) -> usize {
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        budgets.clients.windows.len() + budgets.keys.windows.len()
    }
}

impl FailureLimiter for WindowFailureLimiter {
    fn try_reserve(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) -> bool {
        let key = self.key(lookup_id, client);
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let Budgets { clients, keys } = &mut *budgets;
        if !client.is_none_or(|ip| clients.has_room(&ip, self.per_client, now, self.window)) {
            self.refused_by_client.fetch_add(1, Relaxed);
            return false;
        }
        if !keys.has_room(&key, self.per_key, now, self.window) {
            self.refused_by_key.fetch_add(1, Relaxed);
            return false;
        }
        keys.count(key, self.per_key, now, self.window);
        if let Some(ip) = client {
            clients.count(ip, self.per_client, now, self.window);
        }
        true
    }

    fn refund(&self, lookup_id: &LookupId, client: Option<IpAddr>, reserved_at: DateTime<Utc>) {
        let key = self.key(lookup_id, client);
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let Budgets { clients, keys } = &mut *budgets;
        keys.give_back(&key, reserved_at, self.window);
        if let Some(ip) = client {
            clients.give_back(&ip, reserved_at, self.window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keymint_domain::{Environment, KeyMaterial};
    use rand_core::OsRng;

    fn lookup() -> LookupId {
        KeyMaterial::generate(Environment::Live, &mut OsRng).lookup_id()
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn failures_are_limited_per_client_on_a_key_and_per_client_within_a_window() {
        let limiter = WindowFailureLimiter::new(3, 5, Duration::from_secs(60));
        let (key, other) = (lookup(), lookup());
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.try_reserve(&key, Some(ip), t0()));
        }
        assert!(
            !limiter.try_reserve(&key, Some(ip), t0()),
            "the client's budget on the key is spent"
        );
        assert!(limiter.try_reserve(&other, Some(ip), t0()), "other keys are unaffected");
        assert!(limiter.try_reserve(&other, Some(ip), t0()));
        assert!(
            !limiter.try_reserve(&lookup(), Some(ip), t0()),
            "the client's budget is spent"
        );
        let later = t0() + chrono::Duration::seconds(60);
        assert!(limiter.try_reserve(&key, Some(ip), later), "a new window starts afresh");
    }

    #[test]
    fn an_attackers_failures_never_refuse_another_client_on_the_same_key() {
        let limiter = WindowFailureLimiter::new(10, 100, Duration::from_secs(60));
        let key = lookup();
        let attacker: IpAddr = "203.0.113.66".parse().unwrap();
        while limiter.try_reserve(&key, Some(attacker), t0()) {}
        let user: IpAddr = "198.51.100.20".parse().unwrap();
        assert!(
            limiter.try_reserve(&key, Some(user), t0()),
            "the key's rightful user is not locked out"
        );
        limiter.refund(&key, Some(user), t0());
        assert!(
            !limiter.try_reserve(&key, Some(attacker), t0()),
            "the attacker stays refused"
        );
    }

    #[test]
    fn a_refunded_attempt_costs_nothing_and_only_in_its_own_window() {
        let limiter = WindowFailureLimiter::new(2, 0, Duration::from_secs(60));
        let key = lookup();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..10 {
            assert!(limiter.try_reserve(&key, Some(ip), t0()));
            limiter.refund(&key, Some(ip), t0());
        }
        assert!(limiter.try_reserve(&key, Some(ip), t0()));
        assert!(limiter.try_reserve(&key, Some(ip), t0()));
        assert!(!limiter.try_reserve(&key, Some(ip), t0()));
        // A refund for an attempt of an earlier window gives nothing back now.
        let next = t0() + chrono::Duration::seconds(61);
        assert!(limiter.try_reserve(&key, Some(ip), next));
        assert!(limiter.try_reserve(&key, Some(ip), next));
        limiter.refund(&key, Some(ip), t0());
        assert!(!limiter.try_reserve(&key, Some(ip), next));
    }

    #[test]
    fn concurrent_guesses_get_exactly_the_budget() {
        let limiter = std::sync::Arc::new(WindowFailureLimiter::new(10, 0, Duration::from_secs(60)));
        let key = lookup();
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let granted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (limiter, key) = (limiter.clone(), key.clone());
                    scope.spawn(move || (0..4).filter(|_| limiter.try_reserve(&key, Some(ip), t0())).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 10);
    }

    #[test]
    fn tracking_stays_bounded_under_a_flood_of_clients() {
        let limiter = WindowFailureLimiter::new(10, 100, Duration::from_secs(60));
        let key = lookup();
        for i in 0..(MAX_TRACKED as u32 + 50_000) {
            let ip = IpAddr::from(i.to_be_bytes());
            let at = t0() + chrono::Duration::milliseconds(i64::from(i % 50_000));
            limiter.try_reserve(&key, Some(ip), at);
        }
        assert!(limiter.tracked() <= 2 * MAX_TRACKED, "{}", limiter.tracked());
    }
}
