use async_trait::async_trait;

/// Why a secret-scanning report's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReportSignatureError {
    /// The key id or signature header is missing or not in the expected form.
    #[error("the signature headers are missing or malformed")]
    Malformed,
    /// The scanner publishes no key with this id (after a refetch).
    #[error("the signing key is not one the scanner publishes")]
    UnknownKey,
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    Invalid,
    /// The scanner's keys could not be fetched and none is cached: the report
    /// cannot be checked now.
    #[error("the scanner's signing keys are unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// Checks that a secret-scanning report comes from the scanner: a signature
/// over the exact bytes received, by a key the scanner publishes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportSignatures: Send + Sync {
    /// Accepts `body` when `signature` (as sent) is the scanner's signature of
    /// it with the key named `key_id`.
    async fn check(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), ReportSignatureError>;

    /// What can be judged before the body is read: both headers well formed,
    /// and the key one the scanner publishes. A report that fails this is
    /// refused without buffering its body.
    async fn precheck(&self, key_id: &str, signature: &str) -> Result<(), ReportSignatureError>;
}
