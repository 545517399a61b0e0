//! Credits: how many more verifications a key may spend, refilled by the UTC
//! calendar.
//!
//! A refill *sets* the remaining credits to its amount at each period's start
//! (unused credits do not roll over, and missed periods do not pile up): a key
//! of 1 000 a month has 1 000 on the first of each month, whenever its next
//! verification comes. Which period was last refilled is kept with the count, so
//! a period is refilled once however many processes notice it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

/// The most credits a key holds, and the largest refill.
pub const MAX_CREDITS: u64 = 1_000_000_000_000;

/// How often credits are refilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefillInterval {
    /// At 00:00 UTC every day.
    Daily,
    /// At 00:00 UTC on the refill day of every month (the month's last day when
    /// it is shorter).
    Monthly,
}

impl RefillInterval {
    /// `daily` or `monthly`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefillInterval::Daily => "daily",
            RefillInterval::Monthly => "monthly",
        }
    }
}

impl std::str::FromStr for RefillInterval {
    type Err = CreditsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(RefillInterval::Daily),
            "monthly" => Ok(RefillInterval::Monthly),
            _ => Err(CreditsError::UnknownInterval),
        }
    }
}

/// A refill rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refill {
    interval: RefillInterval,
    amount: u64,
    day: u32,
}

/// Why credits or a refill were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    /// Remaining credits above [`MAX_CREDITS`].
    #[error("remaining must be at most {MAX_CREDITS}")]
    TooManyRemaining,
    /// A refill amount of 0 or above [`MAX_CREDITS`].
    #[error("amount must be from 1 to {MAX_CREDITS}")]
    AmountOutOfRange,
    /// A refill day outside 1–31.
    #[error("refill_day must be from 1 to 31")]
    DayOutOfRange,
    /// A refill day on a daily refill.
    #[error("refill_day applies only to a monthly refill")]
    DayWithDaily,
    /// Neither `daily` nor `monthly`.
    #[error("interval must be 'daily' or 'monthly'")]
    UnknownInterval,
}

impl Refill {
    /// A refill of `amount` every `interval`; `day` (1–31, default 1) only for
    /// a monthly one.
    pub fn new(interval: RefillInterval, amount: u64, day: Option<u32>) -> Result<Self, CreditsError> {
        if amount == 0 || amount > MAX_CREDITS {
            return Err(CreditsError::AmountOutOfRange);
        }
        let day = match (interval, day) {
            (RefillInterval::Daily, Some(_)) => return Err(CreditsError::DayWithDaily),
            (RefillInterval::Daily, None) => 1,
            (RefillInterval::Monthly, None) => 1,
            (RefillInterval::Monthly, Some(day)) if (1..=31).contains(&day) => day,
            (RefillInterval::Monthly, Some(_)) => return Err(CreditsError::DayOutOfRange),
        };
        Ok(Self { interval, amount, day })
    }

    /// How often.
    pub fn interval(&self) -> RefillInterval {
        self.interval
    }

    /// What the remaining credits are set to.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// The day of the month of a monthly refill (`None` for daily).
    pub fn day(&self) -> Option<u32> {
        (self.interval == RefillInterval::Monthly).then_some(self.day)
    }

    /// The start of the period that contains `at`: the latest refill time at
    /// or before it.
    pub fn period_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self.interval {
            RefillInterval::Daily => midnight(at.date_naive()),
            RefillInterval::Monthly => {
                let this_month = refill_date(at.year(), at.month(), self.day);
                if midnight(this_month) <= at {
                    midnight(this_month)
                } else {
                    let (year, month) = if at.month() == 1 {
                        (at.year() - 1, 12)
                    } else {
                        (at.year(), at.month() - 1)
                    };
                    midnight(refill_date(year, month, self.day))
                }
            }
        }
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// The refill day of a month, or its last day when the month is shorter.
fn refill_date(year: i32, month: u32, day: u32) -> NaiveDate {
    (1..=day)
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(year, month, d))
        .unwrap_or(NaiveDate::MIN)
}

