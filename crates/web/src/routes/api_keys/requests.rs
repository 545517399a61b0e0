//! The request bodies of the key routes: each read field by field into domain
//! values (so one 422 names every failing field and no body skips a domain
//! constructor), with the OpenAPI schema that describes it beside it.

use chrono::{DateTime, Duration, Utc};
use keymint_application::{CreditChange, CreditOp, KeyPatch};
use keymint_domain::{
    classify, CharClass, Credits, CreditsError, Environment, KeyDescription, KeyDescriptionError, KeyMeta, KeyName,
    KeyNameError, NewApiKey, OrgId, OwnerId, OwnerIdError, PermissionName, PermissionNameError, Permissions, RateLimit,
    RateLimitError, RateLimits, Refill, RefillInterval, MAX_CREDITS, MAX_DESCRIPTION_CHARS, MAX_GRACE_PERIOD_SECONDS,
    MAX_NAME_CHARS, MAX_OWNER_ID_CHARS, MAX_PERMISSIONS, MAX_PERMISSION_CHARS, MIN_WINDOW_MS,
};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::validation::{parse_timestamp, FromJsonBody, ObjectReader, Optional};
use crate::FieldError;

fn name_error_kind(err: &KeyNameError) -> &'static str {
    match err {
        KeyNameError::Empty => "string_too_short",
        KeyNameError::TooLong(_) => "string_too_long",
        KeyNameError::Text(_) => "value_error",
    }
}

fn description_error_kind(err: &KeyDescriptionError) -> &'static str {
    match err {
        KeyDescriptionError::TooLong(_) => "string_too_long",
        KeyDescriptionError::Nul | KeyDescriptionError::Text(_) => "value_error",
    }
}

fn read_name(body: &mut ObjectReader, raw: String) -> Option<KeyName> {
    body.check("name", KeyName::new(raw), name_error_kind)
}

/// `Some(None)` for absent or null, `Some(Some(_))` for a valid value, `None` if invalid.
fn read_description(body: &mut ObjectReader) -> Option<Option<KeyDescription>> {
    match body.optional_string("description")? {
        Optional::Value(raw) => body
            .check("description", KeyDescription::new(raw), description_error_kind)
            .map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `permissions`: a list of names, each checked (an error names its index),
/// deduplicated, at most [`MAX_PERMISSIONS`]. `Some(None)` when absent or
/// `null`, `None` if invalid.
fn read_permissions(body: &mut ObjectReader) -> Option<Option<Permissions>> {
    let items = match body.optional_array("permissions")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(items) => items,
    };
    let mut names = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Value::String(raw) = item else {
            body.fail_item("permissions", index, "string_type", "Input should be a valid string");
            valid = false;
            continue;
        };
        match PermissionName::new(raw) {
            Ok(name) => names.push(name),
            Err(err) => {
                let kind = match err {
                    PermissionNameError::Empty => "string_too_short",
                    PermissionNameError::TooLong(_) => "string_too_long",
                    PermissionNameError::InvalidCharacter(_) => "string_pattern_mismatch",
                    PermissionNameError::NotConcrete => "value_error",
                };
                body.fail_item("permissions", index, kind, err.to_string());
                valid = false;
            }
        }
    }
    if !valid {
        return None;
    }
    body.check("permissions", Permissions::new(names), |_| "too_long")
        .map(Some)
}

