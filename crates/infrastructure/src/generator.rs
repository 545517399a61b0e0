use keymint_application::KeyGenerator;
use keymint_domain::{Environment, KeyId, KeyMaterial, PublicKey};
use rand_core::OsRng;
use uuid::Uuid;

/// Draws key material from the operating system's CSPRNG and ids as UUIDv7, whose
/// time-ordered prefix keeps primary-key inserts at the end of the index.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsKeyGenerator;

impl KeyGenerator for OsKeyGenerator {
    fn key_id(&self) -> KeyId {
        KeyId::from_uuid(Uuid::now_v7())
    }

    fn event_id(&self) -> Uuid {
        Uuid::now_v7()
    }

    fn material(&self, environment: Environment) -> KeyMaterial {
        KeyMaterial::generate(environment, &mut OsRng)
    }

    fn rotation(&self, public_key: PublicKey, environment: Environment) -> KeyMaterial {
        KeyMaterial::rotate(public_key, environment, &mut OsRng)
    }
}
