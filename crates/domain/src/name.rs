use std::fmt;

use crate::text::{check_visible_text, Lines, TextError};

/// The most characters (Unicode scalar values) a key name may have.
pub const MAX_NAME_CHARS: usize = 100;

/// A user-friendly name for a key: 1 to 100 characters following the text
/// rule ([`crate::text`]): at least one of them visible, no control characters
/// (they break logs, terminals and CSV exports), no bidirectional overrides
/// (they make a name read as another), nothing invisible.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyName(String);

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    /// The name has no characters.
    #[error("name must have at least 1 character")]
    Empty,
    /// The name is longer than [`MAX_NAME_CHARS`].
    #[error("name must have at most {MAX_NAME_CHARS} characters, got {0}")]
    TooLong(usize),
    /// The name breaks the text rule ([`crate::text`]): a control, a
    /// bidirectional control or an invisible character, or nothing visible.
    #[error("name {0}")]
    Text(#[from] TextError),
}

/// The rules a name's text follows, in the order their errors are reported.
fn check_name_text(raw: &str) -> Result<(), KeyNameError> {
    let chars = raw.chars().count();
    if chars == 0 {
        return Err(KeyNameError::Empty);
    }
    if chars > MAX_NAME_CHARS {
        return Err(KeyNameError::TooLong(chars));
    }
    Ok(check_visible_text(raw, Lines::Single)?)
}

impl KeyName {
    /// Restores a name stored by an earlier release, which was checked by
    /// the rules of its day: text the current rule refuses (a zero-width
    /// space the old hand list allowed) still reads back, so no stored key
    /// becomes unreadable, unverifiable or unrevocable after an upgrade.
    /// Only storage adapters call this; everything new goes through `new`.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Validates a name. Length is counted in Unicode scalar values, as the
    /// specification counts, not in bytes: `"ключ"` has 4 characters.
    pub fn new(raw: impl Into<String>) -> Result<Self, KeyNameError> {
        let raw = raw.into();
        check_name_text(&raw)?;
        Ok(Self(raw))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as searches compare it: Unicode lower case. Stores keep it beside
    /// the name so that every database matches the same way (SQLite's `lower()`
    /// and `LIKE` fold only ASCII, PostgreSQL's fold by locale).
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A search of key names: the keys whose name contains this text, ignoring case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameSearch(String);

impl NameSearch {
    /// Validates a search. It follows a name's rules: a name cannot hold a
    /// control character, so no search needs one, and one of white space alone
    /// would find nearly every key by accident.
    pub fn new(raw: &str) -> Result<Self, KeyNameError> {
        check_name_text(raw)?;
        Ok(Self(raw.to_lowercase()))
    }

    /// The search as given, folded as [`KeyName::folded`] folds names.
    pub fn folded(&self) -> &str {
        &self.0
    }

    /// Whether `name` contains the search, ignoring case.
    pub fn matches(&self, name: &KeyName) -> bool {
        name.folded().contains(&self.0)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_matches_any_part_of_a_name_in_any_case() {
        let name = KeyName::new("Billing-Service Ключ").unwrap();
        for hit in ["billing", "SERVICE", "g-s", "ключ", "КЛЮЧ", "e К"] {
            assert!(NameSearch::new(hit).unwrap().matches(&name), "{hit}");
        }
        for miss in ["billings", "%", "_", "ключи"] {
            assert!(!NameSearch::new(miss).unwrap().matches(&name), "{miss}");
        }
    }

    #[test]
    fn a_search_refuses_what_no_name_can_hold() {
        assert_eq!(NameSearch::new(""), Err(KeyNameError::Empty));
        assert_eq!(NameSearch::new("  "), Err(KeyNameError::Text(TextError::Blank)));
        assert!(NameSearch::new(" \u{200b}").is_err());
        assert_eq!(NameSearch::new(&"a".repeat(101)), Err(KeyNameError::TooLong(101)));
        assert_eq!(
            NameSearch::new("a\0b"),
            Err(KeyNameError::Text(TextError::Control('\0')))
        );
        assert_eq!(
            NameSearch::new("a\u{202e}"),
            Err(KeyNameError::Text(TextError::BidiControl('\u{202e}')))
        );
    }

    #[test]
    fn accepts_one_to_a_hundred_characters_counted_as_scalar_values() {
        assert!(KeyName::new("a").is_ok());
        assert!(KeyName::new("é".repeat(100)).is_ok(), "200 bytes but 100 characters");
        assert_eq!(KeyName::new("é".repeat(101)), Err(KeyNameError::TooLong(101)));
        assert!(KeyName::new("🔑 production").is_ok());
    }

    #[test]
    fn refuses_empty_blank_and_control_characters() {
        assert_eq!(KeyName::new(""), Err(KeyNameError::Empty));
        assert_eq!(KeyName::new("   "), Err(KeyNameError::Text(TextError::Blank)));
        assert_eq!(KeyName::new("\u{3000}"), Err(KeyNameError::Text(TextError::Blank)));
        assert_eq!(KeyName::new("a\0b"), Err(KeyNameError::Text(TextError::Control('\0'))));
        assert_eq!(KeyName::new("a\nb"), Err(KeyNameError::Text(TextError::Control('\n'))));
        assert_eq!(
            KeyName::new("\u{1b}[31m"),
            Err(KeyNameError::Text(TextError::Control('\u{1b}')))
        );
    }

    #[test]
    fn refuses_names_that_show_nothing_or_read_as_another() {
        for invisible in [
            "\u{200B}",
            "\u{FEFF}",
            "\u{200B}\u{200C}\u{200D}",
            " \u{2060} ",
            "\u{2800}",
            "\u{0301}",
        ] {
            assert!(KeyName::new(invisible).is_err(), "{invisible:?}");
        }
        for bidi in ["admin\u{202E}txt.exe", "\u{2066}x\u{2069}", "a\u{202A}b"] {
            assert!(
                matches!(KeyName::new(bidi), Err(KeyNameError::Text(TextError::BidiControl(_)))),
                "{bidi:?}"
            );
        }
        assert!(KeyName::new("zero\u{200D}width joiner inside").is_ok());
        assert!(KeyName::new("עברית").is_ok(), "right-to-left text itself is fine");
    }

    #[test]
    fn keeps_inner_and_surrounding_spaces_as_given() {
        assert_eq!(
            KeyName::new(" my key ").map(|n| n.as_str().to_owned()),
            Ok(" my key ".into())
        );
    }
}
