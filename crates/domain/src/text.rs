//! The one character rule every text a person types or a token carries
//! follows (key names, descriptions, owner ids, subjects, the development
//! sign-in's name): what may appear, and what makes text visible at all.
//!
//! It is read from the Unicode character properties (ICU4X's tables, which
//! follow each Unicode release), not from a hand list, so a newly found
//! invisible character is not a new bug:
//!
//! - refused anywhere: general categories Cc (controls; a multi-line field
//!   keeps newline and tab), Cf (format characters), Zl and Zp (line and
//!   paragraph separators), Cs (surrogates), Co (private use), Cn
//!   (unassigned), and every Default_Ignorable_Code_Point;
//! - except the joiners that written languages and emoji need, and only right
//!   after a character they can join: ZWNJ and ZWJ (U+200C, U+200D: Persian
//!   and Indic words, emoji sequences such as 👩‍💻) and the variation
//!   selectors (U+FE00–U+FE0F, U+E0100–U+E01EF: ❤️ rather than ❤);
//! - text that must be visible needs one character that is drawn: not white
//!   space, not a combining mark (Mn, Mc, Me: a lone accent over nothing),
//!   not a joiner, not U+2800 BRAILLE PATTERN BLANK (a symbol drawn as an
//!   empty cell).

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, WhiteSpace};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Whether `c` reorders the text around it when displayed (the bidirectional
/// embeddings, overrides and isolates, U+202A–U+202E and U+2066–U+2069): text
/// holding one can read differently from what it is ("Trojan Source").
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Symbols that are assigned, visible by category, and drawn as nothing.
const BLANK_GLYPHS: [char; 1] = ['\u{2800}'];

/// What a character is, for the text rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharClass {
    /// Drawn: a letter, digit, punctuation or symbol.
    Visible,
    /// White space (Unicode's White_Space property, controls excepted).
    Space,
    /// A combining mark: drawn only on the character before it.
    Mark,
    /// ZWNJ, ZWJ or a variation selector: allowed right after a character.
    Joiner,
    /// A control character (general category Cc).
    Control,
    /// A bidirectional embedding, override or isolate.
    BidiControl,
    /// Invisible, a separator, private use, a surrogate or unassigned:
    /// Cf, Zl, Zp, Co, Cs, Cn, or Default_Ignorable_Code_Point.
    Hidden,
    /// Assigned and visible by category, yet drawn as nothing (U+2800).
    BlankGlyph,
}

/// Where `c` stands under the text rule.
pub fn classify(c: char) -> CharClass {
    if is_bidi_control(c) {
        return CharClass::BidiControl;
    }
    if matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}') {
        return CharClass::Joiner;
    }
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    match category {
        GeneralCategory::Control => return CharClass::Control,
        GeneralCategory::Format
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator
        | GeneralCategory::Surrogate
        | GeneralCategory::PrivateUse
        | GeneralCategory::Unassigned => return CharClass::Hidden,
        _ => {}
    }
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return CharClass::Hidden;
    }
    if CodePointSetData::new::<WhiteSpace>().contains(c) {
        return CharClass::Space;
    }
    match category {
        GeneralCategory::NonspacingMark | GeneralCategory::SpacingMark | GeneralCategory::EnclosingMark => {
            CharClass::Mark
        }
        _ if BLANK_GLYPHS.contains(&c) => CharClass::BlankGlyph,
        _ => CharClass::Visible,
    }
}

/// Whether a field holds one line or prose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// No control character at all (names, ids, subjects).
    Single,
    /// Newline and tab allowed (descriptions).
    Multiple,
}

/// Why text breaks the rule, naming the first offending character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A control character (NUL, escape, a newline in a one-line field, …).
    #[error("must not contain control characters (U+{:04X})", u32::from(*.0))]
    Control(char),
    /// A bidirectional embedding, override or isolate.
    #[error("must not contain bidirectional control characters (U+{:04X})", u32::from(*.0))]
    BidiControl(char),
    /// An invisible, separator, private-use or unassigned character, or a
    /// joiner with nothing before it to join.
    #[error("must not contain invisible, separator, private-use or unassigned characters (U+{:04X})", u32::from(*.0))]
    Hidden(char),
    /// Nothing in it is drawn.
    #[error("must have a visible character")]
    Blank,
}

/// Whether `c` selects a variation (U+FE00–U+FE0F, U+E0100–U+E01EF).
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Checks `text` against the rule: no refused character, and a joiner only
/// right after a character it can join (a visible one or a mark), or a ZWJ
/// right after a variation selector (❤️‍🔥). So no run of joiners can hide
/// text after a visible character.
pub fn check_characters(text: &str, lines: Lines) -> Result<(), TextError> {
    let mut previous: Option<(char, CharClass)> = None;
    for c in text.chars() {
        let class = classify(c);
        match class {
            CharClass::Control if lines == Lines::Multiple && matches!(c, '\n' | '\t') => {}
            CharClass::Control => return Err(TextError::Control(c)),
            CharClass::BidiControl => return Err(TextError::BidiControl(c)),
            CharClass::Hidden => return Err(TextError::Hidden(c)),
            CharClass::Joiner => {
                let joins = match previous {
                    Some((_, CharClass::Visible | CharClass::Mark | CharClass::BlankGlyph)) => true,
                    Some((before, CharClass::Joiner)) => c == '\u{200D}' && is_variation_selector(before),
                    _ => false,
                };
                if !joins {
                    return Err(TextError::Hidden(c));
                }
            }
            _ => {}
        }
        previous = Some((c, class));
    }
    Ok(())
}

