//! Leaked keys die on their own: reports from secret scanners and from whoever
//! holds a key are checked against the stored key and acted upon.

use std::str::FromStr;

use keymint_domain::{KeyId, LeakReport, Subject};

use crate::{Actor, ApiKeys, Budget, Identity, KeyError, Principal, VerifyApiKey, VerifyApiKeyError};

/// What a deployment does with a genuine leaked private key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeakAction {
    /// Stop it verifying at once (the key is revoked, or a rotated-out private
    /// key loses its grace period) and record the leak.
    #[default]
    Revoke,
    /// Only record the leak (`leaked_at`, the audit trail, the event), for
    /// operators who want a human to decide.
    Flag,
}

/// The text names no leak action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be 'revoke' or 'flag'")]
pub struct UnknownLeakAction;

impl FromStr for LeakAction {
    type Err = UnknownLeakAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "revoke" => Ok(LeakAction::Revoke),
            "flag" => Ok(LeakAction::Flag),
            _ => Err(UnknownLeakAction),
        }
    }
}

/// Who reports a leak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reporter {
    /// The reporter's name in the audit trail (`None`: the key's holder).
    pub subject: Option<Subject>,
    /// The request that carried the report.
    pub request_id: Option<String>,
    /// Whether the report spends the failure budgets.
    pub budget: Budget,
}

/// What a reported token turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakVerdict {
    /// A private key of a stored key: the leak is real.
    Genuine {
        /// The key.
        key_id: KeyId,
        /// Whether this report changed the key (a repeated report does not).
        changed: bool,
    },
    /// Not a private key of any stored key.
    NotOurs,
    /// Too many failed attempts for this key id or client; nothing was checked.
    RateLimited,
}

/// Why a report could not be decided; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    /// Storage is unreachable.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Acts on leak reports.
#[derive(Clone, Debug)]
pub struct ReportLeaks {
    verify: VerifyApiKey,
    keys: ApiKeys,
    action: LeakAction,
}

impl ReportLeaks {
    /// Identifies keys with `verify` and changes them through `keys`.
    pub fn new(verify: VerifyApiKey, keys: ApiKeys, action: LeakAction) -> Self {
        Self { verify, keys, action }
    }

    /// What the deployment does with genuine leaks.
    pub fn action(&self) -> LeakAction {
        self.action
    }

    /// Checks that `presented` is a stored key's private key (by its secret,
    /// never by its shape alone) and, if so, acts on the leak as configured.
    pub async fn report(
        &self,
        presented: &str,
        report: &LeakReport,
        reporter: &Reporter,
    ) -> Result<LeakVerdict, LeakError> {
        let identity = self
            .verify
            .identify(presented, reporter.budget)
            .await
            .map_err(|err| match err {
                VerifyApiKeyError::StorageUnavailable(e) => LeakError::StorageUnavailable(e),
                other => LeakError::Unexpected(other.into()),
            })?;
        let (key_id, org_id, lookup_id) = match identity {
            Identity::Holder {
                key_id,
                org_id,
                lookup_id,
            } => (key_id, org_id, lookup_id),
            Identity::Unknown => return Ok(LeakVerdict::NotOurs),
            Identity::RateLimited => return Ok(LeakVerdict::RateLimited),
        };
        let actor = Actor::new(
            &Principal::new(org_id, reporter.subject.clone()),
            reporter.request_id.clone(),
        );
        let take_out_of_use = self.action == LeakAction::Revoke;
        match self
            .keys
            .report_leak(&actor, key_id, &lookup_id, report, take_out_of_use)
            .await
        {
            Ok(changed) => Ok(LeakVerdict::Genuine { key_id, changed }),
            // Deleted since it was identified: nothing is left to leak.
            Err(KeyError::NotFound) => Ok(LeakVerdict::NotOurs),
            Err(KeyError::StorageUnavailable(e)) => Err(LeakError::StorageUnavailable(e)),
            Err(other) => Err(LeakError::Unexpected(other.into())),
        }
    }
}
