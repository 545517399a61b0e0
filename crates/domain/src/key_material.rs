//! The format of Keymint's keys.
//!
//! ```text
//! public key:   [<brand>_]pk_<env>_<24 base62>
//! private key:  [<brand>_]sk_<env>_<lookup id: 16 base62>_<secret: 43 base62><checksum: 6 base62>
//! ```
//!
//! - The brand is a deployment's own [`KeyPrefix`] (`acme` gives `acme_sk_live_…`),
//!   so that secret scanners can tell its keys from everyone else's `sk_live_…`.
//!   The default prefix `sk` has no brand.
//! - The secret is 43 characters drawn uniformly from 62, i.e. 43 · log2(62) ≈ 256.03
//!   bits from the caller's cryptographically secure generator.
//! - The lookup id is not secret: it lets a verifier find the one stored row with an
//!   indexed read instead of hashing against every key.
//! - The checksum is the CRC32 (IEEE) of everything before it, as 6 fixed-width base62
//!   digits (62⁶ > 2³²). CRC32 detects every single-byte change, so typos and
//!   truncations are refused offline, before any storage or hashing work.
//!
//! A deployment's own prefixes, and the format that issues and recognises its
//! keys under them, are in `format`.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::base62;
use crate::Environment;

mod format;

pub use format::{KeyFormat, KeyPrefix, KeyPrefixError, MAX_PREFIX_CHARS};

/// Characters of randomness in a public key after its `pk_<env>_` prefix.
pub const PUBLIC_KEY_RANDOM_CHARS: usize = 24;
/// Characters in the lookup id embedded in a private key.
pub const LOOKUP_ID_CHARS: usize = 16;
/// Characters of secret in a private key (≥ 256 bits of entropy).
pub const SECRET_CHARS: usize = 43;
/// Width of the base62 CRC32 checksum that ends a private key.
pub const CHECKSUM_CHARS: usize = 6;

const PRIVATE_PREFIX: &str = "sk_";
const PUBLIC_PREFIX: &str = "pk_";
/// `sk_` + `live`/`test` + `_`: both environments have 4-letter names.
const ENV_PREFIX_LEN: usize = 3 + 4 + 1;
const PRIVATE_KEY_LEN: usize = ENV_PREFIX_LEN + LOOKUP_ID_CHARS + 1 + SECRET_CHARS + CHECKSUM_CHARS;
/// How many trailing characters of a private key its display shows.
const DISPLAY_TAIL_CHARS: usize = 4;

/// A key's public identifier, `pk_<env>_…`: not secret, unique, safe to log and show.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(String);

impl PublicKey {
    /// Restores a stored public key, checking its shape. Any brand is accepted:
    /// a stored key keeps the prefix it was issued under.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let unbranded = match raw.split_once('_') {
            Some((brand, rest)) if brand != "pk" && KeyPrefix::parse(brand).is_ok() => rest,
            _ => raw,
        };
        let rest = unbranded.strip_prefix(PUBLIC_PREFIX).ok_or(KeyFormatError::Malformed)?;
        let (env, random) = rest.split_once('_').ok_or(KeyFormatError::Malformed)?;
        env.parse::<Environment>().map_err(|_| KeyFormatError::Malformed)?;
        if random.len() != PUBLIC_KEY_RANDOM_CHARS || !base62::is_base62(random) {
            return Err(KeyFormatError::Malformed);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The non-secret part of a private key that locates its stored record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LookupId(String);

impl LookupId {
    /// Restores a stored lookup id, checking its shape.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        if raw.len() == LOOKUP_ID_CHARS && base62::is_base62(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(KeyFormatError::Malformed)
        }
    }

    /// The lookup id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LookupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A private key, the credential itself.
///
/// It is shown once, when created or rotated, and never stored: only a slow hash of
/// it is. `Debug` does not print it, and its memory is wiped when it is dropped.
/// There is deliberately no `Display` and no `Clone`: reading it takes an explicit
/// [`PrivateKey::expose_secret`].
pub struct PrivateKey {
    value: String,
    environment: Environment,
    /// Where `sk_` starts: after the brand, if the key has one.
    start: usize,
}

