use std::fmt;

use crate::text::{check_visible_text, Lines, TextError};

/// The most characters a subject may have: what every supported database stores.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// Who acted, as the identity provider names them (a token's `sub`, e.g.
/// `auth0|64b1…`): 1 to 255 characters following the text rule
/// ([`crate::text`]): something visible, no control, bidirectional control or
/// invisible characters. It is stored in the audit trail, so whatever a token carries is
/// judged here, once, and every database is handed only what all of them store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject(String);

/// Why a subject was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Empty, or longer than [`MAX_SUBJECT_CHARS`].
    #[error("a subject must have 1 to {MAX_SUBJECT_CHARS} characters, got {0}")]
    Length(usize),
    /// It breaks the text rule ([`crate::text`]): a control (NUL included),
    /// a bidirectional control or an invisible character, or nothing visible.
    #[error("a subject {0}")]
    Text(#[from] TextError),
}

impl Subject {
    /// Restores a subject stored by an earlier release, which was checked by
    /// the rules of its day: text the current rule refuses (a zero-width
    /// space the old hand list allowed) still reads back, so no stored key
    /// becomes unreadable, unverifiable or unrevocable after an upgrade.
    /// Only storage adapters call this; everything new goes through `new`.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Validates a subject; length is counted in Unicode scalar values.
    pub fn new(raw: impl Into<String>) -> Result<Self, SubjectError> {
        let raw = raw.into();
        let chars = raw.chars().count();
        if chars == 0 || chars > MAX_SUBJECT_CHARS {
            return Err(SubjectError::Length(chars));
        }
        check_visible_text(&raw, Lines::Single)?;
        Ok(Self(raw))
    }

    /// The subject as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_every_database_stores_and_nothing_else() {
        assert!(Subject::new("auth0|64b1f0c2e4").is_ok());
        assert!(Subject::new("ü".repeat(255)).is_ok(), "255 characters, 510 bytes");
        assert_eq!(Subject::new("x".repeat(256)), Err(SubjectError::Length(256)));
        assert_eq!(Subject::new(""), Err(SubjectError::Length(0)));
        for bad in [
            "a\0b",
            "line\nbreak",
            "\u{1b}[31m",
            "x\u{202E}y",
            "\u{0301}",
            "a\u{FFF9}b",
            " ",
        ] {
            assert!(matches!(Subject::new(bad), Err(SubjectError::Text(_))), "{bad:?}");
        }
    }
}
