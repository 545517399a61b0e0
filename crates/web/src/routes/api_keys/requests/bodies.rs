//! The request bodies of the key routes: each struct is what its parser
//! makes of a body and, through its derive, what OpenAPI shows of it.

use chrono::{DateTime, Duration, Utc};
use keymint_application::{CreditChange, CreditOp, KeyPatch};
use keymint_domain::{
    Credits, Environment, KeyDescription, KeyMeta, KeyName, NewApiKey, OrgId, OwnerId, Permissions, RateLimits,
    MAX_CREDITS,
};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::fields::{
    if_given, read_credits, read_description, read_meta, read_name, read_owner_id, read_permissions, read_ratelimits,
    CreditsInput, RateLimitInput,
};
use super::schemas::{
    description_schema, grace_period_schema, meta_schema, name_schema, owner_id_schema, permissions_schema,
};
use crate::validation::{parse_timestamp, FromJsonBody, ObjectReader, Optional};
use crate::FieldError;

/// The `{key_id}` of every route about one key (read by `ActingOnKey`).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyPath {
    /// The key's id
    key_id: Uuid,
}

// What the parser makes of `POST /api-keys` is what OpenAPI shows of it.
/// The body of a create request: only `name` is required.
#[derive(Debug, ToSchema)]
#[schema(as = CreateApiKeyRequest)]
pub(crate) struct CreateApiKeyBody {
    #[schema(schema_with = name_schema)]
    name: KeyName,
    #[schema(schema_with = description_schema)]
    description: Option<KeyDescription>,
    #[schema(schema_with = crate::routes::nullable_environment_schema)]
    environment: Option<Environment>,
    /// When the key stops verifying (RFC 3339, in the future, at most the configured maximum ahead).
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<DateTime<Utc>>,
    #[schema(schema_with = permissions_schema, required = false)]
    permissions: Permissions,
    #[schema(schema_with = owner_id_schema)]
    owner_id: Option<OwnerId>,
    #[schema(schema_with = meta_schema)]
    meta: Option<KeyMeta>,
    /// The key's own rate limits, at most 5 (`[]` or `null`: none)
    #[schema(value_type = Option<Vec<RateLimitInput>>, max_items = 5, required = false)]
    ratelimits: RateLimits,
    /// The key's credits (`null`: unlimited use); an update sets them anew
    #[schema(value_type = Option<CreditsInput>)]
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

// What the parser makes of `PATCH /api-keys/{key_id}` is what OpenAPI shows.
/// The body of an update: at least one field. `null` clears any field but the
/// name; `[]` also removes all permissions or rate limits.
#[derive(Debug, ToSchema)]
#[schema(as = UpdateApiKeyRequest, min_properties = 1)]
pub(crate) struct UpdateApiKeyBody {
    #[schema(schema_with = name_schema)]
    name: Option<KeyName>,
    #[schema(schema_with = description_schema)]
    description: Option<Option<KeyDescription>>,
    #[schema(schema_with = permissions_schema)]
    permissions: Option<Permissions>,
    #[schema(schema_with = owner_id_schema)]
    owner_id: Option<Option<OwnerId>>,
    #[schema(schema_with = meta_schema)]
    meta: Option<Option<KeyMeta>>,
    /// The key's own rate limits, at most 5 (`[]` or `null`: none)
    #[schema(value_type = Option<Vec<RateLimitInput>>, max_items = 5)]
    ratelimits: Option<RateLimits>,
    /// The key's credits (`null`: unlimited use); an update sets them anew
    #[schema(value_type = Option<CreditsInput>)]
    credits: Option<Option<Credits>>,
}

impl From<UpdateApiKeyBody> for KeyPatch {
    fn from(body: UpdateApiKeyBody) -> Self {
        Self {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
            owner_id: body.owner_id,
            meta: body.meta,
            ratelimits: body.ratelimits,
            credits: body.credits,
        }
    }
}

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
            ) => Some(Self {
                name,
                description,
                permissions,
                owner_id,
                meta,
                ratelimits,
                credits,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

// What the parser makes of `POST /api-keys/{key_id}/credits` is what OpenAPI shows.
/// A change to a key's remaining credits.
#[derive(Debug, ToSchema)]
#[schema(as = ChangeCreditsRequest)]
pub(crate) struct ChangeCreditsBody {
    /// `set`, `increment` or `decrement`
    #[schema(value_type = String, pattern = "^(set|increment|decrement)$")]
    op: CreditOp,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    value: u64,
}

impl From<ChangeCreditsBody> for CreditChange {
    fn from(body: ChangeCreditsBody) -> Self {
        Self {
            op: body.op,
            value: body.value,
        }
    }
}

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
            (Some(op), Some(value)) => Some(Self { op, value }),
            _ => None,
        };
        body.finish(parsed)
    }
}

// What the parser makes of `POST /api-keys/{key_id}/rotate` is what OpenAPI
// shows. Only the type is read here: the bounds are the domain's rule
// (`ApiKey::rotate`), answered as a 422 on this same field.
/// The optional body of a rotation.
#[derive(Debug, Default, ToSchema)]
#[schema(as = RotateApiKeyRequest)]
pub(crate) struct RotateApiKeyBody {
    #[schema(schema_with = grace_period_schema, required = false)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let clear = KeyPatch::from(UpdateApiKeyBody::from_json(json!({"description": null})).unwrap());
        assert_eq!(clear.description, Some(None));
        assert_eq!(clear.name, None);
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