/// `owner_id`: `Some(None)` when absent or `null`, `None` if invalid.
fn read_owner_id(body: &mut ObjectReader) -> Option<Option<OwnerId>> {
    match body.optional_string("owner_id")? {
        Optional::Value(raw) => body
            .check("owner_id", OwnerId::new(raw), |err| match err {
                OwnerIdError::Empty => "string_too_short",
                OwnerIdError::TooLong(_) => "string_too_long",
                OwnerIdError::Text(_) => "value_error",
            })
            .map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `meta`: a JSON object of at most [`MAX_META_BYTES`] compact bytes. `Some(None)`
/// when absent or `null`, `None` if invalid.
fn read_meta(body: &mut ObjectReader) -> Option<Option<KeyMeta>> {
    match body.optional_object("meta")? {
        Optional::Value(object) => body.check("meta", KeyMeta::new(object), |_| "too_long").map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// `ratelimits`: up to five `{name, limit, duration_ms, auto_apply}` (an
/// error names the item and field). `Some(None)` when absent or `null`, `None`
/// if invalid.
fn read_ratelimits(body: &mut ObjectReader) -> Option<Option<RateLimits>> {
    let items = match body.optional_array("ratelimits")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(items) => items,
    };
    let mut limits = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Some(mut limit) = body.nested(vec!["ratelimits".into(), index.to_string()], item) else {
            valid = false;
            continue;
        };
        let name = limit.string("name", true);
        let count = limit.number("limit", true);
        let duration = limit.number("duration_ms", true);
        let auto_apply = limit.boolean("auto_apply");
        // Each field against the domain's rule on its own (the others set to
        // values it accepts), so every failing field is named at once.
        let mut each = |field: &str, kind: &'static str, check: Result<RateLimit, RateLimitError>| match check {
            Ok(_) => Some(()),
            Err(err) => {
                limit.fail(field, kind, err.to_string());
                None
            }
        };
        let name = name.flatten().filter(|name| {
            each(
                "name",
                "string_pattern_mismatch",
                RateLimit::new(name.as_str(), 1, MIN_WINDOW_MS, true),
            )
            .is_some()
        });
        let count = count
            .flatten()
            .filter(|count| each("limit", "value_error", RateLimit::new("a", *count, MIN_WINDOW_MS, true)).is_some());
        let duration = duration
            .flatten()
            .filter(|duration| each("duration_ms", "value_error", RateLimit::new("a", 1, *duration, true)).is_some());
        let parsed = match (name, count, duration, auto_apply) {
            (Some(name), Some(count), Some(duration), Some(auto_apply)) => {
                RateLimit::new(name, count, duration, auto_apply.unwrap_or(true)).ok()
            }
            _ => None,
        };
        let clean = limit.finish();
        match parsed {
            Some(parsed) if clean => limits.push(parsed),
            _ => valid = false,
        }
    }
    if !valid {
        return None;
    }
    match RateLimits::new(limits.clone()) {
        Ok(limits) => Some(Some(limits)),
        Err(RateLimitError::DuplicateName(name)) => {
            let index = limits.iter().rposition(|l| l.name() == name).unwrap_or(0).to_string();
            body.fail_at(
                &["ratelimits", &index, "name"],
                "value_error",
                RateLimitError::DuplicateName(name).to_string(),
            );
            None
        }
        Err(err) => {
            body.fail("ratelimits", "too_long", err.to_string());
            None
        }
    }
}

/// `credits`: `{remaining, refill: {interval, amount, refill_day?}}`, or
/// `null` for unlimited use. `Some(None)` when absent or `null`, `None` if
/// invalid.
fn read_credits(body: &mut ObjectReader) -> Option<Option<Credits>> {
    let object = match body.optional_object("credits")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(object) => object,
    };
    let mut credits = body.nested(vec!["credits".into()], Value::Object(object))?;
    let remaining = credits.number("remaining", true);
    let refill = match credits.object("refill") {
        Some(Some(object)) => {
            let path = credits.path_of("refill");
            let mut refill = credits.body().nested(path, Value::Object(object))?;
            let interval = refill.string("interval", true);
            let interval = match interval {
                Some(Some(raw)) => match raw.parse::<RefillInterval>() {
                    Ok(interval) => Some(interval),
                    Err(err) => {
                        refill.fail("interval", "literal_error", err.to_string());
                        None
                    }
                },
                _ => None,
            };
            let amount = refill.number("amount", true);
            let day = refill.number("refill_day", false);
            let parsed = match (interval, amount, day) {
                (Some(interval), Some(Some(amount)), Some(day)) => {
                    let day = day.map(|day| u32::try_from(day).unwrap_or(u32::MAX));
                    match Refill::new(interval, amount, day) {
                        Ok(parsed) => Some(parsed),
                        Err(err) => {
                            let field = match err {
                                CreditsError::DayOutOfRange | CreditsError::DayWithDaily => "refill_day",
                                _ => "amount",
                            };
                            refill.fail(field, "value_error", err.to_string());
                            None
                        }
                    }
                }
                _ => None,
            };
            let clean = refill.finish();
            parsed.filter(|_| clean).map(Some)
        }
        Some(None) => Some(None),
        None => None,
    };
    let parsed = match (remaining, refill) {
        (Some(Some(remaining)), Some(refill)) => match Credits::new(remaining, refill, Utc::now()) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                credits.fail("remaining", "value_error", err.to_string());
                None
            }
        },
        _ => None,
    };
    let clean = credits.finish();
    parsed.filter(|_| clean).map(Some)
}

