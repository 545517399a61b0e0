//! Who a key belongs to, in the customer's own terms.

use std::fmt;

use crate::text::{is_bidi_control, is_blank};

/// The most characters in an owner id.
pub const MAX_OWNER_ID_CHARS: usize = 255;

/// The caller's own id for a key's owner (a user, a customer, a service):
/// 1–255 characters, a visible one at least, no control or bidirectional
/// control characters. Keymint never interprets it; lists filter by it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(String);

/// Why an owner id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OwnerIdError {
    /// No characters.
    #[error("owner_id must have at least 1 character")]
    Empty,
    /// More than [`MAX_OWNER_ID_CHARS`].
    #[error("owner_id must have at most {MAX_OWNER_ID_CHARS} characters, got {0}")]
    TooLong(usize),
    /// Only white space or invisible characters.
    #[error("owner_id must have a visible character")]
    Blank,
    /// A control or bidirectional control character (NUL included: not every
    /// database stores it).
    #[error("owner_id must not contain control or bidirectional control characters")]
    ControlCharacter,
}

impl OwnerId {
    /// Checks `raw` against the rules.
    pub fn new(raw: impl Into<String>) -> Result<Self, OwnerIdError> {
        let raw = raw.into();
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(OwnerIdError::Empty);
        }
        if chars > MAX_OWNER_ID_CHARS {
            return Err(OwnerIdError::TooLong(chars));
        }
        if raw.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(OwnerIdError::ControlCharacter);
        }
        if is_blank(&raw) {
            return Err(OwnerIdError::Blank);
        }
        Ok(Self(raw))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_are_visible_text_every_database_stores() {
        for ok in [
            "user_42",
            "cus_NffrFeUfNV2Hib",
            "org:acme/team:billing",
            &"ü".repeat(255),
        ] {
            assert!(OwnerId::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(OwnerId::new(""), Err(OwnerIdError::Empty));
        assert_eq!(OwnerId::new("x".repeat(256)), Err(OwnerIdError::TooLong(256)));
        assert_eq!(OwnerId::new(" \u{200B} "), Err(OwnerIdError::Blank));
        for bad in ["a\0b", "a\u{1b}b", "a\u{202E}b", "a\nb"] {
            assert_eq!(OwnerId::new(bad), Err(OwnerIdError::ControlCharacter), "{bad:?}");
        }
    }
}