/// Checks `text` against the rule and that something in it is drawn: at
/// least one visible, non-combining character.
pub fn check_visible_text(text: &str, lines: Lines) -> Result<(), TextError> {
    check_characters(text, lines)?;
    if is_blank(text) {
        return Err(TextError::Blank);
    }
    Ok(())
}

/// Whether `c` is drawn as nothing on its own: anything but a visible
/// character (white space, marks, joiners, controls, invisible characters).
pub fn is_invisible(c: char) -> bool {
    classify(c) != CharClass::Visible
}

/// Whether `text` shows nothing: no visible, non-combining character.
pub fn is_blank(text: &str) -> bool {
    !text.chars().any(|c| classify(c) == CharClass::Visible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_reported_invisible_names_are_blank_or_refused() {
        // Whole names that showed nothing in the second hardening round.
        for name in [
            "\u{2800}",
            "\u{0301}",
            "\u{13430}",
            "\u{110BD}",
            "\u{0600}",
            " \u{0301} ",
        ] {
            assert!(check_visible_text(name, Lines::Single).is_err(), "{name:?}");
        }
        // Inside text: separators and deprecated format characters.
        for c in [
            '\u{2028}', '\u{2029}', '\u{206A}', '\u{FFF9}', '\u{200B}', '\u{FEFF}', '\u{00AD}', '\u{E000}',
        ] {
            let text = format!("billing{c}service");
            assert_eq!(
                check_characters(&text, Lines::Multiple),
                Err(TextError::Hidden(c)),
                "{text:?}"
            );
        }
        assert_eq!(
            check_characters("a\u{378}", Lines::Single),
            Err(TextError::Hidden('\u{378}'))
        );
    }

    #[test]
    fn real_words_and_emoji_pass() {
        for text in [
            "billing-service",
            "Ключ для оплаты",
            "café",
            "cafe\u{0301}",
            "می\u{200C}خواهم",
            "👩\u{200D}💻 deploy bot",
            "\u{2764}\u{FE0F}",
            "東京",
            "#1 · €5",
        ] {
            assert_eq!(check_visible_text(text, Lines::Single), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn joiners_need_something_to_join() {
        assert_eq!(
            check_visible_text("\u{2764}\u{FE0F}\u{200D}\u{1F525}", Lines::Single),
            Ok(())
        );
        let hidden_run = format!("admin{}", "\u{FE0F}".repeat(40));
        let smuggled = format!("ok{}", "\u{E0100}\u{E0101}\u{E0102}");
        for text in [
            "\u{200D}a",
            "\u{FE0F}",
            " \u{200C}x",
            "\u{200D}",
            "a\u{200D}\u{200D}b",
            &hidden_run,
            &smuggled,
        ] {
            assert!(check_visible_text(text, Lines::Single).is_err(), "{text:?}");
        }
    }

    #[test]
    fn controls_and_bidi_controls_are_named() {
        assert_eq!(check_characters("a\nb", Lines::Single), Err(TextError::Control('\n')));
        assert_eq!(check_characters("a\nb\tc", Lines::Multiple), Ok(()));
        assert_eq!(check_characters("a\rb", Lines::Multiple), Err(TextError::Control('\r')));
        assert_eq!(
            check_characters("abc\u{202E}fed", Lines::Single),
            Err(TextError::BidiControl('\u{202E}'))
        );
        assert!(TextError::Hidden('\u{2028}').to_string().contains("U+2028"));
    }

    fn category_is_refused(c: char) -> bool {
        matches!(
            CodePointMapData::<GeneralCategory>::new().get(c),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::Surrogate
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
        ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
    }

    proptest! {
        #[test]
        fn every_refused_property_is_refused_wherever_it_stands(
            c in any::<char>(),
            before in "[a-z]{0,3}",
            after in "[a-z]{0,3}",
        ) {
            let text = format!("x{before}{c}{after}");
            let joiner = classify(c) == CharClass::Joiner;
            if category_is_refused(c) && !joiner && !matches!(c, '\n' | '\t') {
                prop_assert!(check_characters(&text, Lines::Multiple).is_err());
            }
            if !category_is_refused(c) || joiner {
                prop_assert_eq!(check_characters(&text, Lines::Single), Ok(()));
            }
        }

        #[test]
        fn accepted_visible_text_always_holds_a_drawn_character(text in any::<String>()) {
            if check_visible_text(&text, Lines::Single).is_ok() {
                let drawn = text.chars().any(|c| {
                    !category_is_refused(c)
                        && !c.is_whitespace()
                        && !matches!(
                            CodePointMapData::<GeneralCategory>::new().get(c),
                            GeneralCategory::NonspacingMark
                                | GeneralCategory::SpacingMark
                                | GeneralCategory::EnclosingMark
                        )
                        && !BLANK_GLYPHS.contains(&c)
                });
                prop_assert!(drawn, "{:?}", text);
            }
        }

        #[test]
        fn text_of_only_marks_space_and_joiners_is_blank(
            parts in proptest::collection::vec(
                prop_oneof![Just(' '), Just('\u{0301}'), Just('\u{20DD}'), Just('\u{0903}'), Just('\u{3000}'), Just('\u{2800}')],
                1..8,
            )
        ) {
            let text: String = parts.into_iter().collect();
            prop_assert!(check_visible_text(&text, Lines::Single).is_err());
        }
    }
}