/// The body of `POST /api-keys`.
#[derive(Debug)]
pub(crate) struct CreateApiKeyBody {
    name: KeyName,
    description: Option<KeyDescription>,
    environment: Option<Environment>,
    expires_at: Option<DateTime<Utc>>,
    permissions: Permissions,
    owner_id: Option<OwnerId>,
    meta: Option<KeyMeta>,
    ratelimits: RateLimits,
    credits: Option<Credits>,
}

impl CreateApiKeyBody {
    /// The environment the body named, if any.
    pub(crate) fn environment(&self) -> Option<Environment> {
        self.environment
    }

    /// The request for `org_id`, in `default_environment` unless the body named one.
    pub(crate) fn into_request(self, org_id: OrgId, default_environment: Environment) -> NewApiKey {
        NewApiKey::new(
            org_id,
            self.name,
            self.description,
            self.environment.unwrap_or(default_environment),
        )
        .expiring_at(self.expires_at)
        .with_permissions(self.permissions)
        .owned_by(self.owner_id)
        .with_meta(self.meta)
        .with_ratelimits(self.ratelimits)
        .with_credits(self.credits)
    }
}

impl FromJsonBody for CreateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let name = body.required_string("name").and_then(|raw| read_name(&mut body, raw));
        let description = read_description(&mut body);
        let environment = match body.optional_string("environment") {
            Some(Optional::Value(raw)) => body.check("environment", raw.parse(), |_| "literal_error").map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let expires_at = match body.optional_string("expires_at") {
            Some(Optional::Value(raw)) => body
                .check("expires_at", parse_timestamp(&raw), |_| "datetime_parsing")
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let permissions = read_permissions(&mut body);
        let owner_id = read_owner_id(&mut body);
        let meta = read_meta(&mut body);
        let ratelimits = read_ratelimits(&mut body);
        let credits = read_credits(&mut body);
        let parsed = match (
            name,
            description,
            environment,
            expires_at,
            permissions,
            owner_id,
            meta,
            ratelimits,
            credits,
        ) {
            (
                Some(name),
                Some(description),
                Some(environment),
                Some(expires_at),
                Some(permissions),
                Some(owner_id),
                Some(meta),
                Some(ratelimits),
                Some(credits),
            ) => Some(Self {
                name,
                description,
                environment,
                expires_at,
                permissions: permissions.unwrap_or_default(),
                owner_id,
                meta,
                ratelimits: ratelimits.unwrap_or_default(),
                credits,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// An update's field: `Some(None)` when the body does not name it (left as it
/// is), else `Some(Some(_))` with what `read` made of it (`null` included, which
/// clears), `None` if invalid.
fn if_given<T>(
    body: &mut ObjectReader,
    field: &str,
    read: impl FnOnce(&mut ObjectReader) -> Option<T>,
) -> Option<Option<T>> {
    let given = body.has(field);
    read(body).map(|value| given.then_some(value))
}

/// The body of `PATCH /api-keys/{key_id}`: at least one of `name`,
/// `description`, `permissions`, `owner_id`, `meta` (`null` clears any but the
/// name; `[]` also removes all permissions).
#[derive(Debug)]
pub(crate) struct UpdateApiKeyBody(pub(crate) KeyPatch);

impl FromJsonBody for UpdateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let name = match body.optional_string("name") {
            Some(Optional::Value(raw)) => read_name(&mut body, raw).map(Some),
            Some(Optional::Absent) => Some(None),
            Some(Optional::Null) => {
                body.fail(
                    "name",
                    "string_type",
                    "Input should be a valid string (a name cannot be cleared)",
                );
                None
            }
            None => None,
        };
        let description = if_given(&mut body, "description", read_description);
        let permissions = if_given(&mut body, "permissions", |body| {
            read_permissions(body).map(Option::unwrap_or_default)
        });
        let owner_id = if_given(&mut body, "owner_id", read_owner_id);
        let meta = if_given(&mut body, "meta", read_meta);
        let ratelimits = if_given(&mut body, "ratelimits", |body| {
            read_ratelimits(body).map(Option::unwrap_or_default)
        });
        let credits = if_given(&mut body, "credits", read_credits);
        let nothing = matches!(
            (
                &name,
                &description,
                &permissions,
                &owner_id,
                &meta,
                &ratelimits,
                &credits
            ),
            (
                Some(None),
                Some(None),
                Some(None),
                Some(None),
                Some(None),
                Some(None),
                Some(None)
            )
        );
        if nothing && body.ok() {
            body.fail(
                "",
                "value_error",
                "Provide at least one of name, description, permissions, owner_id, meta, ratelimits, credits",
            );
        }
        let parsed = match (name, description, permissions, owner_id, meta, ratelimits, credits) {
            (
                Some(name),
                Some(description),
                Some(permissions),
                Some(owner_id),
                Some(meta),
                Some(ratelimits),
                Some(credits),
            ) => Some(Self(KeyPatch {
                name,
                description,
                permissions,
                owner_id,
                meta,
                ratelimits,
                credits,
            })),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The body of `POST /api-keys/{key_id}/credits`.
#[derive(Debug)]
pub(crate) struct ChangeCreditsBody(pub(crate) CreditChange);

impl FromJsonBody for ChangeCreditsBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let op = match body.required_string("op").as_deref() {
            Some("set") => Some(CreditOp::Set),
            Some("increment") => Some(CreditOp::Increment),
            Some("decrement") => Some(CreditOp::Decrement),
            Some(_) => {
                body.fail(
                    "op",
                    "literal_error",
                    "Input should be 'set', 'increment' or 'decrement'",
                );
                None
            }
            None => None,
        };
        let value = match body.optional_integer("value") {
            Some(Optional::Value(value)) if (0..=MAX_CREDITS as i64).contains(&value) => u64::try_from(value).ok(),
            Some(Optional::Value(_)) => {
                body.fail("value", "value_error", format!("value must be from 0 to {MAX_CREDITS}"));
                None
            }
            Some(Optional::Absent | Optional::Null) => {
                body.fail("value", "missing", "Field required");
                None
            }
            None => None,
        };
        let parsed = match (op, value) {
            (Some(op), Some(value)) => Some(Self(CreditChange { op, value })),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The optional body of `POST /api-keys/{key_id}/rotate`. Only the type is read
/// here: the bounds are the domain's rule (`ApiKey::rotate`), answered as a 422
/// on this same field.
#[derive(Debug, Default)]
pub(crate) struct RotateApiKeyBody {
    grace_period_seconds: i64,
}

impl RotateApiKeyBody {
    /// How long the replaced private key keeps verifying.
    pub(crate) fn grace_period(&self) -> Duration {
        Duration::try_seconds(self.grace_period_seconds).unwrap_or(Duration::MAX)
    }
}

impl FromJsonBody for RotateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let grace = match body.optional_integer("grace_period_seconds") {
            Some(Optional::Value(seconds)) => Some(seconds),
            Some(Optional::Absent | Optional::Null) => Some(0),
            None => None,
        };
        body.finish(grace.map(|grace_period_seconds| Self { grace_period_seconds }))
    }
}

// ------------------------------------------------------------------ OpenAPI

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
fn description_pattern() -> String {
    text_pattern(true, false)
}

/// `name`'s schema, with the domain's bounds.
fn name_schema() -> impl Into<RefOr<Schema>> {
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
fn description_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "A description of the API key; `null` for none. Tab and newline are its only control characters",
        ))
        .max_length(Some(MAX_DESCRIPTION_CHARS))
        .pattern(Some(description_pattern()))
}

/// `permissions`' schema: the domain's names and count.
fn permissions_schema() -> impl Into<RefOr<Schema>> {
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
fn meta_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Your own data about the key: a JSON object of at most 4096 bytes as compact JSON, \
             returned as given (member order kept); never in the audit trail",
        ))
}

/// `owner_id`'s schema: the name's character rules, up to 255 characters.
fn owner_id_schema() -> impl Into<RefOr<Schema>> {
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
fn grace_period_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .description(Some("Seconds the replaced private key keeps verifying (default 0)"))
        .minimum(Some(0))
        .maximum(Some(MAX_GRACE_PERIOD_SECONDS))
}

/// The `{key_id}` of every route about one key (read by `ActingOnKey`).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyPath {
    /// The key's id
    key_id: Uuid,
}

