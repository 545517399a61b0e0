use keymint_domain::{Environment, KeyId, KeyMaterial, PublicKey, WebhookSecret};
use uuid::Uuid;

/// Where new ids and key material come from.
///
/// Production draws from the operating system's secure generator; tests use a
/// seeded one so their keys are reproducible.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    /// A new, unique key id.
    fn key_id(&self) -> KeyId;

    /// A new, unique audit event id.
    fn event_id(&self) -> Uuid;

    /// New public and private keys for `environment`.
    fn material(&self, environment: Environment) -> KeyMaterial;

    /// A new private key for an existing public key (a rotation).
    fn rotation(&self, public_key: PublicKey, environment: Environment) -> KeyMaterial;

    /// A new webhook signing secret.
    fn webhook_secret(&self) -> WebhookSecret;
}
