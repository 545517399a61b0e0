use keymint_application::KeyGenerator;
use keymint_domain::{Environment, KeyFormat, KeyId, KeyMaterial, PublicKey, WebhookSecret};
use rand_core::OsRng;
use uuid::Uuid;

/// Draws key material from the operating system's CSPRNG, under the deployment's
/// key prefix, and ids as UUIDv7, whose time-ordered prefix keeps primary-key
/// inserts at the end of the index.
#[derive(Clone, Debug, Default)]
pub struct OsKeyGenerator {
    format: KeyFormat,
}

impl OsKeyGenerator {
    /// A generator issuing keys in `format`.
    pub fn new(format: KeyFormat) -> Self {
        Self { format }
    }
}

impl KeyGenerator for OsKeyGenerator {
    fn key_id(&self) -> KeyId {
        KeyId::from_uuid(Uuid::now_v7())
    }

    fn event_id(&self) -> Uuid {
        Uuid::now_v7()
    }

    fn material(&self, environment: Environment) -> KeyMaterial {
        self.format.generate(environment, &mut OsRng)
    }

    fn rotation(&self, public_key: PublicKey, environment: Environment) -> KeyMaterial {
        self.format.rotate(public_key, environment, &mut OsRng)
    }

    fn webhook_secret(&self) -> WebhookSecret {
        WebhookSecret::generate(&mut OsRng)
    }
}
