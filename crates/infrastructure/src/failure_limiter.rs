//! Failure budgets per lookup id and per client, kept in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use keymint_application::FailureLimiter;
use keymint_domain::LookupId;

/// Failure budgets per lookup id and per client address, in fixed windows.
#[derive(Debug)]
pub struct WindowFailureLimiter {
    per_key: u32,
    per_client: u32,
    window: chrono::Duration,
    keys: Mutex<HashMap<String, Window>>,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Beyond this many tracked keys or clients, windows that have ended are swept.
const SWEEP_ABOVE: usize = 10_000;

impl WindowFailureLimiter {
    /// At most `per_key` failures per lookup id and `per_client` per address in
    /// each `window`; 0 disables that limit.
    pub fn new(per_key: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_key,
            per_client,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            keys: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn over<K, Q>(&self, map: &Mutex<HashMap<K, Window>>, key: &Q, limit: u32, now: DateTime<Utc>) -> bool
    where
        K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if limit == 0 {
            return false;
        }
        let map = map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .is_some_and(|w| now - w.started < self.window && w.failures >= limit)
    }

    fn count<K: std::hash::Hash + Eq>(&self, map: &Mutex<HashMap<K, Window>>, key: K, limit: u32, now: DateTime<Utc>) {
        if limit == 0 {
            return;
        }
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, w| now - w.started < self.window);
        }
        let window = map.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now - window.started >= self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

impl FailureLimiter for WindowFailureLimiter {
    fn is_limited(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) -> bool {
        // Borrowed lookups: checking a budget allocates nothing.
        self.over(&self.keys, lookup_id.as_str(), self.per_key, now)
            || client.is_some_and(|ip| self.over(&self.clients, &ip, self.per_client, now))
    }

    fn record_failure(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) {
        self.count(&self.keys, lookup_id.as_str().to_owned(), self.per_key, now);
        if let Some(ip) = client {
            self.count(&self.clients, ip, self.per_client, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keymint_domain::{Environment, KeyMaterial};
    use rand_core::OsRng;

    #[test]
    fn failures_are_limited_per_key_and_per_client_within_a_window() {
        let limiter = WindowFailureLimiter::new(3, 5, Duration::from_secs(60));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let key = KeyMaterial::generate(Environment::Live, &mut OsRng).lookup_id();
        let other = KeyMaterial::generate(Environment::Live, &mut OsRng).lookup_id();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(!limiter.is_limited(&key, None, t0));
            limiter.record_failure(&key, Some(ip), t0);
        }
        assert!(limiter.is_limited(&key, None, t0), "the key's budget is spent");
        assert!(!limiter.is_limited(&other, None, t0), "other keys are unaffected");
        limiter.record_failure(&other, Some(ip), t0);
        limiter.record_failure(&other, Some(ip), t0);
        assert!(limiter.is_limited(&other, Some(ip), t0), "the client's budget is spent");
        assert!(!limiter.is_limited(&other, Some("198.51.100.8".parse().unwrap()), t0));
        let later = t0 + chrono::Duration::seconds(60);
        assert!(!limiter.is_limited(&key, Some(ip), later), "a new window starts afresh");
    }
}
