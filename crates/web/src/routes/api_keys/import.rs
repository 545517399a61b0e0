//! `POST /api-keys/import`: keys from another key system, brought in with the
//! private keys they already have. Each item is read and decided on its own:
//! a bad item is reported by its index and never fails the others.

use std::borrow::Cow;

use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::{ImportRefusal, ImportedSecret, KeyImport, Permission};
use keymint_domain::{
    ForeignKey, ForeignKeyError, KeyDigest, OrgId, PresentedKey, MAX_FOREIGN_KEY_CHARS, MIN_FOREIGN_KEY_CHARS,
};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::requests::CreateApiKeyBody;
use crate::error::{JsonBodyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{read_json_body, Acting};
use crate::validation::FromJsonBody;
use crate::{ApiError, AppState, FieldError};

/// The most keys one import may bring in.
pub(crate) const MAX_IMPORT_ITEMS: usize = 1000;

/// What an item's private key is given as, once read.
#[derive(Debug)]
enum GivenSecret {
    Key(ForeignKey),
    Sha256(ImportedHash),
}

// What the parser makes of `hash` is what OpenAPI shows of it.
/// A private key's SHA-256, as exported by another system.
#[derive(Debug, ToSchema)]
pub(crate) struct ImportedHash {
    /// Only `sha256`.
    #[schema(value_type = String, pattern = "^sha256$")]
    algorithm: HashAlgorithm,
    /// 64 hexadecimal digits, or base64 (standard or URL-safe, padded or not)
    /// of the 32 bytes.
    #[schema(value_type = String, pattern = "^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/_-]{43}=?)$")]
    value: KeyDigest,
}

/// The digests an import takes.
#[derive(Debug)]
enum HashAlgorithm {
    Sha256,
}

/// One key to bring in, read: the create body's fields, and exactly one of
/// `key` and `hash`. OpenAPI shows it as `ImportApiKeyItem`: the create
/// body's schema with the two secret fields added (see its `ToSchema`).
#[derive(Debug)]
pub(crate) struct ImportItemBody {
    create: CreateApiKeyBody,
    secret: GivenSecret,
}

impl PartialSchema for ImportItemBody {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut item)) = CreateApiKeyBody::schema() else {
            unreachable!("a struct's derived schema is an object")
        };
        item.description =
            Some("One key to bring in: the create body's fields, and exactly one of `key` and `hash`".into());
        // A key and a hash are two fields; a name is the only one the create body needs.
        item.min_properties = Some(2);
        let key = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some(
                "The private key as the other system issued it: printable ASCII without spaces, 20 to 256 \
                 characters. Hashed at once; never stored, logged or returned.",
            ))
            .min_length(Some(MIN_FOREIGN_KEY_CHARS))
            .max_length(Some(MAX_FOREIGN_KEY_CHARS))
            .pattern(Some(format!(
                "^[!-~]{{{MIN_FOREIGN_KEY_CHARS},{MAX_FOREIGN_KEY_CHARS}}}$"
            )));
        let hash = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(Ref::from_schema_name(ImportedHash::name()))
            .description(Some(
                "The SHA-256 of the whole private key, when only that was exported.",
            ));
        item.properties.insert("key".to_owned(), key.into());
        item.properties.insert("hash".to_owned(), hash.into());
        RefOr::T(Schema::Object(item))
    }
}

impl ToSchema for ImportItemBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ImportApiKeyItem")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ImportedHash::name().into_owned(), ImportedHash::schema()));
        CreateApiKeyBody::schemas(schemas);
    }
}

/// An item's index and why it failed.
type Failed = (usize, Vec<FieldError>);

/// One item, read, or every failing field.
type ImportItem = Result<ImportItemBody, Vec<FieldError>>;

/// The most bytes one item may have: a create body's limit.
pub(crate) const MAX_IMPORT_ITEM_BYTES: usize = 16 * 1024;

// What the parser makes of the body is what OpenAPI shows of it.
/// The keys to bring in.
#[derive(Debug, ToSchema)]
#[schema(as = ImportApiKeysRequest)]
pub(crate) struct ImportApiKeysBody {
    /// 1 to 1 000 keys, each decided on its own.
    #[schema(schema_with = import_items_schema)]
    keys: Vec<ImportItem>,
}

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

