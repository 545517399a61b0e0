//! Keys Keymint did not issue: keys brought in from another key system, and how
//! a presented key that is not in Keymint's format is recognised.
//!
//! Another system's key carries no lookup id, so it is found by its SHA-256
//! digest instead: the digest is stored (never the key), indexed, and what a
//! presented key is looked up by. SHA-256 is the form other systems export
//! (Unkey stores exactly this), so a key can also be brought in by its digest
//! alone, without anyone handling the plaintext again.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::{base62, KeyDisplay, KeyFormat, LookupId, PrivateKey, LOOKUP_ID_CHARS};

/// The fewest characters a key from another system may have: shorter ones are
/// too guessable to be bearer secrets.
pub const MIN_FOREIGN_KEY_CHARS: usize = 20;
/// The most characters a key from another system may have.
pub const MAX_FOREIGN_KEY_CHARS: usize = 256;
/// How many trailing characters of a foreign key its display shows.
const DISPLAY_TAIL_CHARS: usize = 4;

/// The SHA-256 digest of a whole private key, as presented.
///
/// It is how keys without a lookup id are found. It is not the key, but for a
/// key with little entropy it allows offline guessing, so `Debug` does not
/// print it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

/// Why a digest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a SHA-256 digest is 64 hexadecimal digits or the base64 of 32 bytes")]
pub struct KeyDigestError;

impl KeyDigest {
    /// The digest of `secret`.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A digest from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a digest as other systems export it: 64 hexadecimal digits (either
    /// case), or base64 of the 32 bytes (standard or URL-safe alphabet, with or
    /// without padding). The two never overlap: base64 of 32 bytes has 43 or 44
    /// characters.
    pub fn parse(text: &str) -> Result<Self, KeyDigestError> {
        let mut bytes = [0u8; 32];
        if text.len() == 64 {
            for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                let high = hex_value(pair[0]).ok_or(KeyDigestError)?;
                let low = hex_value(pair[1]).ok_or(KeyDigestError)?;
                *byte = high << 4 | low;
            }
            return Ok(Self(bytes));
        }
        let unpadded = text.strip_suffix('=').unwrap_or(text);
        let engine = if unpadded.contains(['-', '_']) {
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        match engine.decode_slice(unpadded, &mut bytes) {
            Ok(32) if unpadded.len() == 43 => Ok(Self(bytes)),
            _ => Err(KeyDigestError),
        }
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hexadecimal digits: the stored form.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Whether the two digests are equal, compared in constant time.
    pub fn matches(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The first eight bytes as a number: enough to tell digests apart in a
    /// filter (a false match costs one storage read), small enough to hold
    /// millions of them.
    pub fn short(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }

    /// A lookup id standing for this digest where one is needed to count
    /// failed attempts: it is derived, never stored, and never matches an
    /// issued key's lookup id except by chance.
    pub fn budget_id(&self) -> LookupId {
        let id: String = self.0[..LOOKUP_ID_CHARS]
            .iter()
            .map(|byte| char::from(base62::ALPHABET[usize::from(byte % 62)]))
            .collect();
        LookupId::parse(&id).unwrap_or_else(|_| unreachable!("base62 characters of the right length"))
    }

    /// What people see of a key brought in by its digest alone: the algorithm
    /// and the digest's first four hexadecimal digits, enough to match it with
    /// the export it came from.
    pub fn display(&self) -> KeyDisplay {
        KeyDisplay::restore(format!("sha256:{}…", &self.to_hex()[..4]))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(<redacted>)")
    }
}

/// A key issued by another system: printable ASCII without spaces,
/// [`MIN_FOREIGN_KEY_CHARS`] to [`MAX_FOREIGN_KEY_CHARS`] characters.
///
/// Spaces are refused because a key travels in an `Authorization` or
/// `X-API-Key` header, where surrounding spaces are trimmed and inner ones
/// split it. Like [`PrivateKey`], it is never printed and wiped on drop.
pub struct ForeignKey {
    value: String,
}

/// Why a key from another system was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForeignKeyError {
    /// Shorter than [`MIN_FOREIGN_KEY_CHARS`] or longer than [`MAX_FOREIGN_KEY_CHARS`].
    #[error("a key has {MIN_FOREIGN_KEY_CHARS} to {MAX_FOREIGN_KEY_CHARS} characters")]
    Length,
    /// A character outside printable ASCII, or a space.
    #[error("a key is printable ASCII without spaces")]
    Characters,
}

impl ForeignKey {
    /// Checks the key's length and characters.
    pub fn parse(raw: &str) -> Result<Self, ForeignKeyError> {
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ForeignKeyError::Characters);
        }
        if !(MIN_FOREIGN_KEY_CHARS..=MAX_FOREIGN_KEY_CHARS).contains(&raw.len()) {
            return Err(ForeignKeyError::Length);
        }
        Ok(Self { value: raw.to_owned() })
    }

    /// The key's SHA-256 digest.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(&self.value)
    }

    /// The masked form people see: the key's leading identifier (letters and
    /// separators up to its last `_` or `-` within the first third, as in
    /// `sk_live_`, `ghp_` or `xoxb-`), an ellipsis, and the last four
    /// characters. At least half of the key is never shown.
    pub fn display(&self) -> KeyDisplay {
        let len = self.value.len();
        // The identifier is letters and separators only: a random key's own
        // characters (digits, or a `-` or `_` of URL-safe base64 after a
        // digit) are never taken for one.
        let identifier_end = self
            .value
            .bytes()
            .take(len / 3)
            .take_while(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'-')
            .count();
        let lead = self.value[..identifier_end]
            .rfind(['_', '-'])
            .map_or("", |at| &self.value[..=at]);
        let lead = if (lead.len() + DISPLAY_TAIL_CHARS) * 2 <= len {
            lead
        } else {
            ""
        };
        let tail = &self.value[len - DISPLAY_TAIL_CHARS..];
        KeyDisplay::restore(format!("{lead}…{tail}"))
    }

    /// The key itself, for its digest or a hasher.
    pub fn expose_secret(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for ForeignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignKey")
            .field("display", &self.display().as_str())
            .finish_non_exhaustive()
    }
}

