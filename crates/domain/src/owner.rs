//! Who a key belongs to, in the customer's own terms.

use std::fmt;

use crate::text::{check_visible_text, Lines, TextError};

/// The most characters in an owner id.
pub const MAX_OWNER_ID_CHARS: usize = 255;

/// The caller's own id for a key's owner (a user, a customer, a service):
/// 1–255 characters following the text rule ([`crate::text`]): a visible one
/// at least, no control, bidirectional control or invisible characters. Keymint never interprets it; lists filter by it exactly.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// It breaks the text rule ([`crate::text`]): a control (NUL included:
    /// not every database stores it), a bidirectional control or an invisible
    /// character, or nothing visible.
    #[error("owner_id {0}")]
    Text(#[from] TextError),
}

impl OwnerId {
    /// Restores a owner id stored by an earlier release, which was checked by
    /// the rules of its day: text the current rule refuses (a zero-width
    /// space the old hand list allowed) still reads back, so no stored key
    /// becomes unreadable, unverifiable or unrevocable after an upgrade.
    /// Only storage adapters call this; everything new goes through `new`.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

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
        check_visible_text(&raw, Lines::Single)?;
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
        assert_eq!(OwnerId::new(" \u{3000} "), Err(OwnerIdError::Text(TextError::Blank)));
        for bad in [
            "a\0b",
            "a\u{1b}b",
            "a\u{202E}b",
            "a\nb",
            "\u{2800}",
            "a\u{2028}b",
            " \u{200B} ",
        ] {
            assert!(matches!(OwnerId::new(bad), Err(OwnerIdError::Text(_))), "{bad:?}");
        }
    }
}
