use keymint_domain::{Environment, KeyId, KeyMaterial};

/// Where new ids and key material come from.
///
/// Production draws from the operating system's secure generator; tests use a
/// seeded one so their keys are reproducible.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    /// A new, unique key id.
    fn key_id(&self) -> KeyId;

    /// New public and private keys for `environment`.
    fn material(&self, environment: Environment) -> KeyMaterial;
}
