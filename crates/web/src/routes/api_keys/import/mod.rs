//! `POST /api-keys/import`: keys from another key system, brought in with the
//! private keys they already have. Each item is read and decided on its own:
//! a bad item is reported by its index and never fails the others.
//!
//! The body is read by `parser`, without building a tree of the whole of it;
//! this module holds what it reads into, what an import did, and the handler.

mod parser;

use std::borrow::Cow;

use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::{ImportRefusal, ImportedSecret, KeyImport, Permission};
use keymint_domain::{ForeignKey, KeyDigest, OrgId, PresentedKey, MAX_FOREIGN_KEY_CHARS, MIN_FOREIGN_KEY_CHARS};
use serde::Serialize;
use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::requests::CreateApiKeyBody;
use crate::error::{JsonBodyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{read_json_body, Acting};
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
    // Each branch names the field it requires, non-null: a branch of
    // `required` alone reads to generators as an object with no fields
    // (openapi-typescript made every item field `never`).
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .property("key", ObjectBuilder::new().schema_type(Type::String))
                .required("key"),
        )
        .item(
            ObjectBuilder::new()
                .property("hash", Ref::from_schema_name(ImportedHash::name()))
                .required("hash"),
        );
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