/// `loc` of item `index`'s field errors: under `["body", "keys", index]`.
fn at_item(index: usize, mut errors: Vec<FieldError>) -> Vec<FieldError> {
    for error in &mut errors {
        let rest: Vec<String> = error.loc.drain(..).skip(1).collect();
        error.loc = ["body".to_owned(), "keys".to_owned(), index.to_string()]
            .into_iter()
            .chain(rest)
            .collect();
    }
    errors
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

impl ImportApiKeysBody {
    /// The items ready to import, each with its index, and the failures found
    /// by reading. A key in this deployment's own format keeps its lookup id
    /// and its environment: an item naming another environment fails.
    fn into_imports(self, org_id: OrgId, state: &AppState) -> (Vec<(usize, KeyImport)>, Vec<Failed>) {
        let mut imports = Vec::new();
        let mut failed = Vec::new();
        for (index, item) in self.keys.into_iter().enumerate() {
            let ImportItemBody { create: body, secret } = match item {
                Ok(item) => item,
                Err(errors) => {
                    failed.push((index, errors));
                    continue;
                }
            };
            let secret = match secret {
                GivenSecret::Sha256(ImportedHash {
                    algorithm: HashAlgorithm::Sha256,
                    value,
                }) => ImportedSecret::Sha256(value),
                GivenSecret::Key(key) => {
                    match PresentedKey::recognise(state.verify.key_format(), key.expose_secret()) {
                        Some(issued @ PresentedKey::Issued(_)) => ImportedSecret::Key(issued),
                        _ => ImportedSecret::Key(PresentedKey::Foreign(key)),
                    }
                }
            };
            let default_environment = match &secret {
                ImportedSecret::Key(PresentedKey::Issued(private)) => {
                    let own = private.environment();
                    if body.environment().is_some_and(|given| given != own) {
                        failed.push((
                            index,
                            at_item(
                                index,
                                vec![FieldError::new(
                                    &["body", "environment"],
                                    "value_error",
                                    format!("The key is a {own} key: environment must be {own} or absent"),
                                )],
                            ),
                        ));
                        continue;
                    }
                    own
                }
                _ => state.default_environment,
            };
            let request = body.into_request(org_id, default_environment);
            imports.push((index, KeyImport { request, secret }));
        }
        (imports, failed)
    }
}

/// The items: each an [`ImportItemBody`] with exactly one of `key` and `hash`.
fn import_items_schema() -> impl Into<RefOr<Schema>> {
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().required("key"))
        .item(ObjectBuilder::new().required("hash"));
    let item = AllOfBuilder::new()
        .item(Ref::from_schema_name(ImportItemBody::name()))
        .item(one_of);
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(MAX_IMPORT_ITEMS))
        .description(Some("1 to 1 000 keys, each decided on its own"))
}

/// What an import did, item by item.
#[derive(Serialize, ToSchema)]
#[schema(as = ImportApiKeysResponse)]
pub(crate) struct ImportApiKeysResponse {
    /// The items brought in, by their index in the request.
    imported: Vec<ImportedKey>,
    /// The items refused, by their index, with why (nothing was stored for them).
    failed: Vec<FailedImport>,
}

/// An item brought in.
#[derive(Serialize, ToSchema)]
pub(crate) struct ImportedKey {
    /// The item's position in the request, from 0.
    index: usize,
    /// The new key's id.
    #[schema(format = Uuid)]
    id: String,
}

/// An item refused.
#[derive(Serialize, ToSchema)]
pub(crate) struct FailedImport {
    /// The item's position in the request, from 0.
    index: usize,
    /// Every reason, as a validation error names them: `loc` starts
    /// `["body", "keys", index]`.
    detail: Vec<FieldError>,
}

fn refusal_detail(index: usize, refusal: &ImportRefusal) -> Vec<FieldError> {
    let (field, kind): (Option<&str>, &str) = match refusal {
        ImportRefusal::Duplicate => (Some("key"), "duplicate_key"),
        ImportRefusal::InvalidExpiry(_) => (Some("expires_at"), "value_error"),
        ImportRefusal::LimitReached { .. } => (None, "limit_reached"),
        ImportRefusal::StorageUnavailable => (None, "storage_unavailable"),
        ImportRefusal::Unexpected(_) => (None, "internal_error"),
    };
    let index = index.to_string();
    let mut loc = vec!["body", "keys", index.as_str()];
    loc.extend(field);
    vec![FieldError::new(&loc, kind, capitalised(&refusal.to_string()))]
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `POST /api-keys/import`
#[utoipa::path(
    post, path = "/api/v2/api-keys/import", tag = "api-keys", operation_id = "import_api_keys",
    summary = "Import API keys from another key system, keeping their private keys",
    request_body = ImportApiKeysBody,
    responses(
        (status = 200, description = "Each item imported or refused, by index; one refused item never fails the others",
            body = ImportApiKeysResponse),
        JsonBodyErrors,
        ManagementErrors,
        (status = 422, description = "The body is not {\"keys\": [1 to 1000 items]}", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Read only now that the caller is known and allowed to import.
    actor.authorize(Permission::Write)?;
    let body = ImportApiKeysBody::parse(&read_json_body(&req, payload).await?)?;
    let (imports, mut failed) = body.into_imports(actor.org_id(), &state);
    let (indexes, items): (Vec<usize>, Vec<KeyImport>) = imports.into_iter().unzip();
    let results = state.api_keys.import(&actor, items).await?;
    let mut imported = Vec::new();
    for (index, result) in indexes.into_iter().zip(results) {
        match result {
            Ok(key) => imported.push(ImportedKey {
                index,
                id: key.id().to_string(),
            }),
            Err(refusal) => {
                if let ImportRefusal::Unexpected(err) = &refusal {
                    tracing::error!(index, error = format!("{err:#}"), "an imported key could not be stored");
                }
                failed.push((index, refusal_detail(index, &refusal)));
            }
        }
    }
    failed.sort_by_key(|(index, _)| *index);
    tracing::info!(
        org_id = %actor.org_id(),
        imported = imported.len(),
        failed = failed.len(),
        "API keys imported"
    );
    Ok(HttpResponse::Ok().json(ImportApiKeysResponse {
        imported,
        failed: failed
            .into_iter()
            .map(|(index, detail)| FailedImport { index, detail })
            .collect(),
    }))
}
