//! Settling verifications against a key's rate limits and credits: the
//! bookkeeping that storage applies atomically, one batch of concurrent
//! verifications at a time.
//!
//! A [`Ledger`] is what storage holds for one key: its credits and, for each
//! rate limit, the count taken in the window last used. Storage locks it, lets
//! [`Ledger::settle`] decide each waiting verification in arrival order, and
//! writes it back in the same transaction. Every grant is therefore backed by
//! the stored count at the moment it is made: nothing is handed out in advance
//! to a process that might not use it, so a key of N credits gets exactly N
//! grants however many processes ask, and a limit of L per window grants L
//! whenever L are asked for.
//!
//! A verification is all or nothing: refused by a rate limit, it takes no
//! count from any limit and spends no credits; refused for credits, it takes
//! no rate-limit count either.

use chrono::{DateTime, Utc};

use crate::{Credits, RateLimits, Window};

/// What one verification asks to spend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    /// Credits to spend; `None` spends 1 when the key has credits.
    pub credits: Option<u64>,
    /// Limits named by the verification, with the count each takes. A key's
    /// `auto_apply` limits that are not named here take 1; limits the key does
    /// not have are ignored (the caller refuses them before settling).
    pub ratelimits: Vec<(String, u64)>,
}

/// The count one rate limit has taken in its current window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowCount {
    /// The limit's name.
    pub name: String,
    /// The start of the window the count belongs to, in Unix milliseconds.
    pub window_start_ms: i64,
    /// How much of the limit that window has used.
    pub used: u64,
}

/// A rate limit's state as a verification saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitState {
    /// The limit's name.
    pub name: String,
    /// Its limit per window.
    pub limit: u64,
    /// What is left of it in the current window, after this verification.
    pub remaining: u64,
    /// When the current window ends.
    pub reset: DateTime<Utc>,
}

/// How a verification was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Everything asked for was spent.
    Granted,
    /// A rate limit had too little left; try again at `retry_at`.
    RateLimited {
        /// When every limit that refused has started a new window.
        retry_at: DateTime<Utc>,
    },
    /// Too few credits; `next_refill` says when more come, if ever.
    UsageExceeded {
        /// The next refill, if the key has one.
        next_refill: Option<DateTime<Utc>>,
    },
}

/// The answer to one [`Demand`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Granted or why not.
    pub settlement: Settlement,
    /// Credits left after it (`None`: the key has unlimited use).
    pub credits_remaining: Option<u64>,
    /// Each limit that applied, after it.
    pub ratelimits: Vec<LimitState>,
}

/// One key's stored balance: credits and window counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    credits: Option<Credits>,
    windows: Vec<WindowCount>,
}

impl Ledger {
    /// The balance as stored.
    pub fn new(credits: Option<Credits>, windows: Vec<WindowCount>) -> Self {
        Self { credits, windows }
    }

    /// The credits now held (as last settled; a refill due since is applied by
    /// the next settlement).
    pub fn credits(&self) -> Option<&Credits> {
        self.credits.as_ref()
    }

    /// The window counts now held.
    pub fn windows(&self) -> &[WindowCount] {
        &self.windows
    }

    fn used(&self, name: &str, window: Window) -> u64 {
        self.windows
            .iter()
            .find(|count| count.name == name && count.window_start_ms == window.start.timestamp_millis())
            .map_or(0, |count| count.used)
    }

    fn take(&mut self, name: &str, window: Window, cost: u64) {
        let start = window.start.timestamp_millis();
        match self.windows.iter_mut().find(|count| count.name == name) {
            Some(count) if count.window_start_ms == start => count.used = count.used.saturating_add(cost),
            Some(count) => {
                count.window_start_ms = start;
                count.used = cost;
            }
            None => self.windows.push(WindowCount {
                name: name.to_owned(),
                window_start_ms: start,
                used: cost,
            }),
        }
    }

