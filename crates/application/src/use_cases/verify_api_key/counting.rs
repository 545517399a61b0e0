//! What a verification is counted as in usage analytics.

use std::net::IpAddr;

use keymint_domain::{Demand, PermissionQuery, TagSet, VerificationOutcome};

use super::{Verification, VerifyApiKey, VerifyApiKeyError};
use crate::CountedVerification;

impl VerifyApiKey {
    /// [`VerifyApiKey::execute_with`], the verification counted for usage
    /// analytics under `tags` (every verdict that names a key is counted).
    pub async fn execute_tagged(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        required: Option<&PermissionQuery>,
        demand: Demand,
        tags: TagSet,
    ) -> Result<Verification, VerifyApiKeyError> {
        let cost = demand.credits.unwrap_or(1);
        let verification = self.decide(presented, client, required, demand).await?;
        self.count(&verification, tags, cost);
        Ok(verification)
    }

    /// Counts `verification` unless it names no key (`NOT_FOUND`, a failure
    /// budget's `RATE_LIMITED`). A granted verification of a key with credits
    /// spent `cost`; a refused one spent nothing.
    fn count(&self, verification: &Verification, tags: TagSet, cost: u64) {
        use VerificationOutcome as O;
        let (key_id, org_id, owner_id, outcome, spent_credits) = match verification {
            Verification::Valid(key) => {
                let spent = if key.has_credits && key.usage.is_some() {
                    cost
                } else {
                    0
                };
                (key.key_id, key.org_id, &key.owner_id, O::Valid, spent)
            }
            Verification::InsufficientPermissions(key) => {
                (key.key_id, key.org_id, &key.owner_id, O::InsufficientPermissions, 0)
            }
            Verification::KeyRateLimited(key) => (key.key_id, key.org_id, &key.owner_id, O::RateLimited, 0),
            Verification::UsageExceeded(key) => (key.key_id, key.org_id, &key.owner_id, O::UsageExceeded, 0),
            Verification::Revoked(key) => (key.key_id, key.org_id, &key.owner_id, O::Revoked, 0),
            Verification::Expired(key) => (key.key_id, key.org_id, &key.owner_id, O::Expired, 0),
            Verification::NotFound | Verification::RateLimited => return,
        };
        self.counter.count(CountedVerification {
            org_id,
            key_id,
            owner_id: owner_id.clone(),
            outcome,
            tags,
            spent_credits,
            at: self.clock.now(),
        });
    }
}