/// The body of a create request (validated field by field, not deserialised).
#[derive(ToSchema)]
#[schema(as = CreateApiKeyRequest)]
#[allow(dead_code)]
pub(crate) struct CreateApiKeyRequest {
    /// A user-friendly name for the API key.
    #[schema(schema_with = name_schema)]
    name: String,
    /// An optional description for the API key.
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    /// The configured default when absent.
    #[schema(schema_with = crate::routes::nullable_environment_schema)]
    environment: Option<String>,
    /// When the key stops verifying (RFC 3339, in the future, at most the configured maximum ahead).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// What the key may do.
    #[schema(schema_with = permissions_schema)]
    permissions: Option<Vec<String>>,
    /// Whom the key belongs to.
    #[schema(schema_with = owner_id_schema)]
    owner_id: Option<String>,
    /// Your own data about the key (`null` clears it in an update).
    #[schema(schema_with = meta_schema)]
    meta: Option<serde_json::Value>,
    /// The key's own rate limits, at most 5 (`[]` or `null`: none)
    #[schema(max_items = 5)]
    ratelimits: Option<Vec<RateLimitInput>>,
    /// The key's credits (`null`: unlimited use); an update sets them anew
    credits: Option<CreditsInput>,
}

/// One key to bring in: the create body's fields, and exactly one of `key`
/// and `hash`.
#[derive(ToSchema)]
#[schema(as = ImportApiKeyItem)]
#[allow(dead_code)]
pub(crate) struct ImportApiKeyItem {
    /// A user-friendly name for the API key.
    #[schema(schema_with = name_schema)]
    name: String,
    /// An optional description for the API key.
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    /// The configured default when absent; a key in this deployment's own
    /// format keeps its environment (another is refused).
    #[schema(schema_with = crate::routes::nullable_environment_schema)]
    environment: Option<String>,
    /// When the key stops verifying (RFC 3339, in the future, at most the configured maximum ahead).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// What the key may do.
    #[schema(schema_with = permissions_schema)]
    permissions: Option<Vec<String>>,
    /// Whom the key belongs to.
    #[schema(schema_with = owner_id_schema)]
    owner_id: Option<String>,
    /// Your own data about the key.
    #[schema(schema_with = meta_schema)]
    meta: Option<serde_json::Value>,
    /// The key's own rate limits, at most 5 (`[]` or `null`: none)
    #[schema(max_items = 5)]
    ratelimits: Option<Vec<RateLimitInput>>,
    /// The key's credits (`null`: unlimited use)
    credits: Option<CreditsInput>,
    /// The private key as the other system issued it: printable ASCII without
    /// spaces, 20 to 256 characters. Hashed at once; never stored, logged or
    /// returned.
    #[schema(min_length = 20, max_length = 256, pattern = "^[!-~]{20,256}$")]
    key: Option<String>,
    /// The SHA-256 of the whole private key, when only that was exported.
    hash: Option<ImportedHash>,
}

