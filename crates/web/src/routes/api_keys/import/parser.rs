//! Reading an import body as it streams past serde: the envelope and its
//! `keys` list by visitors that keep each item a slice of the body, then each
//! item on its own, its failures named under its index.

use keymint_domain::{ForeignKey, ForeignKeyError, KeyDigest, MAX_FOREIGN_KEY_CHARS, MIN_FOREIGN_KEY_CHARS};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{
    at_item, GivenSecret, HashAlgorithm, ImportApiKeysBody, ImportItem, ImportItemBody, ImportedHash, MAX_IMPORT_ITEMS,
    MAX_IMPORT_ITEM_BYTES,
};
use crate::routes::api_keys::requests::CreateApiKeyBody;
use crate::validation::FromJsonBody;
use crate::{ApiError, FieldError};

/// What the body's `keys` turned out to be, read without building a tree of
/// the whole body: each item stays a slice of the body until it is read on
/// its own, so memory follows the items actually read, not the body's shape.
enum Items<'a> {
    List(Vec<&'a RawValue>),
    TooLong,
    NotAList,
    Null,
}

struct ItemsSeed;

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Items<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Items<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of keys")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == MAX_IMPORT_ITEMS {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Items::TooLong);
            }
            items.push(item);
        }
        Ok(Items::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items::NotAList)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Items::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Items::NotAList)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Items::NotAList)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Items::NotAList)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Items::NotAList)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Items::NotAList)
    }
}

/// The top-level object: `keys`, and the names of any other fields (refused).
struct Envelope<'a> {
    keys: Option<Items<'a>>,
    unknown: Vec<String>,
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            keys: None,
            unknown: Vec::new(),
        };
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            // As everywhere: a name given twice means different things to
            // different parsers.
            if !seen.insert(name.clone()) {
                return Err(serde::de::Error::custom(format_args!("duplicate key {name:?}")));
            }
            if name == "keys" {
                envelope.keys = Some(map.next_value_seed(ItemsSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
                envelope.unknown.push(name);
            }
        }
        Ok(envelope)
    }
}

