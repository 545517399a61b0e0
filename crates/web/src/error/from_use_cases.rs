//! The translation of every use-case error into an [`ApiError`]: which status,
//! machine code and message each refusal or failure of the application layer
//! answers with.

use keymint_application::{
    AnalyticsError, AuthError, ChangeCreditsError, CreateApiKeyError, CreditChangeRefusal, KeyError, LeakError,
    MissingPermission, ReportSignatureError, RepositoryError, RotateApiKeyError, VerifyApiKeyError, WebhookError,
};
use keymint_domain::{ExpiryError, RotateError, MAX_GRACE_PERIOD_SECONDS};

use super::{ApiError, FieldError};

// ------------------------------------------------------- use-case errors, translated

impl From<MissingPermission> for ApiError {
    fn from(missing: MissingPermission) -> Self {
        ApiError::Forbidden {
            code: "insufficient_permissions",
            detail: format!("The token lacks the permission {}", missing.0.as_str()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid(reason) => ApiError::InvalidToken(reason.to_string()),
            AuthError::NoOrganization => ApiError::Forbidden {
                code: "no_organization",
                detail: "The token does not name a valid organization".into(),
            },
            AuthError::Unavailable(cause) => ApiError::Unavailable {
                code: "auth_unavailable",
                detail: "Token verification is temporarily unavailable",
                cause: Some(cause),
            },
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(cause) => ApiError::storage_unavailable(cause),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(err: AnalyticsError) -> Self {
        let loc: &[&str] = match err {
            AnalyticsError::Forbidden(missing) => return missing.into(),
            AnalyticsError::Storage(cause) => return cause.into(),
            AnalyticsError::EmptyRange => &["query", "from"],
            AnalyticsError::RangeTooLong(_) => &["query", "granularity"],
            AnalyticsError::TooManyRows(_) => &["query"],
        };
        ApiError::Validation(vec![FieldError::new(loc, "value_error", capitalise(&err.to_string()))])
    }
}

/// A use case's message as a sentence.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Forbidden(missing) => missing.into(),
            KeyError::NotFound => ApiError::KeyNotFound,
            KeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            KeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<CreateApiKeyError> for ApiError {
    fn from(err: CreateApiKeyError) -> Self {
        match err {
            CreateApiKeyError::Forbidden(missing) => missing.into(),
            CreateApiKeyError::InvalidExpiry(reason) => {
                let kind = match reason {
                    ExpiryError::NotInFuture => "greater_than",
                    ExpiryError::TooFarAhead { .. } => "less_than_equal",
                };
                ApiError::Validation(vec![FieldError::new(&["body", "expires_at"], kind, reason.to_string())])
            }
            CreateApiKeyError::LimitReached { max } => ApiError::Conflict {
                code: "key_limit_reached",
                detail: format!("The organization already has {max} active API keys; revoke or delete one first"),
            },
            CreateApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            CreateApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<RotateError> for ApiError {
    fn from(err: RotateError) -> Self {
        let grace = |kind: &str, msg: String| {
            ApiError::Validation(vec![FieldError::new(&["body", "grace_period_seconds"], kind, msg)])
        };
        match err {
            RotateError::NegativeGracePeriod => grace(
                "greater_than_equal",
                "Input should be greater than or equal to 0".into(),
            ),
            RotateError::GracePeriodTooLong => grace(
                "less_than_equal",
                format!("Input should be less than or equal to {MAX_GRACE_PERIOD_SECONDS}"),
            ),
            RotateError::Revoked => ApiError::Conflict {
                code: "key_revoked",
                detail: "The API key is revoked and cannot be rotated".into(),
            },
            RotateError::Expired => ApiError::Conflict {
                code: "key_expired",
                detail: "The API key has expired and cannot be rotated".into(),
            },
        }
    }
}

impl From<RotateApiKeyError> for ApiError {
    fn from(err: RotateApiKeyError) -> Self {
        match err {
            RotateApiKeyError::Forbidden(missing) => missing.into(),
            RotateApiKeyError::NotFound => ApiError::KeyNotFound,
            RotateApiKeyError::Refused(reason) => reason.into(),
            RotateApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            RotateApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<ChangeCreditsError> for ApiError {
    fn from(err: ChangeCreditsError) -> Self {
        match err {
            ChangeCreditsError::Forbidden(missing) => missing.into(),
            ChangeCreditsError::NotFound => ApiError::KeyNotFound,
            ChangeCreditsError::Unlimited => ApiError::Conflict {
                code: "credits_unlimited",
                detail: "The key has unlimited use: give it credits with an update (PATCH) first".to_owned(),
            },
            ChangeCreditsError::Refused(CreditChangeRefusal::BelowZero(remaining)) => ApiError::Conflict {
                code: "insufficient_credits",
                detail: format!("The change would take the credits below 0: {remaining} remain"),
            },
            ChangeCreditsError::Refused(CreditChangeRefusal::AboveMaximum(remaining)) => ApiError::Conflict {
                code: "credits_out_of_range",
                detail: format!(
                    "The change would take the credits above {}: {remaining} remain",
                    keymint_domain::MAX_CREDITS
                ),
            },
            ChangeCreditsError::IdempotencyMismatch => ApiError::Conflict {
                code: "idempotency_key_reused",
                detail: "This Idempotency-Key was used for a different request".to_owned(),
            },
            ChangeCreditsError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            ChangeCreditsError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<VerifyApiKeyError> for ApiError {
    fn from(err: VerifyApiKeyError) -> Self {
        match err {
            VerifyApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            VerifyApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
            VerifyApiKeyError::UnknownRateLimit { index, name } => ApiError::Validation(vec![FieldError::new(
                &["body", "ratelimits", &index.to_string(), "name"],
                "value_error",
                format!("The key has no rate limit named '{name}'"),
            )]),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Forbidden(missing) => missing.into(),
            WebhookError::NotFound => ApiError::WebhookNotFound,
            WebhookError::InvalidUrl(reason) => ApiError::Validation(vec![FieldError::new(
                &["body", "url"],
                "value_error",
                reason.to_string(),
            )]),
            WebhookError::LimitReached { max } => ApiError::Conflict {
                code: "webhook_limit_reached",
                detail: format!("The organization already has {max} webhooks"),
            },
            WebhookError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            WebhookError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<LeakError> for ApiError {
    fn from(err: LeakError) -> Self {
        match err {
            LeakError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            LeakError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<ReportSignatureError> for ApiError {
    fn from(err: ReportSignatureError) -> Self {
        let detail = match err {
            ReportSignatureError::Malformed => {
                "The Github-Public-Key-Identifier and Github-Public-Key-Signature headers are missing or malformed"
            }
            ReportSignatureError::UnknownKey => "The signing key is not one GitHub publishes",
            ReportSignatureError::Invalid => "The signature does not match the body",
            ReportSignatureError::Unavailable(cause) => {
                return ApiError::Unavailable {
                    code: "signing_keys_unavailable",
                    detail: "GitHub's signing keys cannot be fetched right now",
                    cause: Some(cause),
                }
            }
        };
        ApiError::BadSignature { detail }
    }
}