impl Drop for ForeignKey {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// A key someone presented: one in this deployment's format (its checksum
/// holds), or anything else that could be a key brought in from another
/// system.
#[derive(Debug)]
pub enum PresentedKey {
    /// In this deployment's format: found by its lookup id.
    Issued(PrivateKey),
    /// Any other key: found by its digest.
    Foreign(ForeignKey),
}

impl PresentedKey {
    /// Recognises `raw`: in `format` (checksum included) it is
    /// [`PresentedKey::Issued`]; otherwise, if it could be another system's key,
    /// [`PresentedKey::Foreign`]. Other systems hand out `sk_live_…` keys too,
    /// so a failed checksum does not rule a key out. `None` when `raw` can be no
    /// stored key at all.
    pub fn recognise(format: &KeyFormat, raw: &str) -> Option<Self> {
        match format.parse(raw) {
            Ok(key) => Some(Self::Issued(key)),
            Err(_) => ForeignKey::parse(raw).ok().map(Self::Foreign),
        }
    }

    /// The key itself.
    pub fn expose_secret(&self) -> &str {
        match self {
            Self::Issued(key) => key.expose_secret(),
            Self::Foreign(key) => key.expose_secret(),
        }
    }

    /// The key's SHA-256 digest.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Environment, KeyMaterial};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_digest_reads_as_hex_or_base64_in_every_usual_spelling() {
        let digest = KeyDigest::of("sk_live_a-key-from-another-system");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest.as_bytes());
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_bytes());
        let hex = digest.to_hex();
        for spelling in [
            hex.clone(),
            hex.to_uppercase(),
            b64.clone(),
            b64.trim_end_matches('=').to_owned(),
            url,
        ] {
            assert_eq!(KeyDigest::parse(&spelling), Ok(digest), "{spelling}");
        }
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn anything_but_a_whole_digest_is_refused() {
        let hex = KeyDigest::of("x").to_hex();
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        for bad in [
            String::new(),
            hex[..62].to_owned(),
            format!("{hex}00"),
            hex.replacen(&hex[..1], "g", 1),
            base64::engine::general_purpose::STANDARD.encode([7u8; 31]),
            base64::engine::general_purpose::STANDARD.encode([7u8; 33]),
            format!("{b64}="),
            b64.replacen('=', "", 1).replacen(&b64[..1], "*", 1),
            " ".repeat(43),
        ] {
            assert_eq!(KeyDigest::parse(&bad), Err(KeyDigestError), "{bad:?}");
        }
    }

    #[test]
    fn the_digest_is_sha256_of_the_whole_key() {
        // FIPS 180-2's first example.
        assert_eq!(
            KeyDigest::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(KeyDigest::of("abc").matches(&KeyDigest::of("abc")));
        assert!(!KeyDigest::of("abc").matches(&KeyDigest::of("abd")));
        assert_eq!(format!("{:?}", KeyDigest::of("abc")), "KeyDigest(<redacted>)");
    }

    #[test]
    fn foreign_keys_are_printable_ascii_without_spaces_of_twenty_to_256_characters() {
        assert!(ForeignKey::parse(&"a".repeat(20)).is_ok());
        assert!(ForeignKey::parse(&"~".repeat(256)).is_ok());
        assert_eq!(ForeignKey::parse(&"a".repeat(19)).err(), Some(ForeignKeyError::Length));
        assert_eq!(ForeignKey::parse(&"a".repeat(257)).err(), Some(ForeignKeyError::Length));
        for bad in ["a b", "\t", "é", "\u{7f}", "\0"] {
            let raw = format!("{}{bad}", "a".repeat(24));
            assert_eq!(
                ForeignKey::parse(&raw).err(),
                Some(ForeignKeyError::Characters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_foreign_display_keeps_the_identifier_and_hides_most_of_the_key() {
        let cases = [
            ("sk_live_51HqLyjWDarjtT1zdp7dcXnKpV5kvgGk", "sk_live_…vgGk"),
            ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_…8B4a"),
            ("xoxb-123456789012-abcdefghijklmnopqrstuvwx", "xoxb-…uvwx"),
            ("abcdefghijklmnopqrstuvwxyz", "…wxyz"),
            // A separator past the first third is not an identifier.
            ("abcdefghijklmnopq_rstuvwxyz", "…wxyz"),
            // Nor one after a digit: URL-safe base64 is not an identifier.
            ("a1_bcdefghijklmnopqrstuvwxyz", "…wxyz"),
            ("ab3d-f_hijklmnopqrstu", "…rstu"),
            // Never more than half the key, identifier included.
            ("abcdef_hijklmnopqrstu", "…rstu"),
        ];
        for (key, shown) in cases {
            let display = ForeignKey::parse(key).unwrap().display();
            assert_eq!(display.as_str(), shown, "{key}");
            let visible = display.as_str().chars().filter(|&c| c != '…').count();
            assert!(visible * 2 <= key.len(), "{key} shows {visible} characters");
        }
        let key = ForeignKey::parse("sk_live_secretsecretsecretsecret").unwrap();
        assert!(!format!("{key:?}").contains("secretsecret"));
    }

    #[test]
    fn a_key_in_the_deployments_format_is_issued_and_anything_else_key_shaped_is_foreign() {
        let format = KeyFormat::default();
        let material = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(5));
        let issued = material.private_key().expose_secret();
        assert!(matches!(
            PresentedKey::recognise(&format, issued),
            Some(PresentedKey::Issued(_))
        ));
        // The same shape with a checksum that does not hold: another system's sk_live_ key.
        let mut other = issued.to_owned();
        other.replace_range(30..31, if &issued[30..31] == "a" { "b" } else { "a" });
        let foreign = PresentedKey::recognise(&format, &other);
        assert!(matches!(foreign, Some(PresentedKey::Foreign(_))));
        assert_eq!(foreign.map(|k| k.digest()), Some(KeyDigest::of(&other)));
        assert!(PresentedKey::recognise(&format, "short").is_none());
        assert!(PresentedKey::recognise(&format, &format!("{} x", "a".repeat(30))).is_none());
    }

    #[test]
    fn budget_ids_are_lookup_ids_that_differ_with_the_digest() {
        let (a, b) = (
            KeyDigest::of("first key here!!!!!!"),
            KeyDigest::of("second key here!!!!!"),
        );
        assert_eq!(a.budget_id().as_str().len(), LOOKUP_ID_CHARS);
        assert_eq!(a.budget_id(), a.budget_id());
        assert_ne!(a.budget_id(), b.budget_id());
        assert_ne!(a.short(), b.short());
    }
}