/// A private key's SHA-256, as exported by another system.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportedHash {
    /// Only `sha256`.
    #[schema(pattern = "^sha256$")]
    algorithm: String,
    /// 64 hexadecimal digits, or base64 (standard or URL-safe, padded or not)
    /// of the 32 bytes.
    #[schema(pattern = "^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/_-]{43}=?)$")]
    value: String,
}

/// The body of an update: at least one field. A `null` description clears it.
#[derive(ToSchema)]
#[schema(as = UpdateApiKeyRequest)]
#[allow(dead_code)]
pub(crate) struct UpdateApiKeyRequest {
    /// A new name.
    #[schema(schema_with = name_schema)]
    name: Option<String>,
    /// A new description, or `null` to clear it.
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    /// New permissions, replacing the old; `[]` or `null` removes them all.
    #[schema(schema_with = permissions_schema)]
    permissions: Option<Vec<String>>,
    /// A new owner, or `null` to clear it.
    #[schema(schema_with = owner_id_schema)]
    owner_id: Option<String>,
    /// Your own data about the key (`null` clears it in an update).
    #[schema(schema_with = meta_schema)]
    meta: Option<serde_json::Value>,
    /// The key's own rate limits, at most 5 (`[]` or `null`: none)
    #[schema(max_items = 5)]
    ratelimits: Option<Vec<RateLimitInput>>,
    /// The key's credits (`null`: unlimited use); an update sets them anew
    credits: Option<CreditsInput>,
}

