//! Character rules shared by every text a person types or a token carries: what
//! is invisible, and what reorders the text around it. Kept in one place so a
//! name, a description and a token's subject are judged alike.

/// Whether `c` reorders the text around it when displayed (the bidirectional
/// embeddings, overrides and isolates, U+202A–U+202E and U+2066–U+2069): text
/// holding one can read differently from what it is ("Trojan Source").
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is drawn as nothing: Unicode's default-ignorable code points
/// (zero-width spaces and joiners, the byte-order mark, variation selectors,
/// fillers, tags). A name made only of these looks empty.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Whether `text` shows nothing: only white space and invisible characters.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_width_characters_and_the_bom_are_invisible_and_letters_are_not() {
        for c in ['\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{E0041}'] {
            assert!(is_invisible(c), "{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '🔑', 'ж', ' '] {
            assert!(!is_invisible(c), "{c}");
        }
        assert!(is_blank("\u{200B}\u{FEFF} \u{3000}"));
        assert!(!is_blank("\u{200B}a"));
    }

    #[test]
    fn overrides_and_isolates_are_bidi_controls_and_marks_are_not() {
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert!(is_bidi_control(c));
        }
        for c in ['\u{200E}', '\u{200F}', 'a', '\u{05D0}'] {
            assert!(!is_bidi_control(c));
        }
    }
}