/// A key's credits: how many remain, the refill rule if any, and the start of
/// the period they were last refilled for (or set in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credits {
    remaining: u64,
    refill: Option<Refill>,
    period: DateTime<Utc>,
}

impl Credits {
    /// `remaining` credits, set at `now`.
    pub fn new(remaining: u64, refill: Option<Refill>, now: DateTime<Utc>) -> Result<Self, CreditsError> {
        if remaining > MAX_CREDITS {
            return Err(CreditsError::TooManyRemaining);
        }
        let period = refill.map_or(now, |refill| refill.period_start(now));
        Ok(Self {
            remaining,
            refill,
            period,
        })
    }

    /// Credits as stored (for adapters): no rule is re-checked.
    pub fn from_parts(remaining: u64, refill: Option<Refill>, period: DateTime<Utc>) -> Self {
        Self {
            remaining: remaining.min(MAX_CREDITS),
            refill,
            period,
        }
    }

    /// The same count and refill rule, set anew at `now`: the period becomes
    /// the one containing `now`, so no refill is due until the next one.
    pub fn set_at(self, now: DateTime<Utc>) -> Self {
        Self {
            period: self.refill.map_or(now, |refill| refill.period_start(now)),
            ..self
        }
    }

    /// How many remain (before any refill due since).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The refill rule.
    pub fn refill(&self) -> Option<Refill> {
        self.refill
    }

    /// The start of the period the count belongs to.
    pub fn period(&self) -> DateTime<Utc> {
        self.period
    }

    /// The credits as of `now`: refilled to the amount if a new period has
    /// begun since [`Credits::period`], unchanged otherwise.
    pub fn as_of(&self, now: DateTime<Utc>) -> Self {
        match self.refill {
            Some(refill) if refill.period_start(now) > self.period => Self {
                remaining: refill.amount,
                refill: self.refill,
                period: refill.period_start(now),
            },
            _ => *self,
        }
    }

    /// Spends `cost` as of `now`, or says how many remain if that is too few
    /// (then nothing is spent).
    pub fn spend(&self, cost: u64, now: DateTime<Utc>) -> Result<Self, u64> {
        let current = self.as_of(now);
        match current.remaining.checked_sub(cost) {
            Some(remaining) => Ok(Self { remaining, ..current }),
            None => Err(current.remaining),
        }
    }