/// A rate limit on a key.
#[derive(ToSchema)]
#[schema(as = RateLimitInput)]
#[allow(dead_code)]
pub(crate) struct RateLimitInput {
    /// Unique on the key: letters, digits and _ . : -
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:-]+$")]
    name: String,
    /// Uses allowed per window
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    limit: u64,
    /// The window in milliseconds, 1 000 (a second) to 2 592 000 000 (30 days),
    /// aligned to the Unix epoch
    #[schema(minimum = 1000, maximum = 2_592_000_000_u64)]
    duration_ms: u64,
    /// Whether every verification takes 1 from it (default true); otherwise
    /// only verifications that name it
    auto_apply: Option<bool>,
}

/// A key's credits: `remaining` verifications (of cost 1), refilled by the
/// UTC calendar if `refill` is given.
#[derive(ToSchema)]
#[schema(as = CreditsInput)]
#[allow(dead_code)]
pub(crate) struct CreditsInput {
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    remaining: u64,
    refill: Option<RefillInput>,
}

/// `remaining` is set to `amount` at 00:00 UTC every day, or on `refill_day`
/// (default 1; the month's last day when shorter) of every month.
#[derive(ToSchema)]
#[schema(as = RefillInput)]
#[allow(dead_code)]
pub(crate) struct RefillInput {
    #[schema(pattern = "^(daily|monthly)$")]
    interval: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    amount: u64,
    /// Monthly refills only
    #[schema(minimum = 1, maximum = 31)]
    refill_day: Option<u32>,
}

/// A change to a key's remaining credits.
#[derive(ToSchema)]
#[schema(as = ChangeCreditsRequest)]
#[allow(dead_code)]
pub(crate) struct ChangeCreditsRequest {
    /// `set`, `increment` or `decrement`
    #[schema(pattern = "^(set|increment|decrement)$")]
    op: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    value: u64,
}

/// The optional body of a rotation.
#[derive(ToSchema)]
#[schema(as = RotateApiKeyRequest)]
#[allow(dead_code)]
pub(crate) struct RotateApiKeyRequest {
    /// How long the replaced private key keeps verifying (default 0).
    #[schema(schema_with = grace_period_schema)]
    grace_period_seconds: Option<u32>,
}