    /// Decides `demand` against `limits` as of `now` and, if it is granted,
    /// spends it from this balance. A refused demand changes nothing.
    pub fn settle(&mut self, limits: &RateLimits, demand: &Demand, now: DateTime<Utc>) -> Outcome {
        let applied: Vec<(&crate::RateLimit, Window, u64)> = limits
            .iter()
            .filter_map(|limit| {
                let named = demand.ratelimits.iter().find(|(name, _)| name == limit.name());
                let cost = match named {
                    Some((_, cost)) => *cost,
                    None if limit.auto_apply() => 1,
                    None => return None,
                };
                Some((limit, limit.window(now), cost))
            })
            .collect();
        let refused_until = applied
            .iter()
            .filter(|(limit, window, cost)| self.used(limit.name(), *window).saturating_add(*cost) > limit.limit())
            .map(|(_, window, _)| window.reset)
            .max();
        let credits_now = self.credits.map(|credits| credits.as_of(now));
        let settlement = if let Some(retry_at) = refused_until {
            Settlement::RateLimited { retry_at }
        } else {
            match credits_now.map(|credits| credits.spend(demand.credits.unwrap_or(1), now)) {
                Some(Err(_)) => Settlement::UsageExceeded {
                    next_refill: credits_now.and_then(|credits| credits.next_refill(now)),
                },
                spent => {
                    if let Some(Ok(spent)) = spent {
                        self.credits = Some(spent);
                    }
                    for (limit, window, cost) in &applied {
                        self.take(limit.name(), *window, *cost);
                    }
                    Settlement::Granted
                }
            }
        };
        // Counts of limits the key no longer has are dropped with the next write.
        self.windows.retain(|count| limits.get(&count.name).is_some());
        Outcome {
            settlement,
            credits_remaining: self.credits.map(|credits| credits.as_of(now).remaining()),
            ratelimits: applied
                .iter()
                .map(|(limit, window, _)| LimitState {
                    name: limit.name().to_owned(),
                    limit: limit.limit(),
                    remaining: limit.limit().saturating_sub(self.used(limit.name(), *window)),
                    reset: window.reset,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RateLimit, Refill, RefillInterval};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn limits(list: &[(&str, u64, u64, bool)]) -> RateLimits {
        RateLimits::new(
            list.iter()
                .map(|(name, limit, ms, auto)| RateLimit::new(*name, *limit, *ms, *auto).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn demand(credits: Option<u64>, named: &[(&str, u64)]) -> Demand {
        Demand {
            credits,
            ratelimits: named.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect(),
        }
    }

    #[test]
    fn a_rate_limited_call_spends_no_credits_and_no_other_limit() {
        let limits = limits(&[("second", 2, 1_000, true), ("burst", 100, 60_000, true)]);
        let mut ledger = Ledger::new(Some(Credits::new(10, None, t0()).unwrap()), vec![]);
        for _ in 0..2 {
            assert_eq!(
                ledger.settle(&limits, &Demand::default(), t0()).settlement,
                Settlement::Granted
            );
        }
        let refused = ledger.settle(&limits, &Demand::default(), t0());
        assert_eq!(
            refused.settlement,
            Settlement::RateLimited {
                retry_at: t0() + Duration::seconds(1)
            }
        );
        assert_eq!(refused.credits_remaining, Some(8));
        assert_eq!(refused.ratelimits[1].remaining, 98, "the other limit kept its count");
        let next_second = ledger.settle(&limits, &Demand::default(), t0() + Duration::seconds(1));
        assert_eq!(next_second.settlement, Settlement::Granted);
        assert_eq!(next_second.ratelimits[0].remaining, 1);
    }

    #[test]
    fn a_call_without_credits_takes_no_rate_limit_count() {
        let limits = limits(&[("second", 5, 1_000, true)]);
        let mut ledger = Ledger::new(Some(Credits::new(1, None, t0()).unwrap()), vec![]);
        let refused = ledger.settle(&limits, &demand(Some(2), &[]), t0());
        assert_eq!(refused.settlement, Settlement::UsageExceeded { next_refill: None });
        assert_eq!(refused.ratelimits[0].remaining, 5);
        assert_eq!(refused.credits_remaining, Some(1));
    }

    #[test]
    fn named_limits_apply_with_their_cost_and_others_only_when_automatic() {
        let limits = limits(&[("auto", 10, 1_000, true), ("tokens", 1_000, 60_000, false)]);
        let mut ledger = Ledger::new(None, vec![]);
        let plain = ledger.settle(&limits, &Demand::default(), t0());
        assert_eq!(plain.ratelimits.len(), 1, "a manual limit applies only when named");
        assert_eq!(plain.credits_remaining, None, "unlimited");
        let named = ledger.settle(&limits, &demand(Some(50), &[("tokens", 400), ("auto", 3)]), t0());
        assert_eq!(named.settlement, Settlement::Granted);
        assert_eq!(named.ratelimits[0].remaining, 6);
        assert_eq!(named.ratelimits[1].remaining, 600);
    }

    #[test]
    fn usage_exceeded_says_when_credits_come_back() {
        let refill = Refill::new(RefillInterval::Daily, 3, None).unwrap();
        let mut ledger = Ledger::new(Some(Credits::new(0, Some(refill), t0()).unwrap()), vec![]);
        let refused = ledger.settle(&RateLimits::default(), &Demand::default(), t0());
        let tomorrow = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
        assert_eq!(
            refused.settlement,
            Settlement::UsageExceeded {
                next_refill: Some(tomorrow)
            }
        );
        let refilled = ledger.settle(&RateLimits::default(), &Demand::default(), tomorrow);
        assert_eq!(refilled.credits_remaining, Some(2));
    }

    #[test]
    fn counts_of_removed_limits_are_dropped() {
        let mut ledger = Ledger::new(None, vec![]);
        ledger.settle(&limits(&[("a", 5, 1_000, true)]), &Demand::default(), t0());
        assert_eq!(ledger.windows().len(), 1);
        ledger.settle(&limits(&[("b", 5, 1_000, true)]), &Demand::default(), t0());
        assert_eq!(ledger.windows().len(), 1);
        assert_eq!(ledger.windows()[0].name, "b");
    }

    proptest! {
        /// Whatever arrives, in whatever order and with whatever costs, the
        /// grants never take more than the store holds: credits granted never
        /// exceed the credits there were, and no window grants more than its
        /// limit. A demand is refused only when it truly did not fit.
        #[test]
        fn a_settlement_never_grants_more_than_the_store_holds(
            credits in 0_u64..50,
            limit in 1_u64..20,
            costs in prop::collection::vec((0_u64..4, 0_u64..4, 0_i64..3_000), 1..80),
        ) {
            let limits = limits(&[("l", limit, 1_000, false)]);
            let mut ledger = Ledger::new(Some(Credits::new(credits, None, t0()).unwrap()), vec![]);
            let mut spent = 0;
            let mut per_window = std::collections::HashMap::<i64, u64>::new();
            let mut now = t0();
            for (credit_cost, limit_cost, step_ms) in costs {
                now += Duration::milliseconds(step_ms);
                let window = Window::containing(now, 1_000).start.timestamp_millis();
                let before = ledger.clone();
                let outcome = ledger.settle(&limits, &demand(Some(credit_cost), &[("l", limit_cost)]), now);
                let taken = per_window.get(&window).copied().unwrap_or(0);
                match outcome.settlement {
                    Settlement::Granted => {
                        spent += credit_cost;
                        *per_window.entry(window).or_default() += limit_cost;
                    }
                    Settlement::RateLimited { .. } => {
                        prop_assert!(taken + limit_cost > limit, "refused although it fit the limit");
                        prop_assert_eq!(&ledger, &before, "a refusal spends nothing");
                    }
                    Settlement::UsageExceeded { .. } => {
                        prop_assert!(spent + credit_cost > credits, "refused although credits remained");
                        prop_assert_eq!(&ledger, &before, "a refusal spends nothing");
                    }
                }
                prop_assert!(spent <= credits);
                prop_assert!(per_window.values().all(|used| *used <= limit));
                prop_assert_eq!(outcome.credits_remaining, Some(credits - spent));
            }
        }
    }
}