    /// When the next refill comes, if any.
    pub fn next_refill(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let refill = self.refill?;
        let start = refill.period_start(now);
        Some(match refill.interval {
            RefillInterval::Daily => start + Duration::days(1),
            RefillInterval::Monthly => {
                // The period after `start` begins in the next month, on or
                // before the 31st plus a few days.
                refill.period_start(start + Duration::days(32))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn monthly(amount: u64, day: u32) -> Refill {
        Refill::new(RefillInterval::Monthly, amount, Some(day)).unwrap()
    }

    #[test]
    fn refill_rules_are_checked() {
        assert_eq!(
            Refill::new(RefillInterval::Daily, 0, None),
            Err(CreditsError::AmountOutOfRange)
        );
        assert_eq!(
            Refill::new(RefillInterval::Daily, 5, Some(3)),
            Err(CreditsError::DayWithDaily)
        );
        assert_eq!(
            Refill::new(RefillInterval::Monthly, 5, Some(32)),
            Err(CreditsError::DayOutOfRange)
        );
        assert_eq!(Refill::new(RefillInterval::Monthly, 5, None).unwrap().day(), Some(1));
        assert_eq!(Refill::new(RefillInterval::Daily, 5, None).unwrap().day(), None);
        assert_eq!("weekly".parse::<RefillInterval>(), Err(CreditsError::UnknownInterval));
        assert!(Credits::new(MAX_CREDITS + 1, None, at(2026, 1, 1, 0)).is_err());
    }

    #[test]
    fn a_monthly_refill_on_the_31st_falls_on_the_last_day_of_short_months() {
        let refill = monthly(10, 31);
        assert_eq!(refill.period_start(at(2026, 2, 28, 5)), at(2026, 2, 28, 0));
        assert_eq!(refill.period_start(at(2026, 2, 27, 5)), at(2026, 1, 31, 0));
        assert_eq!(refill.period_start(at(2028, 2, 29, 0)), at(2028, 2, 29, 0), "leap year");
        assert_eq!(
            refill.period_start(at(2026, 1, 5, 0)),
            at(2025, 12, 31, 0),
            "across the year"
        );
        let credits = Credits::new(3, Some(refill), at(2026, 1, 31, 12)).unwrap();
        assert_eq!(credits.next_refill(at(2026, 1, 31, 12)), Some(at(2026, 2, 28, 0)));
    }

    #[test]
    fn a_new_period_sets_the_amount_once_and_missed_periods_do_not_pile_up() {
        let refill = Refill::new(RefillInterval::Daily, 100, None).unwrap();
        let credits = Credits::new(5, Some(refill), at(2026, 3, 1, 9)).unwrap();
        assert_eq!(credits.as_of(at(2026, 3, 1, 23)).remaining(), 5, "same day");
        let next_day = credits.spend(1, at(2026, 3, 2, 0)).unwrap();
        assert_eq!(next_day.remaining(), 99);
        assert_eq!(
            next_day.spend(1, at(2026, 3, 2, 1)).unwrap().remaining(),
            98,
            "refilled once"
        );
        assert_eq!(
            credits.as_of(at(2026, 3, 9, 0)).remaining(),
            100,
            "a week idle: still 100"
        );
    }

    #[test]
    fn spending_more_than_remains_spends_nothing() {
        let credits = Credits::new(2, None, at(2026, 1, 1, 0)).unwrap();
        assert_eq!(credits.spend(3, at(2026, 1, 1, 1)), Err(2));
        assert_eq!(credits.spend(2, at(2026, 1, 1, 1)).unwrap().remaining(), 0);
        assert_eq!(
            credits.spend(0, at(2026, 1, 1, 1)).unwrap().remaining(),
            2,
            "a free call"
        );
    }

    fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
        // 2020 to 2040, to the second.
        (1_577_836_800_i64..2_208_988_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    fn arb_refill() -> impl Strategy<Value = Refill> {
        prop_oneof![
            (1..1000_u64).prop_map(|amount| Refill::new(RefillInterval::Daily, amount, None).unwrap()),
            (1..1000_u64, 1..=31_u32).prop_map(|(amount, day)| monthly(amount, day)),
        ]
    }

    proptest! {
        #[test]
        fn period_starts_are_the_latest_refill_time_at_or_before(refill in arb_refill(), t in arb_time()) {
            let start = refill.period_start(t);
            prop_assert!(start <= t);
            prop_assert_eq!(refill.period_start(start), start, "a start is its own period's start");
            let credits = Credits::new(0, Some(refill), t).unwrap();
            let next = credits.next_refill(t).unwrap();
            prop_assert!(next > t);
            prop_assert_eq!(refill.period_start(next), next);
            prop_assert_eq!(refill.period_start(next - Duration::seconds(1)), start, "nothing in between");
        }

        #[test]
        fn refill_never_double_counts_a_period(
            refill in arb_refill(),
            start in arb_time(),
            steps in prop::collection::vec(0..40_000_000_i64, 1..8),
        ) {
            // Looking at the credits at many times in between changes nothing:
            // the outcome at the end is what one look at the end gives.
            let credits = Credits::new(7, Some(refill), start).unwrap();
            let mut seen = credits;
            let mut now = start;
            let mut refills = 0;
            for step in steps {
                now += Duration::seconds(step);
                let next = seen.as_of(now);
                if next.period() != seen.period() {
                    refills += 1;
                    prop_assert_eq!(next.remaining(), refill.amount());
                }
                seen = next;
            }
            prop_assert_eq!(seen, credits.as_of(now));
            prop_assert!(refills <= 1 + (now - start).num_days() as usize);
        }
    }
}
