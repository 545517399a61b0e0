//! How webhook deliveries share the senders: no endpoint and no organisation
//! may hold them all, and an endpoint that keeps failing is paused (a circuit
//! breaker) rather than tried at full rate.
//!
//! A sender waiting on an endpoint that accepts connections and never answers
//! is held for a whole attempt's timeout. Without these rules, one
//! organisation with twenty such endpoints held every sender of every process
//! and another organisation's deliveries waited minutes behind its retries.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::OrgId;

/// How many deliveries may be in flight at once, per process and, across
/// every process, per endpoint and per organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairShare {
    /// Deliveries this claim may take (the process's free senders).
    pub room: usize,
    /// The most in flight to one endpoint (one while it is being probed
    /// after a pause).
    pub per_endpoint: usize,
    /// The most in flight for one organisation, all its endpoints together.
    pub per_org: usize,
}

/// A delivery that could be sent now: the first pending one of its key at its
/// endpoint, due, the endpoint enabled and not paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The delivery's position in the queue.
    pub seq: i64,
    /// Its endpoint.
    pub webhook_id: Uuid,
    /// The endpoint's organisation.
    pub org_id: OrgId,
    /// When it became due.
    pub due_at: DateTime<Utc>,
    /// Whether its endpoint is being probed after a pause (one at a time).
    pub probing: bool,
}

/// Deliveries in flight now (claimed and not yet recorded), by any process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    by_endpoint: HashMap<Uuid, usize>,
    by_org: HashMap<OrgId, usize>,
}

impl InFlight {
    /// Counts `count` deliveries in flight to `webhook_id` of `org_id`.
    pub fn add(&mut self, webhook_id: Uuid, org_id: OrgId, count: usize) {
        *self.by_endpoint.entry(webhook_id).or_default() += count;
        *self.by_org.entry(org_id).or_default() += count;
    }

    fn endpoint(&self, webhook_id: Uuid) -> usize {
        self.by_endpoint.get(&webhook_id).copied().unwrap_or_default()
    }

    fn org(&self, org_id: OrgId) -> usize {
        self.by_org.get(&org_id).copied().unwrap_or_default()
    }
}

/// An endpoint and its candidates.
type Endpoint = (Uuid, Vec<Candidate>);

/// The deliveries to claim, as `seq`s: each next one for the organisation
/// with the fewest in flight (the one waiting longest among equals), and
/// within it round-robin over its endpoints, each endpoint's oldest due first; never past [`FairShare::per_endpoint`]
/// counting `in_flight`, nor past [`FairShare::per_org`] except for an
/// endpoint's first delivery in flight (so an organisation's hanging
/// endpoints delay none of its others; an organisation has a bounded number
/// of endpoints), and never more than [`FairShare::room`]. So a newly due
/// delivery of a quiet organisation or endpoint goes in the next claim,
/// whatever a busy one has queued.
pub fn pick_fairly(mut candidates: Vec<Candidate>, mut in_flight: InFlight, share: FairShare) -> Vec<i64> {
    candidates.sort_by_key(|candidate| (candidate.due_at, candidate.seq));
    // Organisations in order of their oldest candidate, each with its endpoints
    // in the same order, each endpoint with its candidates oldest first.
    let mut orgs: Vec<(OrgId, Vec<Endpoint>)> = Vec::new();
    for candidate in candidates {
        let org = match orgs.iter().position(|(id, _)| *id == candidate.org_id) {
            Some(at) => &mut orgs[at].1,
            None => {
                orgs.push((candidate.org_id, Vec::new()));
                let last = orgs.len() - 1;
                &mut orgs[last].1
            }
        };
        match org.iter_mut().find(|(id, _)| *id == candidate.webhook_id) {
            Some((_, queue)) => queue.push(candidate),
            None => org.push((candidate.webhook_id, vec![candidate])),
        }
    }
    for (_, endpoints) in &mut orgs {
        for (_, queue) in endpoints.iter_mut() {
            queue.reverse(); // oldest last, to pop
        }
    }
    let mut picked = Vec::new();
    let mut turn: HashMap<OrgId, usize> = HashMap::new();
    while picked.len() < share.room {
        // The organisation with the fewest deliveries in flight goes next (the
        // one waiting longest among equals): a busy organisation's backlog,
        // however old, never comes before a quiet one's first delivery.
        let mut best: Option<(usize, usize, usize)> = None; // (in flight, org, endpoint)
        for (at, (org_id, endpoints)) in orgs.iter().enumerate() {
            let start = turn.get(org_id).copied().unwrap_or_default();
            if let Some(endpoint) = next_endpoint(endpoints, start, &in_flight, share, *org_id) {
                let load = in_flight.org(*org_id);
                if best.is_none_or(|(least, _, _)| load < least) {
                    best = Some((load, at, endpoint));
                }
            }
        }
        let Some((_, at, endpoint)) = best else {
            return picked;
        };
        let (org_id, endpoints) = &mut orgs[at];
        if let Some(candidate) = endpoints[endpoint].1.pop() {
            in_flight.add(candidate.webhook_id, candidate.org_id, 1);
            picked.push(candidate.seq);
            turn.insert(*org_id, endpoint + 1);
        }
    }
    picked
}