/// Why a presented private (or stored public) key was refused. The variants never
/// carry the key itself, so an error can be logged or returned safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Wrong prefix, environment, length, separators or characters.
    #[error("the key is malformed")]
    Malformed,
    /// The shape is right but the checksum does not match: a typo or truncation.
    #[error("the key's checksum does not match")]
    Checksum,
}

impl PrivateKey {
    /// Checks a presented key's shape and checksum, with no storage or hashing,
    /// under the default prefix (`sk_…`); [`KeyFormat::parse`] knows a
    /// deployment's own.
    ///
    /// Success says the key is well formed, not that it exists or is valid: that takes
    /// a lookup by [`PrivateKey::lookup_id`] and a hash comparison.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        Self::parse_under(raw, 0)
    }

    /// Parses a key whose `sk_` starts at `start` (after a brand already matched).
    fn parse_under(raw: &str, start: usize) -> Result<Self, KeyFormatError> {
        if raw.len() != start + PRIVATE_KEY_LEN || !raw.is_ascii() {
            return Err(KeyFormatError::Malformed);
        }
        let key = &raw[start..];
        let rest = key.strip_prefix(PRIVATE_PREFIX).ok_or(KeyFormatError::Malformed)?;
        let environment = rest[..4]
            .parse::<Environment>()
            .map_err(|_| KeyFormatError::Malformed)?;
        let body = &key[ENV_PREFIX_LEN - 1..];
        let (lookup, tail) = (&body[1..=LOOKUP_ID_CHARS], &body[LOOKUP_ID_CHARS + 1..]);
        if !body.starts_with('_')
            || !tail.starts_with('_')
            || !base62::is_base62(lookup)
            || !base62::is_base62(&tail[1..])
        {
            return Err(KeyFormatError::Malformed);
        }
        let (payload, checksum) = raw.split_at(raw.len() - CHECKSUM_CHARS);
        let presented = base62::decode(checksum).ok_or(KeyFormatError::Malformed)?;
        if presented != u64::from(crc32fast::hash(payload.as_bytes())) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(Self {
            value: raw.to_owned(),
            environment,
            start,
        })
    }

    /// The key's environment, from its prefix.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The lookup id embedded in the key.
    pub fn lookup_id(&self) -> LookupId {
        let at = self.start + ENV_PREFIX_LEN;
        LookupId(self.value[at..at + LOOKUP_ID_CHARS].to_owned())
    }

    /// The masked form people see in lists: prefix, an ellipsis, and the last four
    /// characters (`sk_live_…9fQa`, `acme_sk_live_…9fQa`).
    pub fn display(&self) -> KeyDisplay {
        let lead = &self.value[..self.start + ENV_PREFIX_LEN];
        let tail = &self.value[self.value.len() - DISPLAY_TAIL_CHARS..];
        KeyDisplay(format!("{lead}…{tail}"))
    }

    /// The key itself. Call it only to hand the key to its owner or to a hasher.
    pub fn expose_secret(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("display", &self.display().as_str())
            .finish_non_exhaustive()
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// The masked form of a private key, safe to store, log and show.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyDisplay(String);

impl KeyDisplay {
    /// Restores a stored display string. It is not secret, so no shape is enforced
    /// beyond being non-empty, which keeps older display formats loadable.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The display as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything a newly issued key is made of: its public key, the private key (shown
/// once) and the lookup id tying the two to one stored record.
#[derive(Debug)]
pub struct KeyMaterial {
    public_key: PublicKey,
    private_key: PrivateKey,
}

impl KeyMaterial {
    /// Draws a new public and private key for `environment` from `rng`.
    ///
    /// The generator is a parameter so that production passes the operating
    /// system's generator and tests pass a seeded one.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(environment: Environment, rng: &mut R) -> Self {
        Self::draw(&KeyPrefix::default(), environment, rng)
    }

    /// Draws a new private key for the same public key: what rotation issues.
    pub fn rotate<R: RngCore + CryptoRng + ?Sized>(
        public_key: PublicKey,
        environment: Environment,
        rng: &mut R,
    ) -> Self {
        KeyFormat::default().rotate(public_key, environment, rng)
    }

    fn draw<R: RngCore + CryptoRng + ?Sized>(prefix: &KeyPrefix, environment: Environment, rng: &mut R) -> Self {
        let lead = prefix.public_lead();
        let mut public = String::with_capacity(lead.len() + ENV_PREFIX_LEN + PUBLIC_KEY_RANDOM_CHARS);
        public.push_str(lead);
        public.push_str(environment.as_str());
        public.push('_');
        base62::push_random(&mut public, PUBLIC_KEY_RANDOM_CHARS, rng);

        Self {
            public_key: PublicKey(public),
            private_key: Self::draw_private_key(prefix, environment, rng),
        }
    }

    fn draw_private_key<R: RngCore + CryptoRng + ?Sized>(
        prefix: &KeyPrefix,
        environment: Environment,
        rng: &mut R,
    ) -> PrivateKey {
        let lead = prefix.private_lead();
        let start = lead.len() - PRIVATE_PREFIX.len();
        let mut value = String::with_capacity(start + PRIVATE_KEY_LEN);
        value.push_str(lead);
        value.push_str(environment.as_str());
        value.push('_');
        base62::push_random(&mut value, LOOKUP_ID_CHARS, rng);
        value.push('_');
        base62::push_random(&mut value, SECRET_CHARS, rng);
        // The checksum covers the brand too: a key moved to another brand fails it.
        let checksum = crc32fast::hash(value.as_bytes());
        base62::encode_fixed(u64::from(checksum), CHECKSUM_CHARS, &mut value);
        PrivateKey {
            value,
            environment,
            start,
        }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private_key
    }

    /// The lookup id embedded in the private key.
    pub fn lookup_id(&self) -> LookupId {
        self.private_key.lookup_id()
    }

    /// Splits the material into its public and private keys.
    pub fn into_parts(self) -> (PublicKey, PrivateKey) {
        (self.public_key, self.private_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn material(seed: u64, env: Environment) -> KeyMaterial {
        KeyMaterial::generate(env, &mut StdRng::seed_from_u64(seed))
    }

    fn environment() -> impl Strategy<Value = Environment> {
        prop_oneof![Just(Environment::Live), Just(Environment::Test)]
    }

    #[test]
    fn keys_have_the_documented_layout() {
        let m = material(7, Environment::Live);
        let sk = m.private_key().expose_secret();
        assert_eq!(sk.len(), 74);
        assert!(sk.starts_with("sk_live_"));
        assert_eq!(&sk[24..25], "_");
        assert!(m.public_key().as_str().starts_with("pk_live_"));
        assert_eq!(m.public_key().as_str().len(), 8 + PUBLIC_KEY_RANDOM_CHARS);
        assert_eq!(m.lookup_id().as_str(), &sk[8..24]);
        assert!(PublicKey::parse(m.public_key().as_str()).is_ok());
    }

    #[test]
    fn the_same_seed_gives_the_same_keys_and_different_seeds_differ() {
        let (a, b, c) = (
            material(1, Environment::Test),
            material(1, Environment::Test),
            material(2, Environment::Test),
        );
        assert_eq!(a.private_key().expose_secret(), b.private_key().expose_secret());
        assert_ne!(a.private_key().expose_secret(), c.private_key().expose_secret());
        assert_ne!(a.public_key(), c.public_key());
    }

    #[test]
    fn rotation_keeps_the_public_key_and_draws_a_new_secret() {
        let mut rng = StdRng::seed_from_u64(3);
        let first = KeyMaterial::generate(Environment::Live, &mut rng);
        let rotated = KeyMaterial::rotate(first.public_key().clone(), Environment::Live, &mut rng);
        assert_eq!(first.public_key(), rotated.public_key());
        assert_ne!(
            first.private_key().expose_secret(),
            rotated.private_key().expose_secret()
        );
        assert_ne!(first.lookup_id(), rotated.lookup_id());
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let m = material(9, Environment::Live);
        let secret = m.private_key().expose_secret().to_owned();
        let debug = format!("{m:?} {:?}", m.private_key());
        assert!(!debug.contains(&secret[8..]), "{debug}");
        assert!(!debug.contains(m.lookup_id().as_str()));
    }

    #[test]
    fn refuses_keys_of_the_wrong_shape() {
        let good = material(11, Environment::Live).private_key().expose_secret().to_owned();
        for bad in [
            String::new(),
            "sk_live_".to_owned(),
            good.replacen("sk_", "pk_", 1),
            good.replacen("live", "prod", 1),
            good.replacen("live", "LIVE", 1),
            format!("{good}x"),
            format!(" {}", &good[1..]),
            good.replacen('_', "-", 3),
            format!("{}é", &good[..good.len() - 2]),
        ] {
            assert!(PrivateKey::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    fn format(issuing: &str, also: &[&str]) -> KeyFormat {
        KeyFormat::new(
            KeyPrefix::parse(issuing).unwrap(),
            also.iter().map(|p| KeyPrefix::parse(p).unwrap()),
        )
    }

    #[test]
    fn prefixes_are_checked() {
        for good in ["sk", "acme", "a", "x9", "abcdefghijklmnop"] {
            assert_eq!(
                KeyPrefix::parse(good).map(|p| p.as_str().to_owned()),
                Ok(good.to_owned())
            );
        }
        assert_eq!(KeyPrefix::parse(""), Err(KeyPrefixError::Length));
        assert_eq!(KeyPrefix::parse("abcdefghijklmnopq"), Err(KeyPrefixError::Length));
        for bad in ["Acme", "9a", "ac_me", "ac-me", "acmé", " acme"] {
            assert_eq!(KeyPrefix::parse(bad), Err(KeyPrefixError::Characters), "{bad}");
        }
        assert_eq!(KeyPrefix::parse("pk"), Err(KeyPrefixError::Reserved));
        assert_eq!(KeyPrefix::parse("sk"), Ok(KeyPrefix::default()));
    }

    #[test]
    fn the_default_prefix_keeps_the_plain_format_and_a_brand_leads_both_keys() {
        let mut rng = StdRng::seed_from_u64(21);
        let plain = KeyFormat::default().generate(Environment::Live, &mut rng);
        assert!(plain.private_key().expose_secret().starts_with("sk_live_"));
        assert!(plain.public_key().as_str().starts_with("pk_live_"));

        let acme = format("acme", &[]).generate(Environment::Test, &mut rng);
        let sk = acme.private_key().expose_secret();
        assert!(sk.starts_with("acme_sk_test_"), "{sk}");
        assert_eq!(sk.len(), 5 + 74);
        assert!(acme.public_key().as_str().starts_with("acme_pk_test_"));
        assert!(acme.private_key().display().as_str().starts_with("acme_sk_test_…"));
        assert_eq!(acme.lookup_id().as_str(), &sk[13..29]);
        let parsed = format("acme", &[]).parse(sk).unwrap();
        assert_eq!(parsed.lookup_id(), acme.lookup_id());
        assert_eq!(parsed.environment(), Environment::Test);
        assert_eq!(parsed.display(), acme.private_key().display());
        assert!(PublicKey::parse(acme.public_key().as_str()).is_ok());
    }

    #[test]
    fn only_accepted_prefixes_verify_and_the_brand_is_under_the_checksum() {
        let mut rng = StdRng::seed_from_u64(22);
        let old = KeyFormat::default().generate(Environment::Live, &mut rng);
        let new = format("acme", &[]).generate(Environment::Live, &mut rng);
        let (old_sk, new_sk) = (old.private_key().expose_secret(), new.private_key().expose_secret());

        let migrating = format("acme", &["sk"]);
        assert!(migrating.parse(old_sk).is_ok());
        assert!(migrating.parse(new_sk).is_ok());
        assert_eq!(format("acme", &[]).parse(old_sk).err(), Some(KeyFormatError::Malformed));
        assert_eq!(
            KeyFormat::default().parse(new_sk).err(),
            Some(KeyFormatError::Malformed)
        );
        // Moving a key to another brand is caught like any other typo.
        let rebranded = new_sk.replacen("acme_", "acmf_", 1);
        assert_eq!(
            format("acmf", &[]).parse(&rebranded).err(),
            Some(KeyFormatError::Checksum)
        );
        let unbranded = &new_sk["acme_".len()..];
        assert_eq!(
            KeyFormat::default().parse(unbranded).err(),
            Some(KeyFormatError::Checksum)
        );
    }

    #[test]
    fn the_patterns_match_every_key_of_the_deployment_and_nothing_else() {
        let mut rng = StdRng::seed_from_u64(23);
        let deployment = format("acme", &["sk"]);
        let private = regex::Regex::new(&format!("^(?:{})$", deployment.private_key_pattern())).unwrap();
        let public = regex::Regex::new(&format!("^(?:{})$", deployment.public_key_pattern())).unwrap();
        let in_text = regex::Regex::new(&deployment.private_key_pattern()).unwrap();
        let foreign = format("other", &[]);
        for _ in 0..200 {
            for env in Environment::ALL {
                for material in [
                    deployment.generate(env, &mut rng),
                    KeyFormat::default().generate(env, &mut rng),
                ] {
                    let sk = material.private_key().expose_secret();
                    let pk = material.public_key().as_str();
                    assert!(private.is_match(sk), "{sk}");
                    assert!(public.is_match(pk), "{pk}");
                    assert!(!private.is_match(pk) && !public.is_match(sk));
                    let line = format!("export KEY=\"{sk}\"\n");
                    assert_eq!(in_text.find(&line).map(|m| m.as_str()), Some(sk));
                    for near_miss in [
                        sk[..sk.len() - 1].to_owned(),
                        format!("{sk}0"),
                        sk.replacen("sk_", "pk_", 1),
                    ] {
                        assert!(!private.is_match(&near_miss), "{near_miss}");
                    }
                    assert!(!private.is_match(material.lookup_id().as_str()));
                }
                let stranger = foreign.generate(env, &mut rng);
                assert!(!in_text.is_match(stranger.private_key().expose_secret()));
                assert!(!public.is_match(stranger.public_key().as_str()));
            }
        }
    }

    proptest! {
        #[test]
        fn every_generated_key_parses_back_to_its_parts(seed in any::<u64>(), env in environment()) {
            let m = material(seed, env);
            let parsed = PrivateKey::parse(m.private_key().expose_secret()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.environment(), env);
            prop_assert_eq!(parsed.lookup_id(), m.lookup_id());
            prop_assert_eq!(parsed.display(), m.private_key().display());
        }

        #[test]
        fn every_single_character_change_is_refused(
            seed in any::<u64>(),
            env in environment(),
            position in 0usize..74,
            replacement in proptest::char::any(),
        ) {
            let key = material(seed, env).private_key().expose_secret().to_owned();
            let original = key[position..].chars().next().unwrap_or_default();
            prop_assume!(replacement != original);
            let mut changed = key.clone();
            changed.replace_range(position..position + 1, replacement.encode_utf8(&mut [0; 4]));
            prop_assert!(PrivateKey::parse(&changed).is_err());
        }

        #[test]
        fn every_base62_substitution_fails_the_checksum_not_just_the_shape(
            seed in any::<u64>(),
            position in 8usize..74,
            digit in 0usize..62,
        ) {
            let key = material(seed, Environment::Live).private_key().expose_secret().to_owned();
            prop_assume!(position != 24);
            let replacement = char::from(base62::ALPHABET[digit]);
            prop_assume!(!key[position..].starts_with(replacement));
            let mut changed = key.clone();
            changed.replace_range(position..position + 1, replacement.encode_utf8(&mut [0; 4]));
            prop_assert_eq!(PrivateKey::parse(&changed).err(), Some(KeyFormatError::Checksum));
        }

        #[test]
        fn every_truncation_is_refused(seed in any::<u64>(), env in environment(), keep in 0usize..74) {
            let key = material(seed, env).private_key().expose_secret().to_owned();
            prop_assert!(PrivateKey::parse(&key[..keep]).is_err());
        }

        #[test]
        fn the_display_shows_the_prefix_and_at_most_the_last_four_characters(seed in any::<u64>(), env in environment()) {
            let m = material(seed, env);
            let key = m.private_key().expose_secret();
            let display = m.private_key().display();
            let secret_part = &key[ENV_PREFIX_LEN..];
            let shown = display.as_str().trim_start_matches(&format!("sk_{env}_…"));
            prop_assert_eq!(shown, &key[key.len() - 4..]);
            // No run of five or more characters of the secret part appears in the display.
            for window in secret_part.as_bytes().windows(5) {
                prop_assert!(!display.as_str().as_bytes().windows(5).any(|w| w == window));
            }
        }
    }
}
