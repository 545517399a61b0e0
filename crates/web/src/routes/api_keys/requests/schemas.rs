//! What OpenAPI says of the key bodies' fields that its derive cannot say
//! from a type: the text rules as regular expressions built from the
//! domain's classifier, and the domain's bounds.

use keymint_domain::{
    classify, CharClass, MAX_DESCRIPTION_CHARS, MAX_GRACE_PERIOD_SECONDS, MAX_NAME_CHARS, MAX_OWNER_ID_CHARS,
    MAX_PERMISSIONS, MAX_PERMISSION_CHARS,
};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// The characters of the Basic Multilingual Plane that `keep` selects, as the
/// body of a regular-expression class (`\\uXXXX` ranges, which ECMA-262,
/// Python and Rust all read). Built from the domain's classifier, so the
/// document follows the Unicode tables the service judges text by.
fn class_of(keep: impl Fn(CharClass) -> bool) -> String {
    use std::fmt::Write;
    let mut class = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |run: Option<(u32, u32)>, class: &mut String| {
        if let Some((from, to)) = run {
            let _ = write!(class, "\\u{from:04X}");
            if to > from {
                let _ = write!(class, "-\\u{to:04X}");
            }
        }
    };
    for code in 0..=0xFFFF_u32 {
        match char::from_u32(code).filter(|&c| keep(classify(c))) {
            Some(_) => match &mut run {
                Some((_, to)) if *to + 1 == code => *to = code,
                _ => {
                    flush(run.take(), &mut class);
                    run = Some((code, code));
                }
            },
            None => flush(run.take(), &mut class),
        }
    }
    flush(run, &mut class);
    class
}

/// The text rule as a regular expression over the BMP: units of white space,
/// or of a drawn character or mark followed by marks and single joiners (a
/// variation selector may be followed by a ZWJ, as in ❤️‍🔥). With `visible`,
/// one unit must start with a visible character. Positive classes: beyond
/// the BMP the document promises nothing (the service takes visible
/// characters there too, emoji included, and refuses the rest), because a
/// class listing the supplementary planes' ranges made generators such as
/// schemathesis take seconds per value.
fn text_pattern(multiline: bool, visible: bool) -> String {
    use CharClass::{BlankGlyph, Joiner, Mark, Space, Visible};
    let space = class_of(|class| class == Space);
    let space = if multiline { format!("\\t\\n{space}") } else { space };
    let joiner = class_of(|class| class == Joiner);
    let drawn = class_of(|class| matches!(class, Visible | Mark | BlankGlyph));
    let joining = format!("(?:[\\uFE00-\\uFE0F]\\u200D|[{joiner}])");
    let joined = format!("(?:[{drawn}]|{joining}[{drawn}])*{joining}?");
    let unit = format!("(?:[{space}]|[{drawn}]{joined})");
    if visible {
        let visible = class_of(|class| class == Visible);
        format!("^{unit}*[{visible}]{joined}{unit}*$")
    } else {
        format!("^{unit}*$")
    }
}

/// A name's (and an owner id's) characters: the text rule, something visible.
/// Tested against [`KeyName::new`] for every character of the BMP.
pub(crate) fn name_pattern() -> String {
    text_pattern(false, true)
}

/// A description's characters: the text rule, tab and newline allowed.
pub(super) fn description_pattern() -> String {
    text_pattern(true, false)
}

/// `name`'s schema, with the domain's bounds.
pub(super) fn name_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "A user-friendly name for the API key: a visible character at least, no control or bidi characters",
        ))
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(name_pattern()))
}

/// `description`'s schema, with the domain's bound; `null` allowed.
pub(super) fn description_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "A description of the API key; `null` for none. Tab and newline are its only control characters",
        ))
        .max_length(Some(MAX_DESCRIPTION_CHARS))
        .pattern(Some(description_pattern()))
}

/// `permissions`' schema: the domain's names and count.
pub(super) fn permissions_schema() -> impl Into<RefOr<Schema>> {
    use utoipa::openapi::schema::ArrayBuilder;
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .description(Some(
            "What the key may do: names of letters, digits and _ . : * - (a trailing * grants every name it prefixes), \
             deduplicated, order kept; `[]` or `null` for none",
        ))
        .max_items(Some(MAX_PERMISSIONS))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_PERMISSION_CHARS))
                .pattern(Some(PERMISSION_PATTERN)),
        )
}

/// `meta`'s schema: any JSON object (its size is checked as compact JSON).
pub(super) fn meta_schema() -> impl Into<RefOr<Schema>> {
    any_object_or_null(
        "Your own data about the key: a JSON object of at most 4096 bytes as compact JSON, \
         returned as given (member order kept); never in the audit trail",
    )
}

/// `meta` in an answer: the object as it was given.
pub(crate) fn meta_answer_schema() -> impl Into<RefOr<Schema>> {
    any_object_or_null("Your own data about the key, as given")
}

/// An object with any members, or null. `additionalProperties: true` said
/// outright: generators read an object without it as one with no members
/// (openapi-typescript made `meta` a `Record<string, never>`).
fn any_object_or_null(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some(description))
        .into()
}

/// `owner_id`'s schema: the name's character rules, up to 255 characters.
pub(super) fn owner_id_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "Your own id for the key's owner (user, customer, service): a visible character at least, \
             no control or bidi characters; lists filter by it with ?owner_id=",
        ))
        .min_length(Some(1))
        .max_length(Some(MAX_OWNER_ID_CHARS))
        .pattern(Some(name_pattern()))
}

/// A permission name as a regular expression (tested against the domain).
pub(crate) const PERMISSION_PATTERN: &str = "^[A-Za-z0-9_.:*-]+$";

/// `grace_period_seconds`'s schema, with the domain's bounds.
pub(super) fn grace_period_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .description(Some("Seconds the replaced private key keeps verifying (default 0)"))
        .minimum(Some(0))
        .maximum(Some(MAX_GRACE_PERIOD_SECONDS))
}

#[cfg(test)]
mod tests {
    use keymint_domain::{KeyDescription, KeyName, OwnerId, PermissionName};

    use super::*;

    #[test]
    fn the_permission_pattern_accepts_exactly_the_domain_s_names() {
        let pattern = regex::Regex::new(PERMISSION_PATTERN).unwrap();
        for c in (0..=0x2FF_u32).filter_map(char::from_u32) {
            let text = format!("a{c}");
            assert_eq!(
                pattern.is_match(&text),
                PermissionName::new(text.as_str()).is_ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_documented_patterns_accept_exactly_what_the_domain_accepts() {
        let name = regex::Regex::new(&name_pattern()).unwrap();
        let description = regex::Regex::new(&description_pattern()).unwrap();
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            for text in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}{c}"),
                format!("{c}a"),
                format!(" {c}a"),
                format!("a{c}{c}"),
                format!("a\u{FE0F}{c}b"),
            ] {
                assert_eq!(
                    name.is_match(&text),
                    KeyName::new(text.as_str()).is_ok(),
                    "name {:?}",
                    text
                );
                assert_eq!(
                    name.is_match(&text),
                    OwnerId::new(text.as_str()).is_ok(),
                    "owner_id {:?}",
                    text
                );
                assert_eq!(
                    description.is_match(&text),
                    KeyDescription::new(text.as_str()).is_ok(),
                    "description {:?}",
                    text
                );
            }
        }
    }
}