/// The organisation's next endpoint (from `start`, round-robin) whose oldest
/// candidate may go now.
fn next_endpoint(
    endpoints: &[Endpoint],
    start: usize,
    in_flight: &InFlight,
    share: FairShare,
    org_id: OrgId,
) -> Option<usize> {
    let org_full = in_flight.org(org_id) >= share.per_org;
    let count = endpoints.len();
    (0..count).map(|step| (start + step) % count).find(|&at| {
        let (webhook_id, queue) = &endpoints[at];
        let Some(next) = queue.last() else {
            return false;
        };
        let cap = if next.probing { 1 } else { share.per_endpoint };
        let busy = in_flight.endpoint(*webhook_id);
        // An endpoint with nothing in flight may always send one, so an
        // organisation's own hanging endpoints cannot hold up its others.
        busy < cap && !(org_full && busy > 0)
    })
}

/// When an endpoint that keeps failing is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that pause an endpoint.
    pub failures_to_pause: u32,
    /// The first pause.
    pub first_pause: Duration,
    /// The longest pause: each failed probe doubles the pause up to this.
    pub longest_pause: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures_to_pause: 5,
            first_pause: Duration::seconds(30),
            longest_pause: Duration::hours(1),
        }
    }
}

/// How an endpoint has been answering: its circuit breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointHealth {
    /// Attempts that failed in a row (0 after any success).
    pub consecutive_failures: u32,
    /// Set when the breaker opened: no delivery is sent before this time,
    /// then one at a time (probing) until one succeeds.
    pub paused_until: Option<DateTime<Utc>>,
}

/// Where an endpoint's breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    /// Its last attempt succeeded (or none was made).
    Healthy,
    /// Recent attempts failed, not yet enough to pause it.
    Failing,
    /// Paused: nothing is sent to it until `paused_until`.
    Paused,
    /// The pause is over: one delivery at a time tries it.
    Probing,
}

impl EndpointState {
    /// The name on the wire (`healthy`, `failing`, `paused`, `probing`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Failing => "failing",
            EndpointState::Paused => "paused",
            EndpointState::Probing => "probing",
        }
    }
}

