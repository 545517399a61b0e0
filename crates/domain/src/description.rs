use std::fmt;

/// The most characters (Unicode scalar values) a description may have.
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// An optional free-text description of a key: at most 255 characters and no NUL
/// (PostgreSQL cannot store NUL in text, so no adapter may be handed one).
/// Line breaks and tabs are allowed: descriptions are prose.
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
}

impl KeyDescription {
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
}
