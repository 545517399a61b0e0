use std::collections::BTreeSet;

use async_trait::async_trait;
use keymint_domain::{OrgId, Subject, MAX_SUBJECT_CHARS};

use crate::RepositoryError;

/// What a management operation needs the caller to be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// List, get and read audit trails: `read:api_keys`.
    Read,
    /// Create, update, revoke, rotate and delete: `write:api_keys`.
    Write,
}

impl Permission {
    /// Every permission, for tokens that should carry them all (development).
    pub const ALL: [Permission; 2] = [Permission::Read, Permission::Write];

    /// The permission's name as identity providers issue it (Auth0 RBAC style).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read:api_keys",
            Permission::Write => "write:api_keys",
        }
    }
}

/// An authenticated caller of the management API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    org_id: OrgId,
    subject: Option<Subject>,
    /// `None` when permissions are not enforced.
    permissions: Option<BTreeSet<String>>,
}

/// The caller lacks a permission; the text names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks the permission {}", .0.as_str())]
pub struct MissingPermission(pub Permission);

impl Principal {
    /// A caller acting for `org_id` with every permission; `subject` is the
    /// token's `sub`, kept for audit.
    pub fn new(org_id: OrgId, subject: Option<Subject>) -> Self {
        Self {
            org_id,
            subject,
            permissions: None,
        }
    }

    /// The same caller, limited to `permissions`.
    pub fn with_permissions(mut self, permissions: impl IntoIterator<Item = String>) -> Self {
        self.permissions = Some(permissions.into_iter().collect());
        self
    }

    /// The organisation the caller acts for.
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// The token's subject, if it had one.
    pub fn subject(&self) -> Option<&Subject> {
        self.subject.as_ref()
    }

    /// Checks that the caller may do what `permission` covers.
    pub fn authorize(&self, permission: Permission) -> Result<(), MissingPermission> {
        match &self.permissions {
            Some(granted) if !granted.contains(permission.as_str()) => Err(MissingPermission(permission)),
            _ => Ok(()),
        }
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
    /// No signing key has the token's key id (or it has none where one is needed).
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A claim that must be present is missing or has the wrong type.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// The token is larger than any real token.
    #[error("the token is too large")]
    TooLarge,
    /// `sub` cannot be recorded as who acted: missing (RFC 9068 requires it
    /// of JWT access tokens), not a string (RFC 7519's StringOrURI), empty,
    /// longer than [`MAX_SUBJECT_CHARS`], or breaking the text rule.
    #[error(
        "the token's sub claim is missing or unusable: it must be a string of 1 to {MAX_SUBJECT_CHARS} visible characters"
    )]
    UnusableSubject,
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
    /// Verification could not be carried out (keys could not be fetched, the
    /// organisation directory is down).
    #[error("token verification is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// The claims Keymint uses from a token whose signature and standard claims
/// (`exp`, `nbf`, `iat`, `iss`, `aud`) have been checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`.
    pub subject: Option<String>,
    /// The organisation claim's value, if it is a string.
    pub organization: Option<String>,
    /// The `permissions` array, or else the space-separated `scope`.
    pub permissions: Vec<String>,
}

/// Verifies bearer tokens presented to the management API.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// Checks `token` (without its `Bearer ` scheme).
    ///
    /// MUST return [`AuthError::Invalid`] for any token that fails a check, and
    /// [`AuthError::Unavailable`] only when no check could be made at all.
    async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError>;
}

/// Maps organisation ids issued by an identity provider (e.g. Auth0's
/// `org_9ybsU1dN2dKfDkBi`) to Keymint's organisation UUIDs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrganizationDirectory: Send + Sync {
    /// The UUID for `external_id`, created on first sight.
    ///
    /// MUST return the same UUID for the same id forever, also when several
    /// processes see a new id at the same moment.
    async fn resolve(&self, external_id: &str) -> Result<OrgId, RepositoryError>;
}