impl EndpointHealth {
    /// Where the breaker stands at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> EndpointState {
        match self.paused_until {
            Some(until) if until > now => EndpointState::Paused,
            Some(_) => EndpointState::Probing,
            None if self.consecutive_failures > 0 => EndpointState::Failing,
            None => EndpointState::Healthy,
        }
    }

    /// The health after an attempt that ended at `now`: any success closes
    /// the breaker; the failure that reaches the policy's count pauses the
    /// endpoint, and each failure after it (a failed probe) pauses it twice
    /// as long, up to the longest pause. Attempts that were already in flight
    /// when it paused and fail during the pause change nothing: the pause
    /// already says what they say.
    pub fn after_attempt(self, succeeded: bool, now: DateTime<Utc>, policy: BreakerPolicy) -> Self {
        if succeeded {
            return Self::default();
        }
        if self.paused_until.is_some_and(|until| until > now) {
            return self;
        }
        let failures = self.consecutive_failures.saturating_add(1);
        let threshold = policy.failures_to_pause.max(1);
        if failures < threshold {
            return Self {
                consecutive_failures: failures,
                paused_until: self.paused_until,
            };
        }
        let doublings = (failures - threshold).min(30);
        let pause = policy
            .first_pause
            .checked_mul(1 << doublings)
            .unwrap_or(policy.longest_pause)
            .min(policy.longest_pause);
        Self {
            consecutive_failures: failures,
            paused_until: Some(now + pause),
        }
    }

    /// Whether this attempt's outcome opened the breaker (it was not paused
    /// or probing before, and is paused now).
    pub fn opened_from(&self, before: &EndpointHealth) -> bool {
        before.paused_until.is_none() && self.paused_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn candidate(seq: i64, webhook: u128, org: u128, due: i64) -> Candidate {
        Candidate {
            seq,
            webhook_id: Uuid::from_u128(webhook),
            org_id: OrgId::from_uuid(Uuid::from_u128(org)),
            due_at: at(due),
            probing: false,
        }
    }

    fn share(room: usize) -> FairShare {
        FairShare {
            room,
            per_endpoint: 2,
            per_org: 3,
        }
    }

    #[test]
    fn a_quiet_organisation_is_served_whatever_a_busy_one_has_queued() {
        // Org 1 has 40 older deliveries over 20 endpoints; org 2 has one, newest.
        let mut candidates: Vec<Candidate> = (0..40).map(|i| candidate(i, 100 + (i % 20) as u128, 1, i)).collect();
        candidates.push(candidate(1000, 7, 2, 10_000));
        let picked = pick_fairly(candidates, InFlight::default(), share(64));
        assert!(picked.contains(&1000), "{picked:?}");
        assert_eq!(
            picked.len(),
            21,
            "org 1 gets its 3, then one per idle endpoint (20 in all); org 2 its 1: {picked:?}"
        );
        assert_eq!(&picked[..2], &[0, 1000], "one from each organisation in turn");
    }

    #[test]
    fn a_freed_sender_goes_to_the_least_busy_organisation_however_old_the_backlog() {
        // Organisation 1 has 20 in flight and an older backlog on idle
        // endpoints; organisation 2 has nothing in flight.
        let mut candidates: Vec<Candidate> = (0..40).map(|i| candidate(i, 200 + i as u128, 1, i)).collect();
        candidates.push(candidate(1000, 7, 2, 10_000));
        let mut busy = InFlight::default();
        for endpoint in 0..20 {
            busy.add(Uuid::from_u128(100 + endpoint), OrgId::from_uuid(Uuid::from_u128(1)), 1);
        }
        assert_eq!(pick_fairly(candidates, busy, share(1)), vec![1000]);
    }

    #[test]
    fn in_flight_deliveries_count_against_the_caps() {
        let candidates = vec![candidate(1, 10, 1, 0), candidate(2, 10, 1, 1), candidate(3, 11, 1, 2)];
        let mut busy = InFlight::default();
        busy.add(Uuid::from_u128(10), OrgId::from_uuid(Uuid::from_u128(1)), 2);
        assert_eq!(pick_fairly(candidates.clone(), busy.clone(), share(64)), vec![3]);
        busy.add(Uuid::from_u128(11), OrgId::from_uuid(Uuid::from_u128(1)), 1);
        assert_eq!(
            pick_fairly(candidates.clone(), busy.clone(), share(64)),
            Vec::<i64>::new(),
            "the organisation is full and each endpoint has one in flight"
        );
        let idle = candidate(4, 12, 1, 3);
        assert_eq!(
            pick_fairly(vec![candidates[0], idle], busy, share(64)),
            vec![4],
            "an idle endpoint of a full organisation still sends one"
        );
    }

    #[test]
    fn endpoints_of_one_organisation_take_turns_and_room_is_respected() {
        let candidates = vec![
            candidate(1, 10, 1, 0),
            candidate(2, 10, 1, 1),
            candidate(3, 10, 1, 2),
            candidate(4, 11, 1, 3),
        ];
        let wide = FairShare {
            room: 64,
            per_endpoint: 8,
            per_org: 8,
        };
        assert_eq!(
            pick_fairly(candidates.clone(), InFlight::default(), wide),
            vec![1, 4, 2, 3]
        );
        assert_eq!(
            pick_fairly(candidates, InFlight::default(), FairShare { room: 2, ..wide }),
            vec![1, 4]
        );
    }

    #[test]
    fn a_probed_endpoint_gets_one_delivery_at_a_time() {
        let mut first = candidate(1, 10, 1, 0);
        first.probing = true;
        let mut second = candidate(2, 10, 1, 1);
        second.probing = true;
        assert_eq!(
            pick_fairly(vec![first, second], InFlight::default(), share(64)),
            vec![1]
        );
    }

    #[test]
    fn the_breaker_pauses_after_the_threshold_and_doubles_on_failed_probes() {
        let policy = BreakerPolicy {
            failures_to_pause: 3,
            first_pause: Duration::seconds(30),
            longest_pause: Duration::seconds(100),
        };
        let mut health = EndpointHealth::default();
        assert_eq!(health.state(at(0)), EndpointState::Healthy);
        health = health.after_attempt(false, at(0), policy);
        health = health.after_attempt(false, at(1), policy);
        assert_eq!(health.state(at(1)), EndpointState::Failing);
        let before = health;
        health = health.after_attempt(false, at(2), policy);
        assert!(health.opened_from(&before));
        assert_eq!(health.paused_until, Some(at(32)));
        assert_eq!(health.state(at(10)), EndpointState::Paused);
        assert_eq!(
            health.after_attempt(false, at(20), policy),
            health,
            "a straggler during the pause"
        );
        assert_eq!(health.state(at(32)), EndpointState::Probing);
        let probed = health.after_attempt(false, at(40), policy);
        assert!(!probed.opened_from(&health), "already open");
        assert_eq!(probed.paused_until, Some(at(100)), "60 s");
        let capped = probed.after_attempt(false, at(100), policy);
        assert_eq!(capped.paused_until, Some(at(200)), "capped at 100 s");
        assert_eq!(capped.after_attempt(true, at(300), policy), EndpointHealth::default());
    }
}
