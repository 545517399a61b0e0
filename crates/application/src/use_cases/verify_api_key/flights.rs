//! The flights that coalesce concurrent verifications of one presented key
//! by one client: one request verifies and the others wait for its verdict,
//! so that a burst costs one hash and no failure budget.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;
use zeroize::Zeroizing;

use super::verdict::Verification;

/// Verifications under way that did not find the key cached, by client and
/// presented key. A request presenting the same key from the same client while
/// one is under way waits for its verdict instead of reserving failure budget
/// and hashing again: a burst of a client's requests when its key's cache entry
/// lapses costs one argon2 and no budget, and every request in it gets the same
/// verdict. (Per client, because a verdict such as `RATE_LIMITED` is that
/// client's own.)
pub(super) type Flights = Mutex<HashMap<Flight, watch::Receiver<Option<Verification>>>>;

/// A flight's key. It holds the presented key only while the verification is
/// under way, and wipes it when dropped.
pub(super) struct Flight {
    client: Option<IpAddr>,
    presented: Zeroizing<String>,
}

impl Flight {
    pub(super) fn new(client: Option<IpAddr>, presented: &str) -> Self {
        Self {
            client,
            presented: Zeroizing::new(presented.to_owned()),
        }
    }
}

/// Whether a request verifies (and tells the others) or waits for a verdict.
pub(super) enum Role {
    Lead(watch::Sender<Option<Verification>>),
    Follow(watch::Receiver<Option<Verification>>),
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        self.client == other.client && self.presented.as_str() == other.presented.as_str()
    }
}

impl Eq for Flight {}

impl Hash for Flight {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.client.hash(state);
        self.presented.as_str().hash(state);
    }
}

/// The leader's claim on a flight: dropping it (verdict sent, or the request
/// abandoned) ends the flight, so followers never wait on a flight nobody flies.
pub(super) struct Leading<'a> {
    pub(super) flights: &'a Flights,
    pub(super) flight: Flight,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.flight);
    }
}