#[cfg(test)]
mod tests {
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
    use serde_json::json;

    fn errors<T: FromJsonBody + std::fmt::Debug>(value: Value) -> Vec<(String, String)> {
        T::from_json(value)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.loc.join("."), e.kind))
            .collect()
    }

    #[test]
    fn a_minimal_create_body_is_a_name() {
        let body = CreateApiKeyBody::from_json(json!({"name": "ci"})).unwrap();
        assert_eq!(body.name.as_str(), "ci");
        assert_eq!(
            (body.description, body.environment, body.expires_at),
            (None, None, None)
        );
    }

    #[test]
    fn every_failing_create_field_is_reported_at_once() {
        let found = errors::<CreateApiKeyBody>(
            json!({"name": "", "description": 5, "environment": "prod", "expires_at": "tomorrow", "scope": "all"}),
        );
        assert_eq!(
            found,
            vec![
                ("body.name".into(), "string_too_short".into()),
                ("body.description".into(), "string_type".into()),
                ("body.environment".into(), "literal_error".into()),
                ("body.expires_at".into(), "datetime_parsing".into()),
                ("body.scope".into(), "extra_forbidden".into()),
            ]
        );
    }

    #[test]
    fn a_patch_needs_a_field_and_cannot_null_the_name() {
        assert_eq!(
            errors::<UpdateApiKeyBody>(json!({})),
            vec![("body".into(), "value_error".into())]
        );
        assert_eq!(
            errors::<UpdateApiKeyBody>(json!({"name": null})),
            vec![("body.name".into(), "string_type".into())]
        );
        let clear = UpdateApiKeyBody::from_json(json!({"description": null})).unwrap();
        assert_eq!(clear.0.description, Some(None));
        assert_eq!(clear.0.name, None);
    }

    #[test]
    fn grace_periods_are_whole_seconds_whose_bounds_are_the_domains() {
        assert_eq!(
            RotateApiKeyBody::from_json(json!({})).unwrap().grace_period(),
            Duration::zero()
        );
        assert_eq!(
            RotateApiKeyBody::from_json(json!({"grace_period_seconds": 604800}))
                .unwrap()
                .grace_period(),
            Duration::seconds(604_800)
        );
        assert_eq!(
            RotateApiKeyBody::from_json(json!({"grace_period_seconds": 60.0}))
                .unwrap()
                .grace_period(),
            Duration::seconds(60),
            "an integral number is an integer, as JSON Schema says"
        );
        let huge = RotateApiKeyBody::from_json(json!({"grace_period_seconds": 1e300})).unwrap();
        assert!(keymint_domain::ApiKey::check_grace_period(huge.grace_period()).is_err());
        for (value, kind) in [(json!(1.5), "int_from_float"), (json!("60"), "int_type")] {
            assert_eq!(
                errors::<RotateApiKeyBody>(json!({"grace_period_seconds": value})),
                vec![("body.grace_period_seconds".into(), kind.into())]
            );
        }
        // Out-of-range values pass the type check and are judged by the domain; the
        // answer is the same 422 on the same field (see the error mapping's test).
        for (value, kind) in [(json!(604801), "less_than_equal"), (json!(-1), "greater_than_equal")] {
            let body = RotateApiKeyBody::from_json(json!({"grace_period_seconds": value})).unwrap();
            let refused = keymint_domain::ApiKey::check_grace_period(body.grace_period()).unwrap_err();
            match crate::ApiError::from(refused) {
                crate::ApiError::Validation(errors) => {
                    assert_eq!(errors[0].loc, ["body", "grace_period_seconds"]);
                    assert_eq!(errors[0].kind, kind);
                }
                other => panic!("{other:?}"),
            }
        }
        let huge = RotateApiKeyBody::from_json(json!({"grace_period_seconds": u64::MAX})).unwrap();
        assert!(keymint_domain::ApiKey::check_grace_period(huge.grace_period()).is_err());
    }
}
