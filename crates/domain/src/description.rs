use std::fmt;

use crate::text::{check_characters, Lines, TextError};

/// The most characters (Unicode scalar values) a description may have.
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// An optional free-text description of a key: at most 255 characters, no NUL
/// (PostgreSQL cannot store NUL in text, so no adapter may be handed one), no
/// other control character but line breaks and tabs (descriptions are prose,
/// and an escape sequence would repaint the terminal of whoever reads it), and
/// no bidirectional overrides.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyDescription(String);

/// Why a description was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyDescriptionError {
    /// The description is longer than [`MAX_DESCRIPTION_CHARS`].
    #[error("description must have at most {MAX_DESCRIPTION_CHARS} characters, got {0}")]
    TooLong(usize),
    /// The description holds a NUL character.
    #[error("description must not contain NUL characters")]
    Nul,
    /// It breaks the text rule ([`crate::text`]): a control character other
    /// than a newline or a tab, a bidirectional control or an invisible
    /// character.
    #[error("description {0}")]
    Text(#[from] TextError),
}

impl KeyDescription {
    /// Restores a description stored by an earlier release, which was checked by
    /// the rules of its day: text the current rule refuses (a zero-width
    /// space the old hand list allowed) still reads back, so no stored key
    /// becomes unreadable, unverifiable or unrevocable after an upgrade.
    /// Only storage adapters call this; everything new goes through `new`.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Validates a description; length is counted in Unicode scalar values.
    pub fn new(raw: impl Into<String>) -> Result<Self, KeyDescriptionError> {
        let raw = raw.into();
        let chars = raw.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(KeyDescriptionError::TooLong(chars));
        }
        if raw.contains('\0') {
            return Err(KeyDescriptionError::Nul);
        }
        check_characters(&raw, Lines::Multiple)?;
        Ok(Self(raw))
    }

    /// The description as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_up_to_255_characters_including_an_empty_one() {
        assert!(KeyDescription::new("").is_ok());
        assert!(KeyDescription::new("ü".repeat(255)).is_ok());
        assert!(KeyDescription::new("line one\nline two\ttabbed").is_ok());
        assert_eq!(
            KeyDescription::new("x".repeat(256)),
            Err(KeyDescriptionError::TooLong(256))
        );
    }

    #[test]
    fn refuses_nul() {
        assert_eq!(KeyDescription::new("a\0"), Err(KeyDescriptionError::Nul));
    }

    #[test]
    fn refuses_escapes_and_other_controls_but_keeps_newlines_and_tabs() {
        for bad in ["\u{1b}[2J", "bell\u{7}", "carriage\rreturn", "del\u{7f}", "c1\u{9b}31m"] {
            assert!(
                matches!(
                    KeyDescription::new(bad),
                    Err(KeyDescriptionError::Text(TextError::Control(_)))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            KeyDescription::new("see \u{202E}fdp.exe"),
            Err(KeyDescriptionError::Text(TextError::BidiControl('\u{202E}')))
        );
        assert!(KeyDescription::new("line one\u{2028}line two").is_err());
        assert!(KeyDescription::new("").is_ok());
    }
}
