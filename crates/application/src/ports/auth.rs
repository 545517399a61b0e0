use async_trait::async_trait;
use keymint_domain::OrgId;

/// An authenticated caller of the management API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    org_id: OrgId,
    subject: Option<String>,
}

impl Principal {
    /// A caller acting for `org_id`; `subject` is the token's `sub`, kept for audit.
    pub fn new(org_id: OrgId, subject: Option<String>) -> Self {
        Self { org_id, subject }
    }

    /// The organisation the caller acts for.
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// The token's subject, if it had one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

/// Which check a bearer token failed. The text is safe to show to the caller: it
/// never contains the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// Not a JWT, or its parts do not decode.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The token's algorithm is not allowed.
    #[error("the token's algorithm is not allowed")]
    UnsupportedAlgorithm,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A claim that must be present is missing.
    #[error("the token lacks a required claim")]
    MissingClaim,
}

/// Why a bearer token did not yield a [`Principal`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token failed a check; the caller must present a different token.
    #[error(transparent)]
    Invalid(#[from] InvalidToken),
    /// The token is valid but names no usable organisation.
    #[error("the token does not name a valid organization")]
    NoOrganization,
    /// Verification could not be carried out (for example, keys could not be fetched).
    #[error("token verification is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// Verifies bearer tokens presented to the management API.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// Checks `token` (without its `Bearer ` scheme) and returns who is calling.
    ///
    /// MUST return [`AuthError::Invalid`] for any token that fails a check and
    /// [`AuthError::NoOrganization`] for a valid token without an organisation.
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}
