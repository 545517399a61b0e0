//! Free-form data a customer keeps on a key.

use std::fmt;

use serde_json::value::RawValue;

/// The most bytes a key's metadata takes, as compact JSON.
pub const MAX_META_BYTES: usize = 4096;

/// A key's metadata: a JSON object of the customer's choosing, kept as compact
/// JSON text in the order given, at most [`MAX_META_BYTES`] bytes. Keymint never
/// reads it; it is returned as given and never written to the audit trail.
///
/// Held as a [`RawValue`]: checked once when made, then written into any
/// response as it is, without parsing it again.
#[derive(Clone)]
pub struct KeyMeta(Box<RawValue>);

impl PartialEq for KeyMeta {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for KeyMeta {}

/// Why metadata was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyMetaError {
    /// Over [`MAX_META_BYTES`] as compact JSON.
    #[error("meta must be at most {MAX_META_BYTES} bytes as compact JSON, got {0}")]
    TooLarge(usize),
    /// Stored text that is not a JSON object.
    #[error("meta must be a JSON object")]
    NotAnObject,
}

impl KeyMeta {
    /// Metadata from a JSON object (its members stay in the order given).
    pub fn new(object: serde_json::Map<String, serde_json::Value>) -> Result<Self, KeyMetaError> {
        let text = serde_json::Value::Object(object).to_string();
        if text.len() > MAX_META_BYTES {
            return Err(KeyMetaError::TooLarge(text.len()));
        }
        // The text was just written by serde_json, so it is valid JSON.
        RawValue::from_string(text)
            .map(Self)
            .map_err(|_| KeyMetaError::NotAnObject)
    }

    /// Metadata as stored: compact JSON text of an object.
    pub fn parse(text: &str) -> Result<Self, KeyMetaError> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(object)) => Self::new(object),
            _ => Err(KeyMetaError::NotAnObject),
        }
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The JSON, ready to be written into a response as it is.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }
}

/// Metadata may hold anything a customer chose: `Debug` shows only its size.
impl fmt::Debug for KeyMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMeta({} bytes)", self.as_json().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(object) => object,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn members_keep_their_order_and_text_round_trips() {
        let meta = KeyMeta::new(object(
            json!({"z": 1, "a": {"y": [1, "x", null], "b": true}, "m": "ü\u{0}"}),
        ))
        .unwrap();
        assert_eq!(
            meta.as_json(),
            r#"{"z":1,"a":{"y":[1,"x",null],"b":true},"m":"ü\u0000"}"#
        );
        assert_eq!(KeyMeta::parse(meta.as_json()), Ok(meta.clone()));
        assert_eq!(format!("{meta:?}"), format!("KeyMeta({} bytes)", meta.as_json().len()));
    }

    #[test]
    fn the_size_is_measured_as_compact_json() {
        // {"k":"…"} is 8 bytes around the string.
        let fits = object(json!({"k": "x".repeat(MAX_META_BYTES - 8)}));
        assert_eq!(KeyMeta::new(fits).unwrap().as_json().len(), MAX_META_BYTES);
        let over = object(json!({"k": "x".repeat(MAX_META_BYTES - 7)}));
        assert_eq!(KeyMeta::new(over), Err(KeyMetaError::TooLarge(MAX_META_BYTES + 1)));
        assert_eq!(KeyMeta::parse("[1]"), Err(KeyMetaError::NotAnObject));
        assert_eq!(KeyMeta::parse("{"), Err(KeyMetaError::NotAnObject));
    }
}