impl ImportApiKeysBody {
    /// Reads a received body: 400 if it is not JSON, 422 naming `keys` unless
    /// it is `{"keys": [1 to 1 000 items]}`, else each item on its own.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let malformed = |e: serde_json::Error| ApiError::MalformedJson(e.to_string());
        let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !starts_as_object {
            serde_json::from_slice::<IgnoredAny>(body).map_err(malformed)?;
            return Err(ApiError::Validation(vec![FieldError::new(
                &["body"],
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )]));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let envelope = deserializer.deserialize_map(EnvelopeVisitor).map_err(malformed)?;
        deserializer.end().map_err(malformed)?;
        let mut errors: Vec<FieldError> = envelope
            .unknown
            .iter()
            .map(|name| FieldError::new(&["body", name], "extra_forbidden", "Extra inputs are not permitted"))
            .collect();
        let items = match envelope.keys {
            Some(Items::List(items)) if items.is_empty() => {
                errors.push(FieldError::new(
                    &["body", "keys"],
                    "too_short",
                    "List should have at least 1 item",
                ));
                None
            }
            Some(Items::List(items)) => Some(items),
            Some(Items::TooLong) => {
                errors.push(FieldError::new(
                    &["body", "keys"],
                    "too_long",
                    format!("List should have at most {MAX_IMPORT_ITEMS} items; import in batches"),
                ));
                None
            }
            Some(Items::NotAList) => {
                errors.push(FieldError::new(
                    &["body", "keys"],
                    "list_type",
                    "Input should be a valid list",
                ));
                None
            }
            Some(Items::Null) | None => {
                errors.push(FieldError::new(&["body", "keys"], "missing", "Field required"));
                None
            }
        };
        match items {
            Some(items) if errors.is_empty() => Ok(Self {
                keys: items
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| read_raw_item(i, raw))
                    .collect(),
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Reads one item from its slice of the body, refusing (for this item only)
/// one larger than a create body or one that names a field twice.
fn read_raw_item(index: usize, raw: &RawValue) -> ImportItem {
    let text = raw.get();
    if text.len() > MAX_IMPORT_ITEM_BYTES {
        return Err(at_item(
            index,
            vec![FieldError::new(
                &["body"],
                "too_long",
                format!("An item has at most {MAX_IMPORT_ITEM_BYTES} bytes, as a create body"),
            )],
        ));
    }
    match crate::extract::parse_json(text.as_bytes()) {
        Ok(value) => read_item(index, value),
        Err(err) => Err(at_item(
            index,
            vec![FieldError::new(&["body"], "json_invalid", err.to_string())],
        )),
    }
}

fn read_item(index: usize, item: Value) -> ImportItem {
    let Value::Object(mut fields) = item else {
        return Err(at_item(
            index,
            vec![FieldError::new(
                &["body"],
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )],
        ));
    };
    let mut errors = Vec::new();
    let secret = match (fields.remove("key"), fields.remove("hash")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                &["body"],
                "value_error",
                "Give either key (the private key) or hash (its SHA-256), not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                &["body", "key"],
                "missing",
                "Field required: key (the private key) or hash (its SHA-256)",
            ));
            None
        }
        (Some(key), None) => read_key(key, &mut errors),
        (None, Some(hash)) => read_hash(hash, &mut errors),
    };
    let body = CreateApiKeyBody::from_json(Value::Object(fields)).map_err(|mut more| {
        errors.append(&mut more);
    });
    match (body, secret) {
        (Ok(create), Some(secret)) if errors.is_empty() => Ok(ImportItemBody { create, secret }),
        _ => Err(at_item(index, errors)),
    }
}

fn read_key(value: Value, errors: &mut Vec<FieldError>) -> Option<GivenSecret> {
    let Value::String(raw) = value else {
        errors.push(FieldError::new(
            &["body", "key"],
            "string_type",
            "Input should be a valid string",
        ));
        return None;
    };
    // The message never repeats the key: it is a secret.
    match ForeignKey::parse(&raw) {
        Ok(key) => Some(GivenSecret::Key(key)),
        Err(ForeignKeyError::Length) if raw.len() < MIN_FOREIGN_KEY_CHARS => {
            errors.push(FieldError::new(
                &["body", "key"],
                "string_too_short",
                format!("A key needs at least {MIN_FOREIGN_KEY_CHARS} characters: shorter ones are too guessable to be bearer secrets"),
            ));
            None
        }
        Err(ForeignKeyError::Length) => {
            errors.push(FieldError::new(
                &["body", "key"],
                "string_too_long",
                format!("A key has at most {MAX_FOREIGN_KEY_CHARS} characters"),
            ));
            None
        }
        Err(ForeignKeyError::Characters) => {
            errors.push(FieldError::new(
                &["body", "key"],
                "string_pattern_mismatch",
                "A key is printable ASCII without spaces (U+0021 to U+007E)",
            ));
            None
        }
    }
}

fn read_hash(value: Value, errors: &mut Vec<FieldError>) -> Option<GivenSecret> {
    let Value::Object(mut fields) = value else {
        errors.push(FieldError::new(
            &["body", "hash"],
            "model_attributes_type",
            "Input should be an object: {\"algorithm\": \"sha256\", \"value\": \"…\"}",
        ));
        return None;
    };
    let algorithm = fields.remove("algorithm");
    let digest = fields.remove("value");
    let unknown: Vec<String> = fields.keys().cloned().collect();
    for field in unknown {
        errors.push(FieldError::new(
            &["body", "hash", &field],
            "extra_forbidden",
            "Extra inputs are not permitted",
        ));
    }
    match algorithm {
        Some(Value::String(name)) if name == "sha256" => {}
        None => errors.push(FieldError::new(
            &["body", "hash", "algorithm"],
            "missing",
            "Field required",
        )),
        Some(_) => errors.push(FieldError::new(
            &["body", "hash", "algorithm"],
            "literal_error",
            "Input should be 'sha256'",
        )),
    }
    let digest = match digest {
        Some(Value::String(text)) => KeyDigest::parse(&text).map_err(|err| {
            errors.push(FieldError::new(
                &["body", "hash", "value"],
                "value_error",
                err.to_string(),
            ));
        }),
        None => {
            errors.push(FieldError::new(&["body", "hash", "value"], "missing", "Field required"));
            Err(())
        }
        Some(_) => {
            errors.push(FieldError::new(
                &["body", "hash", "value"],
                "string_type",
                "Input should be a valid string",
            ));
            Err(())
        }
    };
    digest.ok().filter(|_| errors.is_empty()).map(|value| {
        GivenSecret::Sha256(ImportedHash {
            algorithm: HashAlgorithm::Sha256,
            value,
        })
    })
}
