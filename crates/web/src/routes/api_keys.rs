use actix_web::http::header;
use actix_web::{web, HttpResponse};
use keymint_application::{CreateApiKeyError, CreatedApiKey};
use keymint_domain::{
    Environment, KeyDescription, KeyDescriptionError, KeyName, KeyNameError, NewApiKey,
};
use serde::Serialize;
use serde_json::Value;

use super::timestamp;
use crate::validation::{FromJsonBody, ObjectReader, Optional};
use crate::{ApiError, AppState, Authenticated, FieldError, ValidatedJson};

/// The body of `POST /api/v{1,2}/api-keys`.
#[derive(Debug)]
pub(crate) struct CreateApiKeyBody {
    name: KeyName,
    description: Option<KeyDescription>,
    environment: Option<Environment>,
}

fn name_error_kind(err: &KeyNameError) -> &'static str {
    match err {
        KeyNameError::Empty => "string_too_short",
        KeyNameError::TooLong(_) => "string_too_long",
        KeyNameError::Blank | KeyNameError::ControlCharacter => "value_error",
    }
}

fn description_error_kind(err: &KeyDescriptionError) -> &'static str {
    match err {
        KeyDescriptionError::TooLong(_) => "string_too_long",
        KeyDescriptionError::Nul => "value_error",
    }
}

impl FromJsonBody for CreateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let name = body
            .required_string("name")
            .and_then(|raw| body.check("name", KeyName::new(raw), name_error_kind));
        let description = match body.optional_string("description") {
            Some(Optional::Value(raw)) => body
                .check(
                    "description",
                    KeyDescription::new(raw),
                    description_error_kind,
                )
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let environment = match body.optional_string("environment") {
            Some(Optional::Value(raw)) => body
                .check("environment", raw.parse(), |_| "literal_error")
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let parsed = match (name, description, environment) {
            (Some(name), Some(description), Some(environment)) => Some(Self {
                name,
                description,
                environment,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The create response: exactly the specification's twelve fields, in its order.
#[derive(Serialize)]
struct CreatedApiKeyResponse<'a> {
    id: String,
    org_id: String,
    name: &'a str,
    public_key: &'a str,
    private_key_display: &'a str,
    created_at: String,
    private_key: &'a str,
    description: Option<&'a str>,
    is_revoked: bool,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    environment: Option<&'a str>,
}

impl<'a> From<&'a CreatedApiKey> for CreatedApiKeyResponse<'a> {
    fn from(created: &'a CreatedApiKey) -> Self {
        let key = &created.key;
        Self {
            id: key.id().to_string(),
            org_id: key.org_id().to_string(),
            name: key.name().as_str(),
            public_key: key.public_key().as_str(),
            private_key_display: key.private_key_display().as_str(),
            created_at: timestamp(key.created_at()),
            private_key: created.private_key.expose_secret(),
            description: key.description().map(KeyDescription::as_str),
            is_revoked: key.is_revoked(),
            revoked_at: key.revoked_at().map(timestamp),
            last_used_at: key.last_used_at().map(timestamp),
            environment: Some(key.environment().as_str()),
        }
    }
}

async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ValidatedJson(body): ValidatedJson<CreateApiKeyBody>,
    collection: &str,
) -> Result<HttpResponse, ApiError> {
    let request = NewApiKey::new(
        principal.org_id(),
        body.name,
        body.description,
        body.environment.unwrap_or(state.default_environment),
    );
    let created = state
        .create_api_key
        .execute(request)
        .await
        .map_err(|err| match err {
            CreateApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            CreateApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
        })?;
    tracing::info!(key_id = %created.key.id(), org_id = %created.key.org_id(), "API key created");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{collection}/{}", created.key.id()),
        ))
        .json(CreatedApiKeyResponse::from(&created)))
}

/// `POST /api/v2/api-keys`
pub(crate) async fn create_v2(
    state: web::Data<AppState>,
    principal: Authenticated,
    body: ValidatedJson<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    create(state, principal, body, "/api/v2/api-keys").await
}

/// `POST /api/v1/api-keys`: the same contract, as the specification promises.
pub(crate) async fn create_v1(
    state: web::Data<AppState>,
    principal: Authenticated,
    body: ValidatedJson<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    create(state, principal, body, "/api/v1/api-keys").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(value: Value) -> Vec<(String, String)> {
        CreateApiKeyBody::from_json(value)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.loc.join("."), e.kind))
            .collect()
    }

    #[test]
    fn a_minimal_body_is_a_name() {
        let body = CreateApiKeyBody::from_json(json!({"name": "ci"})).unwrap();
        assert_eq!(body.name.as_str(), "ci");
        assert_eq!(body.description, None);
        assert_eq!(body.environment, None);
    }

    #[test]
    fn null_description_and_environment_mean_absent() {
        let body = CreateApiKeyBody::from_json(
            json!({"name": "ci", "description": null, "environment": null}),
        )
        .unwrap();
        assert_eq!((body.description, body.environment), (None, None));
    }

    #[test]
    fn every_failing_field_is_reported_at_once() {
        let found =
            errors(json!({"name": "", "description": 5, "environment": "prod", "scope": "all"}));
        assert_eq!(
            found,
            vec![
                ("body.name".into(), "string_too_short".into()),
                ("body.description".into(), "string_type".into()),
                ("body.environment".into(), "literal_error".into()),
                ("body.scope".into(), "extra_forbidden".into()),
            ]
        );
    }

    #[test]
    fn a_missing_name_and_a_non_object_body_are_named() {
        assert_eq!(
            errors(json!({})),
            vec![("body.name".into(), "missing".into())]
        );
        assert_eq!(
            errors(json!(["name"])),
            vec![("body".into(), "model_attributes_type".into())]
        );
        assert_eq!(
            errors(json!({"name": 7})),
            vec![("body.name".into(), "string_type".into())]
        );
    }
}
